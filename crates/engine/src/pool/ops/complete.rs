//! Record how an attempt ended. Only the pool that holds the lease for that very attempt can
//! finish it: if the lease was rescued meanwhile (the pool was presumed dead), the write
//! matches no row and the stale result is dropped, so an attempt never counts twice.

use std::sync::Arc;

use sqlx::SqliteConnection;

use crate::clock::Millis;
use crate::error::{JobError, Result};
use crate::pool::job::JobState;
use crate::store::writer::{db, BoxFuture, WriteOp};

#[derive(Debug, Clone)]
pub(crate) struct Finish {
    pub id: i64,
    pub attempt: i64,
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

/// Apply `f`; `Some(state)` if this pool still held the attempt.
pub(crate) async fn finish(conn: &mut SqliteConnection, f: &Finish, now: Millis) -> Result<Option<JobState>> {
    let (state, error, run_after, finished_at, attempts_delta) = match &f.end {
        End::Succeeded => ("succeeded", None, None, Some(now), 0),
        End::Failed(e) => ("failed", Some(e.clone()), None, Some(now), 0),
        End::Retry { error, delay_ms } => ("queued", Some(error.clone()), Some(now + delay_ms), None, 0),
        End::Canceled => ("canceled", Some(JobError::new("job.canceled", "canceled by request")), None, Some(now), 0),
        End::Requeue => ("queued", None, Some(now), None, -1),
    };
    let done = sqlx::query(
        "UPDATE jobs SET state = ?4, exit_code = ?5, error_code = ?6, error_message = ?7,
                run_after = coalesce(?8, run_after), finished_at = ?9, attempts = attempts + ?10,
                lease_owner = NULL, pgid = NULL, cancel_requested = 0
         WHERE id = ?1 AND state = 'running' AND lease_owner = ?2 AND attempts = ?3",
    )
    .bind(f.id)
    .bind(&*f.owner)
    .bind(f.attempt)
    .bind(state)
    .bind(f.exit_code)
    .bind(error.as_ref().map(|e| e.code.as_str()))
    .bind(error.as_ref().map(|e| e.message.as_str()))
    .bind(run_after)
    .bind(finished_at)
    .bind(attempts_delta)
    .execute(conn)
    .await
    .map_err(db)?;
    Ok((done.rows_affected() == 1).then(|| f.end.state()))
}

pub(crate) struct Complete(pub Finish);

impl WriteOp for Complete {
    type Output = Option<JobState>;
    fn apply<'c>(&'c mut self, conn: &'c mut SqliteConnection, now: Millis) -> BoxFuture<'c, Result<Option<JobState>>> {
        Box::pin(finish(conn, &self.0, now))
    }
}
