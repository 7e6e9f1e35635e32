//! Conversations out of Gatehouse and back: JSON that holds everything a conversation is (every
//! message, every version, which branch is shown, the tools a reply ran), which
//! [`crate::Engine::import_conversations`] brings back as new conversations; and Markdown, the
//! branch shown, for reading and sharing.
//!
//! The JSON is a contract with files people keep: [`EXPORT_FORMAT`] says which version of it a
//! file is, and an import refuses a version it does not know rather than guess.

use std::io::Write;
use std::path::Path;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::ToolActivity;
use crate::clock::rfc3339;
use crate::{Error, Result};

/// The version of the JSON export format this build writes and reads.
pub const EXPORT_FORMAT: u32 = 1;

/// A file of exported conversations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// [`EXPORT_FORMAT`] when written.
    pub gatehouse_export: u32,
    /// When it was written (RFC 3339).
    pub exported_at: String,
    /// The conversations, oldest first.
    pub conversations: Vec<ExportedConversation>,
}

/// One conversation, whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedConversation {
    /// Its title.
    pub title: String,
    /// The gateway profile its last turn used.
    #[serde(default)]
    pub gateway: Option<String>,
    /// The model its last turn asked for.
    #[serde(default)]
    pub model: Option<String>,
    /// Kept at the top of the list.
    #[serde(default)]
    pub pinned: bool,
    /// When it was started (milliseconds since the Unix epoch).
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// Every message, each before the ones that follow it.
    pub messages: Vec<ExportedMessage>,
}

/// One message: its place in the conversation's tree and what it says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedMessage {
    /// Its number in this file (the id it had), for `parent` to point at.
    pub id: i64,
    /// The message it follows; `None` for a first message.
    #[serde(default)]
    pub parent: Option<i64>,
    /// `user`, `assistant` or `system`.
    pub role: String,
    /// Its text.
    pub text: String,
    /// `complete`, `interrupted` or `failed` (a reply still streaming is exported as
    /// `interrupted`: its end is not known).
    pub state: String,
    /// On the branch shown.
    #[serde(default = "yes")]
    pub active: bool,
    /// Why a reply is not complete.
    #[serde(default)]
    pub error: Option<ExportedError>,
    /// The tools a reply ran, in order, with what they printed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolActivity>,
    /// When it was said (milliseconds since the Unix epoch).
    pub created_at: i64,
}

fn yes() -> bool {
    true
}

/// A reply's error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedError {
    /// The engine's error code.
    pub code: String,
    /// The sentence.
    pub message: String,
}

