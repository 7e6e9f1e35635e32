//! The OpenAI-compatible transport: `POST {base}/chat/completions` with `stream: true`, read as
//! server-sent events.
//!
//! Lenient about what servers leave out (a role-only first chunk, empty or `null` content, no
//! `finish_reason`, no usage) and strict about what matters: only `[DONE]` ends a reply; an
//! `{"error": …}` chunk after a 200 is an error; a stream that just stops is reported as
//! incomplete (its text so far has already been delivered). The request is never re-sent.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::sse::Decoder;
use super::{ChatEvent, ChatRequest, ChatStream, FunctionCall, Gateway, ToolCall};
use crate::error::{Error, Result};

/// Replies in flight between the reading task and the consumer. Small: a consumer that stops
/// reading should slow the socket down, not fill memory.
const CHANNEL: usize = 64;

#[derive(Debug, Clone)]
/// How to reach an OpenAI-compatible server.
pub struct OpenAiConfig {
    /// Profile name, for messages.
    pub name: String,
    /// Up to and including `/v1`, e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// The model to ask for; `None`: the server's default.
    pub model: Option<String>,
    /// Sent as `Authorization: Bearer …`. Never logged.
    pub token: Option<String>,
    /// Longest wait for the TCP and TLS connection.
    pub connect_timeout: Duration,
    /// From sending the request to the response headers (a server may load a model first).
    pub response_timeout: Duration,
    /// Longest silence between two chunks of a reply.
    pub idle_timeout: Duration,
}

