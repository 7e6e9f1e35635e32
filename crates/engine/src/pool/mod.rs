//! The worker pool.
//!
//! A pool is N worker tasks and one maintenance task in a process, registered in the store
//! under an `Identity` that is the lease on every job it runs.
//!
//! - A worker loops: claim (finishing its previous job in the same transaction), run, repeat.
//!   Idle workers wait for a wake-up from a submit in this process; one of them at a time
//!   polls the store every `poll` for jobs submitted by other processes and wakes the others
//!   when it finds one (the rest look by themselves only every `IDLE_POLLS` polls, a safety
//!   net): an idle pool of three costs one empty claim per `poll`, not three.
//! - At most `workers` jobs run at once *on the database*, whichever pools run them: the claim
//!   counts running jobs under the write lock. Two pools with 3 workers each still run 3.
//!   The count can change while pools run (`settings`): the claim reads it, and the
//!   maintenance task starts workers or lets extra ones retire after their job.
//! - The maintenance task renews the lease (one heartbeat row per pool), polls for cancel
//!   requests made by other processes and for the worker count (only while jobs run here),
//!   rescues the jobs of dead pools and prunes old jobs.
//! - A kind's attempt is stopped through its cancellation token for one of four reasons
//!   (`StopReason`); the reason, not the kind, decides the job's next state.
//!
//! Layout: `job` (types), `kind` (the extension point), `feed` (every process's job changes,
//! for front ends), `output` (output batching), `lease`
//! (identity, liveness, leftover processes), `ops/` (every write, one file each), `query`
//! (reads), `pg/` (the same writes on a shared PostgreSQL, feature `postgres`).

pub mod feed;
pub mod follow;
pub mod job;
pub mod kind;
pub(crate) mod lease;
pub(crate) mod ops;
pub(crate) mod output;
#[cfg(feature = "postgres")]
pub mod pg;
pub(crate) mod query;
pub(crate) mod queue;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::task::JoinHandle;
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, JobError};
use job::{JobEvent, JobState};
use kind::{JobRun, Outcome};
use lease::Identity;
use ops::claim::{Claim, Claimed};
use ops::complete::{End, Finish};
use output::Flusher;

/// How a pool behaves. The defaults are what the CLI and the app use.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Jobs run at once on the database (the claim enforces it across pools), until a count
    /// is stored in the settings ([`crate::Engine::change_settings`]); from then on the stored
    /// one holds, for running pools too.
    pub workers: usize,
    /// How often idle workers look for jobs submitted by other processes.
    pub poll: Duration,
    /// How often the lease is renewed.
    pub heartbeat: Duration,
    /// A pool whose heartbeat is older than this is dead. Several heartbeats long, so a
    /// briefly stalled process keeps its jobs.
    pub lease_ttl: Duration,
    /// How often dead pools are looked for (also once at start-up).
    pub rescue_every: Duration,
    /// How often cancel requests from other processes are looked for.
    pub cancel_poll: Duration,
    /// Finished jobs older than this are deleted.
    pub retention: Duration,
    /// How often finished jobs past `retention` are looked for and deleted.
    pub prune_every: Duration,
    /// Retry delay: `backoff_base * 2^(attempt-1)`, at most `backoff_max`, times a random
    /// factor in [0.5, 1) so retries of many jobs do not line up.
    pub backoff_base: Duration,
    /// The longest retry delay, however many attempts have failed.
    pub backoff_max: Duration,
    /// Output kept per job, in bytes (the newest part).
    pub output_cap: i64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            workers: 3,
            poll: Duration::from_millis(200),
            heartbeat: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(30),
            rescue_every: Duration::from_secs(10),
            cancel_poll: Duration::from_millis(250),
            retention: Duration::from_secs(7 * 24 * 3600),
            prune_every: Duration::from_secs(3600),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            output_cap: 1024 * 1024,
        }
    }
}

/// Why a running attempt was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    Canceled,
    Timeout,
    Shutdown,
    LeaseLost,
}