/// Read conversations `ids` (every conversation when empty), oldest first. Unknown ids are
/// returned as the error's id.
pub(crate) fn read(conn: &Connection, ids: &[i64]) -> rusqlite::Result<Result<Vec<ExportedConversation>, i64>> {
    let all: Vec<i64> = if ids.is_empty() {
        conn.prepare("SELECT id FROM conversations ORDER BY id")?.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
    } else {
        ids.to_vec()
    };
    let mut out = Vec::with_capacity(all.len());
    for id in all {
        let found = conn.query_row(
            "SELECT title, gateway, model, pinned, created_at, updated_at FROM conversations WHERE id = ?1",
            [id],
            |r| {
                Ok(ExportedConversation {
                    title: r.get(0)?,
                    gateway: r.get(1)?,
                    model: r.get(2)?,
                    pinned: r.get(3)?,
                    created_at: r.get(4)?,
                    updated_at: r.get(5)?,
                    messages: Vec::new(),
                })
            },
        );
        let mut conversation = match found {
            Ok(c) => c,
            Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(Err(id)),
            Err(e) => return Err(e),
        };
        let mut messages: Vec<ExportedMessage> = conn
            .prepare_cached(
                "SELECT id, parent_id, role, text, state, active, error_code, error_message, created_at
                 FROM messages WHERE conversation_id = ?1 ORDER BY id",
            )?
            .query_map([id], |r| {
                let state: String = r.get(4)?;
                let error = match (r.get::<_, Option<String>>(6)?, r.get::<_, Option<String>>(7)?) {
                    (Some(code), message) => Some(ExportedError { code, message: message.unwrap_or_default() }),
                    _ => None,
                };
                Ok(ExportedMessage {
                    id: r.get(0)?,
                    parent: r.get(1)?,
                    role: r.get(2)?,
                    text: r.get(3)?,
                    state: if state == "streaming" { "interrupted".into() } else { state },
                    active: r.get(5)?,
                    error,
                    tools: Vec::new(),
                    created_at: r.get(8)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        for m in &mut messages {
            m.tools = super::pages::tools_of(conn, m.id)?;
        }
        conversation.messages = messages;
        out.push(conversation);
    }
    Ok(Ok(out))
}

/// How an export is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Everything, for [`read_file`] and [`crate::Engine::import_conversations`].
    Json,
    /// The branch shown, for reading ([`markdown`]).
    Markdown,
}

impl Format {
    /// The format a file name asks for: `.json` is JSON, anything else Markdown (what a save
    /// dialog's chosen name says).
    pub fn of_path(path: &Path) -> Format {
        match path.extension().and_then(|x| x.to_str()) {
            Some(x) if x.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Markdown,
        }
    }

    /// The export as this format's text.
    pub fn render(self, export: &Export) -> String {
        match self {
            // Serialising plain data with string keys cannot fail.
            Format::Json => serde_json::to_string_pretty(export).expect("an export serialises") + "\n",
            Format::Markdown => markdown(export),
        }
    }
}

/// Write `export` to `path` as `format`: into a temporary file beside it, renamed over `path`
/// once complete, so a full disk or a crash never leaves half an export under its name.
pub fn write_file(export: &Export, format: Format, path: &Path) -> Result<()> {
    let failed = |e: std::io::Error| Error::ExportFailed(format!("cannot write {}: {e}", path.display()));
    let name = path.file_name().ok_or_else(|| Error::ExportFailed(format!("{} names no file", path.display())))?;
    let tmp = path.with_file_name(format!(".{}.{}.partial", name.to_string_lossy(), std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(format.render(export).as_bytes())?;
        f.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(failed(e))
        }
    }
}

/// Read a JSON export written by [`write_file`] (or `gatehouse chats export`).
pub fn read_file(path: &Path) -> Result<Export> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::ChatInvalid(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::ChatInvalid(format!("{} is not a Gatehouse export (JSON): {e}", path.display())))
}

/// The branch shown of each conversation, as Markdown: a heading per conversation, then each
/// message under who said it.
pub fn markdown(export: &Export) -> String {
    let mut out = String::new();
    for (i, c) in export.conversations.iter().enumerate() {
        if i > 0 {
            out.push_str("\n---\n\n");
        }
        out.push_str(&format!("# {}\n\n", c.title));
        let via = match (&c.gateway, &c.model) {
            (Some(g), Some(m)) => format!(" · {g} ({m})"),
            (Some(g), None) => format!(" · {g}"),
            _ => String::new(),
        };
        out.push_str(&format!("*Started {}{via}*\n\n", rfc3339(c.created_at)));
        for m in c.messages.iter().filter(|m| m.active) {
            let who = match m.role.as_str() {
                "user" => "You",
                "assistant" => "Assistant",
                _ => "Instructions",
            };
            out.push_str(&format!("## {who} · {}\n\n", rfc3339(m.created_at)));
            for t in &m.tools {
                out.push_str(&format!("> {} `{}`: {} ({})\n", t.name, t.summary.replace('`', "'"), t.status, t.ran_by));
            }
            if !m.tools.is_empty() {
                out.push('\n');
            }
            out.push_str(m.text.trim_end());
            out.push_str("\n\n");
            if m.state != "complete" {
                let why = m.error.as_ref().map(|e| format!(": {}", e.message)).unwrap_or_default();
                out.push_str(&format!("*({}{why})*\n\n", m.state));
            }
        }
    }
    out
}
