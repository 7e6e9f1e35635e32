//! Submit: one insert, committed before the caller hears the id.

use sqlx::SqliteConnection;

use crate::clock::Millis;
use crate::error::Result;
use crate::pool::job::NewJob;
use crate::store::writer::{BoxFuture, WriteOp};

pub(crate) struct Submit {
    pub job: NewJob,
    pub spec: String,
}

impl WriteOp for Submit {
    type Output = i64;
    fn apply<'c>(&'c mut self, conn: &'c mut SqliteConnection, now: Millis) -> BoxFuture<'c, Result<i64>> {
        Box::pin(async move {
            let job = &self.job;
            sqlx::query_scalar(
                "INSERT INTO jobs (kind, spec, priority, max_attempts, timeout_ms, created_at, run_after)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) RETURNING id",
            )
            .bind(&job.kind)
            .bind(&self.spec)
            .bind(job.priority)
            .bind(job.max_attempts as i64)
            .bind(job.timeout.map(|t| t.as_millis() as i64))
            .bind(now)
            .fetch_one(conn)
            .await
            .map_err(crate::store::writer::db)
        })
    }
}