/// A job running in this process, as seen from outside its worker.
#[derive(Clone)]
pub(crate) struct Slot {
    cancel: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
}

impl Slot {
    /// The first reason given wins: a job canceled by a person and then timing out was canceled.
    pub(crate) fn stop(&self, reason: StopReason) {
        self.reason.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(reason);
        self.cancel.cancel();
    }

    fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The jobs running in this process, by id.
pub(crate) type Running = Mutex<HashMap<i64, Slot>>;

/// What the pool needs from the engine, and all it sees of it: the store, the job kinds, the
/// events of this process's jobs and the jobs it runs. The engine submits, cancels and
/// subscribes through the same value.
pub(crate) struct Core {
    pub(crate) store: crate::store::Store,
    /// Where the jobs live: `store`, or a shared PostgreSQL.
    pub(crate) queue: queue::Queue,
    pub(crate) clock: crate::clock::SharedClock,
    pub(crate) events: tokio::sync::broadcast::Sender<JobEvent>,
    pub(crate) kinds: HashMap<&'static str, Arc<dyn kind::JobKind>>,
    /// Wakes an idle worker of this process when a job is submitted here.
    pub(crate) wake: tokio::sync::Notify,
    /// Jobs running in this process.
    pub(crate) running: Running,
    pub(crate) rng: Mutex<fastrand::Rng>,
}

impl Core {
    pub(crate) fn emit(&self, event: JobEvent) {
        // No subscribers is fine.
        let _ = self.events.send(event);
    }

