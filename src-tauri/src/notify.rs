//! Desktop notifications: a job that finished or failed while no window of the app was on
//! screen, and each command waiting for approval while the main window is not in front — each
//! as the settings say (`notify_finished`, `notify_failed`, `notify_approvals`, read when the
//! news comes, so a change holds at once). They come from this process, for news from every
//! process on the database: a job run by `gatehouse worker` is announced too.

use gatehouse_engine::{ApprovalEvent, Engine, Job, JobFeed, JobState};
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_notification::NotificationExt;

use crate::windows::MAIN;

/// A notification's title and text.
type Note = (String, String);

/// What to say of a job that ended, if anything (a canceled job was canceled by a person).
pub fn finished(job: &Job, settings: &gatehouse_engine::Settings) -> Option<Note> {
    match job.state {
        JobState::Succeeded if settings.notify_finished => Some((format!("Job #{} finished", job.id), job.title.clone())),
        JobState::Failed if settings.notify_failed => {
            let why = job.error.as_ref().map(|e| e.message.clone()).unwrap_or_else(|| "it failed".into());
            Some((format!("Job #{} failed", job.id), format!("{}\n{why}", job.title)))
        }
        _ => None,
    }
}

/// Whether any of the app's windows is on screen.
fn any_window_shown<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.webview_windows().values().any(|w| w.is_visible().unwrap_or(false) && !w.is_minimized().unwrap_or(false))
}

/// Whether the main window is where the person looks (shown and focused).
fn main_in_front<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.get_webview_window(MAIN).is_some_and(|w| w.is_visible().unwrap_or(false) && w.is_focused().unwrap_or(false))
}

fn show<R: Runtime>(app: &AppHandle<R>, (title, body): Note) {
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::warn!(error = %e, "a notification could not be shown");
    }
}

/// Announce job endings and approval requests until the app exits.
pub fn start<R: Runtime>(app: AppHandle<R>, engine: Engine) {
    tauri::async_runtime::spawn(async move {
        let (mut jobs, mut approvals) = match (engine.watch_jobs().await, engine.watch_approvals().await) {
            (Ok(j), Ok(a)) => (j, a),
            (Err(e), _) | (_, Err(e)) => return tracing::warn!(error = %e, "no notifications: the feeds cannot be read"),
        };
        loop {
            let note = tokio::select! {
                event = jobs.next() => match event {
                    None => return,
                    Some(JobFeed::Finished { job }) if !any_window_shown(&app) => match engine.settings().await {
                        Ok(settings) => finished(&job, &settings),
                        Err(e) => { tracing::warn!(error = %e, "settings unreadable"); None }
                    },
                    Some(_) => None,
                },
                event = approvals.next() => match event {
                    None => return,
                    Some(ApprovalEvent::Requested { approval }) if !main_in_front(&app) => match engine.settings().await {
                        Ok(s) if s.notify_approvals => Some((
                            "A command waits for your approval".to_owned(),
                            format!("{}\nOpen Gatehouse to allow or deny it.", approval.prompt),
                        )),
                        Ok(_) => None,
                        Err(e) => { tracing::warn!(error = %e, "settings unreadable"); None }
                    },
                    Some(_) => None,
                },
            };
            if let Some(note) = note {
                show(&app, note);
            }
        }
    });
}
