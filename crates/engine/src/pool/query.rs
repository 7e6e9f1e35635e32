//! Reads of jobs and their output, on the store's read connections.

use rusqlite::{params, OptionalExtension};

use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::pool::job::{Job, JobState, OutputLine, Stream, JOB_COLUMNS};
use crate::store::Store;

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only jobs in this state (`None` = every state).
    pub state: Option<JobState>,
    /// Newest first, at most this many (`None` = all).
    pub limit: Option<i64>,
}

pub(crate) async fn job(store: &Store, id: i64) -> Result<Job> {
    store
        .read(move |c| {
            c.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?
                .query_row([id], Job::from_row)
                .optional()
        })
        .await?
        .ok_or(Error::JobNotFound(id))
}

pub(crate) async fn jobs(store: &Store, filter: &JobFilter) -> Result<Vec<Job>> {
    let (state, limit) = (filter.state.map(JobState::as_str), filter.limit.unwrap_or(-1));
    store
        .read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR state = ?1) ORDER BY id DESC LIMIT ?2"
            ))?
            .query_map(params![state, limit], Job::from_row)?
            .collect()
        })
        .await
}

/// Stored output lines with `seq > after`, oldest first, at most `limit`.
pub(crate) async fn output(store: &Store, id: i64, after: i64, limit: i64) -> Result<Vec<OutputLine>> {
    store.read(move |c| output_page(c, id, after, limit)).await
}

/// [`output`] on a connection the caller holds (the job feed's own).
pub(crate) fn output_page(c: &rusqlite::Connection, id: i64, after: i64, limit: i64) -> rusqlite::Result<Vec<OutputLine>> {
    c.prepare_cached(
        "SELECT seq, attempt, stream, at, text FROM job_output
         WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?
    .query_map(params![id, after, limit], |r| {
        let stream: String = r.get(2)?;
        Ok(OutputLine {
            seq: r.get(0)?,
            attempt: r.get(1)?,
            stream: if stream == "stderr" { Stream::Stderr } else { Stream::Stdout },
            at: r.get(3)?,
            text: r.get(4)?,
        })
    })?
    .collect()
}

/// Running jobs of `owner` that someone asked to cancel.
pub(crate) async fn cancel_requests(store: &Store, owner: &str) -> Result<Vec<i64>> {
    let owner = owner.to_owned();
    store
        .read(move |c| {
            c.prepare_cached(
                "SELECT id FROM jobs INDEXED BY jobs_running
                 WHERE state = 'running' AND lease_owner = ?1 AND cancel_requested = 1",
            )?
            .query_map([owner], |r| r.get(0))?
            .collect()
        })
        .await
}

/// How many jobs are in each state.
pub(crate) async fn counts(store: &Store) -> Result<Vec<(JobState, i64)>> {
    let rows: Vec<(String, i64)> = store
        .read(|c| {
            c.prepare_cached("SELECT state, count(*) FROM jobs GROUP BY state")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .await?;
    Ok(rows.into_iter().filter_map(|(s, n)| JobState::parse(&s).map(|s| (s, n))).collect())
}

/// Pools whose heartbeat is newer than `since`.
pub(crate) async fn live_pools(store: &Store, since: Millis) -> Result<i64> {
    store.read(move |c| c.query_row("SELECT count(*) FROM pools WHERE heartbeat_at >= ?1", [since], |r| r.get(0))).await
}