    /// Whether any job runs in this process.
    pub(crate) fn runs_any(&self) -> bool {
        !self.running.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    /// Stop a job if it runs in this process.
    pub(crate) fn stop_local(&self, id: i64, reason: StopReason) {
        let slot = self.running.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned();
        if let Some(slot) = slot {
            slot.stop(reason);
        }
    }

    /// Stop every job running in this process.
    pub(crate) fn stop_all(&self, reason: StopReason) {
        let slots: Vec<Slot> = self.running.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        tracing::info!(jobs = slots.len(), ?reason, "stopping running jobs");
        for slot in slots {
            slot.stop(reason);
        }
    }
}

/// `backoff_base * 2^(attempt-1)` capped at `backoff_max`, scaled by `0.5 + jitter / 2` with
/// `jitter` in [0, 1).
pub(crate) fn backoff(attempt: i64, base: Duration, max: Duration, jitter: f64) -> Duration {
    let doublings = (attempt - 1).clamp(0, 30) as u32;
    let exp = base.saturating_mul(1u32 << doublings).min(max);
    exp.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

struct Ctx {
    core: Arc<Core>,
    me: Identity,
    config: PoolConfig,
    stop_claiming: CancellationToken,
    requeued: AtomicUsize,
    /// Worker tasks wanted (the count in effect) and alive; see [`staff`].
    wanted: AtomicUsize,
    alive: AtomicUsize,
    /// An idle worker is the pool's poller (see `idle`).
    polling: AtomicBool,
    /// Every worker task started, for shutdown to wait on.
    workers: Mutex<Vec<JoinHandle<()>>>,
}

/// A running pool. Stop it with [`Pool::shutdown`]; dropping it only stops new claims.
pub struct Pool {
    ctx: Arc<Ctx>,
    /// The heartbeat has a task of its own, so a long prune or rescue never delays it past
    /// the lease.
    maintenance: Vec<JoinHandle<()>>,
    stop_maintenance: CancellationToken,
}

impl Pool {
    pub(crate) async fn start(core: Arc<Core>, config: PoolConfig) -> crate::Result<Pool> {
        if config.workers == 0 {
            return Err(Error::JobInvalid("a pool needs at least one worker".into()));
        }
        let me = Identity::current(config.workers);
        core.queue.register(&me).await?;
        let wanted = core.store.read(|c| crate::settings::stored(c, crate::settings::WORKERS)).await?;
        let ctx = Arc::new(Ctx {
            core,
            me,
            wanted: AtomicUsize::new(wanted.map_or(config.workers, |n| n as usize)),
            config,
            stop_claiming: CancellationToken::new(),
            requeued: AtomicUsize::new(0),
            polling: AtomicBool::new(false),
            alive: AtomicUsize::new(0),
            workers: Mutex::new(Vec::new()),
        });
        // Rescue before the first claim, so jobs a crashed pool left "running" run again now.
        rescue(&ctx).await;
        let stop_maintenance = CancellationToken::new();
        #[allow(unused_mut)]
        let mut maintenance = vec![
            tokio::spawn(maintain(ctx.clone(), stop_maintenance.clone())),
            tokio::spawn(heartbeat(ctx.clone(), stop_maintenance.clone())),
        ];
        #[cfg(feature = "postgres")]
        if let Some(db) = ctx.core.queue.shared() {
            maintenance.push(tokio::spawn(listen(ctx.clone(), db.clone(), stop_maintenance.clone())));
        }
        staff(&ctx);
        tracing::info!(owner = %ctx.me.owner, workers = ctx.wanted.load(Ordering::Relaxed), "pool started");
        Ok(Pool { ctx, maintenance, stop_maintenance })
    }

    /// This pool's lease owner id, as stored on the jobs it runs.
    pub fn owner(&self) -> &str {
        &self.ctx.me.owner
    }

    /// Stop claiming; let running jobs finish for up to `grace`; then stop the rest and put
    /// them back in the queue (their attempt is not counted). Returns how many were re-queued.
    pub async fn shutdown(mut self, grace: Duration) -> usize {
        self.ctx.stop_claiming.cancel();
        // No worker starts after this: `staff` checks the token under the same lock.
        let started = std::mem::take(&mut *self.ctx.workers.lock().unwrap_or_else(|e| e.into_inner()));
        let workers = futures::future::join_all(started);
        tokio::pin!(workers);
        if tokio::time::timeout(grace, &mut workers).await.is_err() {
            self.ctx.core.stop_all(StopReason::Shutdown);
            workers.await;
        }
        self.stop_maintenance.cancel();
        for task in &mut self.maintenance {
            let _ = task.await;
        }
        if let Err(e) = self.ctx.core.queue.deregister(&self.ctx.me.owner).await {
            tracing::warn!(error = %e, "could not deregister the pool");
        }
        self.ctx.requeued.load(Ordering::Relaxed)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.ctx.stop_claiming.cancel();
        self.stop_maintenance.cancel();
    }
}

/// Start worker tasks until as many are alive as wanted. Extra ones retire themselves
/// ([`retire`]).
fn staff(ctx: &Arc<Ctx>) {
    let mut workers = ctx.workers.lock().unwrap_or_else(|e| e.into_inner());
    if ctx.stop_claiming.is_cancelled() {
        return;
    }
    workers.retain(|w| !w.is_finished());
    while ctx.alive.load(Ordering::SeqCst) < ctx.wanted.load(Ordering::SeqCst) {
        ctx.alive.fetch_add(1, Ordering::SeqCst);
        workers.push(tokio::spawn(work(ctx.clone())));
    }
}

/// Whether this worker should stop because fewer are wanted; if so it is counted out.
fn retire(ctx: &Ctx) -> bool {
    ctx.alive
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |alive| (alive > ctx.wanted.load(Ordering::SeqCst)).then(|| alive - 1))
        .is_ok()
}

/// Take up a worker count changed in the settings (by any process).
async fn follow_count(ctx: &Arc<Ctx>) {
    match ctx.core.store.read(|c| crate::settings::stored(c, crate::settings::WORKERS)).await {
        Ok(Some(n)) if n as usize != ctx.wanted.load(Ordering::SeqCst) => {
            tracing::info!(workers = n, "worker count changed");
            ctx.wanted.store(n as usize, Ordering::SeqCst);
            staff(ctx);
            // Idle workers over the count retire now rather than at their next poll.
            ctx.core.wake.notify_waiters();
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "reading the worker count"),
    }
}

/// One worker: claim, run, repeat. The result of each job rides on the next claim.
async fn work(ctx: Arc<Ctx>) {
    let queue = &ctx.core.queue;
    let mut finished: Option<Finish> = None;
    // Kept until a claim is answered: a claim that failed may have been committed anyway.
    let mut token = fastrand::i64(..);
    loop {
        // On a shared database the claim does not read this machine's worker count (its
        // settings are local): read it here, so a lowered count holds before the next claim.
        if ctx.core.queue.is_shared() {
            follow_count(&ctx).await;
        }
        if ctx.stop_claiming.is_cancelled() || retire(&ctx) {
            if let Some(f) = finished.take() {
                let id = f.id;
                match queue.complete(f).await {
                    Ok(Some(state)) => ctx.core.emit(JobEvent::State { id, state }),
                    Ok(None) => {}
                    Err(e) => tracing::error!(job = id, error = %e, "could not record a job's end"),
                }
            }
            return;
        }
        let claim = Claim { owner: ctx.me.owner.clone(), cap: ctx.config.workers as i64, finished: finished.clone(), token };
        match queue.claim(claim).await {
            Ok(out) => {
                token = fastrand::i64(..);
                if let (Some(f), Some(state)) = (finished.take(), out.finished) {
                    ctx.core.emit(JobEvent::State { id: f.id, state });
                }
                match out.job {
                    Some(job) => {
                        // There may be more where this came from: idle workers look too (and
                        // one of them polls while this one is busy).
                        ctx.core.wake.notify_waiters();
                        finished = Some(run_one(&ctx, job).await)
                    }
                    None => idle(&ctx).await,
                }
            }
            Err(Error::ShuttingDown) => return,
            Err(e) => {
                // Keep `finished` and try again: the job must not stay "running".
                tracing::error!(error = %e, "claim failed; retrying");
                idle(&ctx).await;
            }
        }
    }
}

/// How many `poll`s an idle worker that is not the poller waits before it looks by itself:
/// only a safety net (the poller wakes it when it finds work, a submit here wakes it at once).
const IDLE_POLLS: u32 = 10;

/// Wait for work. One idle worker at a time is the poller: it looks every `poll` (for jobs of
/// other processes, or a retry's backoff ending); the others wait to be woken.
async fn idle(ctx: &Ctx) {
    let poller = ctx.polling.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok();
    let wait = if poller { ctx.config.poll } else { ctx.config.poll * IDLE_POLLS };
    tokio::select! {
        _ = ctx.core.wake.notified() => {}
        _ = tokio::time::sleep(wait) => {}
        _ = ctx.stop_claiming.cancelled() => {}
    }
    if poller {
        ctx.polling.store(false, Ordering::Release);
    }
}

/// Run one attempt of `job` and decide what it leads to.
async fn run_one(ctx: &Ctx, job: Claimed) -> Finish {
    let shared = &ctx.core;
    shared.emit(JobEvent::State { id: job.id, state: JobState::Running });
    let slot = Slot { cancel: CancellationToken::new(), reason: Arc::new(Mutex::new(None)) };
    shared.running.lock().unwrap_or_else(|e| e.into_inner()).insert(job.id, slot.clone());

    let (sink, flusher) = Flusher {
        id: job.id,
        attempt: job.attempt,
        cap_bytes: ctx.config.output_cap,
        queue: shared.queue.clone(),
        epoch: job.epoch,
        lost: slot.clone(),
        events: shared.events.clone(),
        clock: shared.clock.clone(),
    }
    .start();
    let outcome = match shared.kinds.get(job.kind.as_str()) {
        None => Outcome::Failed {
            exit_code: None,
            error: JobError::new("job.kind_unavailable", Error::JobKindUnavailable(job.kind.clone()).to_string()),
        },
        Some(kind) => {
            let run = JobRun {
                id: job.id,
                attempt: job.attempt,
                spec: serde_json::from_str(&job.spec).unwrap_or(serde_json::Value::Null),
                cancel: slot.cancel.clone(),
                timeout: job.timeout_ms.map(|ms| Duration::from_millis(ms.max(0) as u64)),
                marker: lease::marker(&ctx.me.owner, job.id, job.attempt),
                output: sink,
                queue: shared.queue.clone(),
                epoch: job.epoch,
                owner: ctx.me.owner.clone(),
            };
            // A kind that panics fails its attempt instead of leaving the job running for ever.
            let mut attempt = std::panic::AssertUnwindSafe(kind.run(run)).catch_unwind().map(|r| {
                r.unwrap_or_else(|_| Outcome::Failed {
                    exit_code: None,
                    error: JobError::new("job.panic", "the job's runner crashed (a bug in Gatehouse)"),
                })
            });
            match job.timeout_ms {
                Some(ms) => tokio::select! {
                    outcome = &mut attempt => outcome,
                    _ = tokio::time::sleep(Duration::from_millis(ms as u64)) => {
                        slot.stop(StopReason::Timeout);
                        attempt.await
                    }
                },
                None => attempt.await,
            }
        }
    };
    // The sink went with the attempt; wait for the last lines to be stored before the end is.
    let _ = flusher.await;
    {
        // Only our own slot: a newer attempt of the same job may already be registered.
        let mut running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.get(&job.id).is_some_and(|s| Arc::ptr_eq(&s.reason, &slot.reason)) {
            running.remove(&job.id);
        }
    }

    let retry_or_fail = |error: JobError| {
        if job.attempt < job.max_attempts {
            let jitter = shared.rng.lock().unwrap_or_else(|e| e.into_inner()).f64();
            let delay = backoff(job.attempt, ctx.config.backoff_base, ctx.config.backoff_max, jitter);
            End::Retry { error, delay_ms: delay.as_millis() as i64 }
        } else {
            End::Failed(error)
        }
    };
    let (exit_code, end) = match outcome {
        Outcome::Succeeded { exit_code } => (exit_code, End::Succeeded),
        Outcome::Failed { exit_code, error } => (exit_code, retry_or_fail(error)),
        Outcome::Stopped { exit_code } => match slot.reason() {
            Some(StopReason::Canceled) => (exit_code, End::Canceled),
            Some(StopReason::Timeout) => {
                let secs = job.timeout_ms.unwrap_or(0) as f64 / 1000.0;
                (exit_code, retry_or_fail(JobError::new("job.timeout", format!("timed out after {secs} s"))))
            }
            Some(StopReason::Shutdown) => {
                ctx.requeued.fetch_add(1, Ordering::Relaxed);
                (exit_code, End::Requeue)
            }
            // The lease is gone: the write below matches nothing, which is right.
            Some(StopReason::LeaseLost) => (exit_code, End::Requeue),
            None => (exit_code, retry_or_fail(JobError::new("job.stopped", "the job stopped by itself"))),
        },
    };
    Finish { id: job.id, attempt: job.attempt, epoch: job.epoch, owner: ctx.me.owner.clone(), exit_code, end }
}

fn every(period: Duration) -> tokio::time::Interval {
    let mut i = interval_at(Instant::now() + period, period);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

async fn maintain(ctx: Arc<Ctx>, stop: CancellationToken) {
    let (mut cancels, mut rescues, mut prunes) =
        (every(ctx.config.cancel_poll), every(ctx.config.rescue_every), every(ctx.config.prune_every));
    prune(&ctx).await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            // Both only matter while this pool runs jobs: a claim reads the count itself, and
            // there is nothing here to cancel. An idle pool (the app at rest) reads nothing.
            _ = cancels.tick() => {
                if ctx.core.runs_any() {
                    poll_cancels(&ctx).await;
                    follow_count(&ctx).await;
                }
            }
            _ = rescues.tick() => rescue(&ctx).await,
            _ = prunes.tick() => prune(&ctx).await,
        }
    }
}

async fn heartbeat(ctx: Arc<Ctx>, stop: CancellationToken) {
    let mut beats = every(ctx.config.heartbeat);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = beats.tick() => beat(&ctx).await,
        }
    }
}

