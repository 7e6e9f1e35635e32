//! Append streamed text to a reply that is still streaming.

use rusqlite::{params, Connection};

use crate::clock::Millis;
use crate::error::Result;
use crate::store::writer::{db, WriteOp};

pub(crate) struct AppendText {
    pub message_id: i64,
    pub text: String,
}

impl WriteOp for AppendText {
    type Output = ();
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<()> {
        conn.prepare_cached(
            "UPDATE messages SET text = text || ?2, updated_at = ?3, feed_seq = (SELECT n FROM job_feed_counter) WHERE id = ?1 AND state = 'streaming'",
        )
        .and_then(|mut st| st.execute(params![self.message_id, self.text, now]))
        .map_err(db)?;
        Ok(())
    }
}
