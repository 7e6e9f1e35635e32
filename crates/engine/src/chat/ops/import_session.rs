//! Import a conversation a gateway keeps (an OpenClaw session made elsewhere) as a
//! conversation here, or bring one imported before up to date.
//!
//! "Up to date" means: the gateway's messages after the last ones both copies have. The
//! gateway's copy can hold more than ours (a reply it finished while we were disconnected,
//! turns made in its own UI), so the anchor is our last two messages with text, found together
//! in the gateway's copy (one alone, "OK", would match too early or too late), matched by role
//! and by text — or as the start of the gateway's text, for a reply we kept only in part. A
//! turn of ours the gateway never got (it failed) is passed over. With no anchor at all the
//! copies have diverged: nothing is added, and that is reported.
//!
//! "Ours" is the branch that ends with the last message the session holds (`chat_sessions`);
//! what is added goes on from there and becomes the branch shown.

use rusqlite::{params, Connection, OptionalExtension};

use crate::chat::branch;
use crate::chat::ops::start_turn::title;
use crate::clock::Millis;
use crate::error::Result;
use crate::gateway::{ChatMessage, RemoteSession};
use crate::store::writer::{db, WriteOp};

pub(crate) struct ImportSession {
    /// The profile that holds the session.
    pub gateway: String,
    pub session: RemoteSession,
    /// The session's messages, oldest first, as the gateway holds them.
    pub messages: Vec<ChatMessage>,
}

/// What one import did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Imported {
    /// The conversation here.
    pub conversation_id: i64,
    /// The gateway's key for it.
    pub session: String,
    /// Its title here.
    pub title: String,
    /// False when it had been imported before.
    pub created: bool,
    /// Messages added now.
    pub added: usize,
    /// The gateway's copy no longer contains this one's latest messages: nothing was added.
    pub diverged: bool,
}

/// One session that could not be imported, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportFailure {
    /// The gateway's key for it.
    pub session: String,
    /// Why, in a sentence.
    pub error: String,
}

/// Where our copy ends in the gateway's: the index after the anchor (see the module doc).
fn anchor(gateway: &[ChatMessage], ours: &[(String, String)]) -> Option<usize> {
    let same = |g: &ChatMessage, (role, text): &(String, String)| {
        g.role.as_str() == role && (g.content == *text || (role == "assistant" && g.content.starts_with(text.as_str())))
    };
    if ours.is_empty() {
        return Some(0);
    }
    // Our newest messages first dropped one by one (a failed turn the gateway never got).
    for end in (1..=ours.len()).rev().take(4) {
        let tail = &ours[end.saturating_sub(2)..end];
        let found = (tail.len()..=gateway.len())
            .rev()
            .find(|&stop| tail.iter().zip(&gateway[stop - tail.len()..stop]).all(|(o, g)| same(g, o)));
        if found.is_some() {
            return found;
        }
    }
    None
}