/// On a shared database: wake idle workers when any machine submits (or re-queues) a job, and
/// stop a job of this pool that another machine canceled, without waiting for a poll. A lost
/// connection is made again; the workers then look once, since notifications were lost.
#[cfg(feature = "postgres")]
async fn listen(ctx: Arc<Ctx>, db: pg::Shared, stop: CancellationToken) {
    loop {
        let listening = tokio::select! {
            _ = stop.cancelled() => return,
            l = db.listen() => l,
        };
        let mut wakeups = match listening {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for new jobs; polling until it can");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(ctx.config.rescue_every) => continue,
                }
            }
        };
        ctx.core.wake.notify_waiters();
        loop {
            let got = tokio::select! {
                _ = stop.cancelled() => return,
                got = wakeups.next() => got,
            };
            match got {
                Ok(Some(payload)) => match payload.strip_prefix("cancel ").and_then(|p| p.rsplit_once(' ')) {
                    Some((owner, id)) if owner == &*ctx.me.owner => {
                        if let Ok(id) = id.parse() {
                            ctx.core.stop_local(id, StopReason::Canceled);
                        }
                    }
                    Some(_) => {}
                    None => ctx.core.wake.notify_waiters(),
                },
                Ok(None) => ctx.core.wake.notify_waiters(),
                Err(e) => {
                    tracing::warn!(error = %e, "lost the notifications of new jobs; listening again");
                    break;
                }
            }
        }
    }
}

