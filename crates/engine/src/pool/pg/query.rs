//! Reads of jobs and their output on the shared database, as `pool::query` reads SQLite.

use sqlx::postgres::PgRow;
use sqlx::Row;

use super::{pg, Shared};
use crate::clock::Millis;
use crate::error::{Error, JobError, Result};
use crate::pool::job::{title, Job, JobState, OutputLine, Stream, JOB_COLUMNS};
use crate::pool::query::JobFilter;

pub(crate) fn job_of(r: &PgRow) -> std::result::Result<Job, sqlx::Error> {
    let state: String = r.try_get("state")?;
    let kind: String = r.try_get("kind")?;
    let spec: String = r.try_get("spec")?;
    let spec = serde_json::from_str(&spec).unwrap_or(serde_json::Value::Null);
    let error_code: Option<String> = r.try_get("error_code")?;
    let error_message: Option<String> = r.try_get("error_message")?;
    let exit_code: Option<i32> = r.try_get("exit_code")?;
    Ok(Job {
        id: r.try_get("id")?,
        state: JobState::parse(&state).ok_or_else(|| sqlx::Error::Decode(format!("unknown job state {state:?}").into()))?,
        priority: r.try_get("priority")?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        exit_code: exit_code.map(i64::from),
        error: error_code.map(|code| JobError { code, message: error_message.unwrap_or_default() }),
        title: title(&kind, &spec),
        waiting_approval: if state == "running" { r.try_get("waiting_approval")? } else { None },
        kind,
        spec,
        timeout_ms: r.try_get("timeout_ms")?,
        run_after: r.try_get("run_after")?,
        progress: r.try_get("progress")?,
        lease_owner: r.try_get("lease_owner")?,
        output_lines: r.try_get("output_lines")?,
        output_dropped_lines: r.try_get("output_dropped_lines")?,
        output_dropped_bytes: r.try_get("output_dropped_bytes")?,
    })
}

pub(crate) async fn job(shared: &Shared, id: i64) -> Result<Job> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&shared.db).await.map_err(pg)?;
    row.as_ref().map(job_of).transpose().map_err(pg)?.ok_or(Error::JobNotFound(id))
}

pub(crate) async fn jobs(shared: &Shared, filter: &JobFilter) -> Result<Vec<Job>> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE ($1::text IS NULL OR state = $1) ORDER BY id DESC LIMIT $2");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(filter.state.map(JobState::as_str))
        .bind(filter.limit)
        .fetch_all(&shared.db)
        .await
        .map_err(pg)?;
    rows.iter().map(job_of).collect::<std::result::Result<_, _>>().map_err(pg)
}

/// Stored output lines with `seq > after`, oldest first, at most `limit`.
pub(crate) async fn output(shared: &Shared, id: i64, after: i64, limit: i64) -> Result<Vec<OutputLine>> {
    let rows: Vec<(i64, i64, String, i64, String)> = sqlx::query_as(
        "SELECT seq, attempt, stream, at, text FROM job_output WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(id)
    .bind(after)
    .bind(limit)
    .fetch_all(&shared.db)
    .await
    .map_err(pg)?;
    Ok(rows
        .into_iter()
        .map(|(seq, attempt, stream, at, text)| OutputLine {
            seq,
            attempt,
            stream: if stream == "stderr" { Stream::Stderr } else { Stream::Stdout },
            at,
            text,
        })
        .collect())
}

/// Running jobs of `owner` that someone asked to cancel.
pub(crate) async fn cancel_requests(shared: &Shared, owner: &str) -> Result<Vec<i64>> {
    sqlx::query_scalar("SELECT id FROM jobs WHERE state = 'running' AND lease_owner = $1 AND cancel_requested")
        .bind(owner)
        .fetch_all(&shared.db)
        .await
        .map_err(pg)
}

/// How many jobs are in each state.
pub(crate) async fn counts(shared: &Shared) -> Result<Vec<(JobState, i64)>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM jobs GROUP BY state").fetch_all(&shared.db).await.map_err(pg)?;
    Ok(rows.into_iter().filter_map(|(s, n)| JobState::parse(&s).map(|s| (s, n))).collect())
}

/// Pools whose heartbeat is newer than `since`.
pub(crate) async fn live_pools(shared: &Shared, since: Millis) -> Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM pools WHERE heartbeat_at >= $1").bind(since).fetch_one(&shared.db).await.map_err(pg)
}

/// Whether the pools are paused.
pub(crate) async fn paused(shared: &Shared) -> Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pool_flags WHERE key = $1)")
        .bind(super::claim::PAUSED)
        .fetch_one(&shared.db)
        .await
        .map_err(pg)
}
