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

/// Wait for the feed to say a command is waiting for a person.
async fn requested(watch: &mut gatehouse_engine::ApprovalWatch) -> gatehouse_engine::ApprovalRequest {
    loop {
        match watch.next().await {
            Some(gatehouse_engine::ApprovalEvent::Requested { approval }) => return approval,
            Some(_) => {}
            None => panic!("the approval feed ended"),
        }
    }
}

#[test]
fn an_asked_command_waits_for_the_windows_answer_and_the_audit_keeps_it() {
    use gatehouse_engine::exec::approval::Elsewhere;
    use gatehouse_engine::{ExecRequest, ExecSpec, Requester};
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let main = window(&app, "main");
    let engine = app.state::<Core>().engine.clone();
    let mut watch = tauri::async_runtime::block_on(engine.watch_approvals()).unwrap();
    // `touch` is asked about by default: the command waits for an answer from anywhere.
    let e = engine.clone();
    let run = tauri::async_runtime::spawn(async move {
        let request = ExecRequest { spec: ExecSpec::new("touch", ["made-by-touch"]), timeout: None, requester: Requester::Person };
        e.exec(request, &Elsewhere, &mut |_, _| {}, &tokio_util::sync::CancellationToken::new()).await
    });
    let asked = tauri::async_runtime::block_on(requested(&mut watch));

    let pending = invoke(&main, "approvals", json!({})).expect("allowed");
    assert_eq!(pending.as_array().map(|a| a.len()), Some(1), "{pending}");
    assert_eq!(pending[0]["id"], asked.id);
    assert_eq!(pending[0]["program"], "touch");
    assert_eq!(pending[0]["args"], json!(["made-by-touch"]));
    assert_eq!(pending[0]["requester"], "person");
    assert!(pending[0]["reason"].as_str().is_some_and(|r| !r.is_empty()), "it says which rule asked");

    let err = invoke(&main, "answer_approval", json!({ "id": asked.id, "answer": { "answer": "allow_for", "minutes": 0 } })).unwrap_err();
    assert_eq!(err["code"], "app.invalid", "a grant of no time is refused: {err}");
    let denied = invoke(&main, "answer_approval", json!({ "id": asked.id, "answer": { "answer": "deny" } })).expect("allowed");
    assert_eq!(denied["state"], "denied");
    let ran = tauri::async_runtime::block_on(run).unwrap();
    assert_eq!(ran.map(|_| ()).unwrap_err().code(), "exec.denied", "the command did not run");
    assert!(!dir.path().join("workspace/made-by-touch").exists());
    // Answered once: a second answer (another window's, a stale dialog's) is an error.
    let again = invoke(&main, "answer_approval", json!({ "id": asked.id, "answer": { "answer": "allow_once" } })).unwrap_err();
    assert_eq!(again["code"], "approval.closed", "{again}");
    assert_eq!(invoke(&main, "approvals", json!({})).expect("allowed"), json!([]));

    let audit = invoke(&main, "exec_audit", json!({ "limit": 10 })).expect("allowed");
    assert!(audit[0]["program"].as_str().is_some_and(|p| p.ends_with("touch")), "{}", audit[0]);
    assert_eq!(audit[0]["decision"], "ask");
    assert!(audit[0]["approval"].as_str().is_some_and(|a| a.contains("denied")), "{}", audit[0]);
    // The jobs window may answer too; it may not read the audit or change the policy.
    let jobs = window(&app, "jobs");
    invoke(&jobs, "approvals", json!({})).expect("the jobs window answers approvals");
    for cmd in ["exec_audit", "exec_rules", "add_exec_rule", "send", "change_settings", "quit"] {
        let err = invoke(&jobs, cmd, json!({})).unwrap_err();
        assert!(err.as_str().is_some_and(|s| s.contains("not allowed")), "{cmd}: {err}");
    }
}

#[test]
fn policy_rules_and_workspaces_are_listed_added_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let main = window(&app, "main");
    let rules = invoke(&main, "exec_rules", json!({})).expect("allowed");
    let defaults = rules.as_array().unwrap().len();
    assert!(rules.as_array().unwrap().iter().any(|r| r["action"] == "deny" && r["builtin"] == true), "the defaults deny some programs: {rules}");
    let rule = json!({ "action": "allow", "program": "touch", "args": ["/^notes-[a-z]+$/"], "any_args": false, "network": false });
    let id = invoke(&main, "add_exec_rule", json!({ "rule": rule })).expect("allowed");
    let rules = invoke(&main, "exec_rules", json!({})).expect("allowed");
    let added = rules.as_array().unwrap().iter().find(|r| r["id"] == id).expect("listed").clone();
    assert!(added["program"].as_str().is_some_and(|p| p.ends_with("/touch")), "stored resolved: {added}");
    let bad = json!({ "action": "allow", "program": "touch", "args": ["/[/"], "any_args": false, "network": false });
    let err = invoke(&main, "add_exec_rule", json!({ "rule": bad })).unwrap_err();
    assert_eq!(err["code"], "exec.invalid", "a bad pattern is refused with a sentence: {err}");
    invoke(&main, "remove_exec_rule", json!({ "id": id })).expect("allowed");
    assert_eq!(invoke(&main, "exec_rules", json!({})).unwrap().as_array().unwrap().len(), defaults);

    let elsewhere = tempfile::tempdir().unwrap();
    let extra = elsewhere.path().join("projects");
    std::fs::create_dir(&extra).unwrap();
    let added = invoke(&main, "add_workspace", json!({ "dir": extra })).expect("allowed");
    let roots = invoke(&main, "workspaces", json!({})).expect("allowed");
    assert_eq!(roots.as_array().unwrap().len(), 2, "{roots}");
    assert_eq!(roots[1], added);
    let err = invoke(&main, "add_workspace", json!({ "dir": "/" })).unwrap_err();
    assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()), "{err}");
    invoke(&main, "remove_workspace", json!({ "dir": added })).expect("allowed");
    assert_eq!(invoke(&main, "workspaces", json!({})).unwrap().as_array().unwrap().len(), 1);
}

#[test]
fn a_job_submitted_from_the_window_is_queued_and_a_denied_command_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let main = window(&app, "main");
    let id = invoke(&main, "submit_job", json!({ "job": { "kind": "exec", "program": "echo", "args": ["hi"] }, "priority": 2 })).expect("allowed");
    let row = invoke(&main, "job", json!({ "id": id })).expect("allowed");
    assert_eq!((row["kind"].as_str(), row["state"].as_str(), row["priority"].as_i64()), (Some("exec"), Some("queued"), Some(2)));
    assert!(row.get("progress").is_some() && row.get("worker").is_some(), "the row has the table's columns: {row}");
    let prompt = invoke(&main, "submit_job", json!({ "job": { "kind": "prompt", "text": "Say hi" }, "priority": 0 })).expect("allowed");
    assert_eq!(invoke(&main, "job", json!({ "id": prompt })).unwrap()["kind"], "prompt");
    let err = invoke(&main, "submit_job", json!({ "job": { "kind": "exec", "program": "dd", "args": ["if=/dev/zero"] }, "priority": 0 })).unwrap_err();
    assert_eq!(err["code"], "exec.denied", "{err}");
    let err = invoke(&main, "submit_job", json!({ "job": { "kind": "prompt", "text": "  " }, "priority": 0 })).unwrap_err();
    assert_eq!(err["code"], "job.invalid", "{err}");
    let listed = invoke(&main, "jobs", json!({ "state": null, "limit": 10 })).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "nothing refused was queued: {listed}");
}
