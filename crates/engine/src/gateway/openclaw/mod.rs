//! The `openclaw` gateway: OpenClaw's own WebSocket protocol (v4), with resume.
//!
//! Layout: `device` is this installation's signed identity; `link` one authenticated
//! connection (handshake, request/response by id, events, dead-link detection); this file the
//! [`Gateway`] — a reply is one `chat.send` run, followed by its `chat` events.
//!
//! Why replies survive a cut: the run lives on the gateway, not on the socket. Every `chat`
//! delta carries the whole text so far, and after a reconnect `chat.history`'s `inFlightRun`
//! has the text made while no socket was open. The client therefore keeps what it has already
//! passed on and only ever sends the part beyond it — never the same text twice, and nothing
//! skipped. `chat.send` carries an idempotency key, so a request re-sent after a cut cannot
//! start a second run.

pub(crate) mod device;
pub(crate) mod link;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ChatEvent, ChatRequest, ChatStream, Gateway, Role};
use crate::error::{Error, Result};
use device::Device;
use link::{Ended, Link, Target};

/// Reconnect attempts for one reply after its connection is lost, with [`backoff`]: ~55 s in
/// all, several times what a gateway restart takes here (13–20 s).
const RECONNECTS: u32 = 18;

/// How to reach an OpenClaw gateway.
pub struct OpenClawConfig {
    /// Profile name, for messages.
    pub name: String,
    /// `ws://` or `wss://` with host and port, e.g. `ws://127.0.0.1:18789`.
    pub url: String,
    /// The gateway's token; `None`: the device token it handed this installation earlier.
    pub token: Option<String>,
    /// Where the device key and device tokens are kept.
    pub data_dir: PathBuf,
}

/// An OpenClaw gateway: one connection shared by every reply, history load and check.
pub struct OpenClaw {
    target: Target,
    data_dir: PathBuf,
    /// One connection for every reply, history load and check through this gateway (events
    /// are filtered by run, so replies share it); made again when it ends. A lock, not a
    /// cell: replies that lose it together reconnect once, not once each.
    link: tokio::sync::Mutex<Option<Arc<Link>>>,
}

impl OpenClaw {
    /// Check the URL; nothing is sent yet (the connection is made on first use).
    pub fn new(config: OpenClawConfig) -> Result<OpenClaw> {
        let url = config.url.trim_end_matches('/').to_owned();
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(Error::GatewayInvalid(format!(
                "`{url}` is not an OpenClaw gateway URL; it starts with ws:// or wss://, e.g. ws://127.0.0.1:18789"
            )));
        }
        Ok(OpenClaw {
            target: Target { gateway: config.name, url, token: config.token },
            data_dir: config.data_dir,
            link: tokio::sync::Mutex::new(None),
        })
    }

    /// The open connection, or a new one if there is none or it has ended.
    async fn connect(&self, device: &Device) -> Result<Arc<Link>> {
        let mut slot = self.link.lock().await;
        if let Some(link) = slot.as_ref().filter(|l| !l.closed().is_cancelled()) {
            return Ok(link.clone());
        }
        let link = Link::connect(&self.target, device).await?;
        *slot = Some(link.clone());
        Ok(link)
    }
}

impl Drop for OpenClaw {
    fn drop(&mut self) {
        if let Some(link) = self.link.get_mut().take() {
            link.close();
        }
    }
}

/// The text of a chat message: its text parts, joined.
fn message_text(message: &Value) -> Option<String> {
    match &message["content"] {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts.iter().filter(|p| p["type"] == "text").filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(""),
        ),
        _ => None,
    }
}

/// Passes on only text beyond what was already passed on.
struct Forward {
    sent: String,
    tx: mpsc::Sender<Result<ChatEvent>>,
}

/// What is new in `so_far` (the gateway's whole text so far) after `sent`: `None` when
/// nothing is, or when the gateway rewrote earlier text (`replace`) — what was shown stands.
fn new_text<'a>(sent: &str, so_far: &'a str) -> Option<&'a str> {
    so_far.strip_prefix(sent).filter(|new| !new.is_empty())
}

