//! Append output lines (and progress) to a job, keeping at most `cap_bytes` of the newest text.
//!
//! When the kept text passes the cap, the oldest lines are dropped down to 3/4 of it (so the
//! trim runs once per cap/4 of new output, not on every flush) and the job counts what was
//! dropped, so `logs` can say so.

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Millis;
use crate::error::Result;
use crate::pool::job::Stream;
use crate::store::writer::{db, WriteOp};

pub(crate) struct AppendOutput {
    pub id: i64,
    pub attempt: i64,
    pub cap_bytes: i64,
    pub lines: Vec<(Stream, Millis, String)>,
    pub progress: Option<f64>,
}

impl WriteOp for AppendOutput {
    type Output = ();
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<()> {
        let row: Option<(i64, i64)> = conn
            .prepare_cached("SELECT output_lines, output_bytes FROM jobs WHERE id = ?1")
            .and_then(|mut st| st.query_row([self.id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(db)?;
        // The job was pruned or deleted meanwhile: nothing to keep.
        let Some((last_seq, kept)) = row else { return Ok(()) };

        let mut insert = conn
            .prepare_cached(
                "INSERT INTO job_output (job_id, seq, attempt, stream, at, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(db)?;
        let mut bytes = 0i64;
        for (i, (stream, at, text)) in self.lines.iter().enumerate() {
            bytes += text.len() as i64;
            insert
                .execute(params![self.id, last_seq + 1 + i as i64, self.attempt, stream.as_str(), at, text])
                .map_err(db)?;
        }
        conn.prepare_cached(
            "UPDATE jobs SET feed_seq = (SELECT n FROM job_feed_counter), output_lines = output_lines + ?2, output_bytes = output_bytes + ?3,
                    progress = coalesce(?4, progress)
             WHERE id = ?1",
        )
        .and_then(|mut st| st.execute(params![self.id, self.lines.len() as i64, bytes, self.progress]))
        .map_err(db)?;

        if kept + bytes > self.cap_bytes {
            let keep = self.cap_bytes - self.cap_bytes / 4;
            trim(conn, self.id, kept + bytes - keep)?;
        }
        Ok(())
    }
}

/// Delete the oldest lines of job `id` until at least `excess` bytes are gone.
fn trim(conn: &Connection, id: i64, excess: i64) -> Result<()> {
    // Walk from the oldest line, summing, and stop at the first that covers `excess`: the cost
    // is the lines deleted, not the lines kept.
    let mut walk = conn
        .prepare_cached("SELECT seq, length(CAST(text AS BLOB)) FROM job_output WHERE job_id = ?1 ORDER BY seq")
        .map_err(db)?;
    let mut rows = walk.query([id]).map_err(db)?;
    let (mut upto, mut lines, mut bytes) = (None, 0i64, 0i64);
    while let Some(row) = rows.next().map_err(db)? {
        let (seq, len): (i64, i64) = (row.get(0).map_err(db)?, row.get(1).map_err(db)?);
        upto = Some(seq);
        lines += 1;
        bytes += len;
        if bytes >= excess {
            break;
        }
    }
    drop(rows);
    let Some(upto) = upto else { return Ok(()) };
    conn.prepare_cached("DELETE FROM job_output WHERE job_id = ?1 AND seq <= ?2")
        .and_then(|mut st| st.execute(params![id, upto]))
        .map_err(db)?;
    conn.prepare_cached(
        "UPDATE jobs SET feed_seq = (SELECT n FROM job_feed_counter), output_bytes = output_bytes - ?2,
                output_dropped_lines = output_dropped_lines + ?3,
                output_dropped_bytes = output_dropped_bytes + ?2
         WHERE id = ?1",
    )
    .and_then(|mut st| st.execute(params![id, bytes, lines]))
    .map_err(db)?;
    Ok(())
}
