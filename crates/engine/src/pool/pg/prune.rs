//! Delete finished jobs older than the retention, a chunk at a time (so one prune never holds
//! locks for long on a busy shared database).

use super::{pg, Shared};
use crate::clock::Millis;
use crate::error::Result;

/// Jobs deleted per statement.
pub(crate) const CHUNK: u64 = 500;

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
    Ok(n)
}
