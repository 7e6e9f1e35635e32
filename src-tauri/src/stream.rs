//! A reply's text to the webview: one `tauri::ipc::Channel` per reply, fed from the engine's
//! [`ReplyWatch`] (the same feed whether the reply streams in this process, in the CLI, or
//! settled long ago).
//!
//! Why coalesce: a model can emit a token every millisecond, and each IPC message costs the
//! webview a JSON parse and a DOM update. Tokens that arrive within one frame (~16 ms) go in one
//! message, so the webview does at most one update per frame; each message's text is at most
//! [`MAX_TEXT`] bytes, so no single update is large (a long backlog drains over a few frames).
//! Nothing is lost or repeated: every message carries the byte offset its text starts at, and
//! the text comes in order.

use std::collections::VecDeque;
use std::time::Duration;

use gatehouse_engine::{ReplyFeed, ReplyWatch};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// At most one message per this long: one display frame at 60 Hz.
pub const FRAME: Duration = Duration::from_millis(16);

/// The most text one message carries, in bytes (well under the 8 KiB a message may take).
pub const MAX_TEXT: usize = 4096;

/// Follow `watch` and hand its events to `send`, coalesced: text before byte `from` is
/// skipped (the webview has it already, from the stored message), text that arrives within a
/// frame is merged, and `send` is called at most once per `frame` with at most `max` bytes of
/// text. Ends after the reply settles, or when `send` returns false (the window went away).
pub async fn pump(watch: ReplyWatch, from: usize, frame: Duration, max: usize, send: impl FnMut(ReplyFeed) -> bool) {
    // The watch reads the store when the reply streams in another process; reading it in its
    // own task keeps that read from being dropped half-way when a frame's deadline comes.
    // Bounded: the reader waits for this side rather than queueing a whole reply.
    let (tx, rx) = mpsc::channel(256);
    let reader = tokio::spawn(async move {
        let mut watch = watch;
        while let Some(event) = watch.next().await {
            if tx.send(event).await.is_err() {
                break;
            }
        }
    });
    coalesce(rx, from, frame, max, send).await;
    reader.abort();
}

/// [`pump`]'s timing, on any source of events.
async fn coalesce(mut rx: mpsc::Receiver<ReplyFeed>, from: usize, frame: Duration, max: usize, mut send: impl FnMut(ReplyFeed) -> bool) {
    let mut pending = Pending { queue: VecDeque::new(), from };
    let mut ended = false;
    let mut next_send = Instant::now();
    loop {
        if pending.queue.is_empty() {
            if ended {
                break;
            }
            match rx.recv().await {
                Some(event) => pending.push(event),
                None => break,
            }
        }
        // Gather what else arrives before this frame's message may go.
        while !ended {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(event) => pending.push(event),
                    None => ended = true,
                },
                _ = tokio::time::sleep_until(next_send) => break,
            }
        }
        if ended {
            // Nothing more will come: still no faster than a frame apart.
            tokio::time::sleep_until(next_send).await;
        }
        let Some(message) = pending.take(max) else { continue };
        if !send(message) {
            break;
        }
        next_send = Instant::now() + frame;
    }
}

/// Events waiting for their frame.
struct Pending {
    queue: VecDeque<ReplyFeed>,
    /// The end of the text accepted so far, in bytes.
    from: usize,
}

impl Pending {
    fn push(&mut self, event: ReplyFeed) {
        let ReplyFeed::Text { offset, text } = event else {
            self.queue.push_back(event);
            return;
        };
        // Text the webview has (or that was queued already) is skipped; the watch never
        // leaves a gap, so what remains starts where the accepted text ends.
        let end = offset + text.len();
        if end <= self.from {
            return;
        }
        let skip = self.from.saturating_sub(offset);
        let Some(text) = text.get(skip..) else { return };
        let offset = offset + skip;
        self.from = end;
        if let Some(ReplyFeed::Text { offset: o, text: t }) = self.queue.back_mut() {
            if *o + t.len() == offset {
                t.push_str(text);
                return;
            }
        }
        self.queue.push_back(ReplyFeed::Text { offset, text: text.to_owned() });
    }

