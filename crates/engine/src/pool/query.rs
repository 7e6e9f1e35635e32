//! Reads of jobs and their output, on the store's read connections.

use crate::error::{Error, Result};
use crate::pool::job::{Job, JobState, OutputLine, Stream, JOB_COLUMNS};
use crate::store::Store;

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
    /// Newest first, at most this many (`None` = all).
    pub limit: Option<i64>,
}

pub(crate) async fn job(store: &Store, id: i64) -> Result<Job> {
    sqlx::query_as::<_, Job>(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))
        .bind(id)
        .fetch_optional(&mut *store.reader().await?)
        .await
        .map_err(|e| store.err(e))?
        .ok_or(Error::JobNotFound(id))
}

pub(crate) async fn jobs(store: &Store, filter: &JobFilter) -> Result<Vec<Job>> {
    sqlx::query_as::<_, Job>(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR state = ?1) ORDER BY id DESC LIMIT ?2"
    ))
    .bind(filter.state.map(JobState::as_str))
    .bind(filter.limit.unwrap_or(-1))
    .fetch_all(&mut *store.reader().await?)
    .await
    .map_err(|e| store.err(e))
}

/// Stored output lines with `seq > after`, oldest first, at most `limit`.
pub(crate) async fn output(store: &Store, id: i64, after: i64, limit: i64) -> Result<Vec<OutputLine>> {
    let rows: Vec<(i64, i64, String, i64, String)> = sqlx::query_as(
        "SELECT seq, attempt, stream, at, text FROM job_output
         WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )
    .bind(id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *store.reader().await?)
    .await
    .map_err(|e| store.err(e))?;
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
pub(crate) async fn cancel_requests(store: &Store, owner: &str) -> Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM jobs WHERE state = 'running' AND lease_owner = ?1 AND cancel_requested = 1",
    )
    .bind(owner)
    .fetch_all(&mut *store.reader().await?)
    .await
    .map_err(|e| store.err(e))
}

/// How many jobs are in each state.
pub(crate) async fn counts(store: &Store) -> Result<Vec<(JobState, i64)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT state, count(*) FROM jobs GROUP BY state")
        .fetch_all(&mut *store.reader().await?)
        .await
        .map_err(|e| store.err(e))?;
    Ok(rows.into_iter().filter_map(|(s, n)| JobState::parse(&s).map(|s| (s, n))).collect())
}

/// Pools whose heartbeat is newer than `since`.
pub(crate) async fn live_pools(store: &Store, since: crate::clock::Millis) -> Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM pools WHERE heartbeat_at >= ?1")
        .bind(since)
        .fetch_one(&mut *store.reader().await?)
        .await
        .map_err(|e| store.err(e))
}
