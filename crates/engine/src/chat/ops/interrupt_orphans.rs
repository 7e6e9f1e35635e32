//! Replies left `streaming` by a process of this host that is gone (killed mid-reply) are
//! marked interrupted, with the text they had.

use rusqlite::{params, Connection};

use crate::clock::Millis;
use crate::error::Result;
use crate::pool::lease;
use crate::store::writer::{db, WriteOp};

pub(crate) struct InterruptOrphans;

impl WriteOp for InterruptOrphans {
    /// How many replies were marked.
    type Output = usize;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<usize> {
        let streaming: Vec<(i64, Option<String>)> = conn
            .prepare_cached("SELECT id, writer FROM messages INDEXED BY messages_streaming WHERE state = 'streaming'")
            .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(db)?;
        let mut marked = 0;
        for (id, writer) in streaming {
            if writer.as_deref().is_some_and(lease::tag_alive) {
                continue;
            }
            conn.execute(
                "UPDATE messages SET state = 'interrupted', error_code = 'chat.interrupted',
                        error_message = 'Gatehouse stopped before the reply finished', writer = NULL,
                        updated_at = ?2, feed_seq = (SELECT n FROM job_feed_counter)
                 WHERE id = ?1 AND state = 'streaming'",
                params![id, now],
            )
            .map_err(db)?;
            marked += 1;
        }
        Ok(marked)
    }
}
