//! Against the real OpenClaw gateway (openclaw 2026.9.6, started by `scripts/peers/openclaw`,
//! which `scripts/test` runs), with the MOCK model provider behind it
//! (`scripts/peers/provider-stub.py`). The stub's reply is "stub: w1 … wN end.", N words at a
//! pace set by a directive in the message, so a test knows the whole reply it must end with.
#![cfg(feature = "real-peers")]

use std::time::Duration;

use gatehouse_engine::{
    Engine, EngineOptions, GatewayKind, JobState, MessageState, NewJob, PoolConfig, Profile, PromptSpec, ReplyEvent, SendOptions,
};
use gatehouse_testkit::Proxy;
use tokio_util::sync::CancellationToken;

const TOKEN_VAR: &str = "GATEHOUSE_TEST_OPENCLAW_TOKEN";

fn url() -> String {
    std::env::var("GATEHOUSE_TEST_OPENCLAW_URL")
        .expect("GATEHOUSE_TEST_OPENCLAW_URL: run ./scripts/test, or start scripts/peers/openclaw and set it and GATEHOUSE_TEST_OPENCLAW_TOKEN")
}

fn profile(name: &str, kind: GatewayKind, url: String) -> Profile {
    Profile {
        name: name.into(),
        kind,
        url: Some(url),
        model: None,
        token_env: Some(TOKEN_VAR.into()),
        token_file: None,
        token_keyring: false,
        is_default: true,
    }
}

async fn engine(dir: &std::path::Path, url: String) -> Engine {
    assert!(std::env::var(TOKEN_VAR).is_ok(), "{TOKEN_VAR} must name the gateway's token");
    let engine = Engine::open(EngineOptions::new(dir)).await.unwrap();
    engine.add_gateway(profile("claw", GatewayKind::Openclaw, url)).await.unwrap();
    engine
}

fn expected(words: usize) -> String {
    let mut s = String::from("stub:");
    for i in 1..=words {
        s.push_str(&format!(" w{i}"));
    }
    s + " end."
}

fn ask(words: usize, delay_ms: u64) -> String {
    format!("Please answer. [[stub:words={words},delay_ms={delay_ms}]]")
}

/// The shared gateway behind a proxy the test controls.
async fn gateway_proxy() -> Proxy {
    Proxy::start(url().trim_start_matches("ws://").parse().unwrap()).await
}

/// An engine whose OpenClaw profile reaches the shared gateway through a proxy the test controls.
async fn through_proxy() -> (Proxy, tempfile::TempDir, Engine) {
    let proxy = gateway_proxy().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), format!("ws://{}", proxy.addr)).await;
    (proxy, dir, engine)
}

/// The reply's deltas and how it ended, stopping early once `stop_after` bytes arrived if set.
async fn read(reply: &mut gatehouse_engine::Reply) -> (Vec<String>, MessageState, Option<String>) {
    let mut deltas = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(90), reply.events.recv()).await.expect("reply hung") {
            Some(ReplyEvent::Delta { text: t, .. }) => deltas.push(t),
            Some(ReplyEvent::Finished { state, error }) => return (deltas, state, error.map(|e| e.code().to_owned())),
            Some(ReplyEvent::Tool(_)) => {}
            None => panic!("reply ended without Finished"),
        }
    }
}

/// Wait for text to start arriving; returns what arrived.
async fn first_text(reply: &mut gatehouse_engine::Reply) -> String {
    let mut got = String::new();
    while !got.contains(" w3") {
        match tokio::time::timeout(Duration::from_secs(90), reply.events.recv()).await.expect("no text") {
            Some(ReplyEvent::Delta { text: t, .. }) => got.push_str(&t),
            other => panic!("expected text, got {other:?}"),
        }
    }
    got
}

