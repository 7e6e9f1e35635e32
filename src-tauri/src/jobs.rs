//! Job commands: the pool's state and controls, the job table, one job's output, new jobs.
//! Job news comes as the `job` event ([`crate::events`], as [`JobNews`]); a job's output
//! streams through a channel to the window that shows it ([`job_output`]).

use std::path::PathBuf;

use gatehouse_engine::{Canceled, ExecSpec, Job, JobFeed, JobFilter, JobState, NewJob, OutputLine, PoolStatus, PromptSpec};
use tauri::ipc::Channel;
use tauri::State;

use crate::error::{Failure, Result};
use crate::state::Core;

/// Most rows a table asks for at once (the window is virtualised; 10,000 rows is a page).
const MAX_ROWS: i64 = 10_000;

/// A job as the jobs table shows it: the job, how far along it is, and which worker has it.
/// (The engine's `Job` leaves these two out of the CLI's JSON contract.)
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct JobRow {
    #[serde(flatten)]
    pub job: Job,
    /// How far along it is, 0 to 100, when its kind says.
    pub progress: Option<f64>,
    /// The pool running it (`host:pid:nonce`); `null` when it is not running.
    pub worker: Option<String>,
}

impl From<Job> for JobRow {
    fn from(job: Job) -> JobRow {
        JobRow { progress: job.progress, worker: job.lease_owner.clone(), job }
    }
}

/// Job news for the windows: a row to put in place, progress, a pause, rows to drop, or "reload".
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum JobNews {
    /// A job submitted, claimed, re-queued, finished or changed: its row as it is now.
    Job { row: JobRow },
    /// A running job reported how far along it is.
    Progress {
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        id: i64,
        percent: f64,
    },
    /// The pool was paused or resumed, by this process or another: read its status again.
    Paused { paused: bool },
    /// These jobs were deleted (retention).
    Pruned {
        #[cfg_attr(feature = "ts", ts(type = "Array<number>"))]
        ids: Vec<i64>,
    },
    /// News was missed: reload the table.
    Resync,
}

impl JobNews {
    /// The news a window gets for an engine event; `None` for output lines (those stream to
    /// the window that follows the job, [`job_output`]).
    pub fn of(event: JobFeed) -> Option<JobNews> {
        Some(match event {
            JobFeed::Submitted { job }
            | JobFeed::Claimed { job }
            | JobFeed::Requeued { job }
            | JobFeed::Finished { job }
            | JobFeed::Changed { job } => JobNews::Job { row: job.into() },
            JobFeed::Progress { id, percent } => JobNews::Progress { id, percent },
            JobFeed::Paused { paused } => JobNews::Paused { paused },
            JobFeed::Pruned { ids } => JobNews::Pruned { ids },
            JobFeed::Resync => JobNews::Resync,
            JobFeed::Output { .. } => return None,
        })
    }
}

/// A new job from the jobs window: a prompt to a gateway, or a command through the exec path.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum JobRequest {
    Prompt {
        text: String,
        /// A gateway profile; `None` = the default one.
        #[cfg_attr(feature = "ts", ts(optional))]
        gateway: Option<String>,
    },
    Exec {
        program: String,
        args: Vec<String>,
        /// Where it runs; `None` = the default workspace.
        #[cfg_attr(feature = "ts", ts(optional))]
        cwd: Option<PathBuf>,
    },
}

/// Whether the pools on this database are paused, how many are alive, and how many jobs are in each
/// state.
#[tauri::command]
pub async fn pool_status(core: State<'_, Core>) -> Result<PoolStatus> {
    Ok(core.engine.pool_status().await?)
}

/// Jobs newest first, all or in one state.
#[tauri::command]
pub async fn jobs(core: State<'_, Core>, state: Option<JobState>, limit: i64) -> Result<Vec<JobRow>> {
    let jobs = core.engine.jobs(&JobFilter { state, limit: Some(limit.clamp(1, MAX_ROWS)) }).await?;
    Ok(jobs.into_iter().map(JobRow::from).collect())
}

/// One job as its table row.
#[tauri::command]
pub async fn job(core: State<'_, Core>, id: i64) -> Result<JobRow> {
    Ok(core.engine.job(id).await?.into())
}

/// Queue a job; returns its id. A command the policy refuses is refused now, with the rule;
/// one that needs approval asks when it runs (the approval dialog).
#[tauri::command]
pub async fn submit_job(core: State<'_, Core>, job: JobRequest, priority: i64) -> Result<i64> {
    let invalid = |e: serde_json::Error| Failure::invalid(e.to_string());
    match job {
        JobRequest::Prompt { text, gateway } => {
            let spec = PromptSpec { text, gateway: gateway.filter(|g| !g.is_empty()), model: None };
            let job = NewJob { priority, ..NewJob::new("prompt", serde_json::to_value(spec).map_err(invalid)?) };
            Ok(core.engine.submit(job).await?)
        }
        JobRequest::Exec { program, args, cwd } => {
            let spec = ExecSpec { program: program.trim().to_owned(), args, cwd, env: Vec::new() };
            if spec.program.is_empty() {
                return Err(Failure::invalid("say which program to run"));
            }
            let job = NewJob { priority, ..NewJob::new("exec", serde_json::to_value(spec).map_err(invalid)?) };
            // No one is asked now: an `ask` command asks when it runs, in the approval dialog.
            Ok(core.engine.submit_exec(job, &gatehouse_engine::NoApprover).await?)
        }
    }
}

/// Cancel a job: `true` if it ended now (it was queued), `false` if its pool was asked to stop it.
#[tauri::command]
pub async fn cancel_job(core: State<'_, Core>, id: i64) -> Result<bool> {
    Ok(core.engine.cancel(id).await? == Canceled::Done)
}

/// Queue a failed or canceled job again, with one more attempt.
#[tauri::command]
pub async fn retry_job(core: State<'_, Core>, id: i64) -> Result<()> {
    Ok(core.engine.retry(id).await?)
}

/// Pause (`true`) or resume the pool: every process's workers stop or start claiming.
#[tauri::command]
pub async fn pause_pool(core: State<'_, Core>, paused: bool) -> Result<PoolStatus> {
    if paused {
        core.engine.pause_pool().await?;
    } else {
        core.engine.resume_pool().await?;
    }
    Ok(core.engine.pool_status().await?)
}

/// Job `id`'s output after line `after` through `channel`: the stored lines, then new ones as
/// they are written, until the job has finished or the window stops listening. Returns once
/// following has started.
#[tauri::command]
pub async fn job_output(core: State<'_, Core>, id: i64, after: i64, channel: Channel<Vec<OutputLine>>) -> Result<()> {
    let mut lines = core.engine.follow_output(id, after).await?;
    tauri::async_runtime::spawn(async move {
        loop {
            match lines.next().await {
                Ok(Some(page)) => {
                    if channel.send(page).is_err() {
                        return; // the window stopped listening
                    }
                }
                Ok(None) => return,
                Err(e) => return tracing::warn!(job = id, error = %e, "stopped following the job's output"),
            }
        }
    });
    Ok(())
}
