//! Pages of conversations and of messages, so a long list or a 10,000-message conversation
//! opens without reading it all: each page is one range on an index. Messages are those of the
//! branch shown (`chat::branch`).

use rusqlite::params;
use serde::Serialize;

use super::{Conversation, Message, ToolActivity, CONVERSATION_COLUMNS, MESSAGE_COLUMNS};
use crate::error::{Error, Result};
use crate::store::Store;

/// A page of the conversation list (pinned first, then the most recently active).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ConversationPage {
    /// The conversations, in the list's order.
    pub conversations: Vec<Conversation>,
    /// Pass to [`crate::Engine::conversations_page`] for the next page; `None` at the end.
    pub next: Option<String>,
}

/// Where a page of messages is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagesAt {
    /// The newest messages (a conversation as it opens).
    Latest,
    /// The messages before this one (scrolling up).
    Before(i64),
    /// The messages after this one.
    After(i64),
    /// This one in the middle (a search hit opened). On the branch shown.
    Around(i64),
}

/// A page of a conversation's messages, oldest first.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct MessagePage {
    /// The messages of the branch shown, oldest first.
    pub messages: Vec<Message>,
    /// There are older messages than these.
    pub more_before: bool,
    /// There are newer messages than these.
    pub more_after: bool,
}

fn cursor_of(c: &Conversation) -> String {
    format!("{}.{}.{}", c.pinned as u8, c.updated_at, c.id)
}

fn parse_cursor(cursor: &str) -> Result<(i64, i64, i64)> {
    let bad = || Error::ChatInvalid(format!("`{cursor}` is not a page cursor"));
    let mut parts = cursor.splitn(3, '.').map(|p| p.parse::<i64>().map_err(|_| bad()));
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c)) => Ok((a?, b?, c?)),
        _ => Err(bad()),
    }
}

pub(crate) async fn conversations(store: &Store, after: Option<&str>, limit: i64) -> Result<ConversationPage> {
    // Past the last one of the previous page, in the list's order.
    let after = after.map(parse_cursor).transpose()?.unwrap_or((i64::MAX, i64::MAX, i64::MAX));
    let limit = limit.clamp(1, 1000);
    let mut list: Vec<Conversation> = store
        .read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations c INDEXED BY conversations_list
                 WHERE (c.pinned, c.updated_at, c.id) < (?1, ?2, ?3)
                 ORDER BY c.pinned DESC, c.updated_at DESC, c.id DESC LIMIT ?4"
            ))?
            .query_map(params![after.0, after.1, after.2, limit + 1], super::conversation_row)?
            .collect()
        })
        .await?;
    let more = list.len() as i64 > limit;
    list.truncate(limit as usize);
    let next = if more { list.last().map(cursor_of) } else { None };
    Ok(ConversationPage { conversations: list, next })
}

pub(crate) async fn messages(store: &Store, conversation: i64, at: MessagesAt, limit: i64) -> Result<MessagePage> {
    let limit = limit.clamp(1, 1000);
    let page = store
        .read(move |c| {
            let exists = c.prepare_cached("SELECT 1 FROM conversations WHERE id = ?1")?.exists([conversation])?;
            if !exists {
                return Ok(None);
            }
            let older = |below: i64, n: i64| -> rusqlite::Result<Vec<Message>> {
                let mut list: Vec<Message> = c
                    .prepare_cached(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages
                         WHERE conversation_id = ?1 AND active = 1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
                    ))?
                    .query_map(params![conversation, below, n], super::message_row)?
                    .collect::<rusqlite::Result<_>>()?;
                list.reverse();
                Ok(list)
            };
            let newer = |from: i64, n: i64| -> rusqlite::Result<Vec<Message>> {
                c.prepare_cached(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages
                     WHERE conversation_id = ?1 AND active = 1 AND id >= ?2 ORDER BY id LIMIT ?3"
                ))?
                .query_map(params![conversation, from, n], super::message_row)?
                .collect()
            };
            let exists = |sql: &str, id: i64| -> rusqlite::Result<bool> {
                c.prepare_cached(&format!("SELECT 1 FROM messages WHERE conversation_id = ?1 AND active = 1 AND id {sql} ?2"))?
                    .exists(params![conversation, id])
            };
            // One more than kept on a side says whether there is more that way.
            let (half, rest) = (limit / 2, limit - limit / 2);
            let (mut before, mut after, keep_before, keep_after) = match at {
                MessagesAt::Latest => (older(i64::MAX, limit + 1)?, Vec::new(), limit, 0),
                MessagesAt::Before(id) => (older(id, limit + 1)?, Vec::new(), limit, 0),
                MessagesAt::After(id) => (Vec::new(), newer(id + 1, limit + 1)?, 0, limit),
                MessagesAt::Around(id) => (older(id, half + 1)?, newer(id, rest + 1)?, half, rest),
            };
            let mut more_before = before.len() as i64 > keep_before;
            if more_before {
                before.remove(0);
            }
            let mut more_after = after.len() as i64 > keep_after;
            after.truncate(keep_after as usize);
            match at {
                MessagesAt::Before(_) => {
                    let last = before.last().map_or(i64::MAX, |m| m.id);
                    more_after = exists(">", last)?;
                }
                MessagesAt::After(id) => {
                    let first = after.first().map_or(id + 1, |m| m.id);
                    more_before = exists("<", first)?;
                }
                _ => {}
            }
            let mut messages = before;
            messages.extend(after);
            attach_tools(c, &mut messages)?;
            super::branch::attach_versions(c, &mut messages)?;
            Ok(Some(MessagePage { messages, more_before, more_after }))
        })
        .await?;
    page.ok_or(Error::ConversationNotFound(conversation))
}

/// The tools that ran during each of `messages`.
pub(crate) fn attach_tools(c: &rusqlite::Connection, messages: &mut [Message]) -> rusqlite::Result<()> {
    for m in messages.iter_mut().filter(|m| m.role == "assistant") {
        m.tools = tools_of(c, m.id)?;
    }
    Ok(())
}

/// The tools that ran during message `id`, in order.
pub(crate) fn tools_of(c: &rusqlite::Connection, id: i64) -> rusqlite::Result<Vec<ToolActivity>> {
    c.prepare_cached(
        "SELECT call_id, name, summary, status, ran_by, output FROM message_tools WHERE message_id = ?1 ORDER BY seq",
    )?
    .query_map([id], |r| ToolActivity::from_row(r, 0))?
    .collect()
}
