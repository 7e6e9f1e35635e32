//! Gateways: where replies come from.
//!
//! One trait, [`Gateway::stream`], turns a [`ChatRequest`] into a stream of [`ChatEvent`]s.
//! The contract is the same for every transport (`openai` over HTTP + SSE here; `openclaw`
//! over its WebSocket protocol and the built-in `local` model later):
//! - text arrives as [`ChatEvent::Delta`]s, each new text only — never the whole text again;
//! - a reply that completes ends with [`ChatEvent::Done`]; anything else ends with an error
//!   (`gateway.incomplete` when the stream stopped early — the deltas already sent stand);
//! - when `cancel` fires the stream ends at once, with no further item;
//! - a request is sent once. A failure is reported, never retried behind the caller's back:
//!   a re-sent prompt is paid for twice.

#[cfg(feature = "local")]
pub mod local;
pub mod openai;
pub(crate) mod keyring;
pub mod openclaw;
pub mod profile;
pub mod sse;

use std::path::PathBuf;
use std::sync::Arc;

use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::store::Store;
use profile::{GatewayKind, Profile};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
/// Who says a message, in the OpenAI wire shape.
pub enum Role {
    /// Instructions ahead of the conversation.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
    /// The result of a tool call, sent back to the model.
    Tool,
}

impl Role {
    /// The wire name: `system`, `user`, `assistant` or `tool`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }

    /// The role named by `s`, if it is one.
    pub fn parse(s: &str) -> Option<Role> {
        [Role::System, Role::User, Role::Assistant, Role::Tool].into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
/// One message of a conversation as a gateway gets it.
pub struct ChatMessage {
    /// Who says it.
    pub role: Role,
    /// Its text.
    pub content: String,
    /// An assistant message that called tools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// A tool message: which call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A plain message: no tool calls.
    pub fn new(role: Role, content: impl Into<String>) -> ChatMessage {
        ChatMessage { role, content: content.into(), tool_calls: Vec::new(), tool_call_id: None }
    }
}

/// A function call the model asked for, in the OpenAI wire shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The model's id for the call; the tool's answer names it.
    pub id: String,
    #[serde(rename = "type", default = "function")]
    /// Always `function` today.
    pub kind: String,
    /// Which function, with what arguments.
    pub function: FunctionCall,
}

fn function() -> String {
    "function".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
/// The function a tool call names, and its arguments.
pub struct FunctionCall {
    /// The tool's name (`exec`).
    pub name: String,
    /// JSON text, as the model wrote it.
    pub arguments: String,
}

#[derive(Debug, Clone, Default)]
/// One turn to send: the conversation so far and how to answer.
pub struct ChatRequest {
    /// `None`: the gateway profile's model, else the server's default.
    pub model: Option<String>,
    /// The conversation, oldest first, ending with the new message.
    pub messages: Vec<ChatMessage>,
    /// Sampling temperature; `None`: the gateway's default.
    pub temperature: Option<f32>,
    /// Most tokens in the reply; `None`: the gateway's default.
    pub max_tokens: Option<u32>,
    /// Tool definitions (OpenAI `tools`), offered to the model.
    pub tools: Vec<serde_json::Value>,
    /// The conversation this turn belongs to, for gateways that keep conversations themselves
    /// (OpenClaw sessions): they are sent only the new message.
    pub session: Option<String>,
    /// `session` is new on the gateway but `messages` holds earlier ones (a regenerated reply,
    /// an edited message, a conversation moved from another gateway): they go with the new
    /// message, as a transcript (`chat::branch`).
    pub fresh_session: bool,
}

/// What a reply stream carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatEvent {
    /// New text, to append.
    Delta {
        /// The reply text that follows what came before.
        text: String,
    },
    /// Token counts, when the gateway reports them.
    Usage {
        /// Tokens of the request.
        prompt_tokens: u64,
        /// Tokens of the reply.
        completion_tokens: u64,
    },
    /// The model wants these tools run before it answers (sent just before `Done`).
    ToolCalls {
        /// The calls, in the order the model made them.
        calls: Vec<ToolCall>,
    },
    /// The gateway ran a tool itself (OpenClaw's agent does): shown, not run by us. Sent
    /// when it starts and again when it ends, with the same `call_id`.
    ToolActivity {
        /// The gateway's id for the call.
        call_id: String,
        /// The tool's name, as the gateway calls it.
        name: String,
        /// What it does, in words, as the gateway says.
        title: String,
        /// `running`, `completed`, `failed`, … as the gateway says.
        status: String,
    },
    /// The reply is complete.
    Done {
        /// Why the model stopped (`stop`, `length`, `tool_calls`), when the gateway says.
        finish_reason: Option<String>,
    },
}

/// A reply as it streams: events, or the error that ended it.
pub type ChatStream = BoxStream<'static, Result<ChatEvent>>;

/// Where replies come from: an OpenAI-compatible server, an OpenClaw gateway, the built-in
/// model. One per profile, shared by every turn and job that uses it.
pub trait Gateway: Send + Sync + 'static {
    /// The profile name, for messages.
    fn name(&self) -> &str;