#[tokio::test]
async fn a_reply_streams_over_the_websocket_and_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), url()).await;
    let mut reply = engine.send(ask(20, 20), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let (deltas, state, error) = read(&mut reply).await;
    assert_eq!(state, MessageState::Complete, "{error:?}");
    assert!(deltas.len() > 3, "streamed in pieces: {deltas:?}");
    assert_eq!(deltas.concat(), expected(20));
    let (conversation, messages) = engine.conversation(reply.conversation_id).await.unwrap();
    assert_eq!(conversation.gateway.as_deref(), Some("claw"));
    assert_eq!(messages[1].text, expected(20));

    // The gateway's own copy of the conversation has the same reply.
    let held = engine.gateway_history(reply.conversation_id).await.unwrap();
    assert!(held.iter().any(|m| m.role == gatehouse_engine::gateway::Role::User && m.content.contains("Please answer.")), "{held:?}");
    assert_eq!(held.last().map(|m| m.content.as_str()), Some(expected(20).as_str()));

    // The same conversation goes on in the same OpenClaw session.
    let options = SendOptions { conversation: Some(reply.conversation_id), ..Default::default() };
    let mut second = engine.send(ask(3, 10), options, CancellationToken::new()).await.unwrap();
    let (deltas, state, _) = read(&mut second).await;
    assert_eq!((deltas.concat(), state), (expected(3), MessageState::Complete));
}

