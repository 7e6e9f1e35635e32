//! Show another version of a message: the branch through it, and the newest continuation below
//! it (`chat::branch`).

use rusqlite::Connection;

use crate::chat::branch;
use crate::clock::Millis;
use crate::error::Result;
use crate::store::writer::WriteOp;

pub(crate) struct ShowVersion {
    pub message_id: i64,
}

impl WriteOp for ShowVersion {
    type Output = ();
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<()> {
        let n = branch::node(conn, self.message_id)?;
        branch::show(conn, n.conversation_id, Some(n.id), true)
    }
}
