//! Submit: one insert, committed before the caller hears the id.

use rusqlite::{params, Connection};

use crate::clock::Millis;
use crate::error::Result;
use crate::pool::job::NewJob;
use crate::store::writer::{db, WriteOp};

pub(crate) struct Submit {
    pub job: NewJob,
    pub spec: String,
}

impl WriteOp for Submit {
    type Output = i64;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<i64> {
        let job = &self.job;
        conn.prepare_cached(
            "INSERT INTO jobs (kind, spec, priority, max_attempts, timeout_ms, created_at, run_after, feed_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, (SELECT n FROM job_feed_counter)) RETURNING id",
        )
        .and_then(|mut st| {
            st.query_row(
                params![
                    job.kind,
                    self.spec,
                    job.priority,
                    job.max_attempts as i64,
                    job.timeout.map(|t| t.as_millis() as i64),
                    now
                ],
                |r| r.get(0),
            )
        })
        .map_err(db)
    }
}
