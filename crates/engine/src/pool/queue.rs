//! Where the pool's jobs live: this machine's SQLite (the default) or a PostgreSQL several
//! machines share (`--database`, feature `postgres`). One method per thing the pool and the
//! engine do to jobs; each runs the SQLite op of `ops/` or the statement of `pg/`, with the
//! same meaning. An enum, not a trait object: two stores, known at build time.

use std::sync::Arc;

use super::job::{Job, JobState, OutputLine};
use super::lease::Identity;
use super::ops::append_output::AppendOutput;
use super::ops::cancel::Canceled;
use super::ops::claim::{Claim, ClaimOutput};
use super::ops::complete::{Complete, Finish};
use super::ops::rescue::Rescued;
use super::ops::submit::Submit;
use super::query::JobFilter;
use super::{ops, query};
use crate::clock::SharedClock;
use crate::error::Result;
use crate::store::Store;

#[derive(Clone)]
pub(crate) enum Queue {
    Local(Store),
    #[cfg(feature = "postgres")]
    Shared { db: super::pg::Shared, clock: SharedClock },
}

impl Queue {
    /// The queue on `shared`, or on this machine's `store` without one.
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    pub(crate) fn new(store: &Store, clock: &SharedClock, #[cfg(feature = "postgres")] shared: Option<super::pg::Shared>) -> Queue {
        #[cfg(feature = "postgres")]
        if let Some(db) = shared {
            return Queue::Shared { db, clock: clock.clone() };
        }
        Queue::Local(store.clone())
    }

    /// The shared database, when the jobs live in one.
    #[cfg(feature = "postgres")]
    pub(crate) fn shared(&self) -> Option<&super::pg::Shared> {
        match self {
            Queue::Shared { db, .. } => Some(db),
            Queue::Local(_) => None,
        }
    }

    /// Show on a shared row that attempt `epoch` of job `id` waits for an answer to `request`
    /// (`None`: no longer). On SQLite the question's own write does it, in one transaction.
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    pub(crate) async fn set_waiting(&self, id: i64, epoch: i64, request: Option<i64>) -> Result<()> {
        match self {
            Queue::Local(_) => Ok(()),
            #[cfg(feature = "postgres")]
            Queue::Shared { db, .. } => super::pg::waiting::set_waiting(db, id, epoch, request).await,
        }
    }

    /// The shared database's URL without its password; `None` on SQLite.
    pub(crate) fn shared_at(&self) -> Option<String> {
        match self {
            Queue::Local(_) => None,
            #[cfg(feature = "postgres")]
            Queue::Shared { db, .. } => Some(db.at().to_owned()),
        }
    }

    /// Whether the jobs live in a shared database.
    pub(crate) fn is_shared(&self) -> bool {
        !matches!(self, Queue::Local(_))
    }

    pub(crate) async fn register(&self, me: &Identity) -> Result<()> {
        match self {
            Queue::Local(s) => s.writer.apply(ops::register::Register(me.clone())).await,
            #[cfg(feature = "postgres")]
            Queue::Shared { db, clock } => super::pg::register::register(db, me, clock.now()).await,
        }
    }

    pub(crate) async fn deregister(&self, owner: &Arc<str>) -> Result<()> {
        match self {
            Queue::Local(s) => s.writer.apply(ops::register::Deregister(owner.clone())).await,
            #[cfg(feature = "postgres")]
            Queue::Shared { db, .. } => super::pg::register::deregister(db, owner).await,
        }
    }

    pub(crate) async fn claim(&self, claim: Claim) -> Result<ClaimOutput> {
        match self {
            Queue::Local(s) => s.writer.apply(claim).await,
            #[cfg(feature = "postgres")]
            Queue::Shared { db, clock } => super::pg::claim::claim(db, &claim.owner, claim.token, claim.finished.as_ref(), clock.now()).await,
        }
    }

    pub(crate) async fn complete(&self, f: Finish) -> Result<Option<JobState>> {
        match self {
            Queue::Local(s) => s.writer.apply(Complete(f)).await,
            #[cfg(feature = "postgres")]
            Queue::Shared { db, clock } => super::pg::complete::complete(db, &f, clock.now()).await,
        }
    }

    /// Renew the lease; false when the registration is gone (the pool was presumed dead).
    pub(crate) async fn heartbeat(&self, owner: &Arc<str>) -> Result<bool> {
        match self {
            Queue::Local(s) => s.writer.apply(ops::heartbeat::Heartbeat(owner.clone())).await,
            #[cfg(feature = "postgres")]
            Queue::Shared { db, clock } => super::pg::heartbeat::heartbeat(db, owner, clock.now()).await,
        }
    }

    pub(crate) async fn rescue(&self, me: &Identity, ttl_ms: i64) -> Result<Vec<Rescued>> {
        match self {
            Queue::Local(s) => s.writer.apply(ops::rescue::Rescue { me: me.clone(), ttl_ms }).await,
            #[cfg(feature = "postgres")]
            Queue::Shared { db, clock } => super::pg::rescue::rescue(db, me, ttl_ms, clock.now()).await,
        }
    }

    /// Delete a chunk of jobs finished before the retention; `(deleted, more may be left)`.
    pub(crate) async fn prune(&self, retention_ms: i64) -> Result<(u64, bool)> {
        match self {
            Queue::Local(s) => {
                let n = s.writer.apply(ops::prune::Prune { retention_ms }).await?;
                Ok((n, n == ops::prune::Prune::CHUNK))
            }
            #[cfg(feature = "postgres")]
            Queue::Shared { db, clock } => {
                let n = super::pg::prune::prune(db, retention_ms, clock.now()).await?;
                Ok((n, n == super::pg::prune::CHUNK))
            }
        }
    }