async fn poll_cancels(ctx: &Ctx) {
    match ctx.core.queue.cancel_requests(&ctx.me.owner).await {
        Ok(ids) => {
            for id in ids {
                ctx.core.stop_local(id, StopReason::Canceled);
            }
        }
        Err(e) => tracing::warn!(error = %e, "polling for cancel requests"),
    }
}

async fn beat(ctx: &Ctx) {
    match ctx.core.queue.heartbeat(&ctx.me.owner).await {
        Ok(true) => {}
        Ok(false) => {
            // Presumed dead (stalled past the lease): our jobs were rescued and may already run
            // elsewhere. Stop them here and come back as a fresh registration.
            tracing::warn!(owner = %ctx.me.owner, "lease lost; stopping this pool's jobs");
            ctx.core.stop_all(StopReason::LeaseLost);
            if let Err(e) = ctx.core.queue.register(&ctx.me).await {
                tracing::error!(error = %e, "re-registering the pool");
            }
        }
        Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
    }
}

async fn rescue(ctx: &Ctx) {
    match ctx.core.queue.rescue(&ctx.me, ctx.config.lease_ttl.as_millis() as i64).await {
        Ok(rescued) => {
            for r in &rescued {
                tracing::warn!(job = r.id, state = %r.state, killed = r.killed, "rescued a job from a dead pool");
                ctx.core.emit(JobEvent::State { id: r.id, state: r.state });
            }
            if rescued.iter().any(|r| r.state == JobState::Queued) {
                ctx.core.wake.notify_waiters();
            }
        }
        Err(e) => tracing::warn!(error = %e, "rescue failed"),
    }
}

async fn prune(ctx: &Ctx) {
    let stored = ctx.core.store.read(|c| crate::settings::stored(c, crate::settings::RETENTION_DAYS)).await;
    let retention = match stored {
        Ok(Some(days)) => Duration::from_secs(u64::from(days) * 24 * 3600),
        _ => ctx.config.retention,
    };
    let retention_ms = retention.as_millis().min(i64::MAX as u128) as i64;
    let mut count = 0;
    loop {
        match ctx.core.queue.prune(retention_ms).await {
            Ok((n, true)) => count += n,
            Ok((n, false)) => {
                count += n;
                if count > 0 {
                    tracing::info!(jobs = count, "pruned finished jobs");
                    ctx.core.emit(JobEvent::Pruned { count });
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "pruning failed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitters_below_it() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(backoff(1, base, max, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(2, base, max, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(3, base, max, 1.0), Duration::from_secs(4));
        assert_eq!(backoff(9, base, max, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(3, base, max, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(500, base, max, 0.0), Duration::from_secs(5));
    }
}
