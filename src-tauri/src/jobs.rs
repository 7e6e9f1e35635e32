//! Job commands: the pool's state and controls, the job table, one job's output. Job news comes
//! as the `job` event ([`crate::events`]); a job's output streams through a channel to the
//! window that shows it ([`job_output`]).

use gatehouse_engine::{Canceled, Job, JobFeed, JobFilter, JobState, OutputLine, PoolStatus};
use tauri::ipc::Channel;
use tauri::State;

use crate::error::Result;
use crate::state::Core;

/// Most rows a table asks for at once (the window is virtualised; 10,000 rows is a page).
const MAX_ROWS: i64 = 10_000;
/// Stored lines sent per message when a job's output is opened.
const OUTPUT_PAGE: i64 = 500;

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

/// Job `id`'s output after line `after`: the stored lines, then new ones as they are written,
/// each line once and in order, until the job has finished and everything stored was sent
/// (or the window stops listening). Returns once following has started.
#[tauri::command]
pub async fn job_output(core: State<'_, Core>, id: i64, after: i64, channel: Channel<Vec<OutputLine>>) -> Result<()> {
    core.engine.job(id).await?;
    // Watching first, then reading: a line written in between is in one or the other, and
    // `seq` drops the doubles.
    let mut watch = core.engine.watch_jobs().await?;
    let engine = core.engine.clone();
    tauri::async_runtime::spawn(async move {
        let (mut last, open) = send_stored(&engine, id, after, &channel).await;
        if !open || engine.job(id).await.is_ok_and(|j| j.state.is_finished()) {
            return;
        }
        while let Some(event) = watch.next().await {
            match event {
                JobFeed::Output { id: of, line } if of == id && line.seq > last => {
                    last = line.seq;
                    if channel.send(vec![line]).is_err() {
                        return;
                    }
                }
                JobFeed::Finished { job } if job.id == id => {
                    send_stored(&engine, id, last, &channel).await;
                    return;
                }
                JobFeed::Resync => match send_stored(&engine, id, last, &channel).await {
                    (at, true) => last = at,
                    (_, false) => return,
                },
                _ => {}
            }
        }
    });
    Ok(())
}

/// Send job `id`'s stored lines after `after`, page by page. Returns the last `seq` sent and
/// whether the window is still listening.
async fn send_stored(engine: &gatehouse_engine::Engine, id: i64, after: i64, channel: &Channel<Vec<OutputLine>>) -> (i64, bool) {
    let mut at = after;
    loop {
        let lines = match engine.output(id, at, OUTPUT_PAGE).await {
            Ok(lines) => lines,
            Err(e) => {
                tracing::warn!(job = id, error = %e, "cannot read the job's output");
                return (at, true);
            }
        };
        let Some(end) = lines.last().map(|l| l.seq) else { return (at, true) };
        if channel.send(lines).is_err() {
            return (at, false);
        }
        at = end;
    }
}
