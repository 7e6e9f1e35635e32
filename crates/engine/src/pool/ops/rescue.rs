//! Rescue the jobs of pools that died.
//!
//! A pool is dead when its heartbeat is older than the lease time-to-live, or — at once, with
//! no wait — when it ran on this host and its process is gone (checked by pid *and* start
//! time, so a reused pid does not pass for the old pool). A running job whose owner is dead or
//! unknown goes back to the queue if it has attempts left (the interrupted attempt counts),
//! else it fails as `job.interrupted`. Its leftover processes on this host are killed first,
//! so the job never runs twice at once.

use sqlx::SqliteConnection;

use crate::clock::Millis;
use crate::error::Result;
use crate::pool::job::JobState;
use crate::pool::lease::{self, Identity};
use crate::store::writer::{db, BoxFuture, WriteOp};

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

impl WriteOp for Rescue {
    type Output = Vec<Rescued>;
    fn apply<'c>(&'c mut self, conn: &'c mut SqliteConnection, now: Millis) -> BoxFuture<'c, Result<Vec<Rescued>>> {
        Box::pin(async move {
            let pools: Vec<(String, String, i64, Option<i64>, i64)> =
                sqlx::query_as("SELECT owner, host, pid, pid_start, heartbeat_at FROM pools")
                    .fetch_all(&mut *conn)
                    .await
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

            let running: Vec<(i64, Option<String>, i64, i64, Option<i64>)> = sqlx::query_as(
                "SELECT id, lease_owner, attempts, max_attempts, pgid FROM jobs WHERE state = 'running'",
            )
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;

            let mut rescued = Vec::new();
            for (id, owner, attempts, max_attempts, pgid) in running {
                let owner = owner.unwrap_or_default();
                if live.contains(&owner) {
                    continue;
                }
                // Unknown owners (a pool row deleted by hand, say) are treated as remote:
                // their processes cannot be found safely.
                let local = dead.iter().any(|(o, local)| *o == owner && *local);
                let killed = match (local, pgid) {
                    (true, Some(pgid)) => lease::kill_marked(pgid as i32, &lease::marker(&owner, id, attempts)),
                    _ => 0,
                };
                let retry = attempts < max_attempts;
                let state = if retry { JobState::Queued } else { JobState::Failed };
                let message = if retry {
                    "the pool running this job stopped (killed or crashed); it was queued again"
                } else {
                    "the pool running this job stopped (killed or crashed) and no attempts were left"
                };
                sqlx::query(
                    "UPDATE jobs SET state = ?2, lease_owner = NULL, pgid = NULL, run_after = ?3,
                            finished_at = CASE WHEN ?2 = 'failed' THEN ?3 END,
                            error_code = 'job.interrupted', error_message = ?4
                     WHERE id = ?1 AND state = 'running'",
                )
                .bind(id)
                .bind(state.as_str())
                .bind(now)
                .bind(message)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
                rescued.push(Rescued { id, state, killed });
            }
            for (owner, _) in &dead {
                sqlx::query("DELETE FROM pools WHERE owner = ?1").bind(owner).execute(&mut *conn).await.map_err(db)?;
            }
            Ok(rescued)
        })
    }
}
