//! Conversations: a person's messages and the gateway's streamed replies, kept in SQLite.
//!
//! A turn ([`crate::Engine::send`]) stores the person's message and an empty reply in
//! `streaming` state, then streams the gateway's reply: each delta goes to the caller at once
//! and into the stored reply in batches (every `FLUSH_EVERY` or `FLUSH_BYTES`), so a
//! crash loses at most the last batch and the next start shows the rest as interrupted. The
//! turn runs in its own task: a caller that goes away (a closed window) does not stop the
//! reply from being stored; only `cancel` does.
//!
//! History is a tree, not a list: a regenerated reply or an edited message is a new version
//! beside the old one, and a conversation shows one branch (`branch`).
//!
//! Layout: this file (types, the turn, reads); `branch` (the tree, and gateway sessions per
//! branch); `pages` and `search` (reads for long histories); `live` and `feed` (following a
//! reply, and every conversation, from any process); `tools` (the exec tool offered to the
//! model); `prompt_job` (a prompt run by the pool); `ops/` (every write, one file each).

pub(crate) mod branch;
pub mod export;
pub mod feed;
pub mod live;
pub mod pages;
pub mod search;
pub(crate) mod ops;
pub mod prompt_job;
pub mod tools;

use std::time::Duration;

use futures::StreamExt;
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Millis;
use crate::error::{Error, JobError, Result};
use crate::gateway::{ChatEvent, ChatRequest, Gateway};
use crate::store::{Store, Writer};
use ops::append_text::AppendText;
use ops::settle::Settle;

const FLUSH_EVERY: Duration = Duration::from_millis(50);
const FLUSH_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
/// Where a message stands.
pub enum MessageState {
    /// Whole: the person's message, or a reply that ended by itself.
    Complete,
    /// A reply still arriving.
    Streaming,
    /// A reply that stopped early (stopped, cut off, its process gone); its text so far is kept
    /// and it can be continued.
    Interrupted,
    /// A reply that ended with no text at all; its error says why.
    Failed,
}

impl MessageState {
    /// The word stored and shown: `complete`, `streaming`, `interrupted` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Complete => "complete",
            MessageState::Streaming => "streaming",
            MessageState::Interrupted => "interrupted",
            MessageState::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> MessageState {
        match s {
            "complete" => MessageState::Complete,
            "streaming" => MessageState::Streaming,
            "interrupted" => MessageState::Interrupted,
            _ => MessageState::Failed,
        }
    }
}


#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
/// A stored conversation, as listed.
pub struct Conversation {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    /// Its id: what `--conversation ID` and `gatehouse chats show ID` take.
    pub id: i64,
    /// The first words of its first message, or what the person renamed it to.
    pub title: String,
    /// The gateway profile its last turn used.
    pub gateway: Option<String>,
    /// The model its last turn asked for (`None`: the profile's).
    pub model: Option<String>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    /// Messages on the branch shown.
    pub messages: i64,
    /// Shown at the top of the list.
    pub pinned: bool,
    /// Counts changes to the branch shown other than a message added at its end (a version
    /// shown, a reply regenerated, a message deleted): when it changes, reload the messages.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub branch: i64,
    /// Imported from a gateway that keeps conversations: the profile that holds it.
    pub remote_gateway: Option<String>,
    /// The gateway's key for the imported conversation: turns on that profile go on in it.
    pub remote_session: Option<String>,
    #[serde(serialize_with = "crate::clock::serde_rfc3339::time")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    /// When it was started.
    pub created_at: Millis,
    #[serde(serialize_with = "crate::clock::serde_rfc3339::time")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    /// When it last changed: a message, a reply settled, a rename.
    pub updated_at: Millis,
}

