//! A server-sent-events decoder that is linear in its input.
//!
//! eventsource-stream 0.2 re-parses the buffered partial line on every chunk, so one long line
//! delivered in k pieces costs O(k × length) — a 10 MB line in 1,024 pieces is 5 GB of
//! scanning. Here each byte is looked at once: a chunk is scanned only from where the previous
//! scan stopped, and complete lines are cut off as they appear.
//!
//! What it accepts (the SSE spec, leniently): LF, CRLF or CR line ends, split anywhere (even
//! inside a UTF-8 character: lines are decoded only once whole); `data:` with or without a
//! space; comments (`:`), `event:`, `id:` and `retry:` lines; several `data:` lines in one event
//! (joined with `\n`). An event is dispatched at a blank line.

/// One dispatched event: its `data` lines joined, and its `event` name if one was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` name, if one was given.
    pub event: Option<String>,
    /// The `data:` lines, joined by newlines.
    pub data: String,
}

#[derive(Default)]
/// A Server-Sent Events decoder that takes bytes in any split and gives whole events: a
/// chunk may end anywhere, even inside a CR LF or a UTF-8 character.
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already known to hold no line end.
    scanned: usize,
    /// The previous chunk ended in CR: a LF at the start of the next one belongs to it.
    after_cr: bool,
    data: Option<String>,
    event: Option<String>,
}

impl Decoder {
    /// A decoder with nothing buffered.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Feed bytes; returns the events they complete.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Vec<Event> {
        if chunk.is_empty() {
            return Vec::new();
        }
        if self.after_cr && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        self.after_cr = false;
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        let mut i = self.scanned;
        while i < self.buf.len() {
            match self.buf[i] {
                b'\n' | b'\r' => {
                    let end = i;
                    if self.buf[i] == b'\r' {
                        if i + 1 < self.buf.len() {
                            if self.buf[i + 1] == b'\n' {
                                i += 1;
                            }
                        } else {
                            self.after_cr = true;
                        }
                    }
                    let line = String::from_utf8_lossy(&self.buf[start..end]).into_owned();
                    if let Some(event) = self.line(&line) {
                        events.push(event);
                    }
                    i += 1;
                    start = i;
                }
                _ => i += 1,
            }
        }
        self.buf.drain(..start);
        self.scanned = self.buf.len();
        events
    }

    /// Bytes of an unfinished line (the stream ended without a line end).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let data = self.data.take()?;
            return Some(Event { event: self.event.take(), data });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
            _ => {} // id, retry and unknown fields mean nothing to a chat stream
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_at_once(input: &[u8]) -> Vec<Event> {
        Decoder::new().feed(input)
    }

    fn data(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    const STREAM: &str = ": keep-alive\r\nevent: message\r\nid: 7\r\ndata: {\"a\":\"é€😀\"}\r\n\r\ndata:[DONE]\n\n";

    #[test]
    fn every_split_point_gives_the_same_events() {
        let whole = all_at_once(STREAM.as_bytes());
        assert_eq!(data(&whole), ["{\"a\":\"é€😀\"}", "[DONE]"]);
        assert_eq!(whole[0].event.as_deref(), Some("message"));
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            let mut d = Decoder::new();
            let mut events = d.feed(&bytes[..cut]);
            events.extend(d.feed(&bytes[cut..]));
            assert_eq!(events, whole, "split at byte {cut}");
        }
        // And byte by byte.
        let mut d = Decoder::new();
        let events: Vec<Event> = bytes.iter().flat_map(|b| d.feed(std::slice::from_ref(b))).collect();
        assert_eq!(events, whole);
    }

    #[test]
    fn cr_only_line_ends_and_multi_line_data() {
        let events = all_at_once(b"data: one\rdata: two\r\rdata: three\n\n");
        assert_eq!(data(&events), ["one\ntwo", "three"]);
    }

    #[test]
    fn a_line_without_its_blank_line_is_not_an_event() {
        let mut d = Decoder::new();
        assert!(d.feed(b"data: partial").is_empty());
        assert_eq!(d.pending(), "data: partial".len());
    }

    use proptest::strategy::Strategy;

    proptest::proptest! {
        // Bounded so CI stays quick; `PROPTEST_CASES=100000 cargo test sse` for a long run.
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

        /// Any stream — SSE lines with every kind of line end, mixed with arbitrary bytes —
        /// cut into any pieces, decodes as the whole does, and nothing panics.
        #[test]
        fn any_split_of_any_stream_decodes_as_the_whole(
            parts in proptest::collection::vec(
                (
                    proptest::prop_oneof![
                        proptest::sample::select(vec!["data: a", "data:b", "data: \u{20ac}\u{1f600}", "event: e", ": c", "id: 1", "retry: 5", ""])
                            .prop_map(|t| t.as_bytes().to_vec()),
                        proptest::collection::vec(proptest::num::u8::ANY, 0..6),
                    ],
                    proptest::sample::select(vec!["\n", "\r", "\r\n"]),
                ),
                0..40,
            ),
            cuts in proptest::collection::vec(0usize..400, 0..12),
        ) {
            let bytes: Vec<u8> = parts.iter().flat_map(|(t, end)| t.iter().chain(end.as_bytes()).copied()).collect();
            let whole = all_at_once(&bytes);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort();
            let mut d = Decoder::new();
            let (mut events, mut from) = (Vec::new(), 0);
            for cut in cuts.into_iter().chain([bytes.len()]) {
                events.extend(d.feed(&bytes[from..cut]));
                from = cut;
            }
            proptest::prop_assert_eq!(events, whole);
        }
    }
}
