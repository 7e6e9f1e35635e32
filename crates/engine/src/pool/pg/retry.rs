//! Retry a failed or canceled job by hand: back to the queue now, one more attempt allowed
//! (as `ops/retry.rs`), and every listening machine told.

use super::{pg, Shared, CHANNEL};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::pool::job::JobState;

pub(crate) async fn retry(shared: &Shared, id: i64, now: Millis) -> Result<()> {
    let state: Option<String> = sqlx::query_scalar(
        "WITH j AS (SELECT id, state FROM jobs WHERE id = $1 FOR UPDATE),
         r AS (
            UPDATE jobs SET state = 'queued', run_after = $2, finished_at = NULL, exit_code = NULL,
                   error_code = NULL, error_message = NULL, cancel_requested = false,
                   max_attempts = greatest(max_attempts, attempts + 1), feed_seq = nextval('job_feed')
            FROM j WHERE jobs.id = j.id AND j.state IN ('failed', 'canceled')
            RETURNING pg_notify($3, 'job')::text
         )
         SELECT j.state FROM j LEFT JOIN r ON true",
    )
    .bind(id)
    .bind(now)
    .bind(CHANNEL)
    .fetch_optional(&shared.db)
    .await
    .map_err(pg)?;
    let state = state.ok_or(Error::JobNotFound(id))?;
    let hint = match JobState::parse(&state) {
        Some(JobState::Failed | JobState::Canceled) => return Ok(()),
        Some(JobState::Succeeded) => "only failed or canceled jobs can be retried",
        _ => "it has not finished yet",
    };
    let state = JobState::parse(&state).map_or("unknown", JobState::as_str);
    Err(Error::JobInvalidState { id, state, hint })
}