/// A tool that ran during a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ToolActivity {
    /// The id the model or the gateway gave the call.
    pub call_id: String,
    /// The tool's name (`exec`, or the gateway's own tools).
    pub name: String,
    /// One line for the person: what ran (and how it ended).
    pub summary: String,
    /// `running`, `completed`, `failed`, … as the runner reports it.
    pub status: String,
    /// `gatehouse` (the sandboxed exec tool) or `gateway` (the gateway ran it itself).
    pub ran_by: String,
    /// What it printed, as the model was given it (bounded); empty while it runs and for a
    /// gateway's own tools, whose output the gateway keeps.
    #[serde(default)]
    pub output: String,
}

impl ToolActivity {
    /// Read from `call_id, name, summary, status, ran_by, output`, starting at column `first`.
    pub(crate) fn from_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<ToolActivity> {
        Ok(ToolActivity {
            call_id: r.get(first)?,
            name: r.get(first + 1)?,
            summary: r.get(first + 2)?,
            status: r.get(first + 3)?,
            ran_by: r.get(first + 4)?,
            output: r.get(first + 5)?,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
/// One message of a conversation: the person's, or a reply.
pub struct Message {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    /// Its id: what `chat --regenerate ID`, `--edit ID` and `--continue ID` take.
    pub id: i64,
    /// The message this one follows; `None` for the first.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub parent_id: Option<i64>,
    /// `user` or `assistant` (`system` for instructions).
    pub role: String,
    /// Its text (a streaming reply's text so far).
    pub text: String,
    /// Where it stands.
    pub state: MessageState,
    /// Why a reply is not complete, when it is not.
    pub error: Option<JobError>,
    /// Tools that ran during this reply, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolActivity>,
    /// Every version of this message (itself, regenerated replies, edits), oldest first; empty
    /// when there is only this one. Show another with [`crate::Engine::show_version`].
    #[cfg_attr(feature = "ts", ts(type = "Array<number>"))]
    pub versions: Vec<i64>,
    #[serde(serialize_with = "crate::clock::serde_rfc3339::time")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    /// When it was said (a reply: when it started).
    pub created_at: Millis,
}


/// What a caller of [`crate::Engine::send`] sees. Every delta arrives (the channel is not
/// bounded: a reply is held in memory anyway), with its byte offset in the reply.
#[derive(Debug)]
pub enum ReplyEvent {
    /// More text.
    Delta {
        /// Where `text` goes in the reply, in bytes.
        offset: usize,
        /// Reply text from `offset` on, as the gateway sent it.
        text: String,
    },
    /// The model called a tool; this is what happened (the reply goes on after it).
    Tool(tools::ToolOutcome),
    /// The reply is stored in its final state; `error` says why it is not complete.
    Finished {
        /// Complete, interrupted or failed.
        state: MessageState,
        /// Why it is not complete, when it is not.
        error: Option<Error>,
    },
}

/// A turn started by [`crate::Engine::send`] (or regenerate, edit, continue): where its reply
/// is stored, and its events.
pub struct Reply {
    /// The conversation (new if the turn started one).
    pub conversation_id: i64,
    /// The reply's message id: follow it from anywhere with [`crate::Engine::watch_reply`].
    pub message_id: i64,
    /// Deltas, tools and the end, as they come.
    pub events: mpsc::UnboundedReceiver<ReplyEvent>,
}

/// Tool-call rounds in one turn before the model must answer in words.
const MAX_TOOL_ROUNDS: usize = 8;

/// A turn to run: where its reply goes and who follows it.
pub(crate) struct TurnRun {
    pub writer: Writer,
    pub gateway: std::sync::Arc<dyn Gateway>,
    pub request: ChatRequest,
    pub message_id: i64,
    pub cancel: CancellationToken,
    /// The caller of `send`.
    pub tx: mpsc::UnboundedSender<ReplyEvent>,
    pub tools: Option<std::sync::Arc<dyn tools::ToolRunner>>,
    /// Every other follower ([`live`]).
    pub live: std::sync::Arc<live::LiveReply>,
    pub replies: live::Replies,
    /// The reply had text before this turn (it is being continued): if the turn fails, the
    /// reply is still interrupted, not failed.
    pub had_text: bool,
}

/// Stream the gateway's reply into the stored message, to the caller and to every follower.
/// With tools, each round of tool calls is run and answered, and the model asked again, until
/// it answers.
pub(crate) async fn run_turn(turn: TurnRun) {
    let TurnRun { writer, gateway, mut request, message_id, cancel, tx, tools, live, replies, had_text } = turn;
    if let Some(tools) = &tools {
        request.tools = tools.definitions();
    }
    let mut rounds = 0;
    let mut round_text = String::new();
    let mut calls = Vec::new();
    let mut stream = gateway.stream(request.clone(), cancel.clone());
    let mut pending = String::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut usage = None;
    let mut received = false;
    let flush = |pending: &mut String| {
        let text = std::mem::take(pending);
        let writer = writer.clone();
        async move {
            if let Err(e) = writer.apply(AppendText { message_id, text }).await {
                tracing::warn!(message = message_id, error = %e, "could not store reply text");
            }
        }
    };
    let record = |tool: ToolActivity| {
        let writer = writer.clone();
        async move {
            if let Err(e) = writer.apply(ops::record_tool::RecordTool { message_id, tool }).await {
                tracing::warn!(message = message_id, error = %e, "could not store a tool call");
            }
        }
    };
    let end: std::result::Result<(), Option<Error>> = loop {
        let item = match deadline {
            Some(at) => tokio::select! {
                item = stream.next() => item,
                _ = tokio::time::sleep_until(at) => {
                    flush(&mut pending).await;
                    deadline = None;
                    continue;
                }
            },
            None => stream.next().await,
        };
        match item {
            Some(Ok(ChatEvent::Delta { text })) => {
                received = true;
                round_text.push_str(&text);
                pending.push_str(&text);
                let offset = live.push(&text);
                let _ = tx.send(ReplyEvent::Delta { offset, text });
                if pending.len() >= FLUSH_BYTES {
                    flush(&mut pending).await;
                    deadline = None;
                } else if deadline.is_none() {
                    deadline = Some(tokio::time::Instant::now() + FLUSH_EVERY);
                }
            }
            Some(Ok(ChatEvent::Usage { prompt_tokens, completion_tokens })) => usage = Some((prompt_tokens, completion_tokens)),
            Some(Ok(ChatEvent::ToolCalls { calls: asked })) => calls = asked,
            Some(Ok(ChatEvent::ToolActivity { call_id, name, title, status })) => {
                let summary = format!("{title} — {status}, run by {}", gateway.name());
                let shown = tools::ToolOutcome { summary: summary.clone(), result: String::new(), status: status.clone() };
                let activity = ToolActivity { call_id, name, summary, status, ran_by: "gateway".into(), output: String::new() };
                live.tool(activity.clone());
                record(activity).await;
                let _ = tx.send(ReplyEvent::Tool(shown));
            }
            Some(Ok(ChatEvent::Done { .. })) => {
                let Some(runner) = tools.as_ref().filter(|_| !calls.is_empty()) else {
                    break Ok(());
                };
                if rounds == MAX_TOOL_ROUNDS {
                    // Still asking for tools: a loop, not an answer. Say so rather than call it complete.
                    break Err(Some(Error::ToolRounds { rounds: MAX_TOOL_ROUNDS }));
                }
                rounds += 1;
                let asked = std::mem::take(&mut calls);
                let mut said = crate::gateway::ChatMessage::new(crate::gateway::Role::Assistant, std::mem::take(&mut round_text));
                said.tool_calls = asked.clone();
                request.messages.push(said);
                for call in asked {
                    let id = call.id.clone();
                    // Shown at once as running (a command may wait minutes for its approval);
                    // replaced by how it ended.
                    live.tool(ToolActivity {
                        call_id: id.clone(),
                        name: call.function.name.clone(),
                        summary: tools::announce(&call),
                        status: "running".into(),
                        ran_by: "gatehouse".into(),
                        output: String::new(),
                    });
                    // Spawned, so a cancel stops the turn at once while the command is killed
                    // and audited in its own time.
                    let running = tokio::spawn(runner.run(call, cancel.clone()));
                    let outcome = tokio::select! {
                        outcome = running => match outcome {
                            Ok(outcome) => outcome,
                            Err(_) => tools::ToolOutcome {
                                summary: "the tool crashed".into(),
                                result: "the tool crashed".into(),
                                status: "failed".into(),
                            },
                        },
                        _ = cancel.cancelled() => break,
                    };
                    let mut answer = crate::gateway::ChatMessage::new(crate::gateway::Role::Tool, outcome.result.clone());
                    answer.tool_call_id = Some(id.clone());
                    let activity = ToolActivity {
                        call_id: id,
                        name: "exec".into(),
                        summary: outcome.summary.clone(),
                        status: outcome.status.clone(),
                        ran_by: "gatehouse".into(),
                        output: outcome.result.clone(),
                    };
                    live.tool(activity.clone());
                    record(activity).await;
                    request.messages.push(answer);
                    let _ = tx.send(ReplyEvent::Tool(outcome));
                }
                if cancel.is_cancelled() {
                    break Err(None);
                }
                stream = gateway.stream(request.clone(), cancel.clone());
            }
            Some(Err(e)) => break Err(Some(e)),
            // Ended without Done: only cancel does that.
            None => break Err(None),
        }
    };
    let (state, error, job_error) = match end {
        Ok(()) => (MessageState::Complete, None, None),
        Err(None) => (
            MessageState::Interrupted,
            None,
            Some(JobError::new("chat.stopped", if cancel.is_cancelled() { "stopped by you" } else { "the reply stopped" })),
        ),
        Err(Some(e)) => {
            let state = if received || had_text { MessageState::Interrupted } else { MessageState::Failed };
            let job_error = JobError::new(e.code(), e.to_string());
            (state, Some(e), Some(job_error))
        }
    };
    let settle = Settle { message_id, tail: std::mem::take(&mut pending), state, error: job_error.clone(), usage };
    if let Err(e) = writer.apply(settle).await {
        tracing::warn!(message = message_id, error = %e, "could not store the end of a reply");
    }
    // Stored first: a follower that comes after this reads the settled reply from the store.
    live.settle(state, job_error);
    replies.end(message_id);
    let _ = tx.send(ReplyEvent::Finished { state, error });
}

/// The session name a conversation has on gateways that keep conversations themselves.
pub(crate) fn session_of(conversation: i64) -> String {
    format!("gatehouse-{conversation}")
}

/// The session of `conversation` on the profile `gateway`: the gateway's own key when it was
/// imported from there, else Gatehouse's name for it.
pub(crate) fn session_on(conversation: &Conversation, gateway: &str) -> String {
    session_for(conversation.id, conversation.remote_gateway.as_deref(), conversation.remote_session.as_deref(), gateway)
}

/// [`session_on`] from a conversation's columns.
pub(crate) fn session_for(id: i64, remote_gateway: Option<&str>, remote_session: Option<&str>, gateway: &str) -> String {
    match (remote_gateway, remote_session) {
        (Some(g), Some(key)) if g == gateway => key.to_owned(),
        _ => session_of(id),
    }
}


/// Selects a [`Conversation`] from `conversations c`, for [`conversation_row`].
pub(crate) const CONVERSATION_COLUMNS: &str = "c.id, c.title, c.gateway, c.model,
     (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id AND m.active = 1), c.created_at, c.updated_at,
     c.remote_gateway, c.remote_session, c.pinned, c.branch";

fn conversation_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Conversation> {
    conversation_row_at(r, 0)
}

/// A [`Conversation`] from [`CONVERSATION_COLUMNS`] starting at column `at`.
pub(crate) fn conversation_row_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        id: r.get(at)?,
        title: r.get(at + 1)?,
        gateway: r.get(at + 2)?,
        model: r.get(at + 3)?,
        messages: r.get(at + 4)?,
        created_at: r.get(at + 5)?,
        updated_at: r.get(at + 6)?,
        remote_gateway: r.get(at + 7)?,
        remote_session: r.get(at + 8)?,
        pinned: r.get(at + 9)?,
        branch: r.get(at + 10)?,
    })
}

pub(crate) async fn conversations(store: &Store, limit: i64) -> Result<Vec<Conversation>> {
    store
        .read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations c INDEXED BY conversations_list
                 ORDER BY c.pinned DESC, c.updated_at DESC, c.id DESC LIMIT ?1"
            ))?
            .query_map([limit], conversation_row)?
            .collect()
        })
        .await
}

