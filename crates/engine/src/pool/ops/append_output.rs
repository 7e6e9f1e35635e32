//! Append output lines (and progress) to a job, keeping at most `cap_bytes` of the newest text.
//!
//! When the kept text passes the cap, the oldest lines are dropped down to 3/4 of it (so the
//! trim runs once per cap/4 of new output, not on every flush) and the job counts what was
//! dropped, so `logs` can say so.

use sqlx::SqliteConnection;

use crate::clock::Millis;
use crate::error::Result;
use crate::pool::job::Stream;
use crate::store::writer::{db, BoxFuture, WriteOp};

/// Six parameters a row; SQLite allows 32,766 per statement.
const ROWS_PER_INSERT: usize = 256;

pub(crate) struct AppendOutput {
    pub id: i64,
    pub attempt: i64,
    pub cap_bytes: i64,
    pub lines: Vec<(Stream, Millis, String)>,
    pub progress: Option<f64>,
}

impl WriteOp for AppendOutput {
    type Output = ();
    fn apply<'c>(&'c mut self, conn: &'c mut SqliteConnection, _now: Millis) -> BoxFuture<'c, Result<()>> {
        Box::pin(async move {
            let row: Option<(i64, i64)> =
                sqlx::query_as("SELECT output_lines, output_bytes FROM jobs WHERE id = ?1")
                    .bind(self.id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
            // The job was pruned or deleted meanwhile: nothing to keep.
            let Some((next_seq, kept)) = row else { return Ok(()) };

            let bytes: i64 = self.lines.iter().map(|(_, _, text)| text.len() as i64).sum();
            // Many rows per statement: one round trip to SQLite's thread per chunk, not per line.
            for (chunk_no, chunk) in self.lines.chunks(ROWS_PER_INSERT).enumerate() {
                let first = next_seq + 1 + (chunk_no * ROWS_PER_INSERT) as i64;
                let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                    "INSERT INTO job_output (job_id, seq, attempt, stream, at, text) ",
                );
                insert.push_values(chunk.iter().enumerate(), |mut row, (i, (stream, at, text))| {
                    row.push_bind(self.id)
                        .push_bind(first + i as i64)
                        .push_bind(self.attempt)
                        .push_bind(stream.as_str())
                        .push_bind(*at)
                        .push_bind(text.as_str());
                });
                insert.build().execute(&mut *conn).await.map_err(db)?;
            }
            sqlx::query(
                "UPDATE jobs SET output_lines = output_lines + ?2, output_bytes = output_bytes + ?3,
                        progress = coalesce(?4, progress)
                 WHERE id = ?1",
            )
            .bind(self.id)
            .bind(self.lines.len() as i64)
            .bind(bytes)
            .bind(self.progress)
            .execute(&mut *conn)
            .await
            .map_err(db)?;

            if kept + bytes > self.cap_bytes {
                let keep = self.cap_bytes - self.cap_bytes / 4;
                trim(conn, self.id, kept + bytes - keep).await?;
            }
            Ok(())
        })
    }
}

/// Delete the oldest lines of job `id` until at least `excess` bytes are gone.
async fn trim(conn: &mut SqliteConnection, id: i64, excess: i64) -> Result<()> {
    // The running sum walks from the oldest line and stops at the first that covers `excess`,
    // so the cost is the lines deleted, not the lines kept.
    let dropped: Vec<i64> = sqlx::query_scalar(
        "DELETE FROM job_output WHERE job_id = ?1 AND seq <= coalesce((
             SELECT seq FROM (
                 SELECT seq, sum(length(CAST(text AS BLOB))) OVER (ORDER BY seq) AS run
                 FROM job_output WHERE job_id = ?1)
             WHERE run >= ?2 LIMIT 1), (SELECT max(seq) FROM job_output WHERE job_id = ?1))
         RETURNING length(CAST(text AS BLOB))",
    )
    .bind(id)
    .bind(excess)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let dropped_bytes: i64 = dropped.iter().sum();
    sqlx::query(
        "UPDATE jobs SET output_bytes = output_bytes - ?2,
                output_dropped_lines = output_dropped_lines + ?3,
                output_dropped_bytes = output_dropped_bytes + ?2
         WHERE id = ?1",
    )
    .bind(id)
    .bind(dropped_bytes)
    .bind(dropped.len() as i64)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}
