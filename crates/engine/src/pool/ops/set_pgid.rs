//! Record the process group of a running attempt — and check the attempt is still this pool's.

use std::sync::Arc;

use rusqlite::{params, Connection};

use crate::clock::Millis;
use crate::error::Result;
use crate::store::writer::{db, WriteOp};

pub(crate) struct SetPgid {
    pub id: i64,
    pub attempt: i64,
    pub owner: Arc<str>,
    pub pgid: i32,
}

impl WriteOp for SetPgid {
    /// Whether the pool still holds the attempt.
    type Output = bool;
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<bool> {
        let n = conn.prepare_cached(
            "UPDATE jobs SET pgid = ?1
             WHERE id = ?2 AND state = 'running' AND lease_owner = ?3 AND attempts = ?4",
        )
        .and_then(|mut st| st.execute(params![self.pgid, self.id, &*self.owner, self.attempt]))
        .map_err(db)?;
        Ok(n == 1)
    }
}
