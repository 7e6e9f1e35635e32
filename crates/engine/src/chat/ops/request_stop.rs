//! Ask for a streaming reply to stop, from any process: the flag is stored, and the process
//! streaming it sees it in the database feed and stops the turn. A reply whose writer is gone
//! (killed mid-reply) is marked interrupted here and now, as the next start would.

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::pool::lease;
use crate::store::writer::{db, WriteOp};

pub(crate) struct RequestStop {
    pub message_id: i64,
}

impl WriteOp for RequestStop {
    /// Whether the reply was streaming.
    type Output = bool;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<bool> {
        let row: Option<(String, Option<String>)> = conn
            .prepare_cached("SELECT state, writer FROM messages WHERE id = ?1")
            .and_then(|mut st| st.query_row([self.message_id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(db)?;
        let Some((state, writer)) = row else { return Err(Error::MessageNotFound(self.message_id)) };
        if state != "streaming" {
            return Ok(false);
        }
        let result = if writer.as_deref().is_some_and(lease::tag_alive) {
            conn.prepare_cached(
                "UPDATE messages SET stop_requested = 1, feed_seq = (SELECT n FROM job_feed_counter) WHERE id = ?1",
            )
            .and_then(|mut st| st.execute([self.message_id]))
        } else {
            conn.prepare_cached(
                "UPDATE messages SET state = 'interrupted', error_code = 'chat.interrupted',
                        error_message = 'Gatehouse stopped before the reply finished', writer = NULL, updated_at = ?2,
                        feed_seq = (SELECT n FROM job_feed_counter)
                 WHERE id = ?1",
            )
            .and_then(|mut st| st.execute(params![self.message_id, now]))
        };
        result.map_err(db)?;
        Ok(true)
    }
}
