//! Register (or re-register) a pool process, the lease all its jobs hang on.

use sqlx::SqliteConnection;

use crate::clock::Millis;
use crate::error::Result;
use crate::pool::lease::Identity;
use crate::store::writer::{db, BoxFuture, WriteOp};

pub(crate) struct Register(pub Identity);

impl WriteOp for Register {
    type Output = ();
    fn apply<'c>(&'c mut self, conn: &'c mut SqliteConnection, now: Millis) -> BoxFuture<'c, Result<()>> {
        Box::pin(async move {
            let me = &self.0;
            sqlx::query(
                "INSERT INTO pools (owner, host, pid, pid_start, workers, started_at, heartbeat_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            )
            .bind(&*me.owner)
            .bind(&me.host)
            .bind(me.pid as i64)
            .bind(me.pid_start.map(|s| s as i64))
            .bind(me.workers as i64)
            .bind(now)
            .execute(conn)
            .await
            .map_err(db)?;
            Ok(())
        })
    }
}

/// Remove the registration of a pool that stopped cleanly (its jobs were finished or
/// re-queued first).
pub(crate) struct Deregister(pub std::sync::Arc<str>);

impl WriteOp for Deregister {
    type Output = ();
    fn apply<'c>(&'c mut self, conn: &'c mut SqliteConnection, _now: Millis) -> BoxFuture<'c, Result<()>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM pools WHERE owner = ?1").bind(&*self.0).execute(conn).await.map_err(db)?;
            Ok(())
        })
    }
}
