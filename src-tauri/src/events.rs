//! App-wide news for every window, low-rate, as emitted events — one task per engine feed:
//! - `conversation` ([`ConversationEvent`]): a conversation created, changed or deleted, a
//!   message added, a reply settled — by this app or by the CLI on the same database;
//! - `job` ([`JobFeed`]): a job submitted, claimed, re-queued, finished or changed.
//!   A job's output lines are not sent here (they can come thousands a second): a job's output
//!   streams through a channel to the window that shows it.
//!
//! A `resync` event means the feed fell behind: reload what is shown.

use gatehouse_engine::{ConversationEvent, Engine, JobFeed};
use tauri::{AppHandle, Emitter, Runtime};

/// The event a conversation's news comes as.
pub const CONVERSATION: &str = "conversation";
/// The event a job's news comes as.
pub const JOB: &str = "job";

/// Start forwarding the engine's feeds to the windows, until the app exits.
pub fn start<R: Runtime>(app: AppHandle<R>, engine: Engine) {
    let (handle, e) = (app.clone(), engine.clone());
    tauri::async_runtime::spawn(async move {
        let mut watch = match e.watch_conversations().await {
            Ok(w) => w,
            Err(e) => return tracing::error!(error = %e, "conversation news will not reach the window"),
        };
        while let Some(event) = watch.next().await {
            let _ = handle.emit::<ConversationEvent>(CONVERSATION, event);
        }
    });
    tauri::async_runtime::spawn(async move {
        let mut watch = match engine.watch_jobs().await {
            Ok(w) => w,
            Err(e) => return tracing::error!(error = %e, "job news will not reach the window"),
        };
        while let Some(event) = watch.next().await {
            if matches!(event, JobFeed::Output { .. } | JobFeed::Progress { .. }) {
                continue;
            }
            let _ = app.emit::<JobFeed>(JOB, event);
        }
    });
}
