//! Conversations, profiles and prompt jobs against the raw-bytes server and a real SQLite.

use std::time::Duration;

use gatehouse_engine::{
    Engine, EngineOptions, GatewayKind, JobState, MessageState, NewJob, PoolConfig, Profile, PromptSpec, ReplyEvent,
    SendOptions,
};
use gatehouse_testkit::{delta, serve, sse_head, Step};
use tokio_util::sync::CancellationToken;

async fn engine_with(dir: &std::path::Path, url: &str) -> Engine {
    let engine = Engine::open(EngineOptions::new(dir)).await.unwrap();
    engine.add_gateway(profile("raw", url)).await.unwrap();
    engine
}

fn profile(name: &str, url: &str) -> Profile {
    Profile::openai(name, url, Some("m"))
}

fn reply(parts: &[&str], done: bool) -> Vec<Step> {
    let mut body: String = parts.iter().map(|p| delta(p)).collect();
    if done {
        body.push_str("data: [DONE]\n\n");
    }
    vec![sse_head(), Step::Write(body.into_bytes())]
}

/// Read a reply to its end: the streamed text and how it finished.
async fn finish(mut reply: gatehouse_engine::Reply) -> (String, MessageState, Option<String>) {
    let mut text = String::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(20), reply.events.recv()).await.expect("reply hung") {
            Some(ReplyEvent::Delta { text: t, .. }) => text.push_str(&t),
            Some(ReplyEvent::Finished { state, error }) => return (text, state, error.map(|e| e.code().to_owned())),
            Some(ReplyEvent::Tool(outcome)) => text.push_str(&format!("[{}]", outcome.summary)),
            None => panic!("reply ended without Finished"),
        }
    }
}

#[tokio::test]
async fn a_reply_streams_is_stored_and_the_next_turn_carries_the_history() {
    let server = serve(reply(&["The capital ", "is Paris."], true)).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), &server.url).await;
    let first = engine.send("Capital of France?".into(), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let conversation = first.conversation_id;
    let (text, state, _) = finish(first).await;
    assert_eq!((text.as_str(), state), ("The capital is Paris.", MessageState::Complete));

    let options = SendOptions { conversation: Some(conversation), ..Default::default() };
    let (_, state, _) = finish(engine.send("And Spain?".into(), options, CancellationToken::new()).await.unwrap()).await;
    assert_eq!(state, MessageState::Complete);
    let sent: serde_json::Value = serde_json::from_str(&server.bodies.lock().unwrap()[1]).unwrap();
    let roles: Vec<&str> = sent["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(sent["messages"][1]["content"], "The capital is Paris.");

    let (conv, messages) = engine.conversation(conversation).await.unwrap();
    assert_eq!(conv.title, "Capital of France?");
    assert_eq!(messages.len(), 4);
    assert!(messages.iter().all(|m| m.state == MessageState::Complete));

    let hits = engine.search("paris", 10).await.unwrap();
    assert_eq!(hits.len(), 2, "{hits:?}");
    for h in &hits {
        let [start, end] = h.highlights[0];
        assert_eq!((h.conversation_id, &h.snippet[start..end]), (conversation, "Paris"), "{h:?}");
    }
    assert_eq!(engine.search("\"-(", 10).await.unwrap_err().code(), "chat.bad_search");
}

#[tokio::test]
async fn a_cut_reply_is_kept_as_interrupted_and_a_reply_with_no_text_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let cut = serve(reply(&["half of ", "it"], false)).await;
    let engine = engine_with(dir.path(), &cut.url).await;
    let r = engine.send("hi".into(), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let id = r.conversation_id;
    let (text, state, code) = finish(r).await;
    assert_eq!((text.as_str(), state, code.as_deref()), ("half of it", MessageState::Interrupted, Some("gateway.incomplete")));
    let (_, messages) = engine.conversation(id).await.unwrap();
    assert_eq!(messages[1].text, "half of it");
    assert_eq!(messages[1].error.as_ref().unwrap().code, "gateway.incomplete");
    // Interrupted replies are searchable too.
    assert_eq!(engine.search("half", 5).await.unwrap().len(), 1);

    let down = serve(vec![gatehouse_testkit::status(500, "", "boom")]).await;
    engine.add_gateway(profile("down", &down.url)).await.unwrap();
    let options = SendOptions { gateway: Some("down".into()), ..Default::default() };
    let (text, state, code) = finish(engine.send("hi".into(), options, CancellationToken::new()).await.unwrap()).await;
    assert_eq!((text.as_str(), state, code.as_deref()), ("", MessageState::Failed, Some("gateway.server_error")));
}

#[tokio::test]
async fn stopping_a_reply_keeps_what_arrived() {
    let server = serve(vec![sse_head(), Step::Write(delta("so far").into_bytes()), Step::Stall]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), &server.url).await;
    let cancel = CancellationToken::new();
    let mut r = engine.send("tell me".into(), SendOptions::default(), cancel.clone()).await.unwrap();
    match r.events.recv().await {
        Some(ReplyEvent::Delta { text: t, .. }) => assert_eq!(t, "so far"),
        other => panic!("{other:?}"),
    }
    cancel.cancel();
    let id = r.conversation_id;
    let (_, state, _) = finish(r).await;
    assert_eq!(state, MessageState::Interrupted);
    let (_, messages) = engine.conversation(id).await.unwrap();
    assert_eq!((messages[1].text.as_str(), messages[1].error.as_ref().unwrap().code.as_str()), ("so far", "chat.stopped"));
}

