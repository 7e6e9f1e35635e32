//! The engine's one error type.
//!
//! Every variant has a stable [`Error::code`] that programs branch on (the CLI's `--json`, the
//! desktop IPC's `{code, message}`), and a `Display` that is one sentence a person can act on —
//! in words, never in one front end's syntax: the CLI adds its own hints by code (naming its
//! commands), the app its own. Front ends never parse the message; what a program may need
//! (an id, an HTTP status, a pairing request) is in [`Error::data`]. Serialized, an error is
//! `{code, message, data?}`.

use std::path::PathBuf;

/// What every fallible engine call returns; the failure is an [`Error`] unless said otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine: one variant per failure a caller may need to
/// tell apart, each with its stable [`Error::code`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory, or a file Gatehouse keeps in it (the lock, the OpenClaw device key),
    /// cannot be found, created, locked, read or written.
    #[error("the data directory {path} cannot be used: {reason}")]
    DataDir {
        /// The directory or file that could not be used.
        path: PathBuf,
        /// Why, in words: the OS error, or what was being attempted.
        reason: String,
    },

    /// SQLite says the database file is not a database or is damaged (`NOTADB`, `CORRUPT`).
    #[error("the database {path} is not a valid Gatehouse database (it is corrupt or not SQLite); move it aside and Gatehouse will create a new one")]
    StoreCorrupt {
        /// The database file.
        path: PathBuf,
    },

    /// The database was migrated by a later Gatehouse: its schema version is past this build's
    /// last migration, so it is not opened.
    #[error("the database {path} was written by a newer Gatehouse (schema version {found}, this build knows up to {known}); upgrade Gatehouse to use it")]
    StoreNewerSchema {
        /// The database file.
        path: PathBuf,
        /// The schema version in the file (its `user_version`; -1 if unreadable).
        found: i64,
        /// The newest schema version this build knows (its number of migrations).
        known: i64,
    },

    /// SQLite or a write under the data directory ran out of disk space (`SQLITE_FULL`, `ENOSPC`).
    #[error("the disk holding the database is full; free some space and try again")]
    DiskFull,

    /// SQLite stayed busy or locked past the busy timeout: another process held the database.
    #[error("the database is busy (another Gatehouse process held it for too long); try again")]
    StoreBusy,

    /// Opening the database: a PRAGMA the engine relies on (WAL, `synchronous`, foreign keys)
    /// reads back other than it was set.
    #[error("SQLite did not accept the setting `{pragma}` (wanted {wanted}, it reports {got}); the database cannot be used safely")]
    StorePragma {
        /// The PRAGMA's name.
        pragma: &'static str,
        /// The value the engine set and expected back.
        wanted: String,
        /// The value SQLite reports instead.
        got: String,
    },

    /// A backup, a restore or a snapshot could not be made, or its source is not a usable
    /// Gatehouse database. Carries what went wrong and what to do.
    #[error("{0}")]
    Backup(String),

    /// A restore was asked while Gatehouse runs on the data directory (the app, a worker, a
    /// chat hold it open).
    #[error("Gatehouse is running on {path} (the app, a `gatehouse worker` or a chat has it open); quit it, then restore")]
    InUse {
        /// The data directory.
        path: PathBuf,
    },

    /// Any other database failure: an unclassified SQLite error, a failed migration, a database
    /// task that died. Carries the error's text.
    #[error("database error: {0}")]
    Store(String),

    /// The shared PostgreSQL database (`--database`) could not be reached or refused the
    /// connection. `at` is its URL without the password.
    #[error("cannot reach the shared database at {at}: {reason}; check that PostgreSQL runs there and that the URL (--database or GATEHOUSE_DATABASE_URL) is right")]
    SharedUnreachable {
        /// The URL, password removed.
        at: String,
        /// What the connection attempt said.
        reason: String,
    },

    /// The engine is stopping: the store writer or the job pool is gone, so the request was
    /// not carried out.
    #[error("the engine is shutting down")]
    ShuttingDown,

    /// A job id names no job (never submitted, or pruned). Carries the id.
    #[error("there is no job {0}")]
    JobNotFound(i64),

    /// A job operation does not fit the job's state: cancelling a finished job, retrying one
    /// that has not finished or that succeeded.
    #[error("job {id} is {state}; {hint}")]
    JobInvalidState {
        /// The job's id.
        id: i64,
        /// The state the job is in now, as stored (`succeeded`, `running`, ...).
        state: &'static str,
        /// Why that state rules the request out, e.g. "it has already finished".
        hint: &'static str,
    },

    /// A job's input is rejected (an exec job with no program, a relative working directory,
    /// a bad variable name). Carries the sentence.
    #[error("{0}")]
    JobInvalid(String),

    /// A setting out of its range.
    #[error("{0}")]
    SettingsInvalid(String),

    /// A job's kind has no runner registered in this process (e.g. `exec` where exec is not
    /// set up). Carries the kind.
    #[error("this Gatehouse has no runner for `{0}` jobs")]
    JobKindUnavailable(String),

    /// The gateway answered HTTP 401, or OpenClaw refused the token (`AUTH_*`).
    #[error("{gateway} refused the credentials ({detail}); check the token of its profile")]
    GatewayUnauthorized {
        /// The gateway profile's name.
        gateway: String,
        /// The status and what the gateway said.
        detail: String,
    },

    /// The gateway answered HTTP 403, or OpenClaw reported a missing scope.
    #[error("{gateway} does not allow this ({detail}); the token lacks a permission or the model is not allowed")]
    GatewayForbidden {
        /// The gateway profile's name.
        gateway: String,
        /// The status and what the gateway said.
        detail: String,
    },

    /// The gateway answered HTTP 404: a wrong base URL, or a model it does not serve.
    #[error("{gateway} has no such endpoint or model ({detail}); check the URL and the model name")]
    GatewayNotFound {
        /// The gateway profile's name.
        gateway: String,
        /// The status and what the gateway said.
        detail: String,
    },

    /// The gateway answered HTTP 429.
    #[error("{gateway} is rate-limiting requests{}; wait and try again", retry_after.map(|s| format!(" (retry after {s} s)")).unwrap_or_default())]
    GatewayRateLimited {
        /// The gateway profile's name.
        gateway: String,
        /// Seconds to wait, from its `Retry-After` header when it sent one.
        retry_after: Option<u64>,
    },

    /// The gateway answered with an HTTP 5xx status.
    #[error("{gateway} failed ({detail}); the gateway or its model provider has a problem")]
    GatewayServer {
        /// The gateway profile's name.
        gateway: String,
        /// The HTTP status, 500 to 599.
        status: u16,
        /// The status and a short description of the body.
        detail: String,
    },

    /// No connection to the gateway: refused, no route, connect timeout, an OpenClaw gateway
    /// still starting, or an open OpenClaw link lost.
    #[error("cannot reach {gateway} at {url} ({reason}); is it running?")]
    GatewayUnreachable {
        /// The gateway profile's name.
        gateway: String,
        /// The address tried (empty when an open link was lost).
        url: String,
        /// Why the connection failed.
        reason: String,
    },

    /// The gateway sent no response headers within the response timeout, or went silent
    /// mid-reply past the idle timeout.
    #[error("{gateway} {what}")]
    GatewayTimeout {
        /// The gateway profile's name.
        gateway: String,
        /// The rest of the sentence: which wait ran out, and after how many seconds.
        what: String,
    },

    /// The gateway's answer cannot be understood: a web page, JSON that is not a chat
    /// completion, a malformed stream event or OpenClaw frame.
    #[error("{gateway} sent something that is not an OpenAI-compatible reply: {detail}")]
    GatewayProtocol {
        /// The gateway profile's name.
        gateway: String,
        /// What was wrong with the answer.
        detail: String,
    },

    /// An OpenAI-compatible reply stream ended, or broke, before `[DONE]`.
    #[error("{gateway} stopped the reply before it was complete (the connection ended without [DONE])")]
    GatewayIncomplete {
        /// The gateway profile's name.
        gateway: String,
    },

    /// The gateway (or the local model) reported an error of its own: an error in the reply,
    /// an unexpected HTTP status, an OpenClaw error with no variant of its own.
    #[error("{gateway} reported an error during the reply: {message}")]
    GatewayReplyError {
        /// The gateway profile's name.
        gateway: String,
        /// The error as the gateway gave it.
        message: String,
    },

    /// A gateway was asked for by a name no profile has. Carries the name.
    #[error("there is no gateway named `{0}`")]
    GatewayUnknown(String),

    /// A gateway profile cannot be used as written: a bad field, an unreadable or unsafe token
    /// file, a kind this build does not support. Carries the sentence.
    #[error("{0}")]
    GatewayInvalid(String),

    /// Reading or storing a profile's token in the OS keyring failed (no Secret Service, a
    /// locked keyring, ...).
    #[error(
        "the keyring is not available for gateway `{profile}` ({reason}); on a desktop, unlock GNOME Keyring \
         or KWallet (Linux needs a Secret Service), or keep the token in an environment variable or an owner-only file"
    )]
    KeyringUnavailable {
        /// The gateway profile whose token was wanted.
        profile: String,
        /// The keyring's own error.
        reason: String,
    },

    /// A conversation id names no conversation (never created, or deleted). Carries the id.
    #[error("there is no conversation {0}")]
    ConversationNotFound(i64),

    /// A chat request does not fit the conversation: editing a reply, continuing a reply that
    /// is not the last, sending while a reply is written, a blank title. Carries the sentence.
    #[error("{0}")]
    ChatInvalid(String),

    /// An export could not be written to its file. Carries the sentence.
    #[error("{0}")]
    ExportFailed(String),

    /// An exec rule id names no rule (removing one that is gone). Carries the id.
    #[error("there is no exec rule {0}")]
    RuleNotFound(i64),

    /// A message id names no message. Carries the id.
    #[error("there is no message {0}")]
    MessageNotFound(i64),

    /// A conversation search whose query has no word left to look for.
    #[error("a search needs at least one word")]
    SearchEmpty,

    /// An exec request or setting is malformed, e.g. a workspace root that does not exist,
    /// is not allowed, or overlaps another. Carries the sentence.
    #[error("{0}")]
    ExecInvalid(String),

    /// A command was refused: by the exec policy, by a rule on environment variables, or by a
    /// person declining it. Carries why.
    #[error("blocked by policy: {0}")]
    ExecDenied(String),

    /// A command the policy sends for approval got none: nobody could be asked, or nobody
    /// answered in time. Carries the policy's reason.
    #[error("this command needs a person's approval ({0}) and nobody gave it")]
    ExecNeedsApproval(String),

    /// An approval request id names no request. Carries the id.
    #[error("there is no approval request {0}")]
    ApprovalNotFound(i64),

    /// Answering an approval request that was already answered, expired or withdrawn.
    #[error("approval request {id} is no longer open: {state}")]
    ApprovalClosed {
        /// The request's id.
        id: i64,
        /// The state it has now.
        state: String,
    },

    /// A command's working directory cannot be used: not a directory, outside its workspace,
    /// changed while checked, or its workspace cannot be created. Carries the sentence.
    #[error("{0}")]
    ExecWorkspace(String),

    /// Commands cannot be confined here: bubblewrap is missing or cannot create its
    /// namespaces, or the system call filter cannot be built. Carries the sentence.
    #[error("{0}")]
    SandboxUnavailable(String),

    /// This build's system has no bubblewrap (Windows, macOS): commands are refused, never run
    /// unconfined. Carries the system's name.
    #[error(
        "commands are not run on {0}: Gatehouse runs them only inside its bubblewrap sandbox, which exists on Linux, \
         and never without it"
    )]
    ExecUnsupported(&'static str),

    /// A local model's GGUF file is not where its name says it is.
    #[error("the local model `{name}` is not at {}; fetch the built-in one, or add a GGUF model of your own", path.display())]
    ModelMissing {
        /// The model's name.
        name: String,
        /// Where its file was looked for.
        path: PathBuf,
    },

    /// llama.cpp did not start, or could not load a model file or give it a thread.
    #[error("the model {} cannot be used: {reason}", path.display())]
    ModelLoad {
        /// The model file (empty when no one file is to blame).
        path: PathBuf,
        /// What failed.
        reason: String,
    },

    /// A model a person adds is unusable: a bad name, a file that cannot be read or is not
    /// GGUF. Carries the sentence.
    #[error("{0}")]
    ModelInvalid(String),

    /// Downloading the built-in model failed (a folder not created, the fetcher failing or not
    /// starting). Carries the sentence.
    #[error("could not fetch the built-in model: {0}")]
    ModelFetch(String),

    /// A conversation's prompt has more tokens than the local model's context slot holds.
    #[error("this conversation is {tokens} tokens long and the local model {model} holds {limit}; start a new conversation, or use a gateway whose model has a longer context")]
    ContextFull {
        /// The local model's name.
        model: String,
        /// The prompt's length, in tokens.
        tokens: u32,
        /// How many tokens the model's slot holds.
        limit: u32,
    },

    /// The model still asked for tools after the most tool rounds one turn may take; the turn
    /// was stopped.
    #[error("the model was still asking to run tools after {rounds} rounds, so its turn was stopped there; ask it again more precisely")]
    ToolRounds {
        /// The rounds a turn may take (the limit that was hit).
        rounds: usize,
    },

    /// OpenClaw has not paired this device yet (`NOT_PAIRED`, `PAIRING_REQUIRED`).
    #[error("{gateway} has not approved this device yet; on the gateway's machine run `openclaw devices approve {request_id}`, then try again")]
    GatewayPairingRequired {
        /// The gateway profile's name.
        gateway: String,
        /// The pairing request to approve on the gateway (empty if it sent none).
        request_id: String,
    },

    /// OpenClaw rejected the device's signature (`DEVICE_AUTH_SIGNATURE_INVALID`), usually
    /// because the device key changed.
    #[error("{gateway} rejected this device's signature; if the device key under the data directory's openclaw/ was changed, move it aside and pair again")]
    GatewayBadSignature {
        /// The gateway profile's name.
        gateway: String,
    },

    /// An OpenClaw reply was cut off: reconnecting gave up, or after a reconnect the gateway
    /// no longer knew the run.
    #[error("{gateway} lost the run mid-reply (it restarted, or the connection stayed down too long); send the message again to get a whole reply")]
    GatewayRunLost {
        /// The gateway profile's name.
        gateway: String,
    },

    /// OpenClaw said it is shutting down and closed the link.
    #[error("{gateway} is shutting down; try again once it is back")]
    GatewayShuttingDown {
        /// The gateway profile's name.
        gateway: String,
    },

    /// A frame for OpenClaw is over the gateway's payload limit, or the gateway closed the link
    /// because one was.
    #[error("the message is too large for {gateway} ({}its limit is {limit} bytes); send something shorter", bytes.map(|b| format!("{b} bytes; ")).unwrap_or_default())]
    GatewayPayloadTooLarge {
        /// The gateway profile's name.
        gateway: String,
        /// The frame's size in bytes, when known (not when the gateway closed the link).
        bytes: Option<usize>,
        /// The largest payload the gateway takes, in bytes.
        limit: usize,
    },

    /// A local-model profile was used in a build without the `local` feature.
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
            Error::SharedUnreachable { .. } => "store.shared_unreachable",
            Error::Backup(_) => "store.backup_failed",
            Error::InUse { .. } => "store.in_use",
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
            Error::ExportFailed(_) => "chat.export_failed",
            Error::RuleNotFound(_) => "exec.rule_not_found",
            Error::ExecInvalid(_) => "exec.invalid",
            Error::ExecDenied(_) => "exec.denied",
            Error::ExecNeedsApproval(_) => "exec.needs_approval",
            Error::ApprovalNotFound(_) => "approval.not_found",
            Error::ApprovalClosed { .. } => "approval.closed",
            Error::ExecWorkspace(_) => "exec.workspace",
            Error::SandboxUnavailable(_) => "exec.sandbox_unavailable",
            Error::ExecUnsupported(_) => "exec.unsupported",
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
    /// The stable [`Error::code`]; programs branch on it.
    pub code: String,
    /// The sentence a person reads: the error's `Display`.
    pub message: String,
    /// What to do next, in the front end's own terms (a command to run); the engine leaves it empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub hint: Option<String>,
    /// What a program may need besides the code ([`Error::data`]): an id, a status, a limit.
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
            Error::GatewayUnauthorized { gateway, .. } | Error::GatewayForbidden { gateway, .. } | Error::GatewayNotFound { gateway, .. } => {
                json!({ "gateway": gateway })
            }
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
    /// The stable code of the failure (an [`Error::code`], or a runner's own such as `job.exit`).
    pub code: String,
    /// The sentence a person reads in the job's details.
    pub message: String,
}

impl JobError {
    /// A job error from its code and the sentence to show.
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
