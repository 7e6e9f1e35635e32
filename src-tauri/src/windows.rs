//! The windows' life: a first paint that must come, links that open outside, a close that
//! hides the main window while jobs run here rather than stopping them, the small jobs window,
//! and quitting — which asks first when jobs run here: wait for them, or re-queue them now.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tauri::{AppHandle, Emitter, Manager, Runtime, State, WebviewUrl, WebviewWindowBuilder, WindowEvent};
use tauri_plugin_opener::OpenerExt;

use crate::error::{Failure, Result};
use crate::state::Core;

/// The main window's label (the desktop test contract names it).
pub const MAIN: &str = "main";
/// The small job monitor's label, opened from the tray (the desktop test contract names it).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // the tray's: Linux only so far
pub const JOBS: &str = "jobs";
/// Event to a window: show this job (its id).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // the tray's: Linux only so far
pub const OPEN_JOB: &str = "open-job";
/// Event to the main window: the person asked to quit while jobs run here (how many).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // the tray's: Linux only so far
pub const QUIT_ASKED: &str = "quit-asked";
/// How long "wait for them" waits: as long as the jobs take (each has its own timeout).
const WAIT_FOR_JOBS: Duration = Duration::from_secs(365 * 24 * 3600);

/// WebKitGTK's switch for the renderer that leaves the window blank on some GPU drivers
/// (the problem Jan, also on Tauri, met: tauri-apps/tauri#9304).
pub const DMABUF_ENV: &str = "WEBKIT_DISABLE_DMABUF_RENDERER";

/// How long the first paint may take before the window counts as blank. A debug build under
/// Xvfb paints in about a second; a cold start on a slow disk takes a few.
pub const FIRST_PAINT: Duration = Duration::from_secs(15);

/// How long to wait for the first paint: [`FIRST_PAINT`], or `GATEHOUSE_FIRST_PAINT_TIMEOUT_MS`
/// (a very slow machine may want more; the end-to-end test sets it to 1 to see the fallback work).
fn first_paint_timeout() -> Duration {
    std::env::var("GATEHOUSE_FIRST_PAINT_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(FIRST_PAINT)
}

/// The file that remembers the fallback was needed, so later starts use it at once.
fn fallback_marker(data_dir: &Path) -> PathBuf {
    data_dir.join("desktop-webkit-fallback")
}

/// WebKitGTK's switch for compositing layers on the GPU.
pub const COMPOSITING_ENV: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";

/// Before WebKit starts: if an earlier start needed the fallback, use it now; with no GPU to
/// composite on, draw without compositing layers.
pub fn prepare_webkit(data_dir: &Path) {
    if std::env::var_os(DMABUF_ENV).is_none() && fallback_marker(data_dir).exists() {
        tracing::info!("using {DMABUF_ENV}=1: an earlier start on this machine showed a blank window without it");
        // SAFETY (edition 2024 terms): called from main before any other thread starts.
        std::env::set_var(DMABUF_ENV, "1");
    }
    // Without a GPU render node, WebKit composites its layers with software GL (llvmpipe), which
    // costs more than it saves: measured under Xvfb on 2 cores, a reply streaming at 100
    // tokens/s had frames of 40–57 ms with it and ≤ 40 ms without, and the web process took
    // 262 MiB at rest with it and 181 MiB without (docs/performance.md). With a GPU, WebKit's
    // default stays.
    if std::env::var_os(COMPOSITING_ENV).is_none() && !has_gpu() {
        tracing::info!("no GPU render node (/dev/dri/renderD*): using {COMPOSITING_ENV}=1");
        std::env::set_var(COMPOSITING_ENV, "1");
    }
}

/// Whether a GPU render node is there for WebKit to composite on.
fn has_gpu() -> bool {
    std::fs::read_dir("/dev/dri")
        .map(|dir| dir.flatten().any(|e| e.file_name().to_string_lossy().starts_with("renderD")))
        .unwrap_or(false)
}

/// When the process started, on the wall clock in milliseconds (the page reports its paint on
/// that clock): start-up is logged as time since then.
pub static STARTED_AT: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

/// Milliseconds since [`STARTED_AT`].
pub fn since_start() -> f64 {
    STARTED_AT.get().map(|s| epoch_ms() - s).unwrap_or_default()
}

/// Now on the wall clock, in milliseconds since the Unix epoch.
pub fn epoch_ms() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or_default()
}

/// Set when the UI reports its first frame.
#[derive(Default)]
pub struct Painted(pub Arc<AtomicBool>);

/// The UI calls this once the app is on screen, with the wall-clock times of the window's first
/// frame `at` (the app's outline, index.html) and of the mounted app's first frame `ready` (the
/// call itself is served only once the engine is open). The desktop benchmark reads the log line
/// to time start-up.
#[tauri::command]
pub fn painted(painted: State<'_, Painted>, at: f64, ready: Option<f64>) {
    if !painted.0.swap(true, Ordering::SeqCst) {
        let started = STARTED_AT.get().copied().unwrap_or_default();
        let ready = ready.map(|r| r - started).unwrap_or_default();
        tracing::info!("first paint after {:.0} ms (at {at:.0}), app ready after {ready:.0} ms", at - started);
    }
}

/// Open an http(s) or mailto link in the system's browser (never in the app's webview).
#[tauri::command]
pub fn open_link<R: Runtime>(app: AppHandle<R>, url: String) -> Result<()> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https" | "mailto")) {
        return Err(Failure::invalid(format!("only web and mail links open from a message, not {url}")));
    }
    app.opener().open_url(url, None::<&str>).map_err(|e| Failure::invalid(format!("the link could not be opened: {e}")))
}

