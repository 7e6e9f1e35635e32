//! The engine's one error type.
//!
//! Every variant has a stable [`Error::code`] that programs branch on (the CLI's `--json`, the
//! desktop IPC's `{code, message}`), and a `Display` that is one sentence a person can act on —
//! in words, never in one front end's syntax: the CLI adds its own hints by code (naming its
//! commands), the app its own. Front ends never parse the message; what a program may need
//! (an id, an HTTP status, a pairing request) is in [`Error::data`]. Serialized, an error is
//! `{code, message, data?}`.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the data directory {path} cannot be used: {reason}")]
    DataDir { path: PathBuf, reason: String },

    #[error("the database {path} is not a valid Gatehouse database (it is corrupt or not SQLite); move it aside and Gatehouse will create a new one")]
    StoreCorrupt { path: PathBuf },

    #[error("the database {path} was written by a newer Gatehouse (schema version {found}, this build knows up to {known}); upgrade Gatehouse to use it")]
    StoreNewerSchema { path: PathBuf, found: i64, known: i64 },

    #[error("the disk holding the database is full; free some space and try again")]
    DiskFull,

    #[error("the database is busy (another Gatehouse process held it for too long); try again")]
    StoreBusy,

    #[error("SQLite did not accept the setting `{pragma}` (wanted {wanted}, it reports {got}); the database cannot be used safely")]
    StorePragma { pragma: &'static str, wanted: String, got: String },

    #[error("database error: {0}")]
    Store(String),

    #[error("the engine is shutting down")]
    ShuttingDown,

    #[error("there is no job {0}")]
    JobNotFound(i64),

    #[error("job {id} is {state}; {hint}")]
    JobInvalidState { id: i64, state: &'static str, hint: &'static str },

    #[error("{0}")]
    JobInvalid(String),

    /// A setting out of its range.
    #[error("{0}")]
    SettingsInvalid(String),

    #[error("this Gatehouse has no runner for `{0}` jobs")]
    JobKindUnavailable(String),

    #[error("{gateway} refused the credentials ({detail}); check the token of its profile")]
    GatewayUnauthorized { gateway: String, detail: String },

    #[error("{gateway} does not allow this ({detail}); the token lacks a permission or the model is not allowed")]
    GatewayForbidden { gateway: String, detail: String },

    #[error("{gateway} has no such endpoint or model ({detail}); check the URL and the model name")]
    GatewayNotFound { gateway: String, detail: String },

    #[error("{gateway} is rate-limiting requests{}; wait and try again", retry_after.map(|s| format!(" (retry after {s} s)")).unwrap_or_default())]
    GatewayRateLimited { gateway: String, retry_after: Option<u64> },

    #[error("{gateway} failed ({detail}); the gateway or its model provider has a problem")]
    GatewayServer { gateway: String, status: u16, detail: String },

    #[error("cannot reach {gateway} at {url} ({reason}); is it running?")]
    GatewayUnreachable { gateway: String, url: String, reason: String },

    #[error("{gateway} {what}")]
    GatewayTimeout { gateway: String, what: String },

    #[error("{gateway} sent something that is not an OpenAI-compatible reply: {detail}")]
    GatewayProtocol { gateway: String, detail: String },

    #[error("{gateway} stopped the reply before it was complete (the connection ended without [DONE])")]
    GatewayIncomplete { gateway: String },

    #[error("{gateway} reported an error during the reply: {message}")]
    GatewayReplyError { gateway: String, message: String },

    #[error("there is no gateway named `{0}`")]
    GatewayUnknown(String),

    #[error("{0}")]
    GatewayInvalid(String),

    #[error(
        "the keyring is not available for gateway `{profile}` ({reason}); on a desktop, unlock GNOME Keyring \
         or KWallet (Linux needs a Secret Service), or keep the token in an environment variable or an owner-only file"
    )]
    KeyringUnavailable { profile: String, reason: String },

    #[error("there is no conversation {0}")]
    ConversationNotFound(i64),

    #[error("{0}")]
    ChatInvalid(String),

    #[error("there is no exec rule {0}")]
    RuleNotFound(i64),

    #[error("there is no message {0}")]
    MessageNotFound(i64),

    #[error("a search needs at least one word")]
    SearchEmpty,

    #[error("{0}")]
    ExecInvalid(String),

    #[error("blocked by policy: {0}")]
    ExecDenied(String),

    #[error("this command needs a person's approval ({0}) and nobody gave it")]
    ExecNeedsApproval(String),

    #[error("there is no approval request {0}")]
    ApprovalNotFound(i64),

    #[error("approval request {id} is no longer open: {state}")]
    ApprovalClosed { id: i64, state: String },

    #[error("{0}")]
    ExecWorkspace(String),

    #[error("{0}")]
    SandboxUnavailable(String),

    #[error("the local model `{name}` is not at {}; fetch the built-in one, or add a GGUF model of your own", path.display())]
    ModelMissing { name: String, path: PathBuf },

    #[error("the model {} cannot be used: {reason}", path.display())]
    ModelLoad { path: PathBuf, reason: String },

    #[error("{0}")]
    ModelInvalid(String),

    #[error("could not fetch the built-in model: {0}")]
    ModelFetch(String),

    #[error("this conversation is {tokens} tokens long and the local model {model} holds {limit}; start a new conversation, or use a gateway whose model has a longer context")]
    ContextFull { model: String, tokens: u32, limit: u32 },

    #[error("the model was still asking to run tools after {rounds} rounds, so its turn was stopped there; ask it again more precisely")]
    ToolRounds { rounds: usize },

    #[error("{gateway} has not approved this device yet; on the gateway's machine run `openclaw devices approve {request_id}`, then try again")]
    GatewayPairingRequired { gateway: String, request_id: String },

    #[error("{gateway} rejected this device's signature; if the device key under the data directory's openclaw/ was changed, move it aside and pair again")]
    GatewayBadSignature { gateway: String },

    #[error("{gateway} lost the run mid-reply (it restarted, or the connection stayed down too long); send the message again to get a whole reply")]
    GatewayRunLost { gateway: String },

    #[error("{gateway} is shutting down; try again once it is back")]
    GatewayShuttingDown { gateway: String },

    #[error("the message is too large for {gateway} ({}its limit is {limit} bytes); send something shorter", bytes.map(|b| format!("{b} bytes; ")).unwrap_or_default())]
    GatewayPayloadTooLarge { gateway: String, bytes: Option<usize>, limit: usize },

    #[error("this build of Gatehouse has no built-in model (it was built without the `local` feature); use a gateway: an OpenAI-compatible server or OpenClaw")]
    LocalUnavailable,
}