impl WriteOp for ImportSession {
    type Output = Imported;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<Imported> {
        let key = &self.session.key;
        let existing: Option<(i64, String)> = conn
            .query_row(
                "SELECT id, title FROM conversations WHERE remote_gateway = ?1 AND remote_session = ?2",
                params![self.gateway, key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        let mut diverged = false;
        // The last message the gateway's copy and ours share, as far as we know.
        let mut last: Option<i64> = None;
        let (conversation_id, title, created, new) = match existing {
            Some((id, title)) => {
                last = conn
                    .prepare_cached("SELECT last_message_id FROM chat_sessions WHERE gateway = ?1 AND key = ?2")
                    .and_then(|mut st| st.query_row(params![self.gateway, key], |r| r.get(0)).optional())
                    .map_err(db)?
                    .flatten();
                // Our copy of the session: the branch up to that message (deleted here: none).
                let mut ours: Vec<(String, String)> = conn
                    .prepare_cached(
                        "WITH RECURSIVE up(id, n) AS (
                             SELECT id, 0 FROM messages WHERE id = ?1
                             UNION ALL SELECT m.parent_id, up.n + 1 FROM messages m JOIN up ON m.id = up.id
                             WHERE m.parent_id IS NOT NULL AND up.n < 12
                         )
                         SELECT m.role, m.text FROM up JOIN messages m ON m.id = up.id
                         WHERE m.text != '' AND m.role IN ('user', 'assistant') ORDER BY m.id DESC LIMIT 6",
                    )
                    .and_then(|mut st| st.query_map([last], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                    .map_err(db)?;
                ours.reverse();
                let from = if ours.is_empty() { None } else { anchor(&self.messages, &ours) };
                diverged = from.is_none();
                (id, title, false, &self.messages[from.unwrap_or(self.messages.len())..])
            }
            None => {
                let title = self.session.title.clone().unwrap_or_else(|| {
                    let first = self.messages.iter().find(|m| m.role.as_str() == "user");
                    first.map_or_else(|| key.clone(), |m| title(&m.content))
                });
                let id = conn
                    .query_row(
                        "INSERT INTO conversations (title, gateway, created_at, updated_at, remote_gateway, remote_session, feed_seq)
                         VALUES (?1, ?2, ?3, ?3, ?2, ?4, (SELECT n FROM job_feed_counter)) RETURNING id",
                        params![title, self.gateway, now, key],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                conn.execute(
                    "INSERT OR REPLACE INTO chat_sessions (gateway, key, conversation_id) VALUES (?1, ?2, ?3)",
                    params![self.gateway, key, id],
                )
                .map_err(db)?;
                (id, title, true, &self.messages[..])
            }
        };
        if !new.is_empty() {
            // What came after goes on from there, and is shown.
            if !created {
                branch::show(conn, conversation_id, last, false)?;
            }
            let mut insert = conn
                .prepare_cached(
                    "INSERT INTO messages (conversation_id, parent_id, role, text, state, created_at, updated_at, feed_seq)
                     VALUES (?1, ?2, ?3, ?4, 'complete', ?5, ?5, (SELECT n FROM job_feed_counter)) RETURNING id",
                )
                .map_err(db)?;
            for m in new {
                let id: i64 = insert
                    .query_row(params![conversation_id, last, m.role.as_str(), m.content, now], |r| r.get(0))
                    .map_err(db)?;
                last = Some(id);
            }
            branch::hold(conn, &self.gateway, key, last.unwrap_or_default())?;
            conn.execute("UPDATE conversations SET updated_at = ?2, feed_seq = (SELECT n FROM job_feed_counter) WHERE id = ?1", params![conversation_id, now])
                .map_err(db)?;
        }
        Ok(Imported { conversation_id, session: key.clone(), title, created, added: new.len(), diverged })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::Role;
    use crate::store::Store;

    fn op(messages: &[(Role, &str)]) -> ImportSession {
        ImportSession {
            gateway: "claw".into(),
            session: RemoteSession { key: "agent:main:main".into(), title: None },
            messages: messages.iter().map(|(r, t)| ChatMessage::new(*r, *t)).collect(),
        }
    }

    #[tokio::test]
    async fn importing_again_adds_only_what_came_after_a_reply_kept_in_part() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), std::sync::Arc::new(crate::clock::SystemClock)).await.unwrap();
        let first = store.writer.apply(op(&[(Role::User, "Hello there\nsecond line"), (Role::Assistant, "Hi")])).await.unwrap();
        assert!(first.created && first.added == 2 && first.title == "Hello there");
        // Continued here, the reply cut: we kept "The answer", the gateway finished it; then a
        // turn was made on the gateway's side.
        store
            .writer
            .apply(crate::chat::ops::start_turn::StartTurn {
                begin: crate::chat::ops::start_turn::Begin::Say { conversation: Some(first.conversation_id), text: "Question".into() },
                gateway: "claw".into(),
                model: None,
                keeps_history: true,
                writer: "test".into(),
            })
            .await
            .unwrap();
        struct CutReply;
        impl WriteOp for CutReply {
            type Output = ();
            fn apply(&mut self, conn: &Connection, _: Millis) -> Result<()> {
                let sql = "UPDATE messages SET text = 'The answer', state = 'interrupted' WHERE state = 'streaming'";
                conn.execute(sql, []).map(drop).map_err(db)
            }
        }
        store.writer.apply(CutReply).await.unwrap();
        let gateway_side = [
            (Role::User, "Hello there\nsecond line"),
            (Role::Assistant, "Hi"),
            (Role::User, "Question"),
            (Role::Assistant, "The answer is 42."),
            (Role::User, "Thanks"),
            (Role::Assistant, "You're welcome."),
        ];
        let again = store.writer.apply(op(&gateway_side)).await.unwrap();
        assert_eq!((again.conversation_id, again.created, again.added), (first.conversation_id, false, 2));
        let texts: Vec<String> = store
            .read(move |c| {
                c.prepare("SELECT text FROM messages ORDER BY id")?.query_map([], |r| r.get(0))?.collect()
            })
            .await
            .unwrap();
        assert_eq!(texts[3..], ["The answer", "Thanks", "You're welcome."]);
        // Nothing new: nothing added.
        assert_eq!(store.writer.apply(op(&gateway_side)).await.unwrap().added, 0);
    }

    #[test]
    fn the_anchor_is_our_last_two_messages_together() {
        let g = |m: &[(Role, &str)]| m.iter().map(|(r, t)| ChatMessage::new(*r, *t)).collect::<Vec<_>>();
        let o = |m: &[(&str, &str)]| m.iter().map(|(r, t)| (r.to_string(), t.to_string())).collect::<Vec<_>>();
        // "OK" recurs later on the gateway: the pair (question, "OK") is found where it is.
        let gateway = g(&[(Role::User, "Ready?"), (Role::Assistant, "OK"), (Role::User, "Again?"), (Role::Assistant, "OK")]);
        assert_eq!(anchor(&gateway, &o(&[("user", "Ready?"), ("assistant", "OK")])), Some(2));
        // Our last turn failed and never reached the gateway: passed over.
        assert_eq!(anchor(&gateway, &o(&[("user", "Ready?"), ("assistant", "OK"), ("user", "lost")])), Some(2));
        // Nothing of ours there: diverged.
        assert_eq!(anchor(&gateway, &o(&[("user", "Other"), ("assistant", "Thing")])), None);
        assert_eq!(anchor(&gateway, &[]), Some(0));
    }
}