impl Forward {
    async fn text_so_far(&mut self, text: &str) {
        match new_text(&self.sent, text) {
            Some(new) => {
                let new = new.to_owned();
                self.sent.push_str(&new);
                let _ = self.tx.send(Ok(ChatEvent::Delta { text: new })).await;
            }
            None if !text.starts_with(self.sent.as_str()) => {
                tracing::debug!("openclaw replaced text already shown; keeping what was shown")
            }
            None => {}
        }
    }

    async fn send(&self, item: Result<ChatEvent>) {
        let _ = self.tx.send(item).await;
    }
}

/// What an event of a run says, as the reply acts on it.
#[derive(Debug, PartialEq)]
enum Said {
    /// The whole text so far.
    TextSoFar(String),
    Final { text: Option<String>, finish_reason: Option<String> },
    Aborted,
    Failed(String),
    /// A tool the gateway's agent ran itself.
    Tool(ChatEvent),
    Nothing,
}

/// Read one event of a run. Anything it does not know is [`Said::Nothing`]: a newer gateway
/// may send more than we understand.
fn said(event: &str, p: &Value) -> Said {
    match (event, p["state"].as_str()) {
        ("chat", Some("delta")) => message_text(&p["message"]).map_or(Said::Nothing, Said::TextSoFar),
        ("chat", Some("final")) => {
            Said::Final { text: message_text(&p["message"]), finish_reason: p["stopReason"].as_str().map(str::to_owned) }
        }
        ("chat", Some("aborted")) => Said::Aborted,
        ("chat", Some("error")) => {
            Said::Failed(p["errorMessage"].as_str().or(p["error"]["message"].as_str()).unwrap_or("the run failed").to_owned())
        }
        // Tools the gateway's agent runs itself (we asked for them with caps
        // ["tool-events"]): an `item` of kind `tool` at its start and at its end.
        ("agent", _) if p["stream"] == "item" && p["data"]["kind"] == "tool" => {
            let d = &p["data"];
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            Said::Tool(ChatEvent::ToolActivity {
                call_id: text(&d["toolCallId"]),
                name: text(&d["name"]),
                title: d["title"].as_str().map(str::to_owned).unwrap_or_else(|| text(&d["name"])),
                status: d["status"].as_str().unwrap_or(if d["phase"] == "end" { "completed" } else { "running" }).to_owned(),
            })
        }
        _ => Said::Nothing,
    }
}

enum Step {
    /// The reply ended (or failed); stop.
    End,
    /// The connection ended; reconnect and resume.
    Lost(Ended),
}

