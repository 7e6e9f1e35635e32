//! Gatehouse's engine: everything a front end needs, with no UI dependency.
//!
//! One [`Engine`] value owns the store and (optionally) a worker pool. Front ends — the
//! `gatehouse` CLI, the desktop app — call its methods and subscribe to its events; they never
//! touch SQL or spawn processes themselves.
//!
//! Layout:
//! - `engine`: the [`Engine`] itself, its methods grouped by domain — the API of every front end.
//! - [`store`]: the SQLite database (one writer thread that batches writes, a read pool).
//! - [`pool`]: jobs, the worker pool, leases and rescue; `pool::ops` holds every write;
//!   [`pool::feed`] is the database feed every process can follow: one follower thread reads
//!   what any process changed and tells it as jobs ([`Engine::watch_jobs`]), approvals
//!   ([`Engine::watch_approvals`]) and conversations ([`Engine::watch_conversations`]).
//! - [`exec`]: running commands — policy, approval, the bubblewrap sandbox, audit (the `exec`
//!   job kind, the model's tool, [`Engine::exec`]); its module doc maps the sandbox;
//!   [`exec::approval`] holds the stored questions any process can answer.
//! - [`chat`]: conversations and streamed replies; `chat::ops` holds every write;
//!   `chat::branch` keeps turn history as a tree (versions of a message, the branch shown,
//!   and which gateway session a turn goes on in); [`chat::live`] follows a reply from any
//!   window ([`Engine::watch_reply`]), [`chat::feed`] reads conversation changes for the feed, [`chat::pages`] pages the list
//!   and long conversations, [`chat::search`] searches as you type; the `prompt` job kind and
//!   the model's tools live here too.
//! - [`gateway`]: where replies come from — the [`gateway::Gateway`] trait and its transports
//!   (OpenAI-compatible HTTP + SSE, OpenClaw's WebSocket protocol, the built-in `local`
//!   model), gateway profiles and their tokens (environment, file or OS keyring).
//! - [`models`]: GGUF files for the `local` gateway, and fetching the built-in one.
//! - [`settings`]: the settings every front end shares (worker count, retention,
//!   notifications), read by running pools too.
//! - [`clock`], [`paths`], [`error`]: injected time, the data directory, the error type
//!   (every variant has a stable code).
//!
//! Time and randomness are injected through [`EngineOptions`], so leases, backoff and retention
//! are tested by moving a [`ManualClock`], not by waiting.

#![warn(missing_docs)]

mod engine;
pub mod chat;
pub mod clock;
pub mod error;
pub mod exec;
pub mod gateway;
pub mod models;
pub mod paths;
pub mod pool;
pub mod settings;
pub mod store;

pub use chat::prompt_job::PromptSpec;
pub use chat::ops::import_session::{ImportFailure, Imported};
pub use chat::feed::{ConversationEvent, ConversationWatch};
pub use chat::live::{ReplyFeed, ReplyWatch};
pub use chat::pages::{ConversationPage, MessagePage, MessagesAt};
pub use chat::search::SearchHit;
pub use chat::{Conversation, Message, MessageState, Reply, ReplyEvent};
pub use settings::{Settings, SettingsChange};
pub use store::backup::{restore, Copied, Restored};
pub use gateway::profile::{GatewayKind, Profile};
pub use clock::{Clock, ManualClock, Millis, SharedClock, SystemClock};
pub use error::{Error, ErrorBody, JobError, Result};
pub use exec::approval::{ApprovalEvent, ApprovalRequest, ApprovalState, ApprovalWatch};
pub use exec::{Approval, Approver, ExecRequest, ExecResult, ExecSpec, Launcher, NoApprover, Requester, StdLauncher};
pub use pool::job::{Job, JobEvent, JobState, NewJob, OutputLine, Stream};
pub use pool::kind::{JobKind, JobRun, Outcome};
pub use pool::ops::cancel::Canceled;
pub use pool::query::JobFilter;
pub use pool::feed::{FeedEvent, JobFeed, JobWatch, Watch};
pub use pool::follow::OutputFollow;
pub use pool::{Pool, PoolConfig};
pub use engine::{Engine, EngineOptions, NewRule, PoolStatus, SendOptions, DEFAULT_APPROVAL_WAIT};
