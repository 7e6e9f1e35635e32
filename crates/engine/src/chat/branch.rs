//! Turn history as a tree (migration 0016): which branch is shown, the versions of a message,
//! and which gateway session a turn goes on in.
//!
//! Every message follows its parent; a regenerated reply is a second child of the same
//! question, an edited question a second child of what it answered. The branch shown is
//! flagged `active`, so pages of it stay one index range. Showing another version shows the
//! newest continuation below it (the newest child at each step).
//!
//! Gateways that keep a conversation themselves (OpenClaw) hold a line, not a tree, and take
//! one new message per turn — earlier messages cannot be sent with it. The rule: a turn goes on
//! in the session whose last message is the one the turn follows; otherwise (a reply
//! regenerated, a message edited, the conversation moved to another gateway) it opens a new
//! session, and its first message carries the branch so far as a transcript
//! ([`crate::gateway::ChatRequest::fresh_session`]). The old session stays as it was, so the
//! gateway's own UI shows each version as a conversation of its own.

use rusqlite::{params, Connection, OptionalExtension};

use super::Message;
use crate::error::{Error, Result};
use crate::store::writer::db;

/// One message's place in the tree.
pub(crate) struct Node {
    pub id: i64,
    pub conversation_id: i64,
    pub parent_id: Option<i64>,
    pub role: String,
    pub state: String,
    pub active: bool,
    pub text: String,
}

pub(crate) fn node(conn: &Connection, id: i64) -> Result<Node> {
    conn.prepare_cached("SELECT conversation_id, parent_id, role, state, active, text FROM messages WHERE id = ?1")
        .and_then(|mut st| {
            st.query_row([id], |r| {
                Ok(Node {
                    id,
                    conversation_id: r.get(0)?,
                    parent_id: r.get(1)?,
                    role: r.get(2)?,
                    state: r.get(3)?,
                    active: r.get(4)?,
                    text: r.get(5)?,
                })
            })
            .optional()
        })
        .map_err(db)?
        .ok_or(Error::MessageNotFound(id))
}

/// The last message of the branch shown.
pub(crate) fn leaf(conn: &Connection, conversation: i64) -> Result<Option<i64>> {
    conn.prepare_cached("SELECT max(id) FROM messages WHERE conversation_id = ?1 AND active = 1")
        .and_then(|mut st| st.query_row([conversation], |r| r.get(0)))
        .map_err(db)
}

/// Show the branch through `through` (`None`: show nothing, the conversation starts again).
/// `below`: also show what follows it (its newest child, and so on); else the branch ends
/// there. Tells open windows the branch changed when it did.
pub(crate) fn show(conn: &Connection, conversation: i64, through: Option<i64>, below: bool) -> Result<()> {
    // Up from `through` to the first message already shown: where the two branches part.
    let mut path = Vec::new();
    let mut parting = 0;
    let mut at = through;
    while let Some(id) = at {
        let n = node(conn, id)?;
        if n.conversation_id != conversation {
            return Err(Error::ChatInvalid(format!("message {id} is not in conversation {conversation}")));
        }
        if n.active {
            parting = id;
            break;
        }
        path.push(id);
        at = n.parent_id;
    }
    if below && path.is_empty() && through.is_some() {
        return Ok(()); // Shown already.
    }
    conn.prepare_cached("UPDATE messages SET active = 0 WHERE conversation_id = ?1 AND active = 1 AND id > ?2")
        .and_then(|mut st| st.execute(params![conversation, parting]))
        .map_err(db)?;
    let mut activate = conn.prepare_cached("UPDATE messages SET active = 1 WHERE id = ?1").map_err(db)?;
    for id in &path {
        activate.execute([id]).map_err(db)?;
    }
    if let (true, Some(mut at)) = (below, through) {
        let mut newest = conn.prepare_cached("SELECT max(id) FROM messages WHERE parent_id = ?1").map_err(db)?;
        while let Some(child) = newest.query_row([at], |r| r.get::<_, Option<i64>>(0)).map_err(db)? {
            activate.execute([child]).map_err(db)?;
            at = child;
        }
    }
    changed(conn, conversation)
}

