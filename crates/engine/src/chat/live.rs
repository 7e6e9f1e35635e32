//! Following a reply ([`crate::Engine::watch_reply`]): the text so far, then every delta, with
//! its byte offset in the message — from any window, and for a reply another process writes.
//!
//! A turn running in this process keeps its text in memory (`LiveReply`) next to a broadcast
//! of what it adds. A follower takes the text so far and subscribes under the same lock, so no
//! delta falls between the two; one that falls behind the broadcast catches up from the text
//! (one delta from its offset), so nothing is lost or repeated and nobody waits for a slow
//! reader. A reply written by another process is followed in the store: when the database feed
//! says something changed, the bytes past the offset are read (the writer stores deltas in
//! batches of 50 ms or 1 KiB, so remote deltas come in those batches).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rusqlite::OptionalExtension;
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::{MessageState, ToolActivity};
use crate::error::{Error, JobError, Result};
use crate::store::Store;

/// Live events held per follower before it catches up from the text instead.
const BUFFER: usize = 1024;

/// What a follower of a reply sees.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum ReplyFeed {
    /// `text` goes at byte `offset` of the reply. The first event carries the text so far
    /// (offset 0); each next one starts where the last ended.
    Text {
        /// Where `text` goes in the reply, in bytes.
        offset: usize,
        /// Reply text from `offset` on (UTF-8, never split inside a character).
        text: String,
    },
    /// A tool ran during the reply (the text goes on after it).
    Tool {
        /// What ran, and how it ended.
        tool: ToolActivity,
    },
    /// The reply is stored in its final state; nothing follows.
    Settled {
        /// Complete, interrupted or failed.
        state: MessageState,
        /// Why it is not complete, when it is not.
        error: Option<JobError>,
    },
}

/// A reply being streamed by this process.
pub(crate) struct LiveReply {
    text: Mutex<Live>,
    tx: broadcast::Sender<ReplyFeed>,
    /// Stops the turn ([`crate::Engine::stop_reply`]).
    pub cancel: CancellationToken,
    /// Fired once the reply has settled.
    pub ended: CancellationToken,
}

struct Live {
    text: String,
    tools: Vec<ToolActivity>,
    settled: Option<(MessageState, Option<JobError>)>,
}

/// Replies streaming in this process, by message id.
#[derive(Clone, Default)]
pub(crate) struct Replies(Arc<Mutex<HashMap<i64, Arc<LiveReply>>>>);

impl Replies {
    /// A reply starts streaming, after `text` (a continued reply's text so far).
    pub(crate) fn start(&self, message_id: i64, text: String, cancel: CancellationToken) -> Arc<LiveReply> {
        let live = Arc::new(LiveReply {
            text: Mutex::new(Live { text, tools: Vec::new(), settled: None }),
            tx: broadcast::channel(BUFFER).0,
            cancel,
            ended: CancellationToken::new(),
        });
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(message_id, live.clone());
        live
    }

    pub(crate) fn get(&self, message_id: i64) -> Option<Arc<LiveReply>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(&message_id).cloned()
    }

    /// Forget a reply once its end is stored: later followers read the store.
    pub(crate) fn end(&self, message_id: i64) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&message_id);
    }
}

impl LiveReply {
    /// Add text; returns its offset.
    pub(crate) fn push(&self, text: &str) -> usize {
        let mut live = self.text.lock().unwrap_or_else(|e| e.into_inner());
        let offset = live.text.len();
        live.text.push_str(text);
        let _ = self.tx.send(ReplyFeed::Text { offset, text: text.to_owned() });
        offset
    }

    /// A tool call started or ended: a later activity of the same call replaces the earlier.
    pub(crate) fn tool(&self, tool: ToolActivity) {
        let mut live = self.text.lock().unwrap_or_else(|e| e.into_inner());
        match live.tools.iter_mut().find(|t| t.call_id == tool.call_id) {
            Some(was) => *was = tool.clone(),
            None => live.tools.push(tool.clone()),
        }
        let _ = self.tx.send(ReplyFeed::Tool { tool });
    }

    pub(crate) fn settle(&self, state: MessageState, error: Option<JobError>) {
        let mut live = self.text.lock().unwrap_or_else(|e| e.into_inner());
        live.settled = Some((state, error.clone()));
        let _ = self.tx.send(ReplyFeed::Settled { state, error });
        self.ended.cancel();
    }
}

/// A follower of one reply ([`crate::Engine::watch_reply`]).
pub struct ReplyWatch {
    queued: std::collections::VecDeque<ReplyFeed>,
    /// Bytes of the reply told so far.
    offset: usize,
    done: bool,
    source: Source,
}

enum Source {
    Live { live: Arc<LiveReply>, rx: broadcast::Receiver<ReplyFeed> },
    Stored { store: Store, id: i64, changes: watch::Receiver<u64> },
}