/// If no first paint comes within [`FIRST_PAINT`] (see [`first_paint_timeout`]), start again with the DMA-BUF renderer off,
/// and remember that for later starts. Does nothing when the fallback is already on.
pub fn watch_first_paint<R: Runtime>(app: &AppHandle<R>, data_dir: PathBuf) {
    if std::env::var_os(DMABUF_ENV).is_some() {
        return;
    }
    let painted = app.state::<Painted>().0.clone();
    let app = app.clone();
    let timeout = first_paint_timeout();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(timeout).await;
        if painted.load(Ordering::SeqCst) {
            return;
        }
        tracing::warn!(
            "the window did not paint within {timeout:?}; starting again with {DMABUF_ENV}=1 (WebKitGTK's DMA-BUF \
             renderer leaves the window blank with some GPU drivers); later starts use it at once"
        );
        if let Err(e) = std::fs::write(fallback_marker(&data_dir), b"no first paint without WEBKIT_DISABLE_DMABUF_RENDERER=1\n") {
            tracing::warn!(error = %e, "cannot remember the fallback");
        }
        std::env::set_var(DMABUF_ENV, "1");
        // Let go of the single-instance name first, or the new process would hand its
        // arguments to this one and exit.
        tauri_plugin_single_instance::destroy(&app);
        app.restart();
    });
}

/// Closing the main window while jobs run in this process hides it instead; the app quits
/// when they have finished (and the window is still closed).
pub fn on_window_event<R: Runtime>(window: &tauri::Window<R>, event: &WindowEvent) {
    let WindowEvent::CloseRequested { api, .. } = event else { return };
    if window.label() != MAIN {
        return;
    }
    let core = window.state::<Core>();
    let running = core.engine.jobs_running_here();
    if running == 0 {
        return;
    }
    api.prevent_close();
    let _ = window.hide();
    tracing::info!(running, "window closed while jobs run: hidden until they finish");
    let (app, engine) = (window.app_handle().clone(), core.engine.clone());
    tauri::async_runtime::spawn(async move {
        let mut events = engine.subscribe();
        loop {
            let hidden = app.get_webview_window(MAIN).is_some_and(|w| !w.is_visible().unwrap_or(true));
            if !hidden {
                return; // opened again: it is the person's to close
            }
            if engine.jobs_running_here() == 0 {
                return app.exit(0);
            }
            if let Err(tokio::sync::broadcast::error::RecvError::Closed) = events.recv().await {
                return;
            }
        }
    });
}

/// Show and focus the main window (a second launch, the tray).
pub fn show_main<R: Runtime>(app: &AppHandle<R>) {
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
    }
}

/// Open the small jobs window (or bring it forward), showing job `job` if one is given.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // the tray's: Linux only so far
pub fn open_jobs<R: Runtime>(app: &AppHandle<R>, job: Option<i64>) {
    if let Some(w) = app.get_webview_window(JOBS) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
        if let Some(id) = job {
            let _ = app.emit_to(JOBS, OPEN_JOB, id);
        }
        return;
    }
    // The job to show is known before the page loads; an event could come before it listens.
    let open = format!(
        "window.__gatehouseOpenJob = {}; document.documentElement.dataset.window = \"jobs\";",
        job.map_or("null".to_owned(), |id| id.to_string())
    );
    let built = WebviewWindowBuilder::new(app, JOBS, WebviewUrl::App("index.html".into()))
        .title("Gatehouse — Jobs")
        .inner_size(760.0, 520.0)
        .min_inner_size(520.0, 320.0)
        .initialization_script(&open)
        .build();
    if let Err(e) = built {
        tracing::warn!(error = %e, "the jobs window could not be opened");
    }
}

/// Pause or resume the pool from outside a window (the tray).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // the tray's: Linux only so far
pub fn pause_pool<R: Runtime>(app: &AppHandle<R>, paused: bool) {
    let engine = app.state::<Core>().engine.clone();
    tauri::async_runtime::spawn(async move {
        let done = if paused { engine.pause_pool().await } else { engine.resume_pool().await };
        if let Err(e) = done {
            tracing::warn!(error = %e, paused, "the pool could not be paused or resumed");
        }
    });
}

/// Quit, from the tray: at once when no job runs here; else the main window asks whether to
/// wait for them or re-queue them ([`quit`]).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // the tray's: Linux only so far
pub fn ask_quit<R: Runtime>(app: &AppHandle<R>) {
    let running = app.state::<Core>().engine.jobs_running_here();
    if running == 0 {
        return app.exit(0);
    }
    show_main(app);
    let _ = app.emit_to(MAIN, QUIT_ASKED, running);
}

/// Quit now that the person has chosen: `wait` for the jobs running here to finish (the
/// windows are hidden meanwhile, and no new job starts), or put them back in the queue at once
/// — another pool or the next start runs them, their attempt not counted.
#[tauri::command]
pub fn quit<R: Runtime>(app: AppHandle<R>, wait: bool) {
    for w in app.webview_windows().values() {
        let _ = w.hide();
    }
    tauri::async_runtime::spawn(async move {
        let grace = if wait { WAIT_FOR_JOBS } else { Duration::ZERO };
        let requeued = app.state::<Core>().stop_pool(grace).await;
        tracing::info!(requeued, wait, "quitting");
        app.exit(0);
    });
}
