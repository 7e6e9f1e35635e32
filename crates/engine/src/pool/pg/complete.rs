//! Record how an attempt ended — only by the worker holding that claim's lease epoch: a worker
//! whose job was rescued and claimed again (it was paused or cut off past its lease) writes
//! nothing, so an attempt never counts twice. A job someone asked to cancel is not queued
//! again, whatever ended the attempt.

use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Row};

use super::{pg, Shared};
use crate::clock::Millis;
use crate::error::{JobError, Result};
use crate::pool::job::JobState;
use crate::pool::ops::complete::{End, Finish};

/// The finishing `UPDATE … RETURNING state`: $1 id, $2 epoch, $3 state, $4 exit code, $5/$6
/// error code/message, $7 run_after (a retry's), $8 finished_at, $9 attempts added, $10 now.
/// A macro, not a constant, so the claim can put it in its own statement with `concat!`.
macro_rules! finish_sql {
    () => {
        "UPDATE jobs SET
            state = CASE WHEN cancel_requested AND $3 = 'queued' THEN 'canceled' ELSE $3 END,
            exit_code = $4,
            error_code = CASE WHEN cancel_requested AND $3 = 'queued' THEN 'job.canceled' ELSE $5 END,
            error_message = CASE WHEN cancel_requested AND $3 = 'queued' THEN 'canceled by request' ELSE $6 END,
            run_after = CASE WHEN cancel_requested AND $3 = 'queued' THEN run_after ELSE coalesce($7, run_after) END,
            finished_at = CASE WHEN cancel_requested AND $3 = 'queued' THEN $10 ELSE $8 END,
            attempts = attempts + CASE WHEN cancel_requested AND $3 = 'queued' THEN 0 ELSE $9 END,
            lease_owner = NULL, pgid = NULL, cancel_requested = false, feed_seq = nextval('job_feed')
         WHERE id = $1 AND lease_epoch = $2 AND state = 'running'
         RETURNING state"
    };
}
pub(crate) use finish_sql;

/// Bind `f` (or nothing: a claim with no previous job) to [`finish_sql`]'s $1..$10.
pub(crate) fn bind<'q>(query: Query<'q, Postgres, PgArguments>, f: Option<&Finish>, now: Millis) -> Query<'q, Postgres, PgArguments> {
    let canceled = JobError::new("job.canceled", "canceled by request");
    let (state, exit_code, error, run_after, finished_at, added) = match f {
        None => (JobState::Queued, None, None, None, None, 0i64),
        Some(f) => {
            let (error, run_after, finished_at, added) = match &f.end {
                End::Succeeded => (None, None, Some(now), 0),
                End::Failed(e) => (Some(e.clone()), None, Some(now), 0),
                End::Retry { error, delay_ms } => (Some(error.clone()), Some(now + delay_ms), None, 0),
                End::Canceled => (Some(canceled), None, Some(now), 0),
                End::Requeue => (None, Some(now), None, -1),
            };
            (f.end.state(), f.exit_code, error, run_after, finished_at, added)
        }
    };
    query
        .bind(f.map(|f| f.id))
        .bind(f.map(|f| f.epoch))
        .bind(state.as_str())
        .bind(exit_code)
        .bind(error.as_ref().map(|e| e.code.clone()))
        .bind(error.map(|e| e.message))
        .bind(run_after)
        .bind(finished_at)
        .bind(added)
        .bind(now)
}

/// End an attempt; `Some(state)` if this worker still held it.
pub(crate) async fn complete(shared: &Shared, f: &Finish, now: Millis) -> Result<Option<JobState>> {
    let row = bind(sqlx::query(finish_sql!()), Some(f), now).fetch_optional(&shared.db).await.map_err(pg)?;
    Ok(row.and_then(|r| r.try_get::<String, _>(0).ok()).and_then(|s| JobState::parse(&s)))
}
