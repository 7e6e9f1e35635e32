//! Bring back conversations from an export (`chat::export`), each as a new conversation with
//! all its messages, versions and tools. All or nothing: a file that does not hold together
//! (a message following one that is not before it, an unknown role or state) is refused
//! before anything is written.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use crate::chat::export::{ExportedConversation, ExportedMessage};
use crate::chat::ops::rename::clean_title;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::writer::{db, WriteOp};

pub(crate) struct ImportConversations(pub Vec<ExportedConversation>);

fn check(c: &ExportedConversation, n: usize) -> Result<()> {
    let bad = |what: String| Err(Error::ChatInvalid(format!("conversation {} of the file ({}): {what}", n + 1, c.title)));
    let mut seen = std::collections::HashSet::new();
    for m in &c.messages {
        if !["user", "assistant", "system"].contains(&m.role.as_str()) {
            return bad(format!("message {} has the unknown role `{}`", m.id, m.role));
        }
        if !["complete", "interrupted", "failed"].contains(&m.state.as_str()) {
            return bad(format!("message {} has the unknown state `{}`", m.id, m.state));
        }
        if let Some(p) = m.parent.filter(|p| !seen.contains(p)) {
            return bad(format!("message {} follows message {p}, which does not come before it", m.id));
        }
        if !seen.insert(m.id) {
            return bad(format!("message {} is there twice", m.id));
        }
    }
    Ok(())
}

fn insert_message(conn: &Connection, conversation: i64, parent: Option<i64>, m: &ExportedMessage) -> Result<i64> {
    let (code, message) = m.error.as_ref().map(|e| (Some(&e.code), Some(&e.message))).unwrap_or((None, None));
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO messages (conversation_id, parent_id, role, text, state, active, error_code, error_message,
                                   created_at, updated_at, feed_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, (SELECT n FROM job_feed_counter)) RETURNING id",
        )
        .and_then(|mut st| {
            st.query_row(params![conversation, parent, m.role, m.text, m.state, m.active, code, message, m.created_at], |r| r.get(0))
        })
        .map_err(db)?;
    for (seq, t) in m.tools.iter().enumerate() {
        conn.prepare_cached(
            "INSERT INTO message_tools (message_id, call_id, seq, name, summary, status, ran_by, output, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut st| {
            st.execute(params![id, t.call_id, seq as i64, t.name, t.summary, t.status, t.ran_by, t.output, m.created_at])
        })
        .map_err(db)?;
    }
    Ok(id)
}

impl WriteOp for ImportConversations {
    /// The new conversations' ids, in the file's order.
    type Output = Vec<i64>;
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<Vec<i64>> {
        for (n, c) in self.0.iter().enumerate() {
            check(c, n)?;
        }
        let mut ids = Vec::with_capacity(self.0.len());
        for c in &self.0 {
            let title = clean_title(&c.title)?;
            let id: i64 = conn
                .query_row(
                    "INSERT INTO conversations (title, gateway, model, pinned, created_at, updated_at, feed_seq)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT n FROM job_feed_counter)) RETURNING id",
                    params![title, c.gateway, c.model, c.pinned, c.created_at, c.updated_at],
                    |r| r.get(0),
                )
                .map_err(db)?;
            let mut new_ids: HashMap<i64, i64> = HashMap::new();
            for m in &c.messages {
                let parent = m.parent.and_then(|p| new_ids.get(&p).copied());
                new_ids.insert(m.id, insert_message(conn, id, parent, m)?);
            }
            ids.push(id);
        }
        Ok(ids)
    }
}