impl OpenClaw {
    async fn run(self: Arc<Self>, request: ChatRequest, cancel: CancellationToken, tx: mpsc::Sender<Result<ChatEvent>>) {
        let mut out = Forward { sent: String::new(), tx };
        let Some(last) = request.messages.iter().rposition(|m| m.role == Role::User) else {
            out.send(Err(Error::GatewayInvalid("there is no message to send".into()))).await;
            return;
        };
        let device = match Device::load_or_create(&self.data_dir) {
            Ok(d) => d,
            Err(e) => return out.send(Err(e)).await,
        };
        let session = session_key(request.session.as_deref(), &device);
        let key = random_key();
        let mut started = false;
        let mut attempt = 0u32;
        loop {
            let link = match self.connect(&device).await {
                Ok(l) => l,
                // Unreachable after a cut (or while resending one): keep trying for a while.
                Err(e) if attempt > 0 && attempt < RECONNECTS && matches!(e, Error::GatewayUnreachable { .. }) => {
                    attempt += 1;
                    if sleep_or_cancel(backoff(attempt), &cancel).await {
                        return;
                    }
                    continue;
                }
                Err(e) => return out.send(Err(e)).await,
            };
            let mut events = link.subscribe();
            if !started {
                let message = match request.fresh_session {
                    // Half the frame limit: JSON escapes and the frame around it take their share.
                    true => opening(&request.messages[..last], &request.messages[last].content, link.max_payload() / 2),
                    false => request.messages[last].content.clone(),
                };
                let params = json!({ "sessionKey": session, "message": message, "idempotencyKey": key });
                match link.request("chat.send", params).await {
                    // "started", or "in_flight"/"ok" when this is a re-send: the same key never
                    // starts a second run.
                    Ok(answer) if answer["status"] == "ok" => {
                        let _ = self.resume(&link, &session, &key, &mut out).await;
                        return;
                    }
                    Ok(_) => started = true,
                    // Cut before the answer came: send again, with the same key.
                    Err(Error::GatewayUnreachable { .. } | Error::GatewayShuttingDown { .. }) if attempt < RECONNECTS => {
                        attempt += 1;
                        if sleep_or_cancel(backoff(attempt), &cancel).await {
                            return;
                        }
                        continue;
                    }
                    Err(e) => return out.send(Err(e)).await,
                }
            } else {
                match self.resume(&link, &session, &key, &mut out).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(_) if attempt < RECONNECTS => {
                        attempt += 1;
                        continue;
                    }
                    Err(e) => return out.send(Err(e)).await,
                }
            }
            match self.follow(&link, &mut events, &key, &session, &cancel, &mut out).await {
                Step::End => return,
                Step::Lost(ended) => {
                    tracing::info!(gateway = %self.target.gateway, ?ended, "connection lost mid-reply; resuming");
                    // Resending the same frame would be dropped again; a gateway that is
                    // stopping for good will not be back to finish the run: say so now (the
                    // text so far is kept) rather than retry for a minute.
                    if matches!(ended, Ended::TooLarge | Ended::Shutdown { restarting: false }) {
                        return out.send(Err(link.lost_error(&ended))).await;
                    }
                    attempt += 1;
                    if attempt > RECONNECTS || sleep_or_cancel(backoff(attempt), &cancel).await {
                        return out.send(Err(Error::GatewayRunLost { gateway: self.target.gateway.clone() })).await;
                    }
                }
            }
        }
    }

    /// After a reconnect: catch up from `chat.history`. `Ok(true)`: the run is still going,
    /// follow its live events; `Ok(false)`: it ended while we were away (reported).
    async fn resume(&self, link: &Link, session: &str, key: &str, out: &mut Forward) -> Result<bool> {
        let history = link.request("chat.history", json!({ "sessionKey": session, "limit": 20 })).await?;
        let in_flight = &history["inFlightRun"];
        if in_flight["runId"] == key {
            if let Some(text) = in_flight["text"].as_str() {
                out.text_so_far(text).await;
            }
            return Ok(true);
        }
        // Not running any more: its reply, if it finished, follows our message in the history.
        let messages = history["messages"].as_array().cloned().unwrap_or_default();
        let ours = messages.iter().position(|m| m["idempotencyKey"].as_str().is_some_and(|k| k.starts_with(key)) && m["role"] == "user");
        let reply = ours.and_then(|i| messages[i + 1..].iter().find(|m| m["role"] == "assistant"));
        match reply.and_then(message_text) {
            Some(text) => {
                out.text_so_far(&text).await;
                out.send(Ok(ChatEvent::Done { finish_reason: Some("stop".into()) })).await;
            }
            // The gateway lost the run (it restarted): the text shown so far is all there is.
            None => out.send(Err(Error::GatewayRunLost { gateway: self.target.gateway.clone() })).await,
        }
        Ok(false)
    }

    /// Pass on this run's events until it ends or the connection does.
    async fn follow(
        &self,
        link: &Link,
        events: &mut tokio::sync::broadcast::Receiver<link::Event>,
        key: &str,
        session: &str,
        cancel: &CancellationToken,
        out: &mut Forward,
    ) -> Step {
        let closed = link.closed();
        loop {
            let event = tokio::select! {
                e = events.recv() => e,
                _ = closed.cancelled() => {
                    // Events that arrived before the close are still queued: drain them first.
                    match events.try_recv() {
                        Ok(e) => Ok(e),
                        Err(_) => return Step::Lost(link.ended().unwrap_or(Ended::Lost("closed".into()))),
                    }
                }
                _ = cancel.cancelled() => {
                    // Stop the run on the gateway too; the stream has already ended for the caller.
                    let _ = tokio::time::timeout(Duration::from_secs(5),
                        link.request("chat.abort", json!({ "sessionKey": session, "runId": key }))).await;
                    return Step::End;
                }
            };
            let event = match event {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue, // the next delta has the whole text
                Err(_) => return Step::Lost(Ended::Lost("closed".into())),
            };
            let p = &event.payload;
            if p["runId"] != key {
                continue;
            }
            tracing::debug!(event = %event.event, payload = %p, "openclaw event");
            match said(&event.event, p) {
                Said::TextSoFar(text) => out.text_so_far(&text).await,
                Said::Final { text, finish_reason } => {
                    if let Some(text) = text {
                        out.text_so_far(&text).await;
                    }
                    out.send(Ok(ChatEvent::Done { finish_reason })).await;
                    return Step::End;
                }
                Said::Aborted => {
                    out.send(Err(Error::GatewayReplyError {
                        gateway: self.target.gateway.clone(),
                        message: "the run was stopped on the gateway".into(),
                    }))
                    .await;
                    return Step::End;
                }
                Said::Tool(activity) => out.send(Ok(activity)).await,
                Said::Failed(message) => {
                    out.send(Err(Error::GatewayReplyError { gateway: self.target.gateway.clone(), message })).await;
                    return Step::End;
                }
                Said::Nothing => {}
            }
        }
    }
}

