//! Record the process group of a running attempt, for whoever has to clean up after it.

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
    type Output = ();
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<()> {
        conn.prepare_cached(
            "UPDATE jobs SET pgid = ?1
             WHERE id = ?2 AND state = 'running' AND lease_owner = ?3 AND attempts = ?4",
        )
        .and_then(|mut st| st.execute(params![self.pgid, self.id, &*self.owner, self.attempt]))
        .map_err(db)?;
        Ok(())
    }
}
