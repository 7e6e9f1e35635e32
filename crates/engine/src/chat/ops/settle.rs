//! End a reply: complete, interrupted (it stopped early; its text is kept) or failed (no text).
//! It is then indexed for search.

use rusqlite::{params, Connection};

use crate::chat::MessageState;
use crate::clock::Millis;
use crate::error::{JobError, Result};
use crate::store::writer::{db, WriteOp};

pub(crate) struct Settle {
    pub message_id: i64,
    /// The last text not yet appended.
    pub tail: String,
    pub state: MessageState,
    pub error: Option<JobError>,
    pub usage: Option<(u64, u64)>,
}

impl WriteOp for Settle {
    type Output = ();
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<()> {
        conn.execute(
            "UPDATE messages SET text = text || ?2, state = ?3, error_code = ?4, error_message = ?5,
                    prompt_tokens = ?6, completion_tokens = ?7, updated_at = ?8, writer = NULL,
                    feed_seq = (SELECT n FROM job_feed_counter)
             WHERE id = ?1 AND state = 'streaming'",
            params![
                self.message_id,
                self.tail,
                self.state.as_str(),
                self.error.as_ref().map(|e| e.code.as_str()),
                self.error.as_ref().map(|e| e.message.as_str()),
                self.usage.map(|u| u.0 as i64),
                self.usage.map(|u| u.1 as i64),
                now
            ],
        )
        .map_err(db)?;
        conn.execute(
            "UPDATE conversations SET updated_at = ?2, feed_seq = (SELECT n FROM job_feed_counter)
             WHERE id = (SELECT conversation_id FROM messages WHERE id = ?1)",
            params![self.message_id, now],
        )
        .map_err(db)?;
        Ok(())
    }
}
