//! Delete finished jobs (and, by cascade, their output) older than the retention period, and
//! the oldest tombstones of the job feed (`pool::feed`).

use rusqlite::{params, Connection};

use crate::clock::Millis;
use crate::error::Result;
use crate::store::writer::{db, WriteOp};

pub(crate) struct Prune {
    pub retention_ms: i64,
}

/// Tombstones of deleted jobs kept in the feed. A follower further behind than this learns it
/// may have missed deletions from the horizon and reloads; one that keeps up (it looks every
/// 50 ms) never sees that.
const TOMBSTONES: i64 = 10_000;

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
        let horizon: i64 = conn
            .query_row("SELECT n - ?1 FROM job_feed_counter", [TOMBSTONES], |r| r.get(0))
            .map_err(db)?;
        let forgotten = conn
            .prepare_cached("DELETE FROM job_feed_gone WHERE seq <= ?1")
            .and_then(|mut st| st.execute([horizon]))
            .map_err(db)?;
        if forgotten > 0 {
            conn.prepare_cached(
                "INSERT INTO settings (key, value) VALUES ('job_feed.horizon', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut st| st.execute([horizon.to_string()]))
            .map_err(db)?;
        }
        Ok(n as u64)
    }
}
