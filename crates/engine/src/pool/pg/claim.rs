//! Claim the next job — the highest priority, oldest, due one — in the statement that also
//! finishes the worker's previous job: one round trip per job. `FOR UPDATE SKIP LOCKED` lets
//! workers on every machine claim at once without waiting on each other or taking the same
//! job; the claim draws a new lease epoch from `lease_epochs`, the fencing token every later
//! write of the worker names.
//!
//! There is no count of running jobs across pools here (the SQLite store caps them per
//! database): each pool runs at most its own worker count, which is what several machines
//! sharing a queue want. The pause switch in `pool_flags` holds for every machine.

use std::sync::Arc;

use sqlx::Row;

use super::complete::{bind, finish_sql};
use super::{pg, Shared};
use crate::clock::Millis;
use crate::error::Result;
use crate::pool::job::JobState;
use crate::pool::ops::claim::{ClaimOutput, Claimed};
use crate::pool::ops::complete::Finish;

/// The key in `pool_flags` that, while present, stops every pool from claiming.
pub(crate) const PAUSED: &str = "paused";

const CLAIM: &str = concat!(
    "WITH done AS (",
    finish_sql!(),
    "), me AS (
        SELECT EXISTS (SELECT 1 FROM pools WHERE owner = $11) AS registered,
               EXISTS (SELECT 1 FROM pool_flags WHERE key = $12) AS paused
    ), adopted AS (
        SELECT id, kind, spec, attempts, max_attempts, timeout_ms, lease_epoch FROM jobs
        WHERE lease_owner = $11 AND claim_token = $13 AND state = 'running'
    ), next AS (
        SELECT j.id FROM jobs j, me
        WHERE j.state = 'queued' AND j.run_after <= $10 AND me.registered AND NOT me.paused
          AND NOT EXISTS (SELECT 1 FROM adopted)
        ORDER BY j.priority DESC, j.id
        LIMIT 1
        FOR UPDATE OF j SKIP LOCKED
    ), claimed AS (
        UPDATE jobs SET state = 'running', attempts = attempts + 1, waiting_approval = NULL,
               lease_owner = $11, claim_token = $13, lease_epoch = nextval('lease_epochs'), started_at = $10,
               finished_at = NULL, exit_code = NULL, pgid = NULL, cancel_requested = false,
               progress = NULL, feed_seq = nextval('job_feed')
        FROM next WHERE jobs.id = next.id
        RETURNING jobs.id, jobs.kind, jobs.spec, jobs.attempts, jobs.max_attempts, jobs.timeout_ms, jobs.lease_epoch
    )
    SELECT (SELECT state FROM done), me.registered,
           c.id, c.kind, c.spec, c.attempts, c.max_attempts, c.timeout_ms, c.lease_epoch
    FROM me LEFT JOIN (SELECT * FROM claimed UNION ALL SELECT * FROM adopted) c ON true"
);

/// Finish `finished` (if any) and claim the next job for `owner`. `token` names this claim: a
/// worker whose claim failed asks again with the same token, and if the failed one had in fact
/// been committed (the connection dropped before its answer came back, as when the server
/// restarts), it gets that job back rather than leaving it running for nobody.
pub(crate) async fn claim(shared: &Shared, owner: &Arc<str>, token: i64, finished: Option<&Finish>, now: Millis) -> Result<ClaimOutput> {
    let row = bind(sqlx::query(CLAIM), finished, now)
        .bind(&**owner)
        .bind(PAUSED)
        .bind(token)
        .fetch_one(&shared.db)
        .await
        .map_err(pg)?;
    let state: Option<String> = row.try_get(0).map_err(pg)?;
    let registered: bool = row.try_get(1).map_err(pg)?;
    let id: Option<i64> = row.try_get(2).map_err(pg)?;
    let job = match id {
        None => None,
        Some(id) => Some(Claimed {
            id,
            kind: row.try_get(3).map_err(pg)?,
            spec: row.try_get(4).map_err(pg)?,
            attempt: row.try_get(5).map_err(pg)?,
            max_attempts: row.try_get(6).map_err(pg)?,
            timeout_ms: row.try_get(7).map_err(pg)?,
            epoch: row.try_get(8).map_err(pg)?,
        }),
    };
    Ok(ClaimOutput { finished: state.as_deref().and_then(JobState::parse), job, evicted: !registered })
}

/// Pause (`true`) or resume every pool on the shared database.
pub(crate) async fn set_paused(shared: &Shared, paused: bool) -> Result<()> {
    let sql = if paused {
        "INSERT INTO pool_flags (key, value) VALUES ($1, 'yes') ON CONFLICT (key) DO NOTHING"
    } else {
        "DELETE FROM pool_flags WHERE key = $1"
    };
    sqlx::query(sql).bind(PAUSED).execute(&shared.db).await.map_err(pg)?;
    if !paused {
        sqlx::query("SELECT pg_notify($1, 'resumed')").bind(super::CHANNEL).execute(&shared.db).await.map_err(pg)?;
    }
    Ok(())
}
