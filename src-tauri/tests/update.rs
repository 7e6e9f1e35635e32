//! The updater as the release wires it (`plugins.updater` merged into the configuration), on
//! Tauri's mock runtime, against a real update feed served over loopback: a key pair made here
//! the way `tauri signer generate` makes one (minisign), `latest.json` in the format the
//! release workflow publishes, and artifacts signed or not with that key.

use std::io::{Read, Write};
use std::net::TcpListener;

use base64::Engine as _;
use gatehouse_desktop::{run_app, with_updater, Core};
use gatehouse_engine::{Engine, EngineOptions};
use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewWindow, WebviewWindowBuilder};
use tauri_plugin_updater::UpdaterExt;

/// A static feed: each path and its body, served until the test ends.
fn serve(files: Vec<(&'static str, Vec<u8>)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&request);
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let (status, body) = match files.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => ("200 OK", body.clone()),
                None => ("404 Not Found", b"not here".to_vec()),
            };
            let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
        }
    });
    format!("http://{addr}")
}

/// A key pair as `tauri signer generate` writes it: the public key is the base64 of
/// minisign's public key file; a signature is the base64 of minisign's signature file.
struct Key {
    pair: minisign::KeyPair,
}

impl Key {
    fn new() -> Key {
        Key { pair: minisign::KeyPair::generate_unencrypted_keypair().unwrap() }
    }

    fn public(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.pair.pk.to_box().unwrap().to_string())
    }

    fn sign(&self, data: &[u8]) -> String {
        let signature = minisign::sign(Some(&self.pair.pk), &self.pair.sk, data, Some("timestamp:0\tfile:Gatehouse.tar.gz"), None).unwrap();
        base64::engine::general_purpose::STANDARD.encode(signature.to_string())
    }
}

/// `latest.json` offering 9.9.9 at `url`, for every platform key the updater may look up.
fn feed(url: &str, signature: &str) -> Vec<u8> {
    let platform = json!({ "signature": signature, "url": url });
    let platforms: serde_json::Map<String, Value> = ["linux-x86_64", "linux-x86_64-deb", "linux-x86_64-rpm", "linux-x86_64-appimage"]
        .into_iter()
        .map(|k| (k.to_owned(), platform.clone()))
        .collect();
    serde_json::to_vec(&json!({
        "version": "9.9.9",
        "notes": "Faster replies.",
        "pub_date": "2026-12-01T12:00:00Z",
        "platforms": platforms,
    }))
    .unwrap()
}

/// The app with the release's configuration: `plugins.updater` when `updater` is given.
fn app(dir: &std::path::Path, updater: Option<Value>) -> App<MockRuntime> {
    let engine = tauri::async_runtime::block_on(Engine::open(EngineOptions::new(dir))).expect("engine opens");
    let mut context = tauri::generate_context!();
    if let Some(updater) = updater {
        context.config_mut().plugins.0.insert("updater".into(), updater);
    }
    let builder = with_updater(mock_builder(), context.config());
    run_app(builder, Core::new(engine, None)).build(context).expect("app builds")
}

fn invoke(w: &WebviewWindow<MockRuntime>, cmd: &str) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().unwrap(),
        body: InvokeBody::Json(json!({})),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(w, request).map(|b| b.deserialize::<Value>().unwrap())
}

#[test]
fn a_build_with_the_feed_finds_the_newer_release_and_accepts_only_what_its_key_signed() {
    let key = Key::new();
    let artifact = b"the 9.9.9 bundle".to_vec();
    let files = serve(vec![("/Gatehouse.tar.gz", artifact.clone())]);
    let base = serve(vec![("/latest.json", feed(&format!("{files}/Gatehouse.tar.gz"), &key.sign(&artifact)))]);
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), Some(json!({ "pubkey": key.public(), "endpoints": [format!("{base}/latest.json")] })));
    let main = WebviewWindowBuilder::new(&app, "main", Default::default()).build().unwrap();

    // What the settings show: the feed, the version running, the newer one and its notes.
    let before = invoke(&main, "update_status").expect("the main window may ask");
    assert_eq!((&before["feed"], &before["available"]), (&json!(true), &Value::Null), "not checked yet");
    let status = invoke(&main, "check_update").expect("the main window may check");
    assert_eq!(status["feed"], true);
    assert_eq!(status["current"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["available"]["version"], "9.9.9");
    assert_eq!(status["available"]["notes"], "Faster replies.");
    assert_eq!(invoke(&main, "update_status").unwrap(), status, "kept until installed");

    // The artifact the feed points at passes the signature check against the configured key.
    let update = tauri::async_runtime::block_on(async { app.updater().unwrap().check().await.unwrap() }).expect("an update");
    let bytes = tauri::async_runtime::block_on(update.download(|_, _| {}, || {})).expect("signed by the key: accepted");
    assert_eq!(bytes, artifact);
}

#[test]
fn an_update_signed_by_another_key_is_refused_before_anything_is_installed() {
    let (key, impostor) = (Key::new(), Key::new());
    let artifact = b"a bundle from someone else".to_vec();
    let files = serve(vec![("/Gatehouse.tar.gz", artifact.clone())]);
    let base = serve(vec![("/latest.json", feed(&format!("{files}/Gatehouse.tar.gz"), &impostor.sign(&artifact)))]);
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), Some(json!({ "pubkey": key.public(), "endpoints": [format!("{base}/latest.json")] })));
    let main = WebviewWindowBuilder::new(&app, "main", Default::default()).build().unwrap();
    let status = invoke(&main, "check_update").expect("checked");
    assert_eq!(status["available"]["version"], "9.9.9", "the feed itself is not signed: it is offered");
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let err = invoke(&main, "install_update").expect_err("refused");
    assert_eq!(err["code"], "update.failed");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("9.9.9") && message.to_lowercase().contains("signature"), "{message}");
    assert_eq!(std::fs::read(std::env::current_exe().unwrap()).unwrap(), exe, "nothing was replaced");
    // The refused update is gone: installing again needs a new check.
    assert_eq!(invoke(&main, "install_update").expect_err("none")["code"], "update.none");
}

#[test]
fn a_build_without_a_feed_never_calls_out_and_says_updates_come_with_the_package() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), None);
    let main = WebviewWindowBuilder::new(&app, "main", Default::default()).build().unwrap();
    let status = invoke(&main, "update_status").expect("allowed");
    assert_eq!(status, json!({ "feed": false, "current": env!("CARGO_PKG_VERSION"), "available": null }));
    let status = invoke(&main, "check_update").expect("allowed");
    assert_eq!(status, json!({ "feed": false, "current": env!("CARGO_PKG_VERSION"), "available": null }));
    assert_eq!(invoke(&main, "install_update").expect_err("nothing to install")["code"], "update.none");
}