#[tokio::test]
async fn a_session_made_elsewhere_is_imported_continued_there_and_brought_up_to_date() {
    // "Elsewhere" is another device: a second Gatehouse with its own data directory.
    let (here_dir, there_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (here, there) = (engine(here_dir.path(), url()).await, engine(there_dir.path(), url()).await);
    let word = format!("zebra{}", std::process::id());
    let first = format!("Remember the word {word}. [[stub:words=4,delay_ms=5]]");
    let mut made = there.send(first.clone(), SendOptions::default(), CancellationToken::new()).await.unwrap();
    assert_eq!(read(&mut made).await.1, MessageState::Complete);
    // This installation's own conversation is not offered back to it.
    let own_text = format!("Mine {word}. [[stub:words=2,delay_ms=5]]");
    let mut own = here.send(own_text, SendOptions::default(), CancellationToken::new()).await.unwrap();
    assert_eq!(read(&mut own).await.1, MessageState::Complete);

    let imported = here.import_sessions(None).await.unwrap().0;
    assert!(!imported.iter().any(|i| i.title.contains(&format!("Mine {word}"))), "{imported:?}");
    let mine = imported.iter().find(|i| i.title.contains(&word)).unwrap_or_else(|| panic!("{imported:?}"));
    assert!(mine.created && mine.added == 2, "{mine:?}");
    let (conversation, messages) = here.conversation(mine.conversation_id).await.unwrap();
    assert_eq!(conversation.remote_gateway.as_deref(), Some("claw"));
    let texts: Vec<(&str, &str)> = messages.iter().map(|m| (m.role.as_str(), m.text.as_str())).collect();
    assert_eq!(texts, [("user", first.as_str()), ("assistant", expected(4).as_str())]);

    // Continued here, it goes on in the same session there.
    let options = SendOptions { conversation: Some(mine.conversation_id), ..Default::default() };
    let mut next = here.send(ask(3, 5), options, CancellationToken::new()).await.unwrap();
    assert_eq!(read(&mut next).await.1, MessageState::Complete);
    let held_there = there.gateway_history(made.conversation_id).await.unwrap();
    assert_eq!(held_there.len(), 4, "{held_there:?}");
    assert_eq!(held_there[3].content, expected(3));

    // A turn made there afterwards arrives with the next import, in the same conversation.
    let options = SendOptions { conversation: Some(made.conversation_id), ..Default::default() };
    let mut later = there.send(ask(5, 5), options, CancellationToken::new()).await.unwrap();
    assert_eq!(read(&mut later).await.1, MessageState::Complete);
    let again = here.import_sessions(None).await.unwrap().0;
    let mine_again = again.iter().find(|i| i.title.contains(&word)).unwrap();
    assert_eq!((mine_again.conversation_id, mine_again.created, mine_again.added), (mine.conversation_id, false, 2));
    let (_, messages) = here.conversation(mine.conversation_id).await.unwrap();
    assert_eq!(messages.len(), 6);
    assert_eq!(messages[5].text, expected(5));
}

#[tokio::test]
async fn a_regenerated_reply_or_an_edited_message_opens_a_session_given_the_branch_so_far() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), url()).await;
    let word = format!("heron{}", std::process::id());
    let first = format!("Remember {word}. [[stub:words=3,delay_ms=5]]");
    let mut said = engine.send(first.clone(), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let id = said.conversation_id;
    assert_eq!(read(&mut said).await.1, MessageState::Complete);
    let second = format!("Then {word} again. [[stub:words=2,delay_ms=5]]");
    let options = || SendOptions { conversation: Some(id), ..Default::default() };
    let mut next = engine.send(second.clone(), options(), CancellationToken::new()).await.unwrap();
    let old_reply = next.message_id;
    assert_eq!(read(&mut next).await.1, MessageState::Complete);
    let held = engine.gateway_history(id).await.unwrap();
    assert_eq!(held.len(), 4, "one session holds the line so far: {held:?}");

    // Regenerated: the gateway's session already has the old reply after the question, so the
    // question goes to a new session, opened with what came before it.
    let mut again = engine.regenerate(old_reply, SendOptions::default(), CancellationToken::new()).await.unwrap();
    assert_eq!(read(&mut again).await.1, MessageState::Complete);
    let held = engine.gateway_history(id).await.unwrap();
    assert_eq!(held.len(), 2, "{held:?}");
    let opening = &held[0].content;
    assert!(opening.contains(&first) && opening.contains(&expected(3)) && opening.ends_with(&second), "{opening}");
    assert_eq!(held[1].content, expected(2));
    let (_, messages) = engine.conversation(id).await.unwrap();
    assert_eq!(messages[3].versions, [old_reply, again.message_id]);

    // A turn after it goes on in that session: one message, no transcript again.
    let third = format!("And now? [[stub:words=4,delay_ms=5]]");
    let mut more = engine.send(third.clone(), options(), CancellationToken::new()).await.unwrap();
    assert_eq!(read(&mut more).await.1, MessageState::Complete);
    let held = engine.gateway_history(id).await.unwrap();
    assert_eq!((held.len(), held[2].content.as_str()), (4, third.as_str()));

    // The first message edited: a session of its own with just the new text; the sessions of
    // the other versions are as they were on the gateway.
    let asked = messages[0].id;
    let edited = format!("Forget {word}. [[stub:words=5,delay_ms=5]]");
    let mut fresh = engine.edit(asked, edited.clone(), SendOptions::default(), CancellationToken::new()).await.unwrap();
    assert_eq!(read(&mut fresh).await.1, MessageState::Complete);
    let held = engine.gateway_history(id).await.unwrap();
    assert_eq!(held.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), [edited.as_str(), expected(5).as_str()]);
    engine.show_version(asked).await.unwrap();
    let held = engine.gateway_history(id).await.unwrap();
    assert_eq!((held.len(), held[3].content.as_str()), (4, expected(4).as_str()), "{held:?}");
}

#[tokio::test]
async fn tools_the_gateway_runs_are_shown_and_kept_with_the_reply() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), url()).await;
    let text = "List the files. [[stub:tool=ls]] [[stub:words=4,delay_ms=10]]".to_owned();
    let mut reply = engine.send(text, SendOptions::default(), CancellationToken::new()).await.unwrap();
    let mut shown = Vec::new();
    let mut deltas = Vec::new();
    let state = loop {
        match tokio::time::timeout(Duration::from_secs(90), reply.events.recv()).await.expect("reply hung") {
            Some(ReplyEvent::Delta { text: t, .. }) => deltas.push(t),
            Some(ReplyEvent::Tool(outcome)) => shown.push(outcome.summary),
            Some(ReplyEvent::Finished { state, .. }) => break state,
            None => panic!("no end"),
        }
    };
    assert_eq!((deltas.concat(), state), (expected(4), MessageState::Complete));
    // Shown as it ran (start, then end), as a tool the gateway ran — not one of ours.
    assert!(shown.len() >= 2 && shown.iter().all(|s| s.contains("run by claw")), "{shown:?}");
    let (_, messages) = engine.conversation(reply.conversation_id).await.unwrap();
    let tools = &messages[1].tools;
    assert_eq!(tools.len(), 1, "{tools:?}");
    assert_eq!((tools[0].name.as_str(), tools[0].status.as_str(), tools[0].ran_by.as_str()), ("ls", "completed", "gateway"));
}