    /// The next message: the first event, its text cut at `max` bytes (on a character
    /// boundary) with the rest left for the next frame.
    fn take(&mut self, max: usize) -> Option<ReplyFeed> {
        let event = self.queue.pop_front()?;
        let ReplyFeed::Text { offset, mut text } = event else { return Some(event) };
        if text.len() > max {
            let mut cut = max;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let rest = text.split_off(cut);
            self.queue.push_front(ReplyFeed::Text { offset: offset + cut, text: rest });
        }
        Some(ReplyFeed::Text { offset, text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_engine::MessageState;

    fn text(offset: usize, s: &str) -> ReplyFeed {
        ReplyFeed::Text { offset, text: s.into() }
    }

    /// Feeds `events` through a `Pending` the way `pump` does, one frame apart.
    fn drain(from: usize, events: Vec<ReplyFeed>, max: usize) -> Vec<ReplyFeed> {
        let mut p = Pending { queue: VecDeque::new(), from };
        events.into_iter().for_each(|e| p.push(e));
        std::iter::from_fn(|| p.take(max)).collect()
    }

    #[test]
    fn text_within_a_frame_goes_as_one_message_and_a_long_one_in_pieces_on_character_boundaries() {
        let out = drain(0, vec![text(0, "Hé"), text(3, "llo"), text(6, " wörld")], 5);
        let pieces: Vec<_> = out
            .iter()
            .map(|e| match e {
                ReplyFeed::Text { offset, text } => (*offset, text.as_str()),
                _ => panic!("only text was fed"),
            })
            .collect();
        // "Héllo wörld" is 13 bytes; no piece over 5, none split inside é or ö.
        assert_eq!(pieces, [(0, "Héll"), (5, "o wö"), (10, "rld")]);
    }

    #[test]
    fn text_the_webview_has_or_that_came_twice_is_skipped_and_the_rest_kept_in_order() {
        let settled = ReplyFeed::Settled { state: MessageState::Complete, error: None };
        let out = drain(4, vec![text(0, "abcdef"), text(2, "cdefgh"), text(8, "ij"), settled.clone()], 100);
        assert_eq!(out, [text(4, "efghij"), settled]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_stream_reaches_the_window_whole_in_order_at_most_once_a_frame() {
        // 2,000 deltas, one every 0.5 ms (2,000 tokens/s), then the end.
        let (tx, rx) = mpsc::channel(8);
        let expected: String = (0..2000).map(|i| format!("w{i} ")).collect();
        let producer = tokio::spawn(async move {
            let mut offset = 0;
            for i in 0..2000 {
                let t = format!("w{i} ");
                let n = t.len();
                tx.send(ReplyFeed::Text { offset, text: t }).await.unwrap();
                offset += n;
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            tx.send(ReplyFeed::Settled { state: MessageState::Complete, error: None }).await.unwrap();
        });
        let mut got = Vec::new();
        let started = Instant::now();
        coalesce(rx, 0, FRAME, MAX_TEXT, |m| {
            got.push((Instant::now(), m));
            true
        })
        .await;
        producer.await.unwrap();
        let (mut whole, mut last) = (String::new(), None::<Instant>);
        for (i, (at, m)) in got.iter().enumerate() {
            if let Some(last) = last {
                assert!(*at - last >= FRAME, "message {i} came {:?} after the one before", *at - last);
            }
            last = Some(*at);
            match m {
                ReplyFeed::Text { offset, text } => {
                    assert_eq!(*offset, whole.len(), "message {i} does not start where the text so far ends");
                    assert!(text.len() <= MAX_TEXT);
                    whole.push_str(text);
                }
                ReplyFeed::Settled { .. } => assert_eq!(i, got.len() - 1, "the end is the last message"),
                ReplyFeed::Tool { .. } => panic!("no tool was fed"),
            }
        }
        assert_eq!(whole, expected);
        // One message per frame at most, not one per delta.
        let frames = (Instant::now() - started).as_millis() / FRAME.as_millis() + 1;
        assert!(got.len() as u128 <= frames, "{} messages in {frames} frames", got.len());
        assert!(got.len() < 2000 / 5, "{} messages for 2,000 deltas", got.len());
    }
}
