//! The built-in `local` gateway against the real model (SmolLM2-135M-Instruct, run in-process
//! by llama.cpp), with greedy decoding so replies are deterministic.
//!
//! The model file comes from `GATEHOUSE_TEST_MODEL` (`scripts/test` fetches it with
//! `gatehouse models fetch` and sets it), else from the default data directory.
#![cfg(feature = "local")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gatehouse_engine::gateway::{ChatEvent, ChatMessage, ChatRequest, Role};
use gatehouse_engine::{Engine, EngineOptions, JobState, MessageState, NewJob, PoolConfig, PromptSpec, ReplyEvent, SendOptions};
use tokio_util::sync::CancellationToken;

fn model_file() -> PathBuf {
    let file = std::env::var_os("GATEHOUSE_TEST_MODEL").map(PathBuf::from).unwrap_or_else(|| {
        let dir = gatehouse_engine::paths::resolve_data_dir(None).unwrap();
        gatehouse_engine::models::dir(&dir).join(format!("{}.gguf", gatehouse_engine::models::BUILTIN.name))
    });
    assert!(
        file.exists(),
        "the local-model tests need the built-in model at {}: run `gatehouse models fetch` (scripts/test does) or set GATEHOUSE_TEST_MODEL",
        file.display()
    );
    file
}

/// An engine on a fresh data directory whose built-in model is the real file (linked in).
async fn engine(dir: &std::path::Path) -> Engine {
    let engine = Engine::open(EngineOptions::new(dir)).await.unwrap();
    engine.add_model(&model_file(), None).unwrap();
    engine
}

fn ask(text: &str, max_tokens: Option<u32>) -> ChatRequest {
    ChatRequest { messages: vec![ChatMessage::new(Role::User, text)], max_tokens, ..ChatRequest::default() }
}

/// Every event of a reply, failing the test if it takes longer than a minute.
async fn events(mut stream: gatehouse_engine::gateway::ChatStream) -> Vec<ChatEvent> {
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(event) = stream.next().await {
            all.push(event.unwrap());
        }
    })
    .await
    .expect("the local model answered within a minute");
    all
}

fn text_of(events: &[ChatEvent]) -> String {
    events.iter().filter_map(|e| if let ChatEvent::Delta { text } = e { Some(text.as_str()) } else { None }).collect()
}

async fn finish(mut reply: gatehouse_engine::Reply) -> (String, MessageState) {
    let mut text = String::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(60), reply.events.recv()).await.expect("reply hung") {
            Some(ReplyEvent::Delta { text: t, .. }) => text.push_str(&t),
            Some(ReplyEvent::Finished { state, .. }) => return (text, state),
            Some(ReplyEvent::Tool(_)) => {}
            None => panic!("reply ended without Finished"),
        }
    }
}

#[tokio::test]
async fn a_factual_question_streams_a_correct_deterministic_answer() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let (profile, gateway) = engine.open_gateway(None).await.unwrap();
    assert_eq!(profile.name, "local");

    let first = events(gateway.stream(ask("What is the capital of France?", None), CancellationToken::new())).await;
    let text = text_of(&first);
    assert!(text.contains("Paris"), "{text}");
    // Streamed: several deltas, then usage, then the end — in that order.
    let deltas = first.iter().take_while(|e| matches!(e, ChatEvent::Delta { .. })).count();
    assert!(deltas >= 3, "{first:?}");
    assert!(matches!(first[deltas], ChatEvent::Usage { completion_tokens, .. } if completion_tokens as usize >= deltas));
    assert!(matches!(&first[deltas + 1], ChatEvent::Done { finish_reason } if finish_reason.as_deref() == Some("stop")));
    assert_eq!(first.len(), deltas + 2);

    // Greedy: the same question gets the same answer.
    let again = events(gateway.stream(ask("What is the capital of France?", None), CancellationToken::new())).await;
    assert_eq!(text_of(&again), text);

    // A reply budget ends the reply and says so.
    let short = events(gateway.stream(ask("Tell me a long story about a dragon.", Some(5)), CancellationToken::new())).await;
    assert!(matches!(short.last(), Some(ChatEvent::Done { finish_reason }) if finish_reason.as_deref() == Some("length")));
    assert!(matches!(short[short.len() - 2], ChatEvent::Usage { completion_tokens: 5, .. }), "{short:?}");
}

#[tokio::test]
async fn a_chat_is_stored_and_cancel_keeps_the_partial_reply() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let reply = engine.send("What is the capital of France?".into(), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let id = reply.conversation_id;
    let (text, state) = finish(reply).await;
    assert_eq!(state, MessageState::Complete);
    let (conversation, messages) = engine.conversation(id).await.unwrap();
    assert_eq!(conversation.gateway.as_deref(), Some("local"));
    assert_eq!(messages[1].text, text);
    assert!(text.contains("Paris"));

    let cancel = CancellationToken::new();
    let mut reply = engine.send("Write a very long story about a dragon.".into(), SendOptions::default(), cancel.clone()).await.unwrap();
    let mut got = String::new();
    while got.len() < 20 {
        match reply.events.recv().await {
            Some(ReplyEvent::Delta { text: t, .. }) => got.push_str(&t),
            other => panic!("expected text, got {other:?}"),
        }
    }
    cancel.cancel();
    let (rest, state) = finish(reply).await;
    assert_eq!(state, MessageState::Interrupted);
    let (_, messages) = engine.conversation(reply_conversation(&engine).await).await.unwrap();
    let stored = &messages[1];
    assert_eq!(stored.state, MessageState::Interrupted);
    assert_eq!(stored.text, format!("{got}{rest}"));
    // Cut well before its end: a story is far longer than what arrived before the cancel.
    assert!(stored.text.len() < 400, "{}", stored.text);
}