#[tokio::test]
async fn a_reply_streams_over_the_http_endpoint_too() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions::new(dir.path())).await.unwrap();
    let http = url().replacen("ws://", "http://", 1) + "/v1";
    let mut p = profile("claw-http", GatewayKind::Openai, http);
    p.model = Some("openclaw/default".into());
    engine.add_gateway(p).await.unwrap();
    let mut reply = engine.send(ask(10, 20), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let (deltas, state, error) = read(&mut reply).await;
    assert_eq!(state, MessageState::Complete, "{error:?}");
    assert_eq!(deltas.concat(), expected(10));
}

#[tokio::test]
async fn over_http_a_cut_is_reported_and_the_partial_text_kept() {
    let proxy = gateway_proxy().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions::new(dir.path())).await.unwrap();
    let mut p = profile("claw-http", GatewayKind::Openai, format!("http://{}/v1", proxy.addr));
    p.model = Some("openclaw/default".into());
    engine.add_gateway(p).await.unwrap();
    let mut reply = engine.send(ask(200, 40), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let got = first_text(&mut reply).await;
    proxy.cut();
    let (rest, state, error) = read(&mut reply).await;
    // HTTP has no resume: the cut is said plainly and what arrived is kept.
    assert_eq!((state, error.as_deref()), (MessageState::Interrupted, Some("gateway.incomplete")));
    let (_, messages) = engine.conversation(reply.conversation_id).await.unwrap();
    assert_eq!(messages[1].text, format!("{got}{}", rest.concat()));
    assert!(messages[1].text.starts_with("stub: w1") && !messages[1].text.ends_with("end."));
}

#[tokio::test]
async fn stopping_a_reply_aborts_the_run_and_keeps_the_partial_text_which_can_be_continued() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), url()).await;
    let cancel = CancellationToken::new();
    // 60 words 50 ms apart: 3 s, stopped at its first words.
    let mut reply = engine.send(ask(60, 50), SendOptions::default(), cancel.clone()).await.unwrap();
    let got = first_text(&mut reply).await;
    cancel.cancel();
    let (rest, state, _) = read(&mut reply).await;
    assert_eq!(state, MessageState::Interrupted);
    let (_, messages) = engine.conversation(reply.conversation_id).await.unwrap();
    let partial = format!("{got}{}", rest.concat());
    assert_eq!(messages[1].text, partial);
    assert!(!messages[1].text.ends_with("end."));

    // Continued in the same session: the model is asked to go on, and the reply grows.
    let mut more = engine.continue_reply(reply.message_id, SendOptions::default(), CancellationToken::new()).await.unwrap();
    let (added, state, _) = read(&mut more).await;
    assert_eq!(state, MessageState::Complete);
    let message = engine.message(reply.message_id).await.unwrap();
    assert_eq!(message.text, format!("{partial}{}", added.concat()));
    assert!(message.text.ends_with("end."));
    let held = engine.gateway_history(reply.conversation_id).await.unwrap();
    let n = held.len();
    assert!(held[n - 2].content.starts_with("Continue your last reply"), "{held:?}");
    assert_eq!(held[n - 1].content, added.concat());
}