    /// Stream the reply to `request` until it ends or `cancel` fires.
    fn stream(&self, request: ChatRequest, cancel: CancellationToken) -> ChatStream;

    /// The gateway keeps each conversation itself and is sent only the new message of a turn
    /// ([`ChatRequest::session`]).
    fn keeps_history(&self) -> bool {
        false
    }

    /// Whether the gateway answers and accepts the credentials, in one sentence — without
    /// spending tokens.
    fn check(&self) -> futures::future::BoxFuture<'static, Result<String>>;

    /// The conversation `session` as the gateway itself holds it, for gateways that keep
    /// conversations (OpenClaw): what Gatehouse did not see, such as a reply the gateway
    /// finished while disconnected.
    /// `session` is Gatehouse's name for a conversation, or the gateway's own key for one
    /// listed by [`Gateway::sessions`].
    fn history(&self, _session: &str) -> futures::future::BoxFuture<'static, Result<Vec<ChatMessage>>> {
        Box::pin(futures::future::ready(Err(keeps_no_conversations(self.name()))))
    }

    /// The conversations the gateway keeps that were made elsewhere (not by this Gatehouse),
    /// for importing.
    fn sessions(&self) -> futures::future::BoxFuture<'static, Result<Vec<RemoteSession>>> {
        Box::pin(futures::future::ready(Err(keeps_no_conversations(self.name()))))
    }
}

fn keeps_no_conversations(gateway: &str) -> crate::error::Error {
    crate::error::Error::GatewayInvalid(format!("{gateway} does not keep conversations; Gatehouse's copy is the only one"))
}

/// A conversation a gateway keeps, as it lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteSession {
    /// The gateway's key for it (OpenClaw: `agent:main:main`).
    pub key: String,
    /// The name the person gave it there, if any.
    pub title: Option<String>,
}

/// Opens gateways by profile name, for chats and prompt jobs alike. Local models are loaded
/// here once per process and shared: a second chat must not load a second copy. OpenClaw
/// gateways are kept too, so every reply through one shares its connection.
pub(crate) struct Gateways {
    pub store: Store,
    pub data_dir: PathBuf,
    /// By profile name, with the URL and token they were made with (a changed profile gets a
    /// new one; the old one closes its connection when its last reply ends).
    openclaw: std::sync::Mutex<std::collections::HashMap<String, KeptOpenClaw>>,
    #[cfg(feature = "local")]
    loaded: std::sync::Mutex<std::collections::HashMap<PathBuf, Arc<local::LocalModel>>>,
}

/// An OpenClaw gateway, with what it was made from.
struct KeptOpenClaw {
    url: String,
    token: Option<String>,
    gateway: Arc<dyn Gateway>,
}

impl Gateways {
    pub fn new(store: Store, data_dir: PathBuf) -> Gateways {
        Gateways {
            store,
            data_dir,
            openclaw: Default::default(),
            #[cfg(feature = "local")]
            loaded: Default::default(),
        }
    }

    /// The named profile (or the default one), ready to use.
    pub async fn open(&self, name: Option<&str>) -> Result<(Profile, Arc<dyn Gateway>)> {
        let profile = profile::find(&self.store, name).await?;
        let gateway = match profile.kind {
            GatewayKind::Local => self.open_local(&profile).await?,
            GatewayKind::Openclaw => self.open_openclaw(&profile).await?,
            GatewayKind::Openai => profile.open(&self.data_dir).await?,
        };
        Ok((profile, gateway))
    }

    async fn open_openclaw(&self, profile: &Profile) -> Result<Arc<dyn Gateway>> {
        let config = profile.openclaw_config(&self.data_dir).await?;
        let mut kept = self.openclaw.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = kept.get(&profile.name).filter(|k| k.url == config.url && k.token == config.token) {
            return Ok(k.gateway.clone());
        }
        let (url, token) = (config.url.clone(), config.token.clone());
        let gateway: Arc<dyn Gateway> = Arc::new(openclaw::OpenClawGateway::new(config)?);
        kept.insert(profile.name.clone(), KeptOpenClaw { url, token, gateway: gateway.clone() });
        Ok(gateway)
    }

    #[cfg(feature = "local")]
    async fn open_local(&self, profile: &Profile) -> Result<Arc<dyn Gateway>> {
        let (model_name, path) = crate::models::resolve(&self.store, &self.data_dir, profile.model.as_deref()).await?;
        let model = {
            let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
            match loaded.get(&path) {
                Some(m) if m.is_usable() => m.clone(),
                _ => {
                    let m = local::LocalModel::start(&model_name, &path, local::LocalConfig::default())?;
                    loaded.insert(path, m.clone());
                    m
                }
            }
        };
        Ok(Arc::new(local::LocalGateway { profile: profile.name.clone(), model }))
    }

    #[cfg(not(feature = "local"))]
    async fn open_local(&self, _profile: &Profile) -> Result<Arc<dyn Gateway>> {
        Err(crate::error::Error::LocalUnavailable)
    }
}
