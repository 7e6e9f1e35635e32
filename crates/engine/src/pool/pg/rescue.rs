//! Rescue the jobs of pools that died, on whichever machine notices first.
//!
//! A pool is dead when its heartbeat is older than the lease's time-to-live, or at once when
//! it ran on this host and its process is gone (pid and start time). Its registration is
//! deleted only if its heartbeat is still the one read — a pool that beat meanwhile is alive —
//! and only one machine's delete wins. Then every running job whose owner is no longer
//! registered goes back to the queue (or fails, past [`CRASH_REQUEUES`] interruptions), after
//! its leftover processes on this host are killed. A dead pool's worker that comes back finds
//! its registration gone (its heartbeat says so) and its writes refused by the lease epoch.

use super::{pg, Shared, CHANNEL};
use crate::clock::Millis;
use crate::error::Result;
use crate::pool::job::JobState;
use crate::pool::lease::{self, Identity};
use crate::pool::ops::rescue::{Rescued, CRASH_REQUEUES};

pub(crate) async fn rescue(shared: &Shared, me: &Identity, ttl_ms: i64, now: Millis) -> Result<Vec<Rescued>> {
    let pools: Vec<(String, String, i32, Option<i64>, i64)> =
        sqlx::query_as("SELECT owner, host, pid, pid_start, heartbeat_at FROM pools")
            .fetch_all(&shared.db)
            .await
            .map_err(pg)?;
    let mut local_dead = Vec::new();
    for (owner, host, pid, pid_start, heartbeat_at) in pools {
        if owner.as_str() == &*me.owner {
            continue;
        }
        let local = host == me.host;
        if heartbeat_at >= now - ttl_ms && !(local && !lease::process_alive(pid, pid_start.map(|s| s as u64))) {
            continue;
        }
        let gone = sqlx::query("DELETE FROM pools WHERE owner = $1 AND heartbeat_at = $2")
            .bind(&owner)
            .bind(heartbeat_at)
            .execute(&shared.db)
            .await
            .map_err(pg)?
            .rows_affected();
        if gone == 1 && local {
            local_dead.push(owner);
        }
    }
    // Processes a dead pool of this host left behind are killed before its jobs are queued
    // again, so no job runs twice at once.
    let mut killed = std::collections::HashMap::new();
    if !local_dead.is_empty() {
        let jobs: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT id, lease_owner, attempts FROM jobs WHERE state = 'running' AND lease_owner = ANY($1)",
        )
        .bind(&local_dead)
        .fetch_all(&shared.db)
        .await
        .map_err(pg)?;
        for (id, owner, attempt) in jobs {
            let marker = lease::marker(&owner, id, attempt);
            let n = tokio::task::spawn_blocking(move || lease::sweep_blocking(&marker)).await.unwrap_or(0);
            killed.insert(id, n);
        }
    }
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "WITH r AS (
            UPDATE jobs SET
                state = CASE WHEN cancel_requested THEN 'canceled'
                             WHEN attempts < max_attempts OR interruptions < $2 THEN 'queued'
                             ELSE 'failed' END,
                error_code = CASE WHEN cancel_requested THEN 'job.canceled' ELSE 'job.interrupted' END,
                error_message = CASE
                    WHEN cancel_requested THEN 'canceled by request'
                    WHEN attempts < max_attempts OR interruptions < $2
                        THEN 'the pool running this job stopped (killed or crashed); it was queued again'
                    ELSE 'the pool running this job stopped (killed or crashed) while it ran, too many times to try again' END,
                finished_at = CASE WHEN NOT cancel_requested AND (attempts < max_attempts OR interruptions < $2)
                                   THEN NULL ELSE $1 END,
                max_attempts = CASE WHEN NOT cancel_requested AND (attempts < max_attempts OR interruptions < $2)
                                    THEN greatest(max_attempts, attempts + 1) ELSE max_attempts END,
                lease_owner = NULL, pgid = NULL, run_after = $1, cancel_requested = false,
                interruptions = interruptions + 1, feed_seq = nextval('job_feed')
            WHERE state = 'running' AND NOT EXISTS (SELECT 1 FROM pools p WHERE p.owner = jobs.lease_owner)
            RETURNING id, state
         )
         SELECT id, state FROM r",
    )
    .bind(now)
    .bind(CRASH_REQUEUES)
    .fetch_all(&shared.db)
    .await
    .map_err(pg)?;
    let rescued: Vec<Rescued> = rows
        .into_iter()
        .filter_map(|(id, state)| {
            let state = JobState::parse(&state)?;
            Some(Rescued { id, state, killed: killed.get(&id).copied().unwrap_or(0) })
        })
        .collect();
    if rescued.iter().any(|r| r.state == JobState::Queued) {
        sqlx::query("SELECT pg_notify($1, 'job')").bind(CHANNEL).execute(&shared.db).await.map_err(pg)?;
    }
    Ok(rescued)
}
