//! Declares the app's commands so each window's capability can grant them one by one
//! (an app command not listed in a capability cannot be called from a window).

fn main() {
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
];
