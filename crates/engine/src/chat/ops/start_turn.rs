//! Start a turn: the conversation (new or existing), the person's message, and an empty
//! assistant message in `streaming` state that the reply is appended to — or, for a regenerated
//! reply, an edited message or a continued reply, their place in the tree (`chat::branch`).
//! Returns the history to send, read in the same transaction, and the gateway session to send it
//! in.

use rusqlite::{params, Connection, OptionalExtension};

use crate::chat::branch::{self, Session};
use crate::chat::MessageState;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::gateway::{ChatMessage, Role};
use crate::store::writer::{db, WriteOp};

/// What the turn does.
pub(crate) enum Begin {
    /// A new message at the end of the branch shown (in a new conversation if `None`).
    Say { conversation: Option<i64>, text: String },
    /// A new version of the person's message `message`, and a reply to it.
    Edit { message: i64, text: String },
    /// Another version of reply `reply`, to the same message.
    Regenerate { reply: i64 },
    /// More of the interrupted reply `reply`, appended to it.
    Continue { reply: i64 },
}

pub(crate) struct StartTurn {
    pub begin: Begin,
    pub gateway: String,
    pub model: Option<String>,
    /// The gateway keeps conversations itself: the turn needs a session (`chat::branch`).
    pub keeps_history: bool,
    /// host:pid:start of this process, so a reply left `streaming` by a dead process is found.
    pub writer: String,
}

pub(crate) struct Turn {
    pub conversation_id: i64,
    pub message_id: i64,
    /// Text the reply already has (a continued reply goes on after it).
    pub text_so_far: String,
    pub history: Vec<ChatMessage>,
    pub session: Option<Session>,
}

/// What the model is asked when an interrupted reply is continued. Not stored: the person sees
/// one reply growing. (Gateways cannot be relied on to continue an assistant message they are
/// handed as the last one — the OpenAI API starts a new reply — but all of them follow this.)
pub(crate) const CONTINUE: &str =
    "Continue your last reply from exactly where it stopped, without repeating anything you already wrote.";

/// Titles are the first words of the first message.
pub(crate) fn title(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let mut title: String = line.chars().take(60).collect();
    if line.chars().count() > 60 {
        title.push('…');
    }
    if title.is_empty() { "(untitled)".into() } else { title }
}

fn insert(conn: &Connection, conversation: i64, parent: Option<i64>, role: &str, text: &str, state: MessageState, writer: Option<&str>, now: Millis) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO messages (conversation_id, parent_id, role, text, state, writer, created_at, updated_at, feed_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, (SELECT n FROM job_feed_counter)) RETURNING id",
    )
    .and_then(|mut st| st.query_row(params![conversation, parent, role, text, state.as_str(), writer, now], |r| r.get(0)))
    .map_err(db)
}

