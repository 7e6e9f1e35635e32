//! Renew a pool's lease — one row, however many jobs it runs.

use std::sync::Arc;

use rusqlite::{params, Connection};

use crate::clock::Millis;
use crate::error::Result;
use crate::store::writer::{db, WriteOp};

pub(crate) struct Heartbeat(pub Arc<str>);

impl WriteOp for Heartbeat {
    /// False when the registration is gone: the pool was presumed dead and its jobs rescued.
    type Output = bool;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<bool> {
        let n = conn
            .prepare_cached("UPDATE pools SET heartbeat_at = ?2 WHERE owner = ?1")
            .and_then(|mut st| st.execute(params![&*self.0, now]))
            .map_err(db)?;
        Ok(n == 1)
    }
}