pub(crate) const MESSAGE_COLUMNS: &str = "id, role, text, state, error_code, error_message, created_at, parent_id";

pub(crate) fn message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Message> {
    let state: String = r.get(3)?;
    let code: Option<String> = r.get(4)?;
    let message: Option<String> = r.get(5)?;
    Ok(Message {
        id: r.get(0)?,
        role: r.get(1)?,
        text: r.get(2)?,
        state: MessageState::parse(&state),
        error: code.map(|code| JobError { code, message: message.unwrap_or_default() }),
        created_at: r.get(6)?,
        parent_id: r.get(7)?,
        tools: Vec::new(),
        versions: Vec::new(),
    })
}

pub(crate) async fn message(store: &Store, id: i64) -> Result<Message> {
    let found = store
        .read(move |c| {
            let Some(mut message) = c
                .prepare_cached(&format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"))?
                .query_row([id], message_row)
                .optional()?
            else {
                return Ok(None);
            };
            message.tools = c
                .prepare_cached(
                    "SELECT call_id, name, summary, status, ran_by, output FROM message_tools WHERE message_id = ?1 ORDER BY seq",
                )?
                .query_map([id], |r| {
                    ToolActivity::from_row(r, 0)
                })?
                .collect::<rusqlite::Result<_>>()?;
            branch::attach_versions(c, std::slice::from_mut(&mut message))?;
            Ok(Some(message))
        })
        .await?;
    found.ok_or(Error::MessageNotFound(id))
}

pub(crate) async fn conversation(store: &Store, id: i64) -> Result<(Conversation, Vec<Message>)> {
    let found = store
        .read(move |c| {
            let conv = c
                .query_row(
                    &format!("SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = ?1"),
                    [id],
                    conversation_row,
                )
                .optional()?;
            let Some(conv) = conv else { return Ok(None) };
            let messages: Vec<Message> = c
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 AND active = 1 ORDER BY id"
                ))?
                .query_map([id], message_row)?
                .collect::<rusqlite::Result<_>>()?;
            let mut messages = messages;
            let mut tools = c.prepare_cached(
                "SELECT t.message_id, t.call_id, t.name, t.summary, t.status, t.ran_by, t.output FROM message_tools t
                 JOIN messages m ON m.id = t.message_id WHERE m.conversation_id = ?1 AND m.active = 1
                 ORDER BY t.message_id, t.seq",
            )?;
            for row in tools.query_map([id], |r| {
                Ok((r.get::<_, i64>(0)?, ToolActivity::from_row(r, 1)?))
            })? {
                let (message_id, tool) = row?;
                if let Some(m) = messages.iter_mut().find(|m| m.id == message_id) {
                    m.tools.push(tool);
                }
            }
            branch::attach_versions(c, &mut messages)?;
            Ok(Some((conv, messages)))
        })
        .await?;
    found.ok_or(Error::ConversationNotFound(id))
}