/// The first reconnect goes at once (after a cut the gateway is usually still there), then
/// 250 ms doubling to 4 s.
/// OpenClaw keeps the conversation itself: one session per Gatehouse conversation, named after
/// this installation too (two installations' conversation 1 are not the same).
/// The gateway's key for a session: a key it gave us (an imported session) as it is, else
/// Gatehouse's name for the conversation, made unique to this installation by its device id.
fn session_key(session: Option<&str>, device: &Device) -> String {
    match session {
        Some(key) if key.starts_with("agent:") => key.to_owned(),
        _ => format!("agent:main:{}-{}", session.unwrap_or("gatehouse"), own_suffix(device)),
    }
}

fn own_suffix(device: &Device) -> &str {
    &device.id[..12]
}

/// Sessions listed per `sessions.list` call.
const SESSIONS_PAGE: u64 = 100;

fn backoff(attempt: u32) -> Duration {
    match attempt {
        0 | 1 => Duration::ZERO,
        n => Duration::from_millis((250u64 << (n - 2).min(4)).min(4_000)),
    }
}

/// Sleep; true if cancelled meanwhile.
async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = cancel.cancelled() => true,
    }
}

/// A random idempotency key in the UUID v4 shape the gateway's own clients use.
fn random_key() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::getrandom(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The gateway as a shared handle, so the task following a reply can own it.
pub struct OpenClawGateway(Arc<OpenClaw>);

impl OpenClawGateway {
    /// Check the URL; nothing is sent yet.
    pub fn new(config: OpenClawConfig) -> Result<OpenClawGateway> {
        Ok(OpenClawGateway(Arc::new(OpenClaw::new(config)?)))
    }
}

/// The first message of a session opened for a branch the gateway has not seen
/// (`chat::branch`): the branch so far as a transcript, then the new message. Sessions take one
/// message per turn and no history, so this is the only way the model gets the context. The
/// oldest messages are left out when the whole would pass `budget` bytes.
fn opening(earlier: &[super::ChatMessage], new: &str, budget: usize) -> String {
    let said = |m: &super::ChatMessage| {
        let who = match m.role {
            Role::User => "User",
            Role::Assistant => "Assistant",
            _ => "Note",
        };
        format!("{who}: {}\n\n", m.content)
    };
    let mut room = budget.saturating_sub(new.len() + 200);
    let mut kept: Vec<String> = Vec::new();
    for m in earlier.iter().rev().filter(|m| matches!(m.role, Role::User | Role::Assistant)) {
        let line = said(m);
        if line.len() > room {
            break;
        }
        room -= line.len();
        kept.push(line);
    }
    if kept.is_empty() {
        return new.to_owned();
    }
    let left_out = kept.len() < earlier.iter().filter(|m| matches!(m.role, Role::User | Role::Assistant)).count();
    let mut text = String::from("[This conversation goes on from an earlier one. What was said so far");
    text.push_str(if left_out { " (its oldest part left out):]\n\n" } else { ":]\n\n" });
    for line in kept.iter().rev() {
        text.push_str(line);
    }
    text.push_str("[End of what was said so far. The next message follows.]\n\n");
    text.push_str(new);
    text
}

impl Gateway for OpenClawGateway {
    fn name(&self) -> &str {
        &self.0.target.gateway
    }

    fn keeps_history(&self) -> bool {
        true
    }

    fn stream(&self, request: ChatRequest, cancel: CancellationToken) -> ChatStream {
        let (tx, mut rx) = mpsc::channel(256);
        tokio::spawn(self.0.clone().run(request, cancel.clone(), tx));
        let items = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        items.take_until(cancel.cancelled_owned()).boxed()
    }

    fn check(&self) -> futures::future::BoxFuture<'static, Result<String>> {
        let gateway = self.0.clone();
        Box::pin(async move {
            let device = Device::load_or_create(&gateway.data_dir)?;
            gateway.connect(&device).await?;
            Ok(format!("{} answers at {} and accepted this device", gateway.target.gateway, gateway.target.url))
        })
    }

    fn sessions(&self) -> futures::future::BoxFuture<'static, Result<Vec<super::RemoteSession>>> {
        let gateway = self.0.clone();
        Box::pin(async move {
            let device = Device::load_or_create(&gateway.data_dir)?;
            let link = gateway.connect(&device).await?;
            let ours = format!("-{}", own_suffix(&device));
            let mut sessions = Vec::new();
            let mut offset = 0;
            loop {
                // Conversations people had, not the gateway's own machinery.
                let params = json!({
                    "limit": SESSIONS_PAGE, "offset": offset,
                    "excludeSubagents": true, "excludeCron": true, "excludeSystem": true,
                });
                let page = link.request("sessions.list", params).await?;
                let rows = page["sessions"].as_array().cloned().unwrap_or_default();
                for row in &rows {
                    let Some(key) = row["key"].as_str() else { continue };
                    // This installation's own conversations are already here.
                    if key.starts_with("agent:main:gatehouse-") && key.ends_with(&ours) {
                        continue;
                    }
                    let title = ["label", "displayName", "derivedTitle"]
                        .iter()
                        .find_map(|f| row[*f].as_str().filter(|t| !t.trim().is_empty()))
                        .map(str::to_owned);
                    sessions.push(super::RemoteSession { key: key.to_owned(), title });
                }
                match page["nextOffset"].as_u64() {
                    Some(next) if page["hasMore"] == true && next > offset && !rows.is_empty() => offset = next,
                    _ => break,
                }
            }
            Ok(sessions)
        })
    }

    fn history(&self, session: &str) -> futures::future::BoxFuture<'static, Result<Vec<super::ChatMessage>>> {
        let (gateway, session) = (self.0.clone(), session.to_owned());
        Box::pin(async move {
            let device = Device::load_or_create(&gateway.data_dir)?;
            let link = gateway.connect(&device).await?;
            let key = session_key(Some(&session), &device);
            let history = link.request("chat.history", json!({ "sessionKey": key, "limit": 1000 })).await;
            let messages = history?["messages"].as_array().cloned().unwrap_or_default();
            Ok(messages
                .iter()
                .filter_map(|m| {
                    let role = match m["role"].as_str()? {
                        "user" => Role::User,
                        "assistant" => Role::Assistant,
                        _ => return None,
                    };
                    Some(super::ChatMessage::new(role, message_text(m)?))
                })
                .collect())
        })
    }
}