#[tokio::test]
async fn a_connection_cut_mid_reply_resumes_with_nothing_lost_or_doubled() {
    let (proxy, _dir, engine) = through_proxy().await;
    let mut reply = engine.send(ask(60, 40), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let got = first_text(&mut reply).await;
    proxy.cut();
    let (rest, state, error) = read(&mut reply).await;
    assert_eq!(state, MessageState::Complete, "{error:?}");
    assert_eq!(format!("{got}{}", rest.concat()), expected(60), "one whole reply on screen");
    let (_, messages) = engine.conversation(reply.conversation_id).await.unwrap();
    assert_eq!(messages[1].text, expected(60), "one whole reply in the store");
    assert!(proxy.accepted.load(std::sync::atomic::Ordering::SeqCst) >= 2, "it reconnected");
}

#[tokio::test]
async fn a_link_gone_silent_is_given_up_after_two_ticks_and_the_reply_resumes_whole() {
    // Frozen, not cut: nothing arrives and TCP never says the link is gone. The gateway ticks
    // every 30 s, so 60 s of silence is a dead link; the reply (100 words, 0.9 s apart) is
    // still running on the gateway when the client reconnects and catches up.
    let (proxy, _dir, engine) = through_proxy().await;
    let mut reply = engine.send(ask(100, 900), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let got = first_text(&mut reply).await;
    proxy.freeze();
    let (rest, state, error) = read(&mut reply).await;
    assert_eq!(state, MessageState::Complete, "{error:?}");
    assert_eq!(format!("{got}{}", rest.concat()), expected(100), "one whole reply on screen");
    let (_, messages) = engine.conversation(reply.conversation_id).await.unwrap();
    assert_eq!(messages[1].text, expected(100), "one whole reply in the store");
    assert_eq!(proxy.accepted.load(std::sync::atomic::Ordering::SeqCst), 2, "it gave up on the silent link once");
}

#[tokio::test]
async fn replies_checks_and_history_loads_share_one_connection() {
    let (proxy, _dir, engine) = through_proxy().await;
    let (_, gateway) = engine.open_gateway(None).await.unwrap();
    gateway.check().await.unwrap();
    let mut replies = Vec::new();
    for words in [5, 6, 7] {
        replies.push(engine.send(ask(words, 20), SendOptions::default(), CancellationToken::new()).await.unwrap());
    }
    for (reply, words) in replies.iter_mut().zip([5, 6, 7]) {
        let (deltas, state, error) = read(reply).await;
        assert_eq!((deltas.concat(), state), (expected(words), MessageState::Complete), "{error:?}");
    }
    let held = engine.gateway_history(replies[0].conversation_id).await.unwrap();
    assert_eq!(held.last().map(|m| m.content.clone()), Some(expected(5)));
    assert_eq!(proxy.accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "one connection for all of it");
}

#[tokio::test]
async fn prompt_jobs_run_several_at_once_while_a_chat_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), url()).await;
    let mut events = engine.subscribe();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    let mut ids = Vec::new();
    for words in [5, 6, 7, 8] {
        let spec = PromptSpec { text: ask(words, 30), gateway: None, model: None };
        ids.push((words, engine.submit(NewJob::new("prompt", serde_json::to_value(spec).unwrap())).await.unwrap()));
    }
    let mut conversation = None;
    for words in [2, 3] {
        let options = SendOptions { conversation, ..Default::default() };
        let mut reply = engine.send(ask(words, 20), options, CancellationToken::new()).await.unwrap();
        conversation = Some(reply.conversation_id);
        let (deltas, state, error) = read(&mut reply).await;
        assert_eq!((deltas.concat(), state), (expected(words), MessageState::Complete), "{error:?}");
    }
    for (words, id) in ids {
        tokio::time::timeout(Duration::from_secs(120), async {
            while !engine.job(id).await.unwrap().state.is_finished() {
                let _ = events.recv().await;
            }
        })
        .await
        .expect("prompt job finished");
        let job = engine.job(id).await.unwrap();
        assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
        let lines: Vec<String> = engine.output(id, 0, 10).await.unwrap().into_iter().map(|l| l.text).collect();
        assert_eq!(lines, [expected(words)]);
    }
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_message_over_the_gateways_payload_limit_is_refused_before_it_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), url()).await;
    // The gateway announces 25 MiB (policy.maxPayload in hello-ok); sent, this would make it
    // drop the connection without a word (close 1009).
    let huge = "x".repeat(26 * 1024 * 1024);
    let mut reply = engine.send(huge, SendOptions::default(), CancellationToken::new()).await.unwrap();
    let (deltas, state, error) = read(&mut reply).await;
    assert!(deltas.is_empty());
    assert_eq!((state, error.as_deref()), (MessageState::Failed, Some("gateway.payload_too_large")));
}

