//! Register (or re-register) a pool — the lease all its jobs hang on — and remove it when the
//! pool stops cleanly.

use super::{pg, Shared};
use crate::clock::Millis;
use crate::error::Result;
use crate::pool::lease::Identity;

pub(crate) async fn register(shared: &Shared, me: &Identity, now: Millis) -> Result<()> {
    sqlx::query(
        "INSERT INTO pools (owner, host, pid, pid_start, workers, started_at, heartbeat_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
    )
    .bind(&*me.owner)
    .bind(&me.host)
    .bind(me.pid as i32)
    .bind(me.pid_start.map(|s| s as i64))
    .bind(me.workers as i32)
    .bind(now)
    .execute(&shared.db)
    .await
    .map_err(pg)?;
    Ok(())
}

/// Its jobs were finished or re-queued first.
pub(crate) async fn deregister(shared: &Shared, owner: &str) -> Result<()> {
    sqlx::query("DELETE FROM pools WHERE owner = $1").bind(owner).execute(&shared.db).await.map_err(pg)?;
    Ok(())
}
