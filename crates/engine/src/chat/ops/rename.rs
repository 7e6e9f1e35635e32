//! Rename a conversation.

use rusqlite::{params, Connection};

use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::writer::{db, WriteOp};

/// The longest title, in characters.
pub(crate) const TITLE_CHARS: usize = 200;

pub(crate) struct Rename {
    pub id: i64,
    pub title: String,
}

/// `title` as stored: one line, trimmed, control characters as spaces; an error if nothing is
/// left or it is too long.
pub(crate) fn clean_title(title: &str) -> Result<String> {
    let one_line: String = title.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let title = one_line.trim();
    if title.is_empty() {
        return Err(Error::ChatInvalid("a title needs at least one character that is not a space".into()));
    }
    if title.chars().count() > TITLE_CHARS {
        return Err(Error::ChatInvalid(format!("a title is at most {TITLE_CHARS} characters")));
    }
    Ok(title.to_owned())
}

impl WriteOp for Rename {
    type Output = ();
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<()> {
        let n = conn
            .prepare_cached("UPDATE conversations SET title = ?2, feed_seq = (SELECT n FROM job_feed_counter) WHERE id = ?1")
            .and_then(|mut st| st.execute(params![self.id, self.title]))
            .map_err(db)?;
        if n == 0 {
            return Err(Error::ConversationNotFound(self.id));
        }
        Ok(())
    }
}
