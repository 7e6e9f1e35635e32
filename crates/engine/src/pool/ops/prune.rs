//! Delete finished jobs (and, by cascade, their output) older than the retention period.

use sqlx::SqliteConnection;

use crate::clock::Millis;
use crate::error::Result;
use crate::store::writer::{db, BoxFuture, WriteOp};

/// Jobs per transaction, so pruning a long history never holds the write lock for long.
const CHUNK: i64 = 500;

pub(crate) struct Prune {
    pub retention_ms: i64,
}

impl WriteOp for Prune {
    /// Jobs deleted; the caller repeats while this equals the chunk size.
    type Output = u64;
    fn apply<'c>(&'c mut self, conn: &'c mut SqliteConnection, now: Millis) -> BoxFuture<'c, Result<u64>> {
        Box::pin(async move {
            let done = sqlx::query(
                "DELETE FROM jobs WHERE id IN (
                     SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?1
                     AND state IN ('succeeded', 'failed', 'canceled') LIMIT ?2)",
            )
            .bind(now - self.retention_ms)
            .bind(CHUNK)
            .execute(conn)
            .await
            .map_err(db)?;
            Ok(done.rows_affected())
        })
    }
}

impl Prune {
    pub(crate) const CHUNK: u64 = CHUNK as u64;
}
