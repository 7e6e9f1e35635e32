//! Append output lines (and progress) to a running job — fenced by the claim's lease epoch —
//! keeping at most `cap_bytes` of the newest text: past the cap the oldest lines go, down to
//! 3/4 of it, and the job counts what was dropped (as the SQLite store does).

use super::{pg, Shared};
use crate::error::Result;
use crate::pool::ops::append_output::AppendOutput;

/// Store `out` for the attempt of lease `epoch`. `Ok(false)`: the worker no longer holds the
/// job (it was rescued and claimed again); nothing was written and the worker stops the job.
pub(crate) async fn append(shared: &Shared, epoch: i64, out: &AppendOutput) -> Result<bool> {
    let bytes: i64 = out.lines.iter().map(|(_, _, t)| t.len() as i64).sum();
    let mut tx = shared.db.begin().await.map_err(pg)?;
    // The row lock taken here orders concurrent appends to one job (there are none from a
    // live worker, but a fenced one must not interleave).
    let held: Option<(i64, i64)> = sqlx::query_as(
        "UPDATE jobs SET output_lines = output_lines + $3, output_bytes = output_bytes + $4,
                progress = coalesce($5, progress), feed_seq = nextval('job_feed')
         WHERE id = $1 AND lease_epoch = $2 AND state = 'running'
         RETURNING output_lines - $3, output_bytes",
    )
    .bind(out.id)
    .bind(epoch)
    .bind(out.lines.len() as i64)
    .bind(bytes)
    .bind(out.progress)
    .fetch_optional(&mut *tx)
    .await
    .map_err(pg)?;
    let Some((last_seq, kept)) = held else { return Ok(false) };
    if !out.lines.is_empty() {
        let streams: Vec<&str> = out.lines.iter().map(|(s, _, _)| s.as_str()).collect();
        let ats: Vec<i64> = out.lines.iter().map(|(_, at, _)| *at).collect();
        let texts: Vec<&str> = out.lines.iter().map(|(_, _, t)| t.as_str()).collect();
        sqlx::query(
            "INSERT INTO job_output (job_id, seq, attempt, stream, at, text)
             SELECT $1, $2 + l.n, $3, l.stream, l.at, l.text
             FROM unnest($4::text[], $5::bigint[], $6::text[]) WITH ORDINALITY AS l(stream, at, text, n)",
        )
        .bind(out.id)
        .bind(last_seq)
        .bind(out.attempt)
        .bind(&streams)
        .bind(&ats)
        .bind(&texts)
        .execute(&mut *tx)
        .await
        .map_err(pg)?;
    }
    if kept > out.cap_bytes {
        let excess = kept - (out.cap_bytes - out.cap_bytes / 4);
        // The oldest lines whose sizes add up to `excess`: the first line at which the running
        // total reaches it, and all before.
        sqlx::query(
            "WITH upto AS (
                SELECT coalesce(
                    (SELECT seq FROM (SELECT seq, sum(octet_length(text)) OVER (ORDER BY seq) AS total
                                      FROM job_output WHERE job_id = $1) t
                     WHERE total >= $2 ORDER BY seq LIMIT 1),
                    (SELECT max(seq) FROM job_output WHERE job_id = $1)) AS seq
             ), gone AS (
                DELETE FROM job_output WHERE job_id = $1 AND seq <= (SELECT seq FROM upto)
                RETURNING octet_length(text) AS len
             )
             UPDATE jobs SET output_bytes = output_bytes - (SELECT coalesce(sum(len), 0) FROM gone),
                    output_dropped_lines = output_dropped_lines + (SELECT count(*) FROM gone),
                    output_dropped_bytes = output_dropped_bytes + (SELECT coalesce(sum(len), 0) FROM gone)
             WHERE id = $1",
        )
        .bind(out.id)
        .bind(excess)
        .execute(&mut *tx)
        .await
        .map_err(pg)?;
    }
    tx.commit().await.map_err(pg)?;
    Ok(true)
}

/// Record the process group of a running attempt; `false` if the worker no longer holds it.
pub(crate) async fn set_pgid(shared: &Shared, id: i64, epoch: i64, pgid: i32) -> Result<bool> {
    let n = sqlx::query("UPDATE jobs SET pgid = $3 WHERE id = $1 AND lease_epoch = $2 AND state = 'running'")
        .bind(id)
        .bind(epoch)
        .bind(pgid)
        .execute(&shared.db)
        .await
        .map_err(pg)?
        .rows_affected();
    Ok(n == 1)
}