#[tokio::test]
async fn profiles_have_one_default_and_tokens_stay_out_of_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions::new(dir.path())).await.unwrap();
    // Nothing set up: the built-in model is the default, and says how to get its file.
    assert_eq!(engine.gateway_profile(None).await.unwrap().kind, GatewayKind::Local);
    let expected = if cfg!(feature = "local") { "model.missing" } else { "gateway.local_unavailable" };
    assert_eq!(engine.open_gateway(None).await.err().unwrap().code(), expected);
    engine.add_gateway(profile("a", "http://127.0.0.1:9/v1")).await.unwrap();
    engine.add_gateway(profile("b", "http://127.0.0.1:9/v1")).await.unwrap();
    let defaults: Vec<String> = engine.gateways().await.unwrap().into_iter().filter(|p| p.is_default).map(|p| p.name).collect();
    assert_eq!(defaults, ["a"]);
    engine.set_default_gateway("b").await.unwrap();
    assert_eq!(engine.open_gateway(None).await.unwrap().0.name, "b");
    assert_eq!(engine.set_default_gateway("zz").await.unwrap_err().code(), "gateway.unknown");
    engine.remove_gateway("a").await.unwrap();
    assert_eq!(engine.remove_gateway("a").await.unwrap_err().code(), "gateway.unknown");
    assert_eq!(engine.remove_gateway("local").await.unwrap_err().code(), "gateway.invalid");
    let names: Vec<String> = engine.gateways().await.unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["b", "local"]);
    engine.set_default_gateway("local").await.unwrap();
    assert_eq!(engine.open_gateway(Some("b")).await.unwrap().0.name, "b");
    assert_eq!(engine.gateway_profile(None).await.unwrap().name, "local");
    engine.set_default_gateway("b").await.unwrap();

    let mut bad = profile("c", "ftp://x");
    assert_eq!(engine.add_gateway(bad.clone()).await.unwrap_err().code(), "gateway.invalid");
    bad.url = Some("http://127.0.0.1:9/v1".into());
    let token = dir.path().join("token");
    std::fs::write(&token, "sk-very-secret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    bad.token_file = Some(token.clone());
    let err = engine.add_gateway(bad.clone()).await.unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    engine.add_gateway(bad).await.unwrap();
    engine.close().await;
    let db = std::fs::read(dir.path().join("gatehouse.db")).unwrap();
    let wal = std::fs::read(dir.path().join("gatehouse.db-wal")).unwrap_or_default();
    let needle = b"sk-very-secret";
    assert!(!db.windows(needle.len()).any(|w| w == needle) && !wal.windows(needle.len()).any(|w| w == needle));
}

