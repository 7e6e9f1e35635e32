//! Submit: one insert, committed (and every listening machine notified) before the caller
//! hears the id.

use sqlx::Row;

use super::{pg, Shared, CHANNEL};
use crate::clock::Millis;
use crate::error::Result;
use crate::pool::job::NewJob;

/// Queue `job` (its spec already validated and serialised); returns its id.
pub(crate) async fn submit(shared: &Shared, job: &NewJob, spec: &str, now: Millis) -> Result<i64> {
    // The notification is delivered at commit, so a woken worker finds the row.
    let row = sqlx::query(
        "WITH j AS (
            INSERT INTO jobs (kind, spec, priority, max_attempts, timeout_ms, created_at, run_after)
            VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id
         )
         SELECT j.id, pg_notify($7, 'job')::text FROM j",
    )
    .bind(&job.kind)
    .bind(spec)
    .bind(job.priority)
    .bind(i64::from(job.max_attempts))
    .bind(job.timeout.map(|t| t.as_millis() as i64))
    .bind(now)
    .bind(CHANNEL)
    .fetch_one(&shared.db)
    .await
    .map_err(pg)?;
    row.try_get(0).map_err(pg)
}
