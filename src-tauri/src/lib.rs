//! Gatehouse's desktop app: a thin Tauri adapter over `gatehouse-engine`.
//!
//! Layout (one file per front-end concept):
//! - `lib.rs` — [`run`]: open the engine on the data directory the CLI uses, start the pool,
//!   and [`run_app`]: register state and commands (generic over the runtime, so the command
//!   layer is tested on Tauri's mock runtime);
//! - `state.rs` — the managed state: the engine and its pool, nothing else;
//! - `error.rs` — the one error shape across IPC, `{code, message, data?}`;
//! - `chat.rs`, `settings.rs`, `jobs.rs`, `approvals.rs` — the commands, each a few lines
//!   around one engine call;
//! - `stream.rs` — a reply's deltas to the webview through a channel, coalesced per frame;
//! - `events.rs` — the engine's feeds as app-wide events;
//! - `exec.rs` — the exec tool's processes, made by the shell plugin;
//! - `tray.rs` — the tray icon: the pool at a glance, recent jobs, pause, quit;
//! - `notify.rs` — desktop notifications of jobs that ended and commands awaiting approval;
//! - `update.rs` — updates from the release feed, in builds that carry one;
//! - `windows.rs` — first paint (and the WebKitGTK fallback), links, close-to-hide, the jobs
//!   window, quitting.
//!
//! Nothing here runs SQL, spawns a process or talks to a gateway: the engine does.

mod approvals;
mod chat;
mod error;
mod events;
pub mod exec;
pub mod jobs;
mod notify;
mod settings;
mod state;
pub mod stream;
pub mod tray;
pub mod update;
mod windows;

use std::path::PathBuf;
use std::time::Duration;

use gatehouse_engine::{Engine, EngineOptions, PoolConfig};
use tauri::{Manager, RunEvent, Runtime};
use tauri_plugin_window_state::StateFlags;

pub use state::Core;

/// How long running jobs get to finish when the app quits before they go back to the queue.
const QUIT_GRACE: Duration = Duration::from_secs(5);

/// The app's command line: the same data directory and shared database as the CLI
/// (`--data-dir`, `--database` or GATEHOUSE_DATABASE_URL).
struct Args {
    data_dir: Option<PathBuf>,
    database: Option<String>,
}

impl Args {
    fn parse() -> Args {
        let (mut data_dir, mut database) = (None, None);
        let mut args = std::env::args_os().skip(1);
        while let Some(arg) = args.next() {
            if arg == "--data-dir" {
                data_dir = args.next().map(PathBuf::from);
            } else if let Some(dir) = arg.to_str().and_then(|a| a.strip_prefix("--data-dir=")) {
                data_dir = Some(PathBuf::from(dir));
            } else if arg == "--database" {
                database = args.next().and_then(|a| a.into_string().ok());
            } else if let Some(url) = arg.to_str().and_then(|a| a.strip_prefix("--database=")) {
                database = Some(url.to_owned());
            }
        }
        let database = database.or_else(|| std::env::var("GATEHOUSE_DATABASE_URL").ok()).filter(|u| !u.is_empty());
        Args { data_dir, database }
    }
}

