//! Delete a message, and what followed it: the replies to it and everything said after them,
//! on every branch (without it they answer nothing). If it was shown, its newest other version
//! is shown in its place, else the branch ends before it. Its text leaves the search index
//! through the delete trigger; a gateway session that held it keeps its own copy.

use rusqlite::{params, Connection, OptionalExtension};

use crate::chat::branch;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::writer::{db, WriteOp};

pub(crate) struct DeleteMessage {
    pub message_id: i64,
}

/// The message and everything below it.
const SUBTREE: &str = "WITH RECURSIVE below(id) AS (
        SELECT ?1 UNION ALL SELECT m.id FROM messages m JOIN below ON m.parent_id = below.id
    )";

impl WriteOp for DeleteMessage {
    type Output = ();
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<()> {
        let n = branch::node(conn, self.message_id)?;
        let streaming: Option<i64> = conn
            .query_row(
                &format!("{SUBTREE} SELECT m.id FROM messages m JOIN below ON m.id = below.id WHERE m.state = 'streaming' LIMIT 1"),
                [n.id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        if let Some(id) = streaming {
            return Err(Error::ChatInvalid(format!("reply {id} is still being written; stop it first")));
        }
        if n.active {
            let other: Option<i64> = conn
                .query_row(
                    "SELECT max(id) FROM messages WHERE conversation_id = ?1 AND parent_id IS ?2 AND role = ?3 AND id != ?4",
                    params![n.conversation_id, n.parent_id, n.role, n.id],
                    |r| r.get(0),
                )
                .map_err(db)?;
            match other {
                Some(version) => branch::show(conn, n.conversation_id, Some(version), true)?,
                None => branch::show(conn, n.conversation_id, n.parent_id, false)?,
            }
        } else {
            // The branch shown is the same, but a version is gone from it.
            branch::changed(conn, n.conversation_id)?;
        }
        conn.execute(&format!("{SUBTREE} DELETE FROM messages WHERE id IN below"), [n.id]).map_err(db)?;
        Ok(())
    }
}