#[tokio::test]
async fn a_message_resent_after_a_cut_starts_one_run_not_two() {
    let proxy = gateway_proxy().await;
    // Frame 1 is `connect`, frame 2 `chat.send`: the cut lands after the gateway has the
    // message and before its answer is back, so the client must send it again.
    proxy.cut_first_after_frames(2);
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), format!("ws://{}", proxy.addr)).await;
    let marker = format!("once-{}", std::process::id());
    let mut reply = engine.send(format!("{marker} {}", ask(8, 20)), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let (deltas, state, error) = read(&mut reply).await;
    assert_eq!((deltas.concat(), state), (expected(8), MessageState::Complete), "{error:?}");
    assert!(proxy.accepted.load(std::sync::atomic::Ordering::SeqCst) >= 2, "it reconnected");
    let stub = std::env::var("GATEHOUSE_TEST_PROVIDER_STUB_URL").unwrap_or_else(|_| "http://127.0.0.1:18232".into());
    let seen: usize = reqwest::get(format!("{stub}/seen/{marker}")).await.unwrap().text().await.unwrap().parse().unwrap();
    assert_eq!(seen, 1, "the provider was asked once");
}

#[tokio::test]
async fn a_wrong_token_is_refused_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions::new(dir.path())).await.unwrap();
    let mut p = profile("claw", GatewayKind::Openclaw, url());
    p.token_env = Some("GATEHOUSE_TEST_WRONG_TOKEN".into());
    std::env::set_var("GATEHOUSE_TEST_WRONG_TOKEN", "not-the-token");
    engine.add_gateway(p).await.unwrap();
    let err = engine.send("hello".into(), SendOptions::default(), CancellationToken::new()).await;
    let err = match err {
        Err(e) => e.code().to_owned(),
        Ok(mut reply) => read(&mut reply).await.2.unwrap(),
    };
    assert_eq!(err, "gateway.unauthorized");
    let (_, gateway) = engine.open_gateway(None).await.unwrap();
    let err = gateway.check().await.unwrap_err();
    assert_eq!(err.code(), "gateway.unauthorized");
    assert!(err.to_string().contains("token"), "{err}");

    // No token at all, on a device the gateway has never seen.
    let other = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions::new(other.path())).await.unwrap();
    let mut p = profile("claw", GatewayKind::Openclaw, url());
    p.token_env = None;
    engine.add_gateway(p).await.unwrap();
    let (_, gateway) = engine.open_gateway(None).await.unwrap();
    let err = gateway.check().await.unwrap_err();
    assert_eq!(err.code(), "gateway.unauthorized");
    assert!(err.to_string().contains("no token"), "{err}");
}

/// A gateway of this test's own (the shared one must not be restarted under the other tests),
/// started and stopped with the same script; stopped however the test ends.
struct OwnGateway {
    run: tempfile::TempDir,
}