/// Start the desktop app; returns when it has quit.
pub fn run() {
    windows::STARTED_AT.get_or_init(windows::epoch_ms);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG").unwrap_or_else(|_| "info,tao=warn,wry=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let data_dir = match gatehouse_engine::paths::resolve_data_dir(args.data_dir.as_deref()) {
        Ok(dir) => dir,
        Err(e) => fail(&e),
    };
    windows::prepare_webkit(&data_dir);
    // The engine opens (the database, its migrations) on the async runtime while GTK starts and
    // the window is made — WebKit loads the page in its own processes meanwhile — and is awaited
    // in setup, before the window's first command can be served. The pool starts only there:
    // a second launch hands over to the first app in the single-instance plugin and exits
    // before setup, and must not have claimed a job by then.
    let shell = exec::ShellLauncher::<tauri::Wry>::default();
    let mut options = EngineOptions::new(data_dir.clone());
    options.launcher = std::sync::Arc::new(shell.clone());
    options.database = args.database;
    let opening = tauri::async_runtime::spawn(Engine::open(options));
    let open = async move {
        let engine = opening.await.unwrap_or_else(|e| panic!("opening the engine panicked: {e}"))?;
        let pool = engine.start_pool(PoolConfig::default()).await?;
        let ms = windows::since_start();
        tracing::info!(data_dir = %engine.data_dir().display(), "Gatehouse is open after {ms:.0} ms");
        Ok(Core::new(engine, Some(pool)))
    };
    let builder = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| windows::show_main(app)))
        // Size, place and maximised state; not visibility (a window hidden while jobs ran must
        // still open next time).
        .plugin(
            tauri_plugin_window_state::Builder::default()
                .with_state_flags(StateFlags::SIZE | StateFlags::POSITION | StateFlags::MAXIMIZED)
                .build(),
        )
        .plugin(tauri_plugin_opener::init())
        // Save and open dialogs for export and import, shown by the app's own commands: no
        // window has a dialog permission.
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init());
    let context = tauri::generate_context!();
    // Only a release build carries an update feed (and the key its bundles are signed with).
    let builder = with_updater(builder, context.config());
    let app = commands(builder)
        .setup(move |app| {
            shell.attach(app.handle().clone());
            let core = tauri::async_runtime::block_on(open).unwrap_or_else(|e| fail(&e));
            events::start(app.handle().clone(), core.engine.clone());
            tray::start(app.handle().clone(), core.engine.clone());
            notify::start(app.handle().clone(), core.engine.clone());
            app.manage(core);
            update::check_at_start(app.handle().clone());
            Ok(())
        })
        .build(context);
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "the window could not be created");
            eprintln!("Gatehouse could not open its window: {e}");
            std::process::exit(1);
        }
    };
    app.run(move |app, event| match event {
        RunEvent::Ready => windows::watch_first_paint(app, data_dir.clone()),
        RunEvent::Exit => {
            if let Some(core) = app.try_state::<Core>() {
                let requeued = tauri::async_runtime::block_on(core.shut_down(QUIT_GRACE));
                tracing::info!(requeued, "Gatehouse has quit");
            }
        }
        _ => {}
    });
}

fn fail(e: &gatehouse_engine::Error) -> ! {
    tracing::error!(code = e.code(), error = %e, "cannot start");
    eprintln!("Gatehouse cannot start: {e}");
    std::process::exit(1)
}

/// The app on any runtime (the command-layer tests use Tauri's mock runtime): its state,
/// commands and events. Plugins that need a desktop (single instance, window state, the opener)
/// are added by [`run`], which also opens the engine later, in setup.
pub fn run_app<R: Runtime>(builder: tauri::Builder<R>, core: Core) -> tauri::Builder<R> {
    commands(builder).manage(core).setup(|app| {
        events::start(app.handle().clone(), app.state::<Core>().engine.clone());
        Ok(())
    })
}

/// `builder` with the updater plugin when `config` carries an update feed
/// ([`update::configured`]); the plugin cannot start without one.
pub fn with_updater<R: Runtime>(builder: tauri::Builder<R>, config: &tauri::Config) -> tauri::Builder<R> {
    if update::configured(config) {
        builder.plugin(tauri_plugin_updater::Builder::new().build())
    } else {
        builder
    }
}

/// The commands and window handling, without the state.
fn commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder
        // The exec tool's processes (exec.rs); no window is granted any of its commands.
        .plugin(tauri_plugin_shell::init())
        .manage(windows::Painted::default())
        .manage(update::Found::default())
        .invoke_handler(tauri::generate_handler![
            windows::painted,
            windows::open_link,
            windows::quit,
            chat::conversations,
            chat::messages,
            chat::message,
            chat::send,
            chat::regenerate,
            chat::edit_message,
            chat::continue_reply,
            chat::watch_reply,
            chat::stop_reply,
            chat::show_version,
            chat::rename_conversation,
            chat::pin_conversation,
            chat::delete_conversation,
            chat::search,
            chat::export_conversations,
            chat::import_conversations,
            settings::gateways,
            settings::add_gateway,
            settings::remove_gateway,
            settings::set_default_gateway,
            settings::check_gateway,
            settings::add_model,
            settings::set_default_model,
            settings::remove_model,
            settings::models,
            settings::fetch_model,
            settings::settings,
            settings::change_settings,
            settings::exec_rules,
            settings::add_exec_rule,
            settings::remove_exec_rule,
            settings::workspaces,
            settings::add_workspace,
            settings::remove_workspace,
            settings::exec_audit,
            approvals::approvals,
            approvals::answer_approval,
            jobs::pool_status,
            jobs::jobs,
            jobs::job,
            jobs::cancel_job,
            jobs::retry_job,
            jobs::pause_pool,
            jobs::job_output,
            jobs::submit_job,
            update::update_status,
            update::check_update,
            update::install_update,
        ])
        .on_window_event(windows::on_window_event)
}