#[tokio::test]
async fn prompt_jobs_stream_the_reply_into_their_output_several_at_once() {
    let server = serve(reply(&["line one\nline ", "two\n", "and three"], true)).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), &server.url).await;
    let mut events = engine.subscribe();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    let spec = serde_json::to_value(PromptSpec { text: "write three lines".into(), gateway: None, model: None }).unwrap();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(engine.submit(NewJob::new("prompt", spec.clone())).await.unwrap());
    }
    for id in &ids {
        tokio::time::timeout(Duration::from_secs(30), async {
            while !engine.job(*id).await.unwrap().state.is_finished() {
                let _ = events.recv().await;
            }
        })
        .await
        .expect("prompt job finished");
        let job = engine.job(*id).await.unwrap();
        assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
        let lines: Vec<String> = engine.output(*id, 0, 10).await.unwrap().into_iter().map(|l| l.text).collect();
        assert_eq!(lines, ["line one", "line two", "and three"]);
    }
    assert_eq!(server.requests.load(std::sync::atomic::Ordering::SeqCst), 5);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn the_model_runs_commands_through_the_exec_tool_and_gets_the_results() {
    let call = |index: u32, id: &str, name: &str, args: &str| {
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices":[{"index":0,"delta":{"tool_calls":[
                {"index":index,"id":id,"type":"function","function":{"name":name,"arguments":args}}]}}]})
        )
    };
    let more = |index: u32, args: &str| {
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":index,"function":{"arguments":args}}]}}]})
        )
    };
    // Round one: two calls, streamed in pieces — one the policy allows, one it denies.
    let round_one = [
        call(0, "call_1", "exec", "{\"program\": \"echo\","),
        more(0, " \"args\": [\"from the sandbox\"]}"),
        call(1, "call_2", "exec", "{\"program\": \"dd\", \"args\": [\"if=/dev/zero\"]}"),
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n".to_owned(),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    let server = gatehouse_testkit::serve_each(vec![
        vec![sse_head(), Step::Write(round_one.into_bytes())],
        reply(&["It printed: from the sandbox."], true),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), &server.url).await;
    let options = SendOptions { exec_tool: Some(std::sync::Arc::new(gatehouse_engine::NoApprover)), ..Default::default() };
    let mut feed = engine.watch_conversations().await.unwrap();
    let reply = engine.send("What does echo print?".into(), options, CancellationToken::new()).await.unwrap();
    let (conversation, id) = (reply.conversation_id, reply.message_id);
    let (text, state, _) = finish(reply).await;
    assert_eq!(state, MessageState::Complete);
    assert!(text.contains("[ran `echo 'from the sandbox'`: exit code 0]"), "{text}");
    assert!(text.contains("`dd if=/dev/zero` was not run: blocked by policy"), "{text}");
    assert!(text.ends_with("It printed: from the sandbox."), "{text}");

    let sent: serde_json::Value = serde_json::from_str(&server.bodies.lock().unwrap()[1]).unwrap();
    let messages = sent["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "tool"]);
    assert_eq!(messages[1]["tool_calls"][0]["function"]["arguments"], "{\"program\": \"echo\", \"args\": [\"from the sandbox\"]}");
    assert_eq!(messages[2]["tool_call_id"], "call_1");
    assert!(messages[2]["content"].as_str().unwrap().contains("from the sandbox"));
    assert!(messages[3]["content"].as_str().unwrap().starts_with("not run: blocked by policy"));
    let first: serde_json::Value = serde_json::from_str(&server.bodies.lock().unwrap()[0]).unwrap();
    assert_eq!(first["tools"][0]["function"]["name"], "exec");

    let audit = engine.exec_audit(10).await.unwrap();
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|e| e.requester == "model"));

    // The calls are kept with the reply, in order.
    let (_, stored) = engine.conversation(conversation).await.unwrap();
    let tools: Vec<(&str, &str)> = stored[1].tools.iter().map(|t| (t.call_id.as_str(), t.ran_by.as_str())).collect();
    assert_eq!(tools, [("call_1", "gatehouse"), ("call_2", "gatehouse")]);
    assert!(stored[1].tools[1].summary.contains("blocked by policy"), "{:?}", stored[1].tools);
    let statuses: Vec<&str> = stored[1].tools.iter().map(|t| t.status.as_str()).collect();
    assert_eq!(statuses, ["completed", "refused"]);
    // What each printed is kept too, for the window to show folded under the call.
    assert_eq!(stored[1].tools[0].output, "exit code 0\nfrom the sandbox\n");
    assert!(stored[1].tools[1].output.starts_with("not run: blocked by policy"), "{:?}", stored[1].tools[1]);
    // The feed's news that the reply settled carries it whole, calls included: a window
    // replaces what it showed with it.
    let settled = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(gatehouse_engine::ConversationEvent::Settled { message, .. }) = feed.next().await {
                if message.id == id {
                    break message;
                }
            }
        }
    })
    .await
    .expect("the reply settled on the feed");
    assert_eq!(settled.tools.len(), 2, "{:?}", settled.tools);
    assert_eq!(settled.tools[1].status, "refused");
}

