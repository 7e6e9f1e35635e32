//! Record how an attempt ended. Only the pool that holds the lease for that very attempt can
//! finish it: if the lease was rescued meanwhile (the pool was presumed dead), the write
//! matches no row and the stale result is dropped, so an attempt never counts twice.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Millis;
use crate::error::{JobError, Result};
use crate::pool::job::JobState;
use crate::store::writer::{db, WriteOp};

#[derive(Debug, Clone)]
pub(crate) struct Finish {
    pub id: i64,
    pub attempt: i64,
    /// The claim's fencing token ([`Claimed::epoch`](super::claim::Claimed::epoch)).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub epoch: i64,
    pub owner: Arc<str>,
    pub exit_code: Option<i32>,
    pub end: End,
}

#[derive(Debug, Clone)]
pub(crate) enum End {
    Succeeded,
    /// Failed for good (no attempts left).
    Failed(JobError),
    /// Failed; queue it again after the backoff delay.
    Retry { error: JobError, delay_ms: i64 },
    Canceled,
    /// Stopped by a pool shutdown: back to the queue, and the attempt is not counted.
    Requeue,
}

impl End {
    pub(crate) fn state(&self) -> JobState {
        match self {
            End::Succeeded => JobState::Succeeded,
            End::Failed(_) => JobState::Failed,
            End::Retry { .. } | End::Requeue => JobState::Queued,
            End::Canceled => JobState::Canceled,
        }
    }
}

/// Apply `f`; `Some(state)` if this pool still held the attempt. A job someone asked to cancel
/// is not queued again, whatever ended the attempt.
pub(crate) fn finish(conn: &Connection, f: &Finish, now: Millis) -> Result<Option<JobState>> {
    let canceled: Option<bool> = conn
        .prepare_cached("SELECT cancel_requested FROM jobs WHERE id = ?1 AND state = 'running' AND lease_owner = ?2 AND attempts = ?3")
        .and_then(|mut st| st.query_row(params![f.id, &*f.owner, f.attempt], |r| r.get(0)).optional())
        .map_err(db)?;
    let Some(canceled) = canceled else { return Ok(None) };
    let end = match &f.end {
        End::Retry { .. } | End::Requeue if canceled => &End::Canceled,
        end => end,
    };
    let canceled = JobError::new("job.canceled", "canceled by request");
    let (error, run_after, finished_at, attempts_delta) = match end {
        End::Succeeded => (None, None, Some(now), 0),
        End::Failed(e) => (Some(e), None, Some(now), 0),
        End::Retry { error, delay_ms } => (Some(error), Some(now + delay_ms), None, 0),
        End::Canceled => (Some(&canceled), None, Some(now), 0),
        End::Requeue => (None, Some(now), None, -1),
    };
    let n = conn
        .prepare_cached(
            "UPDATE jobs SET feed_seq = (SELECT n FROM job_feed_counter), state = ?4, exit_code = ?5, error_code = ?6, error_message = ?7,
                    run_after = coalesce(?8, run_after), finished_at = ?9, attempts = attempts + ?10,
                    lease_owner = NULL, pgid = NULL, cancel_requested = 0
             WHERE id = ?1 AND state = 'running' AND lease_owner = ?2 AND attempts = ?3",
        )
        .and_then(|mut st| {
            st.execute(params![
                f.id,
                &*f.owner,
                f.attempt,
                end.state().as_str(),
                f.exit_code,
                error.map(|e| e.code.as_str()),
                error.map(|e| e.message.as_str()),
                run_after,
                finished_at,
                attempts_delta
            ])
        })
        .map_err(db)?;
    Ok((n == 1).then(|| end.state()))
}

pub(crate) struct Complete(pub Finish);

impl WriteOp for Complete {
    type Output = Option<JobState>;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<Option<JobState>> {
        finish(conn, &self.0, now)
    }
}