impl Error {
    /// A stable, dotted identifier for the kind of failure. Never change an existing code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::DataDir { .. } => "store.data_dir",
            Error::StoreCorrupt { .. } => "store.corrupt",
            Error::StoreNewerSchema { .. } => "store.newer_schema",
            Error::DiskFull => "store.disk_full",
            Error::StoreBusy => "store.busy",
            Error::StorePragma { .. } => "store.pragma",
            Error::Store(_) => "store.error",
            Error::ShuttingDown => "engine.shutting_down",
            Error::JobNotFound(_) => "job.not_found",
            Error::JobInvalidState { .. } => "job.invalid_state",
            Error::JobInvalid(_) => "job.invalid",
            Error::SettingsInvalid(_) => "settings.invalid",
            Error::JobKindUnavailable(_) => "job.kind_unavailable",
            Error::GatewayUnauthorized { .. } => "gateway.unauthorized",
            Error::GatewayForbidden { .. } => "gateway.forbidden",
            Error::GatewayNotFound { .. } => "gateway.not_found",
            Error::GatewayRateLimited { .. } => "gateway.rate_limited",
            Error::GatewayServer { .. } => "gateway.server_error",
            Error::GatewayUnreachable { .. } => "gateway.unreachable",
            Error::GatewayTimeout { .. } => "gateway.timeout",
            Error::GatewayProtocol { .. } => "gateway.protocol",
            Error::GatewayIncomplete { .. } => "gateway.incomplete",
            Error::GatewayReplyError { .. } => "gateway.reply_error",
            Error::GatewayUnknown(_) => "gateway.unknown",
            Error::GatewayInvalid(_) => "gateway.invalid",
            Error::KeyringUnavailable { .. } => "keyring.unavailable",
            Error::ConversationNotFound(_) => "chat.not_found",
            Error::SearchEmpty => "chat.bad_search",
            Error::MessageNotFound(_) => "chat.message_not_found",
            Error::ChatInvalid(_) => "chat.invalid",
            Error::RuleNotFound(_) => "exec.rule_not_found",
            Error::ExecInvalid(_) => "exec.invalid",
            Error::ExecDenied(_) => "exec.denied",
            Error::ExecNeedsApproval(_) => "exec.needs_approval",
            Error::ApprovalNotFound(_) => "approval.not_found",
            Error::ApprovalClosed { .. } => "approval.closed",
            Error::ExecWorkspace(_) => "exec.workspace",
            Error::SandboxUnavailable(_) => "exec.sandbox_unavailable",
            Error::ModelMissing { .. } => "model.missing",
            Error::ModelLoad { .. } => "model.load_failed",
            Error::ModelInvalid(_) => "model.invalid",
            Error::ModelFetch(_) => "model.fetch_failed",
            Error::ContextFull { .. } => "model.context_full",
            Error::LocalUnavailable => "gateway.local_unavailable",
            Error::GatewayPairingRequired { .. } => "gateway.pairing_required",
            Error::ToolRounds { .. } => "chat.tool_rounds",
            Error::GatewayBadSignature { .. } => "gateway.bad_signature",
            Error::GatewayShuttingDown { .. } => "gateway.shutting_down",
            Error::GatewayRunLost { .. } => "gateway.run_lost",
            Error::GatewayPayloadTooLarge { .. } => "gateway.payload_too_large",
        }
    }

    /// True when the caller asked for something wrong (bad id, bad input), as opposed to the
    /// system failing. The CLI maps this to exit code 2.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            Error::JobNotFound(_)
                | Error::JobInvalidState { .. }
                | Error::JobInvalid(_)
                | Error::SettingsInvalid(_)
                | Error::JobKindUnavailable(_)
                | Error::DataDir { .. }
                | Error::GatewayUnknown(_)
                | Error::GatewayInvalid(_)
                | Error::ConversationNotFound(_)
                | Error::MessageNotFound(_)
                | Error::ChatInvalid(_)
                | Error::RuleNotFound(_)
                | Error::SearchEmpty
                | Error::ExecInvalid(_)
                | Error::ApprovalNotFound(_)
                | Error::ApprovalClosed { .. }
                | Error::ExecWorkspace(_)
                | Error::ModelMissing { .. }
                | Error::ModelInvalid(_)
        )
    }

    /// Classify a SQLite error into the variants a person can act on. `path` names the
    /// database in the sentence when the file itself is the problem.
    pub(crate) fn from_sqlite(err: rusqlite::Error, path: &std::path::Path) -> Error {
        use rusqlite::ErrorCode;
        if let rusqlite::Error::SqliteFailure(e, _) = &err {
            match e.code {
                ErrorCode::DiskFull => return Error::DiskFull,
                ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
                    return Error::StoreCorrupt { path: path.to_owned() }
                }
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => return Error::StoreBusy,
                _ => {}
            }
        }
        Error::Store(err.to_string())
    }
}

