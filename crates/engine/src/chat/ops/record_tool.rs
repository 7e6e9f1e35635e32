//! Record a tool call made during a reply, or its new status.

use rusqlite::{params, Connection};

use crate::clock::Millis;
use crate::error::Result;
use crate::store::writer::{db, WriteOp};

pub(crate) struct RecordTool {
    pub message_id: i64,
    pub tool: super::super::ToolActivity,
}

impl WriteOp for RecordTool {
    type Output = ();
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<()> {
        let t = &self.tool;
        conn.prepare_cached(
            "INSERT INTO message_tools (message_id, call_id, seq, name, summary, status, ran_by, output, updated_at)
             VALUES (?1, ?2, (SELECT count(*) FROM message_tools WHERE message_id = ?1), ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (message_id, call_id) DO UPDATE SET summary = excluded.summary,
                 status = excluded.status, output = excluded.output, updated_at = excluded.updated_at",
        )
        .and_then(|mut st| st.execute(params![self.message_id, t.call_id, t.name, t.summary, t.status, t.ran_by, t.output, now]))
        .map_err(db)?;
        Ok(())
    }
}
