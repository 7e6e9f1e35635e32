//! Job commands: the pool's state and controls, the job table, one job's output. Job news comes
//! as the `job` event ([`crate::events`]); a job's output streams through a channel to the
//! window that shows it ([`job_output`]).

use gatehouse_engine::{Canceled, Job, JobFilter, JobState, OutputLine, PoolStatus};
use tauri::ipc::Channel;
use tauri::State;

use crate::error::Result;
use crate::state::Core;

/// Most rows a table asks for at once (the window is virtualised; 10,000 rows is a page).
const MAX_ROWS: i64 = 10_000;

#[tauri::command]
pub async fn pool_status(core: State<'_, Core>) -> Result<PoolStatus> {
    Ok(core.engine.pool_status().await?)
}

/// Jobs newest first, all or in one state.
#[tauri::command]
pub async fn jobs(core: State<'_, Core>, state: Option<JobState>, limit: i64) -> Result<Vec<Job>> {
    Ok(core.engine.jobs(&JobFilter { state, limit: Some(limit.clamp(1, MAX_ROWS)) }).await?)
}

#[tauri::command]
pub async fn job(core: State<'_, Core>, id: i64) -> Result<Job> {
    Ok(core.engine.job(id).await?)
}

/// Cancel a job: `true` if it ended now (it was queued), `false` if its pool was asked to stop it.
#[tauri::command]
pub async fn cancel_job(core: State<'_, Core>, id: i64) -> Result<bool> {
    Ok(core.engine.cancel(id).await? == Canceled::Done)
}

#[tauri::command]
pub async fn retry_job(core: State<'_, Core>, id: i64) -> Result<()> {
    Ok(core.engine.retry(id).await?)
}

/// Pause (`true`) or resume the pool: every process's workers stop or start claiming.
#[tauri::command]
pub async fn pause_pool(core: State<'_, Core>, paused: bool) -> Result<PoolStatus> {
    if paused {
        core.engine.pause_pool().await?;
    } else {
        core.engine.resume_pool().await?;
    }
    Ok(core.engine.pool_status().await?)
}

/// Job `id`'s output after line `after` through `channel`: the stored lines, then new ones as
/// they are written, until the job has finished or the window stops listening. Returns once
/// following has started.
#[tauri::command]
pub async fn job_output(core: State<'_, Core>, id: i64, after: i64, channel: Channel<Vec<OutputLine>>) -> Result<()> {
    let mut lines = core.engine.follow_output(id, after).await?;
    tauri::async_runtime::spawn(async move {
        loop {
            match lines.next().await {
                Ok(Some(page)) => {
                    if channel.send(page).is_err() {
                        return; // the window stopped listening
                    }
                }
                Ok(None) => return,
                Err(e) => return tracing::warn!(job = id, error = %e, "stopped following the job's output"),
            }
        }
    });
    Ok(())
}
