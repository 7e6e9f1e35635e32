//! The exec sandbox's suites — `crates/engine/tests/exec.rs` (writing outside the workspace,
//! the data directory and a symlink out, network, loader variables, a fork bomb, a command that
//! ignores SIGTERM and leaves an orphan, a gigabyte of output, approvals) and
//! `crates/engine/tests/exec_escapes.rs` (the outside review's escapes: swapped directories and
//! programs, nested roots, secrets, sockets, keyrings, descriptors…) — run through the desktop
//! app's exec path: the same tests, with every process made by the shell plugin's `Command`
//! (`gatehouse_desktop::exec::ShellLauncher`) on an app with the plugin.
//! The suite's shared part picks this launcher under `cfg(app_launcher)` (set by build.rs).

use std::sync::{Arc, OnceLock};

use gatehouse_desktop::exec::ShellLauncher;
use gatehouse_engine::exec::policy::Action;
use gatehouse_engine::Launcher;
use tauri::test::MockRuntime;

#[path = "../../crates/engine/tests/exec.rs"]
mod sandbox;

#[path = "../../crates/engine/tests/exec_escapes.rs"]
mod escapes;

/// One app (mock runtime, real shell plugin) for the whole suite; each engine gets a launcher
/// on it.
fn app_launcher() -> Arc<dyn Launcher> {
    static APP: OnceLock<tauri::AppHandle<MockRuntime>> = OnceLock::new();
    let handle = APP.get_or_init(|| {
        let app = tauri::test::mock_builder()
            .plugin(tauri_plugin_shell::init())
            .build(tauri::test::mock_context(tauri::test::noop_assets()))
            .expect("a mock app with the shell plugin");
        let handle = app.handle().clone();
        // Kept for the life of the test process, as the app is in the real one.
        std::mem::forget(app);
        handle
    });
    let launcher = ShellLauncher::default();
    launcher.attach(handle.clone());
    Arc::new(launcher)
}

/// The engine starts its commands through the launcher it was given: one that is not attached
/// to an app yet makes none, and the command is refused (and audited) rather than started
/// another way; attached, it runs them.
#[tokio::test]
async fn the_engine_starts_commands_only_through_the_app_launcher() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = gatehouse_engine::EngineOptions::new(dir.path());
    options.launcher = Arc::new(ShellLauncher::<MockRuntime>::default());
    let engine = gatehouse_engine::Engine::open(options).await.unwrap();
    engine.add_exec_rule(Action::Allow, "true", vec![], true, false).await.unwrap();
    let spec = gatehouse_engine::ExecSpec::new("true", Vec::<String>::new());
    let request = gatehouse_engine::ExecRequest { spec, timeout: None, requester: gatehouse_engine::Requester::Person };
    let mut ignore = |_: gatehouse_engine::Stream, _: &str| {};
    let stop = tokio_util::sync::CancellationToken::new();
    let err = engine.exec(request.clone(), &gatehouse_engine::NoApprover, &mut ignore, &stop).await.unwrap_err();
    assert!(err.to_string().contains("the app is still starting"), "{err}");
    let audit = &engine.exec_audit(1).await.unwrap()[0];
    assert!(audit.program.ends_with("true") && audit.exit_code.is_none(), "audited, not run: {audit:?}");

    let dir = tempfile::tempdir().unwrap();
    let mut options = gatehouse_engine::EngineOptions::new(dir.path());
    options.launcher = app_launcher();
    let engine = gatehouse_engine::Engine::open(options).await.unwrap();
    engine.add_exec_rule(Action::Allow, "true", vec![], true, false).await.unwrap();
    let ran = engine.exec(request, &gatehouse_engine::NoApprover, &mut ignore, &stop).await.unwrap();
    assert_eq!(ran.exit_code, Some(0));
}
