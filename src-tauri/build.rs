//! Declares the app's commands so each window's capability can grant them one by one
//! (an app command not listed in a capability cannot be called from a window).

fn main() {
    // The engine's exec escape suite runs in this package's tests through the app's launcher
    // (tests/exec_escapes.rs); this tells its shared part to use it.
    println!("cargo::rustc-check-cfg=cfg(app_launcher)");
    println!("cargo::rustc-cfg=app_launcher");
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)))
        .expect("the Tauri build step failed");
}

/// Every command the UI may call; keep in step with `invoke_handler` in src/lib.rs.
const COMMANDS: &[&str] = &[
        "painted",
        "open_link",
        "conversations",
        "messages",
        "message",
        "send",
        "regenerate",
        "edit_message",
        "continue_reply",
        "watch_reply",
        "stop_reply",
        "show_version",
        "rename_conversation",
        "delete_conversation",
        "pin_conversation",
        "search",
        "export_conversations",
        "import_conversations",
        "gateways",
        "add_gateway",
        "remove_gateway",
        "set_default_gateway",
        "check_gateway",
        "add_model",
        "set_default_model",
        "remove_model",
        "models",
        "fetch_model",
        "settings",
        "change_settings",
        "pool_status",
        "jobs",
        "job",
        "cancel_job",
        "retry_job",
        "pause_pool",
        "job_output",
        "submit_job",
        "quit",
        "exec_rules",
        "add_exec_rule",
        "remove_exec_rule",
        "workspaces",
        "add_workspace",
        "remove_workspace",
        "exec_audit",
        "approvals",
        "answer_approval",
        "update_status",
        "check_update",
        "install_update",
];