#[tokio::test]
async fn a_model_that_keeps_asking_for_tools_is_stopped_and_says_why() {
    // Every answer is another tool call (a mock: a real model looping on demand is not at hand).
    let round = format!(
        "data: {}\n\ndata: [DONE]\n\n",
        serde_json::json!({"choices":[{"index":0,"delta":{"tool_calls":[
            {"index":0,"id":"call_x","type":"function","function":{"name":"exec","arguments":"{\"program\":\"true\"}"}}]},
            "finish_reason":"tool_calls"}]})
    );
    let server = serve(vec![sse_head(), Step::Write(round.into_bytes())]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), &server.url).await;
    let options = SendOptions { exec_tool: Some(std::sync::Arc::new(gatehouse_engine::NoApprover)), ..Default::default() };
    let reply = engine.send("loop".into(), options, CancellationToken::new()).await.unwrap();
    let (_, state, error) = finish(reply).await;
    assert_ne!(state, MessageState::Complete);
    assert_eq!(error.as_deref(), Some("chat.tool_rounds"));
    // The first request and eight rounds of answers: nine, then it stopped asking.
    assert_eq!(server.requests.load(std::sync::atomic::Ordering::SeqCst), 9);
}

#[tokio::test]
async fn tool_calls_from_a_server_that_ignores_streaming_are_run_too() {
    let whole = serde_json::json!({"choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant",
        "content":null,"tool_calls":[{"id":"call_w","type":"function","function":{"name":"exec","arguments":"{\"program\":\"echo\",\"args\":[\"whole\"]}"}}]}}]})
    .to_string();
    let server = gatehouse_testkit::serve_each(vec![
        vec![gatehouse_testkit::status(200, "content-type: application/json\r\n", &whole)],
        reply(&["Done."], true),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), &server.url).await;
    let options = SendOptions { exec_tool: Some(std::sync::Arc::new(gatehouse_engine::NoApprover)), ..Default::default() };
    let reply = engine.send("echo whole".into(), options, CancellationToken::new()).await.unwrap();
    let (text, state, _) = finish(reply).await;
    assert_eq!(state, MessageState::Complete);
    assert!(text.contains("[ran `echo whole`: exit code 0]") && text.ends_with("Done."), "{text}");
    let sent: serde_json::Value = serde_json::from_str(&server.bodies.lock().unwrap()[1]).unwrap();
    assert!(sent["messages"][2]["content"].as_str().unwrap().contains("whole"));
}

/// Live processes running `program` (by any path) with exactly `args`.
fn running(program: &str, args: &[&str]) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| !s.contains(") Z ")))
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| {
            let parts: Vec<&[u8]> = c.split(|b| *b == 0).filter(|p| !p.is_empty()).collect();
            parts.first().is_some_and(|p0| p0.rsplit(|b| *b == b'/').next() == Some(program.as_bytes()))
                && parts[1..].iter().map(|p| p.to_vec()).eq(args.iter().map(|a| a.as_bytes().to_vec()))
        })
        .count()
}

// Multi-threaded: the test polls /proc with a blocking wait while the engine runs.
#[tokio::test(flavor = "multi_thread")]
async fn stopping_a_turn_kills_the_command_a_tool_call_started() {
    let round = format!(
        "data: {}\n\ndata: [DONE]\n\n",
        serde_json::json!({"choices":[{"index":0,"delta":{"tool_calls":[
            {"index":0,"id":"call_s","type":"function","function":{"name":"exec","arguments":"{\"program\":\"sleep\",\"args\":[\"47\"]}"}}]},
            "finish_reason":"tool_calls"}]})
    );
    let server = serve(vec![sse_head(), Step::Write(round.into_bytes())]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), &server.url).await;
    let cancel = CancellationToken::new();
    let options = SendOptions { exec_tool: Some(std::sync::Arc::new(gatehouse_engine::NoApprover)), ..Default::default() };
    let reply = engine.send("sleep".into(), options, cancel.clone()).await.unwrap();
    gatehouse_testkit::eventually("the command to start", Duration::from_secs(20), || (running("sleep", &["47"]) == 1).then_some(()));
    cancel.cancel();
    let (_, state, _) = finish(reply).await;
    assert_eq!(state, MessageState::Interrupted);
    // Killed, not left to its 120 s timeout — and audited.
    gatehouse_testkit::eventually("the command to be killed", Duration::from_secs(10), || (running("sleep", &["47"]) == 0).then_some(()));
    let audit = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let a = engine.exec_audit(5).await.unwrap();
            if !a.is_empty() {
                return a;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the stopped command was audited");
    assert_eq!(audit[0].program.rsplit('/').next(), Some("sleep"));
}
