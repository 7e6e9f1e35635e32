//! App-wide news for every window, low-rate, as emitted events — one task per engine feed:
//! - `conversation` ([`ConversationEvent`]): a conversation created, changed or deleted, a
//!   message added, a reply settled — by this app or by the CLI on the same database;
//! - `job` ([`JobNews`]): a job submitted, claimed, re-queued, finished or changed, as the row
//!   the table shows; progress; jobs pruned. A job's output lines are not sent here (they can
//!   come thousands a second): a job's output streams through a channel to the window that
//!   shows it;
//! - `approval` ([`ApprovalEvent`]): a command waits for a person, or was answered or expired
//!   — from any process on the database.
//!
//! A `resync` event means the feed fell behind: reload what is shown.

use gatehouse_engine::{ApprovalEvent, ConversationEvent, Engine};
use tauri::{AppHandle, Emitter, Runtime};

use crate::jobs::JobNews;

/// The event a conversation's news comes as.
pub const CONVERSATION: &str = "conversation";
/// The event a job's news comes as.
pub const JOB: &str = "job";
/// The event an approval's news comes as.
pub const APPROVAL: &str = "approval";

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
    let (handle, e) = (app.clone(), engine.clone());
    tauri::async_runtime::spawn(async move {
        let mut watch = match e.watch_jobs().await {
            Ok(w) => w,
            Err(e) => return tracing::error!(error = %e, "job news will not reach the window"),
        };
        while let Some(event) = watch.next().await {
            if let Some(news) = JobNews::of(event) {
                let _ = handle.emit::<JobNews>(JOB, news);
            }
        }
    });
    tauri::async_runtime::spawn(async move {
        let mut watch = match engine.watch_approvals().await {
            Ok(w) => w,
            Err(e) => return tracing::error!(error = %e, "approval requests will not reach the window"),
        };
        while let Some(event) = watch.next().await {
            let _ = app.emit::<ApprovalEvent>(APPROVAL, event);
        }
    });
}
