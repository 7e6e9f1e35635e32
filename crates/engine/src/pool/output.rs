//! A running job's output: streamed to subscribers at once, stored in batches.
//!
//! Each attempt gets a flusher task. Lines are broadcast as they arrive and written to the store
//! every [`FLUSH_EVERY`] or [`FLUSH_LINES`], whichever comes first, so a chatty command costs a
//! few transactions a second rather than one per line. The channel into the flusher is bounded:
//! a command that writes faster than the disk takes it is slowed down (its pipe fills), never
//! buffered without limit.
//!
//! A write that fails (the database restarting, a shared one out of reach) keeps its lines for
//! the next try, every [`RETRY_EVERY`], up to [`HOLD`] lines (the newest are kept, as the
//! store's own cap keeps a tail); the last flush, when the job's command has ended, tries for
//! up to [`LAST_TRIES`] × [`RETRY_EVERY`] before the lines are given up.

use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::job::{JobEvent, Stream};
use super::ops::append_output::AppendOutput;
use crate::clock::SharedClock;

const FLUSH_EVERY: Duration = Duration::from_millis(50);
const FLUSH_LINES: usize = 256;
/// Lines in flight between a job and its flusher: two flushes' worth.
const CHANNEL: usize = 2 * FLUSH_LINES;
/// How often a failed write is tried again.
pub(crate) const RETRY_EVERY: Duration = Duration::from_millis(250);
/// Lines kept while writes fail: 16 flushes' worth, a few hundred KiB for typical lines.
const HOLD: usize = 16 * FLUSH_LINES;
/// Tries of the last flush: 10 s, longer than a database's restart takes.
const LAST_TRIES: u32 = 40;

pub(crate) enum Item {
    Line(Stream, String),
    Progress(f64),
}

#[derive(Clone)]
pub(crate) struct OutputSink {
    tx: mpsc::Sender<Item>,
}

impl OutputSink {
    /// A sink whose lines the caller reads itself (a command run now, not as a job).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // used by exec, which runs on Linux only
    pub(crate) fn channel() -> (OutputSink, mpsc::Receiver<Item>) {
        let (tx, rx) = mpsc::channel(CHANNEL);
        (OutputSink { tx }, rx)
    }

    pub(crate) async fn line(&self, stream: Stream, text: String) {
        let _ = self.tx.send(Item::Line(stream, text)).await;
    }

    pub(crate) async fn progress(&self, percent: f64) {
        let _ = self.tx.send(Item::Progress(percent.clamp(0.0, 100.0))).await;
    }
}

pub(crate) struct Flusher {
    pub id: i64,
    pub attempt: i64,
    pub cap_bytes: i64,
    pub queue: super::queue::Queue,
    /// The claim's lease epoch: the shared store stores output only while it holds.
    pub epoch: i64,
    /// The attempt's slot, stopped when the store refuses its output (the job was rescued and
    /// runs elsewhere now).
    pub lost: super::Slot,
    pub events: broadcast::Sender<JobEvent>,
    pub clock: SharedClock,
}

impl Flusher {
    /// Start the flusher; it ends (after a last flush) when every sink clone is dropped.
    pub(crate) fn start(self) -> (OutputSink, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(CHANNEL);
        (OutputSink { tx }, tokio::spawn(self.run(rx)))
    }

    async fn run(self, mut rx: mpsc::Receiver<Item>) {
        let me = self;
        let mut op = me.empty();
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let item = match deadline {
                Some(at) => tokio::select! {
                    item = rx.recv() => item,
                    _ = tokio::time::sleep_until(at) => {
                        deadline = me.flush(&mut op).await;
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            let Some(item) = item else { break };
            match item {
                Item::Line(stream, text) => {
                    let _ = me.events.send(JobEvent::Output {
                        id: me.id,
                        attempt: me.attempt,
                        stream,
                        text: text.clone(),
                    });
                    op.lines.push((stream, me.clock.now(), text));
                }
                Item::Progress(percent) => {
                    let _ = me.events.send(JobEvent::Progress { id: me.id, percent });
                    op.progress = Some(percent);
                }
            }
            // While writes fail (a retry is due) lines only gather; the retry takes them all.
            let retrying = deadline.is_some() && op.lines.len() > FLUSH_LINES;
            if op.lines.len() >= FLUSH_LINES && !retrying {
                deadline = me.flush(&mut op).await;
            } else if deadline.is_none() {
                deadline = Some(tokio::time::Instant::now() + FLUSH_EVERY);
            }
        }
        for _ in 0..LAST_TRIES {
            if me.flush(&mut op).await.is_none() {
                return;
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
        tracing::warn!(job = me.id, lines = op.lines.len(), "could not store the job's last output; given up");
    }

    fn empty(&self) -> AppendOutput {
        AppendOutput { id: self.id, attempt: self.attempt, cap_bytes: self.cap_bytes, lines: Vec::new(), progress: None }
    }

    /// Write what `op` holds. Returns when to try again if the write failed (`op` keeps the
    /// lines, at most [`HOLD`]), `None` when there is nothing left to write.
    async fn flush(&self, op: &mut AppendOutput) -> Option<tokio::time::Instant> {
        if op.lines.is_empty() && op.progress.is_none() {
            return None;
        }
        match self.queue.append(op, self.epoch).await {
            Ok(true) => None,
            Ok(false) => {
                tracing::warn!(job = self.id, "the job's lease is gone (it was rescued and runs elsewhere); stopping it here");
                self.lost.stop(super::StopReason::LeaseLost);
                None
            }
            Err(e) => {
                let excess = op.lines.len().saturating_sub(HOLD);
                op.lines.drain(..excess);
                tracing::warn!(job = self.id, error = %e, held = op.lines.len(), dropped = excess, "could not store job output; trying again");
                Some(tokio::time::Instant::now() + RETRY_EVERY)
            }
        }
    }
}