async fn reply_conversation(engine: &Engine) -> i64 {
    engine.conversations(1).await.unwrap()[0].id
}

#[tokio::test]
async fn a_new_reply_starts_while_a_long_one_is_still_streaming() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let (_, gateway) = engine.open_gateway(None).await.unwrap();
    let mut long = gateway.stream(ask("Write a long story about a dragon and a knight.", Some(300)), CancellationToken::new());
    // Wait until the long one is generating.
    assert!(matches!(long.next().await, Some(Ok(ChatEvent::Delta { .. }))));
    let short = gateway.stream(ask("What is the capital of France?", None), CancellationToken::new());
    let long = tokio::spawn(async move { (events(long).await, Instant::now()) });
    let short = tokio::spawn(async move { (events(short).await, Instant::now()) });
    let (long, long_end) = long.await.unwrap();
    let (short, short_end) = short.await.unwrap();
    assert!(text_of(&short).contains("Paris"));
    // The long one ran to its budget; the short one, asked after it started, ended first.
    assert!(matches!(long.last(), Some(ChatEvent::Done { finish_reason }) if finish_reason.as_deref() == Some("length")), "{long:?}");
    assert!(short_end < long_end, "the short reply waited for the long one");
}

#[tokio::test]
async fn five_prompt_jobs_finish_while_a_chat_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let mut events = engine.subscribe();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    let questions = ["capital of France", "capital of Italy", "capital of Spain", "colour of the sky", "largest ocean"];
    let mut ids = Vec::new();
    for q in questions {
        let spec = PromptSpec { text: format!("What is the {q}? Answer in one sentence."), gateway: None, model: None };
        ids.push(engine.submit(NewJob::new("prompt", serde_json::to_value(spec).unwrap())).await.unwrap());
    }
    // A conversation of three turns while the jobs run.
    let mut conversation = None;
    for question in ["What is the capital of France?", "And of Germany?", "Thank you!"] {
        let options = SendOptions { conversation, ..SendOptions::default() };
        let reply = engine.send(question.into(), options, CancellationToken::new()).await.unwrap();
        conversation = Some(reply.conversation_id);
        let (text, state) = finish(reply).await;
        assert_eq!(state, MessageState::Complete);
        assert!(!text.trim().is_empty());
    }
    let started = Instant::now();
    for id in &ids {
        while !engine.job(*id).await.unwrap().state.is_finished() {
            assert!(started.elapsed() < Duration::from_secs(120), "job {id} still not finished");
            let _ = tokio::time::timeout(Duration::from_secs(1), events.recv()).await;
        }
        let job = engine.job(*id).await.unwrap();
        assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
        let output: String = engine.output(*id, 0, 100).await.unwrap().into_iter().map(|l| l.text).collect();
        assert!(!output.trim().is_empty(), "job {id} produced no text");
    }
    let first: String = engine.output(ids[0], 0, 100).await.unwrap().into_iter().map(|l| l.text).collect();
    assert!(first.contains("Paris"), "{first}");
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_conversation_too_long_for_the_context_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let (_, gateway) = engine.open_gateway(None).await.unwrap();
    let huge = "the quick brown fox jumps over the lazy dog ".repeat(400);
    let mut stream = gateway.stream(ask(&huge, None), CancellationToken::new());
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), "model.context_full");
    assert!(err.to_string().contains("start a new conversation"), "{err}");
    // The model still answers the next request.
    let ok = events(gateway.stream(ask("What is the capital of France?", None), CancellationToken::new())).await;
    assert!(text_of(&ok).contains("Paris"));
}

#[tokio::test]
async fn models_are_listed_added_and_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions::new(dir.path())).await.unwrap();
    let list = engine.models().await.unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].builtin && list[0].bytes.is_none() && list[0].is_default);
    let err = engine.open_gateway(None).await.err().unwrap();
    assert_eq!(err.code(), "model.missing");
    assert!(err.to_string().contains("fetch the built-in one") && !err.to_string().contains("gatehouse "), "{err}");

    let not_gguf = dir.path().join("notes.gguf");
    std::fs::write(&not_gguf, "hello").unwrap();
    assert_eq!(engine.add_model(&not_gguf, None).unwrap_err().code(), "model.invalid");
    let added = engine.add_model(&model_file(), Some("tiny")).unwrap();
    assert_eq!(added.name, "tiny");
    assert_eq!(engine.add_model(&model_file(), Some("tiny")).unwrap_err().code(), "model.invalid");
    assert_eq!(engine.set_default_model("nope").await.unwrap_err().code(), "model.invalid");
    engine.set_default_model("tiny").await.unwrap();
    let (_, gateway) = engine.open_gateway(None).await.unwrap();
    assert!(text_of(&events(gateway.stream(ask("What is the capital of France?", None), CancellationToken::new())).await).contains("Paris"));
    engine.remove_model("tiny").await.unwrap();
    assert!(model_file().exists(), "removing a linked model leaves its file");
    assert_eq!(engine.open_gateway(None).await.err().unwrap().code(), "model.missing");
}
