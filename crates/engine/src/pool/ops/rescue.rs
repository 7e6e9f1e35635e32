//! Rescue the jobs of pools that died.
//!
//! A pool is dead when its heartbeat is older than the lease time-to-live, or — at once, with
//! no wait — when it ran on this host and its process is gone (checked by pid *and* start
//! time, so a reused pid does not pass for the old pool). A running job whose owner is dead or
//! unknown goes back to the queue — the interrupted attempt counts, and a crash is not the
//! job's failure, so this holds even when it had no attempts left, up to
//! [`CRASH_REQUEUES`] times (a laptop that crashed mid-job finishes the job after restart). A
//! job interrupted more often than that fails as `job.interrupted`. Its leftover processes on
//! this host are killed first, so the job never runs twice at once.

use rusqlite::{params, Connection};

use crate::clock::Millis;
use crate::error::Result;
use crate::pool::job::JobState;
use crate::pool::lease::{self, Identity};
use crate::store::writer::{db, WriteOp};

/// Times a job is queued again past its own attempts after its pool died under it.
pub const CRASH_REQUEUES: i64 = 3;

pub(crate) struct Rescue {
    pub me: Identity,
    pub ttl_ms: i64,
}

#[derive(Debug)]
pub(crate) struct Rescued {
    pub id: i64,
    pub state: JobState,
    pub killed: usize,
}

type PoolRow = (String, String, i64, Option<i64>, i64);
type RunningRow = (i64, Option<String>, i64, i64, bool, i64);

impl WriteOp for Rescue {
    type Output = Vec<Rescued>;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<Vec<Rescued>> {
        let pools: Vec<PoolRow> = conn
            .prepare_cached("SELECT owner, host, pid, pid_start, heartbeat_at FROM pools")
            .and_then(|mut st| {
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?.collect()
            })
            .map_err(db)?;
        let mut live: Vec<String> = Vec::new();
        let mut dead: Vec<(String, bool)> = Vec::new(); // (owner, on this host)
        for (owner, host, pid, pid_start, heartbeat_at) in pools {
            let local = host == self.me.host;
            let gone = owner.as_str() != &*self.me.owner
                && (heartbeat_at < now - self.ttl_ms
                    || (local && !lease::process_alive(pid as i32, pid_start.map(|s| s as u64))));
            if gone {
                dead.push((owner, local));
            } else {
                live.push(owner);
            }
        }

        let running: Vec<RunningRow> = conn
            .prepare_cached(
                "SELECT id, lease_owner, attempts, max_attempts, cancel_requested, interruptions
                 FROM jobs INDEXED BY jobs_running WHERE state = 'running'",
            )
            .and_then(|mut st| {
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?.collect()
            })
            .map_err(db)?;

        let mut rescued = Vec::new();
        for (id, owner, attempts, max_attempts, cancel_requested, interruptions) in running {
            let owner = owner.unwrap_or_default();
            if live.contains(&owner) {
                continue;
            }
            // Unknown owners (a pool row deleted by hand, say) are treated as remote: their
            // processes cannot be found safely.
            let local = dead.iter().any(|(o, local)| *o == owner && *local);
            let killed = if local { lease::sweep_blocking(&lease::marker(&owner, id, attempts)) } else { 0 };
            let (state, code, message) = if cancel_requested {
                (JobState::Canceled, "job.canceled", "canceled by request")
            } else if attempts < max_attempts || interruptions < CRASH_REQUEUES {
                (JobState::Queued, "job.interrupted", "the pool running this job stopped (killed or crashed); it was queued again")
            } else {
                (
                    JobState::Failed,
                    "job.interrupted",
                    "the pool running this job stopped (killed or crashed) while it ran, too many times to try again",
                )
            };
            // Queued again past its attempts: one more is allowed, so the counts read true.
            conn.execute(
                "UPDATE jobs SET feed_seq = (SELECT n FROM job_feed_counter), state = ?2, lease_owner = NULL, pgid = NULL, run_after = ?3,
                        finished_at = CASE WHEN ?2 = 'queued' THEN NULL ELSE ?3 END,
                        error_code = ?4, error_message = ?5, cancel_requested = 0,
                        interruptions = interruptions + 1,
                        max_attempts = CASE WHEN ?2 = 'queued' THEN max(max_attempts, attempts + 1) ELSE max_attempts END
                 WHERE id = ?1 AND state = 'running'",
                params![id, state.as_str(), now, code, message],
            )
            .map_err(db)?;
            rescued.push(Rescued { id, state, killed });
        }
        for (owner, _) in &dead {
            conn.execute("DELETE FROM pools WHERE owner = ?1", [owner]).map_err(db)?;
        }
        Ok(rescued)
    }
}