/// The branch shown changed other than at its end: bump `branch` (windows reload).
pub(crate) fn changed(conn: &Connection, conversation: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE conversations SET branch = branch + 1, feed_seq = (SELECT n FROM job_feed_counter) WHERE id = ?1",
    )
    .and_then(|mut st| st.execute([conversation]))
    .map(drop)
    .map_err(db)
}

/// Fill in each message's versions (itself and its siblings of the same role, oldest first)
/// where it has more than one.
pub(crate) fn attach_versions(conn: &Connection, messages: &mut [Message]) -> rusqlite::Result<()> {
    let mut under = conn.prepare_cached("SELECT id FROM messages WHERE parent_id = ?1 AND role = ?2 ORDER BY id")?;
    let mut first = conn.prepare_cached(
        "SELECT id FROM messages WHERE conversation_id = ?1 AND parent_id IS NULL AND role = ?2 ORDER BY id",
    )?;
    for m in messages.iter_mut() {
        let ids: Vec<i64> = match m.parent_id {
            Some(parent) => under.query_map(params![parent, m.role], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?,
            None => {
                let conversation: i64 =
                    conn.query_row("SELECT conversation_id FROM messages WHERE id = ?1", [m.id], |r| r.get(0))?;
                first.query_map(params![conversation, m.role], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
            }
        };
        m.versions = if ids.len() > 1 { ids } else { Vec::new() };
    }
    Ok(())
}

/// Where a turn goes on, on a gateway that keeps sessions.
pub(crate) struct Session {
    pub key: String,
    /// Opened by this turn: the gateway holds none of the branch yet.
    pub fresh: bool,
}

/// The session on `gateway` for a turn that follows `follows` (`None`: the first message):
/// the one whose last message that is, else a new one (see the module doc). `base` is the
/// conversation's own name for its first session.
pub(crate) fn session(conn: &Connection, conversation: i64, gateway: &str, base: &str, follows: Option<i64>) -> Result<Session> {
    let held: Option<String> = conn
        .prepare_cached(
            "SELECT key FROM chat_sessions WHERE conversation_id = ?1 AND gateway = ?2 AND last_message_id IS ?3",
        )
        .and_then(|mut st| st.query_row(params![conversation, gateway, follows], |r| r.get(0)).optional())
        .map_err(db)?;
    if let Some(key) = held.filter(|_| follows.is_some()) {
        return Ok(Session { key, fresh: false });
    }
    let opened: i64 = conn
        .prepare_cached("SELECT count(*) FROM chat_sessions WHERE conversation_id = ?1 AND gateway = ?2")
        .and_then(|mut st| st.query_row(params![conversation, gateway], |r| r.get(0)))
        .map_err(db)?;
    let taken = |key: &str| -> Result<bool> {
        conn.prepare_cached("SELECT 1 FROM chat_sessions WHERE gateway = ?1 AND key = ?2")
            .and_then(|mut st| st.exists(params![gateway, key]))
            .map_err(db)
    };
    let mut key = base.to_owned();
    let mut n = opened + 1;
    while taken(&key)? {
        key = format!("{base}.{n}");
        n += 1;
    }
    conn.prepare_cached("INSERT INTO chat_sessions (gateway, key, conversation_id) VALUES (?1, ?2, ?3)")
        .and_then(|mut st| st.execute(params![gateway, key, conversation]))
        .map_err(db)?;
    Ok(Session { key, fresh: true })
}

/// The gateway's copy of session `key` now ends with `message`.
pub(crate) fn hold(conn: &Connection, gateway: &str, key: &str, message: i64) -> Result<()> {
    conn.prepare_cached("UPDATE chat_sessions SET last_message_id = ?3 WHERE gateway = ?1 AND key = ?2")
        .and_then(|mut st| st.execute(params![gateway, key, message]))
        .map(drop)
        .map_err(db)
}

/// The session on `gateway` that holds the branch shown, if one does.
pub(crate) fn shown_session(conn: &Connection, conversation: i64, gateway: &str) -> Result<Option<String>> {
    let Some(leaf) = leaf(conn, conversation)? else { return Ok(None) };
    conn.prepare_cached("SELECT key FROM chat_sessions WHERE conversation_id = ?1 AND gateway = ?2 AND last_message_id = ?3")
        .and_then(|mut st| st.query_row(params![conversation, gateway, leaf], |r| r.get(0)).optional())
        .map_err(db)
}