impl ReplyWatch {
    /// Follow the reply streaming in this process.
    pub(crate) fn live(live: Arc<LiveReply>) -> ReplyWatch {
        let state = live.text.lock().unwrap_or_else(|e| e.into_inner());
        let rx = live.tx.subscribe();
        let mut queued = std::collections::VecDeque::new();
        if !state.text.is_empty() {
            queued.push_back(ReplyFeed::Text { offset: 0, text: state.text.clone() });
        }
        queued.extend(state.tools.iter().map(|tool| ReplyFeed::Tool { tool: tool.clone() }));
        let settled = state.settled.clone();
        drop(state);
        // The offset counts what has been handed out: the queued text is counted as it goes.
        let mut watch = ReplyWatch { queued, offset: 0, done: false, source: Source::Live { live, rx } };
        if let Some((state, error)) = settled {
            watch.queued.push_back(ReplyFeed::Settled { state, error });
            watch.done = true;
        }
        watch
    }

    /// Follow a reply in the store (written by another process, or already settled).
    pub(crate) async fn stored(store: Store, id: i64, changes: watch::Receiver<u64>) -> Result<ReplyWatch> {
        let mut watch = ReplyWatch {
            queued: Default::default(),
            offset: 0,
            done: false,
            source: Source::Stored { store: store.clone(), id, changes },
        };
        if !watch.read_stored().await? {
            return Err(Error::MessageNotFound(id));
        }
        Ok(watch)
    }

    /// The next event; `None` after [`ReplyFeed::Settled`] (or if the message was deleted).
    pub async fn next(&mut self) -> Option<ReplyFeed> {
        loop {
            if let Some(event) = self.queued.pop_front() {
                if let ReplyFeed::Text { text, .. } = &event {
                    self.offset += text.len();
                }
                return Some(event);
            }
            if self.done {
                return None;
            }
            match &mut self.source {
                Source::Live { live, rx } => match rx.recv().await {
                    Ok(ReplyFeed::Text { offset, text }) => {
                        // Told already (in the text so far, or in a catch-up).
                        let end = offset + text.len();
                        if end <= self.offset {
                            continue;
                        }
                        let skip = self.offset.saturating_sub(offset);
                        self.queued.push_back(ReplyFeed::Text { offset: self.offset, text: text[skip..].to_owned() });
                    }
                    Ok(event @ ReplyFeed::Tool { .. }) => self.queued.push_back(event),
                    Ok(event @ ReplyFeed::Settled { .. }) => {
                        self.done = true;
                        self.queued.push_back(event);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Behind: the rest of the text from where we are, in one piece.
                        let state = live.text.lock().unwrap_or_else(|e| e.into_inner());
                        if state.text.len() > self.offset {
                            let text = state.text[self.offset..].to_owned();
                            self.queued.push_back(ReplyFeed::Text { offset: self.offset, text });
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => self.done = true,
                },
                Source::Stored { changes, .. } => {
                    if changes.changed().await.is_err() {
                        // The engine is closing.
                        self.done = true;
                        continue;
                    }
                    match self.read_stored().await {
                        Ok(true) => {}
                        Ok(false) | Err(_) => self.done = true,
                    }
                }
            }
        }
    }

    /// Queue what the store has past our offset; false if the message does not exist.
    async fn read_stored(&mut self) -> Result<bool> {
        let Source::Stored { store, id, .. } = &self.source else { return Ok(true) };
        let (id, from) = (*id, self.offset + self.queued_bytes());
        let row = store
            .read(move |c| {
                c.prepare_cached(
                    "SELECT state, substr(CAST(text AS BLOB), ?2 + 1), error_code, error_message FROM messages WHERE id = ?1",
                )?
                .query_row(rusqlite::params![id, from as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<Vec<u8>>>(1)?, r.get::<_, Option<String>>(2)?, r.get::<_, Option<String>>(3)?))
                })
                .optional()
            })
            .await?;
        let Some((state, tail, code, message)) = row else { return Ok(false) };
        let tail = String::from_utf8_lossy(&tail.unwrap_or_default()).into_owned();
        if !tail.is_empty() {
            self.queued.push_back(ReplyFeed::Text { offset: from, text: tail });
        }
        let state = MessageState::parse(&state);
        if state != MessageState::Streaming {
            let error = code.map(|code| JobError { code, message: message.unwrap_or_default() });
            self.queued.push_back(ReplyFeed::Settled { state, error });
            self.done = true;
        }
        Ok(true)
    }

    fn queued_bytes(&self) -> usize {
        self.queued.iter().map(|e| if let ReplyFeed::Text { text, .. } = e { text.len() } else { 0 }).sum()
    }
}