/// An error as a front end receives it (over IPC, in `--json`): `{code, message, hint?,
/// data?}`. The engine leaves `hint` empty; a front end fills it in its own terms.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional, type = "Record<string, unknown>"))]
    pub data: Option<serde_json::Value>,
}

impl From<&Error> for ErrorBody {
    fn from(e: &Error) -> ErrorBody {
        ErrorBody { code: e.code().to_owned(), message: e.to_string(), hint: None, data: e.data() }
    }
}

impl serde::Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        ErrorBody::from(self).serialize(s)
    }
}

impl Error {
    /// What a program may need besides the code: the id that was not found, the HTTP status,
    /// the pairing request to approve, the sizes that did not fit.
    pub fn data(&self) -> Option<serde_json::Value> {
        use serde_json::json;
        Some(match self {
            Error::JobNotFound(id) | Error::ConversationNotFound(id) | Error::MessageNotFound(id) => json!({ "id": id }),
            Error::ApprovalNotFound(id) | Error::RuleNotFound(id) => json!({ "id": id }),
            Error::ApprovalClosed { id, .. } => json!({ "id": id }),
            Error::JobInvalidState { id, state, .. } => json!({ "id": id, "state": state }),
            Error::GatewayUnknown(name) => json!({ "gateway": name }),
            Error::GatewayServer { gateway, status, .. } => json!({ "gateway": gateway, "status": status }),
            Error::GatewayRateLimited { gateway, retry_after } => json!({ "gateway": gateway, "retry_after": retry_after }),
            Error::GatewayUnreachable { gateway, url, .. } => json!({ "gateway": gateway, "url": url }),
            Error::GatewayPairingRequired { gateway, request_id } => json!({ "gateway": gateway, "request_id": request_id }),
            Error::ContextFull { tokens, limit, .. } => json!({ "tokens": tokens, "limit": limit }),
            Error::ModelMissing { name, path } => json!({ "name": name, "path": path }),
            Error::GatewayPayloadTooLarge { bytes, limit, .. } => json!({ "bytes": bytes, "limit": limit }),
            _ => return None,
        })
    }
}

/// Errors that end a job attempt. Stored on the job as `{code, message}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct JobError {
    pub code: String,
    pub message: String,
}

impl JobError {
    pub fn new(code: &str, message: impl Into<String>) -> JobError {
        JobError { code: code.to_owned(), message: message.into() }
    }
}

#[cfg(test)]
mod shape {
    use super::*;

    #[test]
    fn an_error_serializes_as_code_message_and_data() {
        let e = Error::GatewayServer { gateway: "claw".into(), status: 502, detail: "HTTP 502: an HTML page".into() };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "gateway.server_error");
        assert_eq!(v["message"], "claw failed (HTTP 502: an HTML page); the gateway or its model provider has a problem");
        assert_eq!(v["data"], serde_json::json!({ "gateway": "claw", "status": 502 }));
        let v = serde_json::to_value(Error::SearchEmpty).unwrap();
        assert_eq!(v.as_object().unwrap().keys().collect::<Vec<_>>(), ["code", "message"]);
    }
}
