//! Pin a conversation to the top of the list, or unpin it.

use rusqlite::{params, Connection};

use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::writer::{db, WriteOp};

pub(crate) struct Pin {
    pub id: i64,
    pub pinned: bool,
}

impl WriteOp for Pin {
    type Output = ();
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<()> {
        let n = conn
            .prepare_cached("UPDATE conversations SET pinned = ?2, feed_seq = (SELECT n FROM job_feed_counter) WHERE id = ?1")
            .and_then(|mut st| st.execute(params![self.id, self.pinned]))
            .map_err(db)?;
        if n == 0 {
            return Err(Error::ConversationNotFound(self.id));
        }
        Ok(())
    }
}