/// Property tests of the frame handling: no frame panics it, whatever its shape, and a reply's
/// text comes out whole and once however the gateway's "text so far" frames fall.
#[cfg(test)]
mod frames {
    use super::*;
    use proptest::prelude::*;

    const KEYS: &[&str] = &[
        "type", "id", "ok", "payload", "error", "event", "state", "message", "content", "text", "runId", "stopReason",
        "stream", "data", "kind", "name", "status", "phase", "title", "toolCallId", "errorMessage", "restartExpectedMs",
    ];
    const WORDS: &[&str] = &["res", "event", "chat", "delta", "final", "aborted", "error", "agent", "item", "tool", "end", "text"];

    /// Any JSON, shaped like OpenClaw's frames often enough to reach every branch.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
            proptest::sample::select(WORDS).prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(proptest::sample::select(KEYS).prop_map(String::from), inner, 0..7)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// What the reply passes on from a run of "text so far" frames.
    fn forwarded(frames: &[String]) -> String {
        let mut sent = String::new();
        for frame in frames {
            if let Some(new) = new_text(&sent, frame) {
                let new = new.to_owned();
                sent.push_str(&new);
            }
        }
        sent
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn no_text_frame_panics_the_link(text in ".{0,200}") {
            let _ = link::incoming(&text);
        }

        #[test]
        fn any_json_frame_is_read_without_panicking_and_only_responses_and_events_count(frame in json()) {
            let read = link::incoming(&frame.to_string());
            let kind = frame.get("type").and_then(Value::as_str);
            match read {
                Some(link::Incoming::Response { result, .. }) => {
                    prop_assert_eq!(kind, Some("res"));
                    prop_assert_eq!(result.is_ok(), frame["ok"] == true);
                }
                Some(link::Incoming::Event(_)) => prop_assert_eq!(kind, Some("event")),
                None => prop_assert!(kind != Some("res") && kind != Some("event")),
            }
        }

        #[test]
        fn any_event_payload_is_read_without_panicking(event in proptest::sample::select(WORDS), payload in json()) {
            let _ = said(event, &payload);
        }

        #[test]
        fn the_text_comes_out_whole_and_once_however_the_frames_fall(
            text in "\\PC{0,60}",
            cuts in proptest::collection::vec(0usize..=60, 1..12),
            rewrites in proptest::collection::vec((0usize..12, ".{1,8}"), 0..3),
        ) {
            // The gateway sends the text so far at growing (sometimes repeated) lengths, and
            // now and then a frame that rewrote earlier text.
            let bounds: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
            let mut at: Vec<usize> = cuts.iter().map(|c| bounds[c * (bounds.len() - 1) / 60]).collect();
            at.sort();
            let mut frames: Vec<String> = at.iter().map(|&i| text[..i].to_owned()).collect();
            frames.push(text.clone());
            // A rewrite is a frame that does not go on from what was shown (text never holds
            // U+0001): only once something was shown can a frame rewrite it.
            if let Some(first) = frames.iter().position(|f| !f.is_empty()) {
                for (pos, junk) in rewrites {
                    let pos = (first + 1 + pos).min(frames.len());
                    frames.insert(pos, format!("\u{1}{junk}"));
                }
            }
            prop_assert_eq!(forwarded(&frames), text);
        }
    }

