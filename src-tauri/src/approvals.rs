//! Approval commands: the commands waiting for a person — asked by this app's chat or jobs, or
//! by any other process on the database — and the person's answer. The engine stores the
//! question and waits for the first answer from anywhere; news of questions asked, answered or
//! expired comes as the `approval` event ([`crate::events`]), which opens and closes the dialog.

use std::time::Duration;

use gatehouse_engine::{Approval, ApprovalRequest};
use tauri::State;

use crate::error::{Failure, Result};
use crate::state::Core;

/// The longest "allow for a time" the dialog offers, in minutes (the engine caps grants at a day).
const MAX_GRANT_MINUTES: u32 = 24 * 60;

/// A person's answer in the dialog.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum Answer {
    /// Run it this once.
    AllowOnce,
    /// Run it, and the same command in the same directory for the same requester, for this long.
    AllowFor { minutes: u32 },
    /// Do not run it.
    Deny,
}

impl Answer {
    fn approval(self) -> Result<Approval> {
        Ok(match self {
            Answer::AllowOnce => Approval::Once,
            Answer::AllowFor { minutes } if (1..=MAX_GRANT_MINUTES).contains(&minutes) => {
                Approval::For(Duration::from_secs(u64::from(minutes) * 60))
            }
            Answer::AllowFor { minutes } => {
                return Err(Failure::invalid(format!("allow for 1 to {MAX_GRANT_MINUTES} minutes, not {minutes}")))
            }
            Answer::Deny => Approval::Denied,
        })
    }
}

/// Commands waiting for a person now, oldest first.
#[tauri::command]
pub async fn approvals(core: State<'_, Core>) -> Result<Vec<ApprovalRequest>> {
    Ok(core.engine.approvals().await?)
}

/// Answer request `id`; returns it as answered. An answer to a request already answered
/// (elsewhere) or expired is an error saying so.
#[tauri::command]
pub async fn answer_approval(core: State<'_, Core>, id: i64, answer: Answer) -> Result<ApprovalRequest> {
    Ok(core.engine.answer_approval(id, answer.approval()?).await?)
}