impl OpenAiConfig {
    /// A config with no model or token and the default timeouts (10 s to connect, 120 s to the
    /// headers, 60 s of silence).
    pub fn new(name: impl Into<String>, base_url: impl Into<String>) -> OpenAiConfig {
        OpenAiConfig {
            name: name.into(),
            base_url: base_url.into(),
            model: None,
            token: None,
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// An OpenAI-compatible gateway (`/v1/chat/completions`, streamed as SSE).
pub struct OpenAi {
    config: OpenAiConfig,
    client: reqwest::Client,
}

impl OpenAi {
    /// Check the URL and build the HTTP client; nothing is sent yet.
    pub fn new(config: OpenAiConfig) -> Result<OpenAi> {
        let url = reqwest::Url::parse(&config.base_url)
            .map_err(|e| Error::GatewayInvalid(format!("`{}` is not a valid URL: {e}", config.base_url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::GatewayInvalid(format!("`{}` is not an http(s) URL", config.base_url)));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .retry(reqwest::retry::never())
            .build()
            .map_err(|e| Error::GatewayInvalid(format!("cannot set up HTTP: {e}")))?;
        Ok(OpenAi { config, client })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.config.base_url.trim_end_matches('/'))
    }
}

impl Gateway for OpenAi {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn stream(&self, request: ChatRequest, cancel: CancellationToken) -> ChatStream {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let call = Call { config: self.config.clone(), client: self.client.clone(), url: self.url("chat/completions") };
        tokio::spawn(async move {
            tokio::select! {
                _ = call.run(request, &tx) => {}
                _ = cancel.cancelled() => {}
                // The consumer went away: stop reading (dropping the response closes it).
                _ = tx.closed() => {}
            }
        });
        tokio_stream_from(rx)
    }

    fn check(&self) -> futures::future::BoxFuture<'static, Result<String>> {
        let call = Call { config: self.config.clone(), client: self.client.clone(), url: self.url("models") };
        Box::pin(async move { call.models().await })
    }
}

fn tokio_stream_from(mut rx: mpsc::Receiver<Result<ChatEvent>>) -> ChatStream {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

struct Call {
    config: OpenAiConfig,
    client: reqwest::Client,
    url: String,
}

impl Call {
    fn gw(&self) -> String {
        self.config.name.clone()
    }

    async fn run(&self, request: ChatRequest, tx: &mpsc::Sender<Result<ChatEvent>>) {
        if let Err(e) = self.reply(request, tx).await {
            let _ = tx.send(Err(e)).await;
        }
    }

    async fn reply(&self, request: ChatRequest, tx: &mpsc::Sender<Result<ChatEvent>>) -> Result<()> {
        let mut body = json!({
            "messages": request.messages,
            "stream": true,
            "stream_options": { "include_usage": true },
        });
        if let Some(model) = request.model.or_else(|| self.config.model.clone()) {
            body["model"] = json!(model);
        }
        if let Some(t) = request.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(n) = request.max_tokens {
            body["max_tokens"] = json!(n);
        }
        if !request.tools.is_empty() {
            body["tools"] = json!(request.tools);
        }
        let response = self.send(self.client.post(&self.url).json(&body).header("accept", "text/event-stream")).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.status_error(response).await);
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("application/json") {
            // A server that ignored `stream: true` and answered in one piece.
            return self.whole_reply(response, tx).await;
        }
        if content_type.starts_with("text/html") {
            return Err(Error::GatewayProtocol {
                gateway: self.gw(),
                detail: "it answered with a web page; is the URL the API's, ending in /v1?".into(),
            });
        }

        let mut bytes = response.bytes_stream();
        let mut decoder = Decoder::new();
        let mut finish_reason: Option<String> = None;
        let mut calls: Vec<ToolCall> = Vec::new();
        loop {
            let chunk = match tokio::time::timeout(self.config.idle_timeout, bytes.next()).await {
                Err(_) => {
                    return Err(Error::GatewayTimeout {
                        gateway: self.gw(),
                        what: format!(
                            "sent nothing for {} s in the middle of a reply; the partial reply was kept",
                            self.config.idle_timeout.as_secs()
                        ),
                    })
                }
                Ok(None) => return Err(Error::GatewayIncomplete { gateway: self.gw() }),
                Ok(Some(Err(e))) => {
                    tracing::debug!(gateway = %self.config.name, error = %e, "reply stream broke");
                    return Err(Error::GatewayIncomplete { gateway: self.gw() });
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            for event in decoder.feed(&chunk) {
                if event.data == "[DONE]" {
                    if !calls.is_empty() {
                        let _ = tx.send(Ok(ChatEvent::ToolCalls { calls: std::mem::take(&mut calls) })).await;
                    }
                    let _ = tx.send(Ok(ChatEvent::Done { finish_reason: finish_reason.take() })).await;
                    return Ok(());
                }
                let value: Value = serde_json::from_str(&event.data).map_err(|e| Error::GatewayProtocol {
                    gateway: self.gw(),
                    detail: format!("a chunk was not JSON ({e}): {}", snippet(&event.data)),
                })?;
                collect_tool_calls(&value, &mut calls);
                for item in self.chunk_events(&value, &mut finish_reason)? {
                    if tx.send(Ok(item)).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// The events in one `chat.completion.chunk`.
    fn chunk_events(&self, value: &Value, finish_reason: &mut Option<String>) -> Result<Vec<ChatEvent>> {
        if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
            return Err(Error::GatewayReplyError { gateway: self.gw(), message: error_message(error) });
        }
        let mut events = Vec::new();
        if let Some(choice) = value.get("choices").and_then(|c| c.get(0)) {
            if let Some(text) = choice.pointer("/delta/content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                events.push(ChatEvent::Delta { text: text.to_owned() });
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                *finish_reason = Some(reason.to_owned());
            }
        }
        if let Some(usage) = value.get("usage").filter(|u| u.is_object()) {
            let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
            events.push(ChatEvent::Usage { prompt_tokens: n("prompt_tokens"), completion_tokens: n("completion_tokens") });
        }
        Ok(events)
    }

    async fn whole_reply(&self, response: reqwest::Response, tx: &mpsc::Sender<Result<ChatEvent>>) -> Result<()> {
        let value: Value = response.json().await.map_err(|e| Error::GatewayProtocol {
            gateway: self.gw(),
            detail: format!("the reply was not JSON ({e})"),
        })?;
        if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
            return Err(Error::GatewayReplyError { gateway: self.gw(), message: error_message(error) });
        }
        let choice = value.pointer("/choices/0").ok_or_else(|| Error::GatewayProtocol {
            gateway: self.gw(),
            detail: format!("no choices in {}", snippet(&value.to_string())),
        })?;
        if let Some(text) = choice.pointer("/message/content").and_then(Value::as_str) {
            let _ = tx.send(Ok(ChatEvent::Delta { text: text.to_owned() })).await;
        }
        // A server that ignores `stream` still answers tool calls, whole.
        if let Some(calls) = choice.pointer("/message/tool_calls").filter(|c| c.as_array().is_some_and(|a| !a.is_empty())) {
            let calls: Vec<ToolCall> = serde_json::from_value(calls.clone()).map_err(|e| Error::GatewayProtocol {
                gateway: self.gw(),
                detail: format!("tool calls that are not in the OpenAI shape ({e})"),
            })?;
            let _ = tx.send(Ok(ChatEvent::ToolCalls { calls })).await;
        }
        let finish_reason = choice.get("finish_reason").and_then(Value::as_str).map(str::to_owned);
        let _ = tx.send(Ok(ChatEvent::Done { finish_reason })).await;
        Ok(())
    }

    /// Send with the token, waiting at most `response_timeout` for the response headers.
    async fn send(&self, mut request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        if let Some(token) = &self.config.token {
            request = request.bearer_auth(token);
        }
        match tokio::time::timeout(self.config.response_timeout, request.send()).await {
            Err(_) => Err(Error::GatewayTimeout {
                gateway: self.gw(),
                what: format!("did not answer within {} s", self.config.response_timeout.as_secs()),
            }),
            Ok(Err(e)) => Err(self.transport_error(e)),
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// `GET /models`: answers, and with the token accepted.
    async fn models(&self) -> Result<String> {
        let response = self.send(self.client.get(&self.url)).await?;
        let auth = if self.config.token.is_some() { "the token was accepted" } else { "it needs no token" };
        match response.status().as_u16() {
            200..=299 => {
                let models = response.json::<Value>().await.ok().and_then(|v| {
                    v.get("data").and_then(Value::as_array).map(|a| {
                        a.iter().filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_owned)).collect::<Vec<_>>()
                    })
                });
                let listed = match models {
                    Some(m) if !m.is_empty() => format!("; models: {}", m.join(", ")),
                    _ => String::new(),
                };
                Ok(format!("{} answers at {} and {auth}{listed}", self.config.name, self.config.base_url))
            }
            // Some servers have no model list; the server answered, auth was not refused.
            404 | 405 => Ok(format!(
                "{} answers at {} (it has no model list, so the token could not be checked)",
                self.config.name, self.config.base_url
            )),
            _ => Err(self.status_error(response).await),
        }
    }

    fn transport_error(&self, e: reqwest::Error) -> Error {
        let reason = if e.is_connect() {
            "connection refused or no route".to_owned()
        } else if e.is_timeout() {
            format!("no connection within {} s", self.config.connect_timeout.as_secs())
        } else {
            std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_else(|| e.to_string())
        };
        Error::GatewayUnreachable { gateway: self.gw(), url: self.config.base_url.clone(), reason }
    }

    async fn status_error(&self, response: reqwest::Response) -> Error {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        // Bounded: an error page can be anything.
        let body = match tokio::time::timeout(Duration::from_secs(5), response.bytes()).await {
            Ok(Ok(b)) => String::from_utf8_lossy(&b[..b.len().min(64 * 1024)]).into_owned(),
            _ => String::new(),
        };
        // The status is kept in the sentence: an HTML error page says little else.
        let detail = format!("HTTP {status}: {}", describe_body(&body));
        let gateway = self.gw();
        match status {
            401 => Error::GatewayUnauthorized { gateway, detail },
            403 => Error::GatewayForbidden { gateway, detail },
            404 => Error::GatewayNotFound { gateway, detail },
            429 => Error::GatewayRateLimited { gateway, retry_after },
            500..=599 => Error::GatewayServer { gateway, status, detail },
            _ => Error::GatewayReplyError { gateway, message: detail },
        }
    }
}

/// Tool calls one reply may carry.
const MAX_TOOL_CALLS: usize = 32;

/// Tool calls stream in pieces: the first delta of a call has its id and name, later ones
/// more of its arguments, all under the call's `index`.
fn collect_tool_calls(chunk: &Value, calls: &mut Vec<ToolCall>) {
    let Some(deltas) = chunk.pointer("/choices/0/delta/tool_calls").and_then(Value::as_array) else { return };
    for delta in deltas {
        // An index past any sane number of calls is garbage, not a reason to allocate.
        let index = delta.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
        if index >= MAX_TOOL_CALLS {
            continue;
        }
        while calls.len() <= index {
            calls.push(ToolCall {
                id: String::new(),
                kind: "function".into(),
                function: FunctionCall { name: String::new(), arguments: String::new() },
            });
        }
        let call = &mut calls[index];
        if let Some(id) = delta.get("id").and_then(Value::as_str) {
            call.id = id.to_owned();
        }
        if let Some(name) = delta.pointer("/function/name").and_then(Value::as_str) {
            call.function.name.push_str(name);
        }
        if let Some(args) = delta.pointer("/function/arguments").and_then(Value::as_str) {
            call.function.arguments.push_str(args);
        }
    }
}

/// The human part of an error body: the JSON error message, else the start of the text.
fn describe_body(body: &str) -> String {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return "empty body".into();
    }
    if let Ok(v) = serde_json::from_str::<Value>(trimmed) {
        if let Some(e) = v.get("error") {
            return error_message(e);
        }
        if let Some(m) = v.get("message").and_then(Value::as_str) {
            return m.to_owned();
        }
    }
    if trimmed.starts_with('<') {
        return "an HTML page".into();
    }
    snippet(trimmed)
}

fn error_message(error: &Value) -> String {
    match error {
        Value::String(s) => s.clone(),
        other => other
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| snippet(&other.to_string())),
    }
}

fn snippet(s: &str) -> String {
    let mut out: String = s.chars().take(200).collect();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}