impl OwnGateway {
    const PORT: u16 = 18791;
    const STUB_PORT: u16 = 18234;

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/peers/openclaw"));
        cmd.args(args)
            .env("GATEHOUSE_OPENCLAW_PORT", Self::PORT.to_string())
            .env("GATEHOUSE_OPENCLAW_RUN", self.run.path())
            .env("GATEHOUSE_OPENCLAW_AUTO_APPROVE", "false")
            .env("GATEHOUSE_PROVIDER_STUB_PORT", Self::STUB_PORT.to_string());
        cmd
    }

    fn script(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(out.status.success(), "openclaw {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for OwnGateway {
    fn drop(&mut self) {
        let _ = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/peers/openclaw"))
            .arg("stop")
            .env("GATEHOUSE_OPENCLAW_RUN", self.run.path())
            .output();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_device_waits_for_approval_a_crash_a_clean_stop_and_a_start_up_are_each_handled() {
    let gw = OwnGateway { run: tempfile::tempdir().unwrap() };
    let url = tokio::task::block_in_place(|| gw.script(&["start"]));
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), url).await;

    // Local auto-approval is off: the person is told the exact command to run.
    let (_, gateway) = engine.open_gateway(None).await.unwrap();
    let err = gateway.check().await.unwrap_err();
    assert_eq!(err.code(), "gateway.pairing_required");
    let message = err.to_string();
    let request_id = message.split("openclaw devices approve ").nth(1).unwrap().split('`').next().unwrap().to_owned();
    assert!(!request_id.is_empty(), "{message}");
    tokio::task::block_in_place(|| gw.script(&["approve", &request_id]));
    gateway.check().await.unwrap();

    // The gateway dies mid-reply and comes back: the client reconnects by itself, finds the
    // run gone, and the reply ends interrupted with the text that had arrived.
    let mut reply = engine.send(ask(400, 50), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let got = first_text(&mut reply).await;
    tokio::task::block_in_place(|| {
        gw.script(&["kill"]);
        gw.script(&["restart"]);
    });
    let (rest, state, error) = read(&mut reply).await;
    assert_eq!((state, error.as_deref()), (MessageState::Interrupted, Some("gateway.run_lost")));
    let shown = format!("{got}{}", rest.concat());
    let (_, messages) = engine.conversation(reply.conversation_id).await.unwrap();
    assert_eq!(messages[1].text, shown);
    assert!(shown.starts_with("stub: w1 w2 w3") && !shown.ends_with("end."), "{shown}");

    // And a new message goes through on the restarted gateway. (Not in the same conversation:
    // on restart OpenClaw recovers the killed run by running it again in its session, and a
    // message sent meanwhile is folded into that run.)
    let mut next = engine.send(ask(3, 10), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let (deltas, state, error) = read(&mut next).await;
    assert_eq!((deltas.concat(), state), (expected(3), MessageState::Complete), "{error:?}");

    // Stopped cleanly (SIGTERM) mid-reply: OpenClaw lets running replies finish before it
    // goes (it drains for up to 315 s), and the reply arrives whole.
    let mut reply = engine.send(ask(60, 50), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let got = first_text(&mut reply).await;
    tokio::task::block_in_place(|| gw.script(&["term"]));
    let (rest, state, error) = read(&mut reply).await;
    assert_eq!((format!("{got}{}", rest.concat()), state), (expected(60), MessageState::Complete), "{error:?}");
    let (_, gateway) = engine.open_gateway(None).await.unwrap();
    tokio::task::block_in_place(|| {
        gatehouse_testkit::eventually("the gateway to be gone", Duration::from_secs(60), || {
            std::net::TcpStream::connect(format!("127.0.0.1:{}", OwnGateway::PORT)).is_err().then_some(())
        })
    });
    assert_eq!(gateway.check().await.unwrap_err().code(), "gateway.unreachable");

    // Started again, a message sent while it is still starting (listening, but /readyz not yet
    // 200: it answers connects with a retryable UNAVAILABLE) waits that out and goes through.
    let mut starting = gw.command(&["restart"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let address = format!("127.0.0.1:{}", OwnGateway::PORT);
    tokio::task::block_in_place(|| {
        gatehouse_testkit::eventually("the gateway to listen", Duration::from_secs(90), || {
            std::net::TcpStream::connect(&address).ok().map(drop)
        })
    });
    assert_ne!(readyz(&address), "200", "the test missed the gateway's start-up window");
    let mut early = engine.send(ask(3, 10), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let (deltas, state, error) = read(&mut early).await;
    assert_eq!((deltas.concat(), state), (expected(3), MessageState::Complete), "{error:?}");
    assert!(tokio::task::block_in_place(|| starting.wait()).unwrap().success());
}

/// The HTTP status of `GET /readyz`.
fn readyz(address: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    String::from_utf8_lossy(&head[9..12]).into_owned()
}
