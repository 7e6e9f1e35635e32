//! Start a turn: the conversation (new or existing), the person's message, and an empty
//! assistant message in `streaming` state that the reply is appended to. Returns the history
//! to send, read in the same transaction.

use rusqlite::{params, Connection, OptionalExtension};

use crate::chat::MessageState;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::gateway::{ChatMessage, Role};
use crate::store::writer::{db, WriteOp};

pub(crate) struct StartTurn {
    pub conversation: Option<i64>,
    pub text: String,
    pub gateway: String,
    pub model: Option<String>,
    /// host:pid:start of this process, so a reply left `streaming` by a dead process is found.
    pub writer: String,
}

pub(crate) struct Turn {
    pub conversation_id: i64,
    pub message_id: i64,
    pub history: Vec<ChatMessage>,
    /// The conversation's session on the gateway in use (see [`crate::chat::session_on`]).
    pub session: String,
}

/// Titles are the first words of the first message.
pub(crate) fn title(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let mut title: String = line.chars().take(60).collect();
    if line.chars().count() > 60 {
        title.push('…');
    }
    if title.is_empty() { "(untitled)".into() } else { title }
}

impl WriteOp for StartTurn {
    type Output = Turn;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<Turn> {
        let conversation_id = match self.conversation {
            Some(id) => {
                let exists = conn
                    .query_row("SELECT 1 FROM conversations WHERE id = ?1", [id], |_| Ok(()))
                    .optional()
                    .map_err(db)?;
                if exists.is_none() {
                    return Err(Error::ConversationNotFound(id));
                }
                conn.execute(
                    "UPDATE conversations SET updated_at = ?2, gateway = ?3, model = ?4, feed_seq = (SELECT n FROM job_feed_counter) WHERE id = ?1",
                    params![id, now, self.gateway, self.model],
                )
                .map_err(db)?;
                id
            }
            None => conn
                .query_row(
                    "INSERT INTO conversations (title, gateway, model, created_at, updated_at, feed_seq)
                     VALUES (?1, ?2, ?3, ?4, ?4, (SELECT n FROM job_feed_counter)) RETURNING id",
                    params![title(&self.text), self.gateway, self.model, now],
                    |r| r.get(0),
                )
                .map_err(db)?,
        };
        conn.execute(
            "INSERT INTO messages (conversation_id, role, text, state, created_at, updated_at, feed_seq)
             VALUES (?1, 'user', ?2, 'complete', ?3, ?3, (SELECT n FROM job_feed_counter))",
            params![conversation_id, self.text, now],
        )
        .map_err(db)?;
        // What the person saw is what the model gets: complete replies and the kept part of
        // interrupted ones; failed attempts (no text) are left out.
        let history = conn
            .prepare_cached(
                "SELECT role, text FROM messages WHERE conversation_id = ?1 AND text != ''
                 AND state IN ('complete', 'interrupted') ORDER BY id",
            )
            .and_then(|mut st| {
                st.query_map([conversation_id], |r| {
                    let role: String = r.get(0)?;
                    Ok(ChatMessage::new(Role::parse(&role).unwrap_or(Role::User), r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(db)?;
        let message_id = conn
            .query_row(
                "INSERT INTO messages (conversation_id, role, text, state, writer, created_at, updated_at, feed_seq)
                 VALUES (?1, 'assistant', '', ?2, ?3, ?4, ?4, (SELECT n FROM job_feed_counter)) RETURNING id",
                params![conversation_id, MessageState::Streaming.as_str(), self.writer, now],
                |r| r.get(0),
            )
            .map_err(db)?;
        let (remote_gateway, remote_session): (Option<String>, Option<String>) = conn
            .query_row("SELECT remote_gateway, remote_session FROM conversations WHERE id = ?1", [conversation_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(db)?;
        let session =
            crate::chat::session_for(conversation_id, remote_gateway.as_deref(), remote_session.as_deref(), &self.gateway);
        Ok(Turn { conversation_id, message_id, history, session })
    }
}
