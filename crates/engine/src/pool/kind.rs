//! The extension point for job kinds.
//!
//! The pool knows nothing about commands or gateways: it claims a job, hands it to the
//! [`JobKind`] registered under the job's `kind`, and records the [`Outcome`]. Timeouts,
//! cancellation, retries, output storage and leases are the pool's; a kind only does the work,
//! writes output through its [`JobRun`] and stops promptly when `cancel` fires.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::job::Stream;
use super::output::OutputSink;
use crate::error::{JobError, Result};

/// What [`JobKind::run`] returns.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// What a kind of job does: registered with the pool under its name, given each attempt of its jobs.
pub trait JobKind: Send + Sync + 'static {
    /// The `kind` stored on the job.
    fn name(&self) -> &'static str;

    /// Refuse a bad spec at submit time, before anything is queued.
    fn validate(&self, spec: &serde_json::Value) -> Result<()>;

    /// The timeout a job of this kind gets when its submitter gives none.
    fn default_timeout(&self) -> Option<std::time::Duration> {
        None
    }

    /// Run one attempt. Must return soon after `run.cancel` fires (the pool decides what the
    /// cancellation means: a person's cancel, a timeout, a shutdown or a lost lease).
    fn run(&self, run: JobRun) -> BoxFuture<Outcome>;
}

/// One attempt of one job, as given to its kind.
pub struct JobRun {
    /// The job being run, as `gatehouse jobs show` names it (for log lines and messages).
    pub id: i64,
    /// Which attempt this is, 1 for the first; output lines carry it.
    pub attempt: i64,
    /// What the job was submitted to do, already checked by [`JobKind::validate`].
    pub spec: serde_json::Value,
    /// Fires when the attempt must stop (cancel, timeout, shutdown, lost lease); the kind then returns soon.
    pub cancel: CancellationToken,
    /// The attempt's time limit (the pool stops it then, through `cancel`).
    pub timeout: Option<std::time::Duration>,
    /// Identifies this attempt's processes (set in their environment) so the engine can find
    /// them again without trusting a pid that may have been reused.
    pub marker: String,
    pub(crate) output: OutputSink,
    pub(crate) queue: super::queue::Queue,
    pub(crate) epoch: i64,
    pub(crate) owner: Arc<str>,
}

impl JobRun {
    /// Record a line of output (stored, bounded per job, and streamed to subscribers).
    pub async fn line(&self, stream: Stream, text: String) {
        self.output.line(stream, text).await;
    }

    /// Report progress in percent (0–100).
    pub async fn progress(&self, percent: f64) {
        self.output.progress(percent).await;
    }

    /// Record the process group of this attempt. Returns false if this pool no longer holds
    /// the attempt (it was presumed dead and the job rescued): stop what was started.
    pub async fn spawned(&self, pgid: i32) -> bool {
        match self.queue.set_pgid(self.id, self.attempt, self.epoch, &self.owner, pgid).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(job = self.id, error = %e, "could not record the process group");
                true
            }
        }
    }

    /// Show every front end that this attempt waits for a person's answer to `request` (`None`:
    /// not any more). Only a shared queue needs it; a failure is logged, the question goes on.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // used by exec, which runs on Linux only
    pub(crate) async fn waiting(&self, request: Option<i64>) {
        if let Err(e) = self.queue.set_waiting(self.id, self.epoch, request).await {
            tracing::warn!(job = self.id, error = %e, "could not show the job as waiting for an answer");
        }
    }

    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // used by exec, which runs on Linux only
    pub(crate) fn output(&self) -> &OutputSink {
        &self.output
    }
}

/// How an attempt ended, as the kind saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The work was done; the job succeeds.
    Succeeded {
        /// The process's exit status, for kinds that run one.
        exit_code: Option<i32>,
    },
    /// The work failed; the pool retries it if attempts are left, else the job fails.
    Failed {
        /// The process's exit status, for kinds that run one.
        exit_code: Option<i32>,
        /// Why it failed, stored on the job.
        error: JobError,
    },
    /// The attempt stopped because `cancel` fired.
    Stopped {
        /// The process's exit status once stopped, for kinds that run one.
        exit_code: Option<i32>,
    },
}