/// The branch shown, as the model gets it: what the person saw — complete replies and the
/// kept part of interrupted ones; failed attempts (no text) are left out.
fn history(conn: &Connection, conversation: i64) -> Result<Vec<ChatMessage>> {
    conn.prepare_cached(
        "SELECT role, text FROM messages WHERE conversation_id = ?1 AND active = 1 AND text != ''
         AND state IN ('complete', 'interrupted') ORDER BY id",
    )
    .and_then(|mut st| {
        st.query_map([conversation], |r| {
            let role: String = r.get(0)?;
            Ok(ChatMessage::new(Role::parse(&role).unwrap_or(Role::User), r.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(db)
}

fn not_streaming(n: &branch::Node) -> Result<()> {
    if n.state == MessageState::Streaming.as_str() {
        return Err(Error::ChatInvalid(format!("reply {} is still being written; stop it first", n.id)));
    }
    Ok(())
}

impl WriteOp for StartTurn {
    type Output = Turn;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<Turn> {
        let streaming = MessageState::Streaming;
        let writer = Some(self.writer.as_str());
        // The conversation, the message the session must end with, the reply, its text so far.
        let (conversation_id, follows, message_id, text_so_far, mut history) = match &self.begin {
            Begin::Say { conversation, text } => {
                let conversation_id = match *conversation {
                    Some(id) => {
                        let exists = conn
                            .query_row("SELECT 1 FROM conversations WHERE id = ?1", [id], |_| Ok(()))
                            .optional()
                            .map_err(db)?;
                        if exists.is_none() {
                            return Err(Error::ConversationNotFound(id));
                        }
                        id
                    }
                    None => conn
                        .query_row(
                            "INSERT INTO conversations (title, gateway, model, created_at, updated_at, feed_seq)
                             VALUES (?1, ?2, ?3, ?4, ?4, (SELECT n FROM job_feed_counter)) RETURNING id",
                            params![title(text), self.gateway, self.model, now],
                            |r| r.get(0),
                        )
                        .map_err(db)?,
                };
                let parent = branch::leaf(conn, conversation_id)?;
                let asked = insert(conn, conversation_id, parent, "user", text, MessageState::Complete, None, now)?;
                let history = history(conn, conversation_id)?;
                let reply = insert(conn, conversation_id, Some(asked), "assistant", "", streaming, writer, now)?;
                (conversation_id, parent, reply, String::new(), history)
            }
            Begin::Edit { message, text } => {
                let n = branch::node(conn, *message)?;
                if n.role != "user" {
                    return Err(Error::ChatInvalid(format!("message {message} is a reply; only the person's messages are edited")));
                }
                branch::show(conn, n.conversation_id, n.parent_id, false)?;
                let asked = insert(conn, n.conversation_id, n.parent_id, "user", text, MessageState::Complete, None, now)?;
                let history = history(conn, n.conversation_id)?;
                let reply = insert(conn, n.conversation_id, Some(asked), "assistant", "", streaming, writer, now)?;
                (n.conversation_id, n.parent_id, reply, String::new(), history)
            }
            Begin::Regenerate { reply } => {
                let n = branch::node(conn, *reply)?;
                not_streaming(&n)?;
                let asked = match (n.role.as_str(), n.parent_id) {
                    ("assistant", Some(asked)) => branch::node(conn, asked)?,
                    _ => return Err(Error::ChatInvalid(format!("message {reply} is not a reply to a message"))),
                };
                branch::show(conn, n.conversation_id, Some(asked.id), false)?;
                let history = history(conn, n.conversation_id)?;
                let reply = insert(conn, n.conversation_id, Some(asked.id), "assistant", "", streaming, writer, now)?;
                (n.conversation_id, asked.parent_id, reply, String::new(), history)
            }
            Begin::Continue { reply } => {
                let n = branch::node(conn, *reply)?;
                not_streaming(&n)?;
                if n.role != "assistant" || n.state != MessageState::Interrupted.as_str() {
                    return Err(Error::ChatInvalid(format!(
                        "message {reply} is not an interrupted reply; only those can be continued"
                    )));
                }
                if !n.active || branch::leaf(conn, n.conversation_id)? != Some(n.id) {
                    return Err(Error::ChatInvalid(format!("reply {reply} is not the last one shown; only that one can be continued")));
                }
                let mut history = history(conn, n.conversation_id)?;
                history.push(ChatMessage::new(Role::User, CONTINUE));
                conn.prepare_cached(
                    "UPDATE messages SET state = 'streaming', writer = ?2, error_code = NULL, error_message = NULL,
                            stop_requested = 0, updated_at = ?3, feed_seq = (SELECT n FROM job_feed_counter)
                     WHERE id = ?1",
                )
                .and_then(|mut st| st.execute(params![n.id, self.writer, now]))
                .map_err(db)?;
                (n.conversation_id, Some(n.id), n.id, n.text, history)
            }
        };
        conn.execute(
            "UPDATE conversations SET updated_at = ?2, gateway = ?3, model = ?4, feed_seq = (SELECT n FROM job_feed_counter) WHERE id = ?1",
            params![conversation_id, now, self.gateway, self.model],
        )
        .map_err(db)?;
        let session = if self.keeps_history {
            let (remote_gateway, remote_session): (Option<String>, Option<String>) = conn
                .query_row("SELECT remote_gateway, remote_session FROM conversations WHERE id = ?1", [conversation_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(db)?;
            let base =
                crate::chat::session_for(conversation_id, remote_gateway.as_deref(), remote_session.as_deref(), &self.gateway);
            let session = branch::session(conn, conversation_id, &self.gateway, &base, follows)?;
            branch::hold(conn, &self.gateway, &session.key, message_id)?;
            Some(session)
        } else {
            None
        };
        history.shrink_to_fit();
        Ok(Turn { conversation_id, message_id, text_so_far, history, session })
    }
}
