//! Register (or re-register) a pool process, the lease all its jobs hang on; and remove it
//! when the pool stops cleanly.

use std::sync::Arc;

use rusqlite::{params, Connection};

use crate::clock::Millis;
use crate::error::Result;
use crate::pool::lease::Identity;
use crate::store::writer::{db, WriteOp};

pub(crate) struct Register(pub Identity);

impl WriteOp for Register {
    type Output = ();
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<()> {
        let me = &self.0;
        conn.execute(
            "INSERT INTO pools (owner, host, pid, pid_start, workers, started_at, heartbeat_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            params![&*me.owner, me.host, me.pid, me.pid_start.map(|s| s as i64), me.workers as i64, now],
        )
        .map_err(db)?;
        Ok(())
    }
}

/// Its jobs were finished or re-queued first.
pub(crate) struct Deregister(pub Arc<str>);

impl WriteOp for Deregister {
    type Output = ();
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<()> {
        conn.execute("DELETE FROM pools WHERE owner = ?1", [&*self.0]).map_err(db)?;
        Ok(())
    }
}
