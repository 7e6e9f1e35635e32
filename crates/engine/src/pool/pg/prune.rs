//! Delete finished jobs older than the retention, a chunk at a time (so one prune never holds
//! locks for long on a busy shared database), and the oldest tombstones of the job feed
//! (`pg::feed`): without that, every job ever deleted would keep a row.

use super::{pg, Shared};
use crate::clock::Millis;
use crate::error::Result;

/// Jobs deleted per statement.
pub(crate) const CHUNK: u64 = 500;

/// Tombstones kept: feed numbers further back than this are forgotten, and the horizon
/// (`pool_flags.job_feed.horizon`) tells a follower that far behind to load everything again.
/// A follower looks every 50 ms; the pool uses a few feed numbers per job.
pub(crate) const TOMBSTONES: i64 = 10_000;

/// Delete up to [`CHUNK`] jobs finished before `now - retention_ms`; returns how many.
pub(crate) async fn prune(shared: &Shared, retention_ms: i64, now: Millis) -> Result<u64> {
    let n = sqlx::query(
        "DELETE FROM jobs WHERE id IN (
            SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < $1
            ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(now.saturating_sub(retention_ms))
    .bind(CHUNK as i64)
    .execute(&shared.db)
    .await
    .map_err(pg)?
    .rows_affected();
    forget_tombstones(shared, TOMBSTONES).await?;
    Ok(n)
}

/// Delete the tombstones more than `keep` feed numbers back, and move the horizon past them.
pub(crate) async fn forget_tombstones(shared: &Shared, keep: i64) -> Result<()> {
    sqlx::query(
        "WITH horizon AS (SELECT last_value - $1 AS seq FROM job_feed),
              forgotten AS (DELETE FROM job_feed_gone WHERE seq <= (SELECT seq FROM horizon) RETURNING seq)
         INSERT INTO pool_flags (key, value)
         SELECT 'job_feed.horizon', max(seq)::text FROM forgotten HAVING count(*) > 0
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(keep)
    .execute(&shared.db)
    .await
    .map_err(pg)?;
    Ok(())
}
