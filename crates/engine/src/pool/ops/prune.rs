//! Delete finished jobs (and, by cascade, their output) older than the retention period.

use rusqlite::{params, Connection};

use crate::clock::Millis;
use crate::error::Result;
use crate::store::writer::{db, WriteOp};

pub(crate) struct Prune {
    pub retention_ms: i64,
}

impl Prune {
    /// Jobs per transaction, so pruning a long history never holds the write lock for long.
    /// The caller repeats while a prune deletes this many.
    pub(crate) const CHUNK: u64 = 500;
}

impl WriteOp for Prune {
    /// Jobs deleted.
    type Output = u64;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<u64> {
        let n = conn
            .prepare_cached(
                "DELETE FROM jobs WHERE id IN (
                     SELECT id FROM jobs INDEXED BY jobs_finished
                     WHERE finished_at IS NOT NULL AND finished_at < ?1
                       AND state IN ('succeeded', 'failed', 'canceled') LIMIT ?2)",
            )
            .and_then(|mut st| st.execute(params![now - self.retention_ms, Prune::CHUNK as i64]))
            .map_err(db)?;
        Ok(n as u64)
    }
}
