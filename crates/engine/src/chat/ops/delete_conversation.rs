//! Delete a conversation with its messages (they cascade, and leave the search index through
//! its delete trigger); the feed gets a tombstone (migration 0013).

use rusqlite::Connection;

use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::writer::{db, WriteOp};

pub(crate) struct DeleteConversation {
    pub id: i64,
}

impl WriteOp for DeleteConversation {
    type Output = ();
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<()> {
        let n = conn
            .prepare_cached("DELETE FROM conversations WHERE id = ?1")
            .and_then(|mut st| st.execute([self.id]))
            .map_err(db)?;
        if n == 0 {
            return Err(Error::ConversationNotFound(self.id));
        }
        Ok(())
    }
}