    #[test]
    fn a_delta_a_final_and_a_tool_item_are_read_as_such() {
        let delta = json!({ "state": "delta", "message": { "content": [{ "type": "text", "text": "Hel" }, { "type": "image" }] } });
        assert_eq!(said("chat", &delta), Said::TextSoFar("Hel".into()));
        let last = json!({ "state": "final", "stopReason": "stop", "message": { "content": "Hello" } });
        assert_eq!(said("chat", &last), Said::Final { text: Some("Hello".into()), finish_reason: Some("stop".into()) });
        let tool = json!({ "stream": "item", "data": { "kind": "tool", "name": "exec", "phase": "end", "toolCallId": "c1" } });
        let Said::Tool(ChatEvent::ToolActivity { status, title, .. }) = said("agent", &tool) else { panic!() };
        assert_eq!((status.as_str(), title.as_str()), ("completed", "exec"));
        assert_eq!(said("chat", &json!({ "state": "something new" })), Said::Nothing);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::ChatMessage;

    #[test]
    fn a_new_session_opens_with_the_branch_so_far_newest_kept_when_it_is_long() {
        let earlier = [
            ChatMessage::new(Role::User, "first question"),
            ChatMessage::new(Role::Assistant, "first answer"),
            ChatMessage::new(Role::User, "second question"),
            ChatMessage::new(Role::Assistant, "second answer"),
        ];
        let whole = opening(&earlier, "next", 10_000);
        let at = |s: &str| whole.find(s).unwrap_or_else(|| panic!("{s} missing from {whole}"));
        assert!(at("User: first question") < at("Assistant: first answer"));
        assert!(at("Assistant: second answer") < at("next"));
        assert!(whole.ends_with("\n\nnext") && !whole.contains("left out"));
        // Room for the newest two only: the oldest go, and that is said.
        let cut = opening(&earlier, "next", 200 + 4 + 60);
        assert!(cut.contains("second answer") && !cut.contains("first answer") && cut.contains("left out"), "{cut}");
        // Nothing earlier: the message as it is.
        assert_eq!(opening(&[], "next", 10_000), "next");
    }
}
