//! The conversation feed ([`crate::Engine::watch_conversations`]): conversations created,
//! changed and deleted, new messages, replies settled — made by any process on the database, so
//! a chat started with `gatehouse chat` shows up in an open window.
//!
//! Read by the database feed's follower ([`crate::pool::feed`]) in the same look as jobs:
//! conversation and message rows carry the writer transaction's number (`feed_seq`, migration
//! 0013). To tell new from changed without remembering every row, the follower keeps the
//! highest conversation and message ids it has seen (ids only grow) and the replies still
//! streaming. A reply's growing text is not news here (that is [`crate::Engine::watch_reply`]),
//! and a streaming row's text is not even read.

use std::collections::HashSet;

use rusqlite::Connection;
use serde::Serialize;

use super::{Conversation, Message, MessageState};
use crate::error::JobError;

/// What happened to conversations, from any process.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum ConversationEvent {
    /// A conversation was started (here or by another process).
    Created {
        /// The new conversation, as the list shows it.
        conversation: Conversation,
    },
    /// Its title, gateway, model or last activity changed.
    Changed {
        /// It, as it is now.
        conversation: Conversation,
    },
    /// A conversation was deleted.
    Deleted {
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        /// The deleted conversation's id: drop it from the list.
        id: i64,
    },
    /// A new message: the person's, or a reply that started (follow its text with
    /// [`crate::Engine::watch_reply`]).
    Message {
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        /// The conversation it is in.
        conversation_id: i64,
        /// The message (a streaming reply's text is left empty here).
        message: Message,
    },
    /// A reply stopped streaming: complete, interrupted or failed, with its whole text.
    Settled {
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        /// The conversation it is in.
        conversation_id: i64,
        /// The reply, whole.
        message: Message,
    },
    /// Events were missed: reload what you show.
    Resync,
}

/// A subscription to [`ConversationEvent`]s.
pub type ConversationWatch = crate::pool::feed::Watch<ConversationEvent>;

/// What the follower knows of conversations.
pub(crate) struct Seen {
    last_conversation: i64,
    last_message: i64,
    streaming: HashSet<i64>,
    /// Replies whose stop request was passed on already.
    stopping: HashSet<i64>,
}

impl Seen {
    pub(crate) fn load(conn: &Connection) -> rusqlite::Result<Seen> {
        let last = |table: &str| conn.query_row(&format!("SELECT coalesce(max(id), 0) FROM {table}"), [], |r| r.get(0));
        let streaming = conn
            .prepare_cached("SELECT id FROM messages WHERE state = 'streaming'")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Seen { last_conversation: last("conversations")?, last_message: last("messages")?, streaming, stopping: HashSet::new() })
    }
}

/// What one look found: events, and replies some process asked to stop.
#[derive(Default)]
pub(crate) struct Changes {
    pub events: Vec<ConversationEvent>,
    pub stops: Vec<i64>,
    /// The highest feed seq read.
    pub cursor: i64,
}

/// Everything stamped after `from`.
pub(crate) fn read_changes(conn: &Connection, seen: &mut Seen, from: i64) -> rusqlite::Result<Changes> {
    let mut out = Changes { cursor: from, ..Default::default() };
    let gone: Vec<(i64, i64)> = conn
        .prepare_cached("SELECT conversation_id, seq FROM conversation_feed_gone WHERE seq > ?1 ORDER BY seq")?
        .query_map([from], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let conversations: Vec<(i64, Conversation)> = conn
        .prepare_cached(&format!(
            "SELECT c.feed_seq, {} FROM conversations c INDEXED BY conversations_feed WHERE c.feed_seq > ?1 ORDER BY c.feed_seq",
            super::CONVERSATION_COLUMNS
        ))?
        .query_map([from], |r| Ok((r.get(0)?, super::conversation_row_at(r, 1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    // A streaming reply's text is left unread: it changes every 50 ms and is not news here.
    let messages: Vec<(i64, i64, bool, Message)> = conn
        .prepare_cached(
            "SELECT feed_seq, conversation_id, stop_requested, id, role,
                    CASE WHEN state = 'streaming' THEN '' ELSE text END, state, error_code, error_message, created_at,
                    parent_id
             FROM messages INDEXED BY messages_feed WHERE feed_seq > ?1 ORDER BY feed_seq",
        )?
        .query_map([from], |r| {
            let state: String = r.get(6)?;
            let code: Option<String> = r.get(7)?;
            let message = Message {
                id: r.get(3)?,
                role: r.get(4)?,
                text: r.get(5)?,
                state: MessageState::parse(&state),
                error: code.map(|code| JobError { code, message: r.get::<_, Option<String>>(8).ok().flatten().unwrap_or_default() }),
                tools: Vec::new(),
                created_at: r.get(9)?,
                parent_id: r.get(10)?,
                versions: Vec::new(),
            };
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, message))
        })?
        .collect::<rusqlite::Result<_>>()?;

    for (seq, conversation) in conversations {
        out.cursor = out.cursor.max(seq);
        if conversation.id > seen.last_conversation {
            seen.last_conversation = conversation.id;
            out.events.push(ConversationEvent::Created { conversation });
        } else {
            out.events.push(ConversationEvent::Changed { conversation });
        }
    }
    // Versions and tool calls are read only for the messages that become events: a streaming
    // reply is stamped on every flush, and is not news until it settles. A settled reply is
    // whole: a window replaces what it showed with it.
    let versions = |m: &mut Message| {
        super::pages::attach_tools(conn, std::slice::from_mut(m))?;
        super::branch::attach_versions(conn, std::slice::from_mut(m))
    };
    for (seq, conversation_id, stop, mut message) in messages {
        out.cursor = out.cursor.max(seq);
        let id = message.id;
        let streaming = message.state == MessageState::Streaming;
        if id > seen.last_message {
            seen.last_message = id;
            versions(&mut message)?;
            if streaming {
                seen.streaming.insert(id);
            }
            let settled = (message.role == "assistant" && !streaming).then(|| message.clone());
            out.events.push(ConversationEvent::Message { conversation_id, message });
            // Started and finished between two looks: both are news.
            if let Some(message) = settled {
                out.events.push(ConversationEvent::Settled { conversation_id, message });
            }
        } else if !streaming && seen.streaming.remove(&id) {
            seen.stopping.remove(&id);
            versions(&mut message)?;
            out.events.push(ConversationEvent::Settled { conversation_id, message });
        } else if streaming && stop && seen.stopping.insert(id) {
            out.stops.push(id);
        }
    }
    for (id, seq) in gone {
        out.cursor = out.cursor.max(seq);
        out.events.push(ConversationEvent::Deleted { id });
    }
    Ok(out)
}
