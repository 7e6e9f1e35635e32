//! Claim the next job: the highest priority, oldest, due job — if fewer than `cap` jobs are
//! running on this database. A worker's claim carries the result of its previous job, so one
//! transaction both finishes a job and starts the next.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use super::complete::{finish, Finish};
use crate::clock::Millis;
use crate::error::Result;
use crate::pool::job::JobState;
use crate::store::writer::{db, WriteOp};

/// The setting that, while present, stops every pool on the database from claiming
/// (`Engine::pause_pool`).
pub(crate) const PAUSED: &str = "pool.paused";

pub(crate) struct Claim {
    pub owner: Arc<str>,
    /// Jobs allowed to run at once on this database, all pools together, while no count is
    /// stored (`settings`); a stored one wins, so a change holds at the next claim.
    pub cap: i64,
    pub finished: Option<Finish>,
    /// Names this claim on a shared store, so a retry after an error finds a claim that was
    /// committed though its answer was lost (SQLite's claims are never in doubt).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub token: i64,
}

#[derive(Debug)]
pub(crate) struct Claimed {
    pub id: i64,
    pub kind: String,
    pub spec: String,
    pub attempt: i64,
    pub max_attempts: i64,
    pub timeout_ms: Option<i64>,
    /// The claim's fencing token: the shared store refuses a worker's writes that name an
    /// older one. Here, where one writer serialises every claim, it is the attempt number
    /// (owner and attempt fence the writes).
    pub epoch: i64,
}

#[derive(Debug, Default)]
pub(crate) struct ClaimOutput {
    /// The previous job's new state, if the pool still held it.
    pub finished: Option<JobState>,
    pub job: Option<Claimed>,
    /// This pool's registration is gone (it was presumed dead and rescued).
    pub evicted: bool,
}

impl WriteOp for Claim {
    type Output = ClaimOutput;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<ClaimOutput> {
        let mut out = ClaimOutput::default();
        if let Some(f) = &self.finished {
            out.finished = finish(conn, f, now)?;
        }
        // One statement for everything the claim decides on: it runs once per job.
        let (running, registered, paused, stored_cap): (i64, bool, bool, Option<String>) = conn
            .prepare_cached(
                "SELECT (SELECT count(*) FROM jobs INDEXED BY jobs_running WHERE state = 'running'),
                        EXISTS (SELECT 1 FROM pools WHERE owner = ?1),
                        EXISTS (SELECT 1 FROM settings WHERE key = ?2),
                        (SELECT value FROM settings WHERE key = ?3)",
            )
            .and_then(|mut st| {
                st.query_row(params![&*self.owner, PAUSED, crate::settings::WORKERS], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
            })
            .map_err(db)?;
        if !registered {
            out.evicted = true;
            return Ok(out);
        }
        let cap = stored_cap.and_then(|v| v.parse::<i64>().ok()).unwrap_or(self.cap);
        // Paused: the previous job is finished above, nothing new starts.
        if paused || running >= cap {
            return Ok(out);
        }
        out.job = conn
            .prepare_cached(
                "UPDATE jobs SET feed_seq = (SELECT n FROM job_feed_counter), state = 'running', attempts = attempts + 1, waiting_approval = NULL, lease_owner = ?1,
                        started_at = ?2, finished_at = NULL, exit_code = NULL, pgid = NULL,
                        cancel_requested = 0, progress = NULL
                 WHERE id = (SELECT id FROM jobs INDEXED BY jobs_queue
                             WHERE state = 'queued' AND run_after <= ?2
                             ORDER BY priority DESC, id LIMIT 1)
                 RETURNING id, kind, spec, attempts, max_attempts, timeout_ms",
            )
            .and_then(|mut st| {
                st.query_row(params![&*self.owner, now], |r| {
                    Ok(Claimed {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        spec: r.get(2)?,
                        attempt: r.get(3)?,
                        max_attempts: r.get(4)?,
                        timeout_ms: r.get(5)?,
                        epoch: r.get(3)?,
                    })
                })
                .optional()
            })
            .map_err(db)?;
        Ok(out)
    }
}
