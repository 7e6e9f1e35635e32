//! The command layer on Tauri's mock runtime, with the app's real capabilities: what the main
//! window may call, the error shape it gets, and what no window may do.

use gatehouse_desktop::{run_app, Core};
use gatehouse_engine::{Engine, EngineOptions};
use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{App, Manager, WebviewWindow, WebviewWindowBuilder};

fn app(dir: &std::path::Path) -> App<MockRuntime> {
    let engine = tauri::async_runtime::block_on(Engine::open(EngineOptions::new(dir))).expect("engine opens");
    run_app(mock_builder(), Core::new(engine, None)).build(tauri::generate_context!()).expect("app builds")
}

fn window(app: &App<MockRuntime>, label: &str) -> WebviewWindow<MockRuntime> {
    WebviewWindowBuilder::new(app, label, Default::default()).build().expect("window")
}

fn invoke(w: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().unwrap(),
        body: InvokeBody::Json(args),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(w, request).map(|b| b.deserialize::<Value>().unwrap())
}

#[test]
fn the_main_window_lists_conversations_and_reads_settings_through_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let main = window(&app, "main");
    let page = invoke(&main, "conversations", json!({ "after": null, "limit": 50 })).expect("allowed");
    assert_eq!(page, json!({ "conversations": [], "next": null }));
    let settings = invoke(&main, "settings", json!({})).expect("allowed");
    assert_eq!(settings["workers"], 3, "3 workers by default");
    let changed = invoke(&main, "change_settings", json!({ "change": { "workers": 5 } })).expect("allowed");
    assert_eq!(changed["workers"], 5);
}

#[test]
fn an_engine_error_reaches_the_window_as_its_code_and_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let main = window(&app, "main");
    let err = invoke(&main, "messages", json!({ "conversationId": 999, "at": { "at": "latest" }, "limit": 10 })).unwrap_err();
    assert_eq!(err["code"], "chat.not_found");
    assert_eq!(err["message"], "there is no conversation 999");
    assert_eq!(err["data"], json!({ "id": 999 }));
    let err = invoke(&main, "change_settings", json!({ "change": { "workers": 0 } })).unwrap_err();
    assert_eq!(err["code"], "settings.invalid");
    let err = invoke(&main, "open_link", json!({ "url": "file:///etc/passwd" })).unwrap_err();
    assert_eq!(err["code"], "app.invalid", "only web and mail links open");
}

#[test]
fn a_window_without_the_capability_can_call_nothing_and_no_window_gets_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let other = window(&app, "other");
    let err = invoke(&other, "conversations", json!({ "after": null, "limit": 50 })).unwrap_err();
    assert!(err.as_str().is_some_and(|s| s.contains("not allowed")), "{err}");
    let main = window(&app, "main");
    // The shell plugin is in the app (it makes the exec tool's processes) and refuses the window.
    let run = json!({ "program": "sh", "args": ["-c", "id"], "options": {}, "onEvent": "__CHANNEL__:1" });
    for cmd in ["plugin:shell|execute", "plugin:shell|spawn", "plugin:shell|open"] {
        let err = invoke(&main, cmd, run.clone()).unwrap_err();
        assert!(err.as_str().is_some_and(|s| s.contains("not allowed")), "{cmd}: {err}");
    }
    for cmd in ["plugin:fs|read_file", "plugin:http|fetch", "plugin:opener|open_url"] {
        let err = invoke(&main, cmd, json!({ "path": "/etc/passwd", "url": "https://x" })).unwrap_err();
        assert!(err.as_str().is_some_and(|s| s.contains("not allowed") || s.contains("not found")), "{cmd}: {err}");
    }
}

#[test]
fn jobs_are_listed_canceled_retried_and_the_pool_paused_through_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let main = window(&app, "main");
    let engine = &app.state::<Core>().engine;
    let spec = serde_json::to_value(gatehouse_engine::ExecSpec::new("true", Vec::<String>::new())).unwrap();
    let id = tauri::async_runtime::block_on(engine.submit(gatehouse_engine::NewJob::new("exec", spec))).unwrap();

    let queued = invoke(&main, "jobs", json!({ "state": "queued", "limit": 50 })).expect("allowed");
    assert_eq!(queued.as_array().map(|a| a.len()), Some(1), "{queued}");
    assert_eq!(queued[0]["id"], id);
    // No pool runs in this app: the job waits, and a cancel ends it at once.
    assert_eq!(invoke(&main, "cancel_job", json!({ "id": id })).expect("allowed"), json!(true));
    assert_eq!(invoke(&main, "job", json!({ "id": id })).expect("allowed")["state"], "canceled");
    invoke(&main, "retry_job", json!({ "id": id })).expect("allowed");
    assert_eq!(invoke(&main, "job", json!({ "id": id })).expect("allowed")["state"], "queued");
    let err = invoke(&main, "cancel_job", json!({ "id": 999 })).unwrap_err();
    assert_eq!(err["code"], "job.not_found");

    assert_eq!(invoke(&main, "pause_pool", json!({ "paused": true })).expect("allowed")["paused"], true);
    assert!(tauri::async_runtime::block_on(engine.pool_status()).unwrap().paused, "the engine has it paused");
    assert_eq!(invoke(&main, "pause_pool", json!({ "paused": false })).expect("allowed")["paused"], false);
}