    /// Store `out`'s lines and progress (attempt `epoch`), taking them out of it; false if the
    /// worker no longer holds the job. After an error a shared store leaves them in `out` for
    /// another try (the local one has handed them to its writer thread: its errors are the
    /// disk's, not passing).
    pub(crate) async fn append(&self, out: &mut AppendOutput, epoch: i64) -> Result<bool> {
        match self {
            Queue::Local(s) => {
                let _ = epoch; // owner and attempt fence here (the writer serialises claims)
                let op = AppendOutput { lines: std::mem::take(&mut out.lines), progress: out.progress.take(), ..*out };
                s.writer.apply(op).await.map(|()| true)
            }
            #[cfg(feature = "postgres")]
            Queue::Shared { db, .. } => {
                let stored = super::pg::append_output::append(db, epoch, out).await?;
                out.lines.clear();
                out.progress = None;
                Ok(stored)
            }
        }
    }

    /// Record an attempt's process group; false if the worker no longer holds it.
    pub(crate) async fn set_pgid(&self, id: i64, attempt: i64, epoch: i64, owner: &Arc<str>, pgid: i32) -> Result<bool> {
        match self {
            Queue::Local(s) => {
                let _ = epoch;
                s.writer.apply(ops::set_pgid::SetPgid { id, attempt, owner: owner.clone(), pgid }).await
            }
            #[cfg(feature = "postgres")]
            Queue::Shared { db, .. } => super::pg::append_output::set_pgid(db, id, epoch, pgid).await,
        }
    }

    pub(crate) async fn submit(&self, submit: Submit) -> Result<i64> {
        match self {
            Queue::Local(s) => s.writer.apply(submit).await,
            #[cfg(feature = "postgres")]
            Queue::Shared { db, clock } => super::pg::submit::submit(db, &submit.job, &submit.spec, clock.now()).await,
        }
    }

    pub(crate) async fn cancel(&self, id: i64) -> Result<Canceled> {
        match self {
            Queue::Local(s) => s.writer.apply(ops::cancel::Cancel(id)).await,
            #[cfg(feature = "postgres")]
            Queue::Shared { db, clock } => super::pg::cancel::cancel(db, id, clock.now()).await,
        }
    }

    pub(crate) async fn retry(&self, id: i64) -> Result<()> {
        match self {
            Queue::Local(s) => s.writer.apply(ops::retry::Retry(id)).await,
            #[cfg(feature = "postgres")]
            Queue::Shared { db, clock } => super::pg::retry::retry(db, id, clock.now()).await,
        }
    }

    pub(crate) async fn job(&self, id: i64) -> Result<Job> {
        match self {
            Queue::Local(s) => query::job(s, id).await,
            #[cfg(feature = "postgres")]
            Queue::Shared { db, .. } => super::pg::query::job(db, id).await,
        }
    }

    pub(crate) async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        match self {
            Queue::Local(s) => query::jobs(s, filter).await,
            #[cfg(feature = "postgres")]
            Queue::Shared { db, .. } => super::pg::query::jobs(db, filter).await,
        }
    }

    pub(crate) async fn output(&self, id: i64, after: i64, limit: i64) -> Result<Vec<OutputLine>> {
        match self {
            Queue::Local(s) => query::output(s, id, after, limit).await,
            #[cfg(feature = "postgres")]
            Queue::Shared { db, .. } => super::pg::query::output(db, id, after, limit).await,
        }
    }

    pub(crate) async fn cancel_requests(&self, owner: &str) -> Result<Vec<i64>> {
        match self {
            Queue::Local(s) => query::cancel_requests(s, owner).await,
            #[cfg(feature = "postgres")]
            Queue::Shared { db, .. } => super::pg::query::cancel_requests(db, owner).await,
        }
    }

    pub(crate) async fn counts(&self) -> Result<Vec<(JobState, i64)>> {
        match self {
            Queue::Local(s) => query::counts(s).await,
            #[cfg(feature = "postgres")]
            Queue::Shared { db, .. } => super::pg::query::counts(db).await,
        }
    }

    pub(crate) async fn live_pools(&self, since: crate::clock::Millis) -> Result<i64> {
        match self {
            Queue::Local(s) => query::live_pools(s, since).await,
            #[cfg(feature = "postgres")]
            Queue::Shared { db, .. } => super::pg::query::live_pools(db, since).await,
        }
    }

    /// Whether every pool on the queue is paused.
    pub(crate) async fn paused(&self) -> Result<bool> {
        match self {
            Queue::Local(s) => Ok(crate::settings::get(s, ops::claim::PAUSED).await?.is_some()),
            #[cfg(feature = "postgres")]
            Queue::Shared { db, .. } => super::pg::query::paused(db).await,
        }
    }

    /// Pause (`true`) or resume every pool on the queue; a stored flag, so it holds across
    /// restarts.
    pub(crate) async fn set_paused(&self, paused: bool) -> Result<()> {
        match self {
            Queue::Local(s) => {
                let value = paused.then(|| "1".to_owned());
                s.writer.apply(crate::settings::Set { key: ops::claim::PAUSED, value }).await
            }
            #[cfg(feature = "postgres")]
            Queue::Shared { db, .. } => super::pg::claim::set_paused(db, paused).await,
        }
    }
}
