//! `gatehouse chat`, `chats` and `gateways` as a person uses them, against the raw-bytes
//! server (a mock peer, for faults a real server cannot be made to produce on demand).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use gatehouse_testkit::{collect_stdout, delta, serve_each, sse_head, Server, Step};
use serde_json::Value;

fn gatehouse(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.arg("--data-dir").arg(dir).env_remove("GATEHOUSE_DATA_DIR");
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Output {
    gatehouse(dir).args(args).stdin(Stdio::null()).output().unwrap()
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let out = run(dir, &full);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn eventually<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    gatehouse_testkit::eventually(what, Duration::from_secs(30), check)
}

/// A server on its own runtime, alive as long as the returned runtime.
fn server(scripts: Vec<Vec<Step>>) -> (tokio::runtime::Runtime, Server) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(serve_each(scripts));
    (rt, server)
}

fn reply(parts: &[&str]) -> Vec<Step> {
    let body: String = parts.iter().map(|p| delta(p)).chain(["data: [DONE]\n\n".to_owned()]).collect();
    vec![sse_head(), Step::Write(body.into_bytes())]
}

fn add_gateway(dir: &Path, url: &str) {
    let out = run(dir, &["gateways", "add", "raw", "--kind", "openai", "--url", url, "--model", "m"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Everything a child writes to stdout, collected as it comes.

#[test]
fn one_shot_chat_streams_stores_and_is_found_again() {
    let (_rt, server) = server(vec![reply(&["Paris", " is the capital."])]);
    let dir = tempfile::tempdir().unwrap();
    add_gateway(dir.path(), &server.url);
    let out = run(dir.path(), &["chat", "What is the capital of France?"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Paris is the capital.\n");

    let mut piped = gatehouse(dir.path()).args(["chat", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    piped.stdin.take().unwrap().write_all(b"from standard input").unwrap();
    assert!(piped.wait_with_output().unwrap().status.success());

    let list = json(dir.path(), &["chats", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let hits = json(dir.path(), &["chats", "search", "capital"]);
    assert!(hits.as_array().unwrap().iter().any(|h| h["role"] == "assistant"), "{hits}");
    let id = hits[0]["conversation_id"].as_i64().unwrap();
    let shown = json(dir.path(), &["chats", "show", &id.to_string()]);
    let states: Vec<&str> = shown["messages"].as_array().unwrap().iter().map(|m| m["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["complete", "complete"]);
    let sent: Value = serde_json::from_str(&server.bodies.lock().unwrap()[1]).unwrap();
    assert_eq!(sent["messages"][0]["content"], "from standard input");
}

#[test]
fn a_chat_killed_mid_reply_leaves_the_partial_reply_marked_interrupted() {
    let (_rt, server) = server(vec![vec![sse_head(), Step::Write(delta("the first half").into_bytes()), Step::Stall]]);
    let dir = tempfile::tempdir().unwrap();
    add_gateway(dir.path(), &server.url);
    let mut child = gatehouse(dir.path()).args(["chat", "tell me everything"]).stdout(Stdio::piped()).spawn().unwrap();
    let seen = collect_stdout(&mut child);
    eventually("the partial reply on screen", || seen.lock().unwrap().contains("the first half").then_some(()));
    // And in the store (it is written in batches of 50 ms).
    eventually("the partial reply stored", || {
        let shown = json(dir.path(), &["chats", "show", "1"]);
        (shown["messages"][1]["text"] == "the first half").then_some(())
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let shown = json(dir.path(), &["chats", "show", "1"]);
    let reply = &shown["messages"][1];
    assert_eq!((reply["state"].as_str(), reply["text"].as_str()), (Some("interrupted"), Some("the first half")));
    assert_eq!(server.requests.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn interactive_chat_survives_a_stopped_reply_and_resumes_later() {
    let (_rt, server) = server(vec![
        vec![sse_head(), Step::Write(delta("so far").into_bytes()), Step::Stall],
        reply(&["answer two"]),
    ]);
    let dir = tempfile::tempdir().unwrap();
    add_gateway(dir.path(), &server.url);
    let mut child = gatehouse(dir.path())
        .args(["chat", "--interactive"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = collect_stdout(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first question\n").unwrap();
    eventually("the first reply to start", || seen.lock().unwrap().contains("so far").then_some(()));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    stdin.write_all(b"second question\n").unwrap();
    eventually("the second reply", || seen.lock().unwrap().contains("answer two").then_some(()));
    drop(stdin); // Ctrl-D
    assert!(child.wait().unwrap().success());

    let shown = json(dir.path(), &["chats", "show", "1"]);
    let messages = shown["messages"].as_array().unwrap();
    let states: Vec<&str> = messages.iter().map(|m| m["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["complete", "interrupted", "complete", "complete"]);
    assert_eq!(messages[1]["error"]["code"], "chat.stopped");

    // Resume it: the history goes along.
    let out = run(dir.path(), &["chat", "--conversation", "1", "third"]);
    assert!(out.status.success());
    let sent: Value = serde_json::from_str(&server.bodies.lock().unwrap()[2]).unwrap();
    assert_eq!(sent["messages"].as_array().unwrap().len(), 5);
}

#[test]
fn gateway_problems_are_one_sentence_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing set up: the built-in model is the gateway, and its file is not in this fresh
    // data dir, so the sentence says how to get it.
    let out = run(dir.path(), &["chat", "hello"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gatehouse models fetch"), "{stderr}");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    add_gateway(dir.path(), &url);
    let out = run(dir.path(), &["chat", "hello"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is it running?"), "{stderr}");
    let out = run(dir.path(), &["gateways", "test", "raw"]);
    assert_eq!(out.status.code(), Some(1));

    let out = run(dir.path(), &["gateways", "add", "x", "--kind", "openai"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --url"));
    let out = run(dir.path(), &["chats", "show", "42"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn chats_are_found_as_you_type_renamed_pinned_and_deleted() {
    let (_rt, server) = server(vec![reply(&["Hello there, [friend]."])]);
    let dir = tempfile::tempdir().unwrap();
    add_gateway(dir.path(), &server.url);
    for text in ["Say hi", "Tell me about trains"] {
        let out = run(dir.path(), &["chat", text]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // A prefix finds the word; where it is comes as a byte range, and the brackets of the
    // text stay text.
    let hits = json(dir.path(), &["chats", "search", "hel"]);
    let hit = hits.as_array().unwrap().iter().find(|h| h["role"] == "assistant").unwrap_or_else(|| panic!("{hits}"));
    let snippet = hit["snippet"].as_str().unwrap();
    let [start, end] = [hit["highlights"][0][0].as_u64().unwrap() as usize, hit["highlights"][0][1].as_u64().unwrap() as usize];
    assert_eq!((&snippet[start..end], snippet), ("Hel", "Hello there, [friend]."));
    let shown = String::from_utf8_lossy(&run(dir.path(), &["chats", "search", "hel"]).stdout).into_owned();
    assert!(shown.contains("[Hel]lo there, [friend]."), "{shown}");
    // Titles are searched too.
    let trains = json(dir.path(), &["chats", "search", "trai"]);
    let title_hit = trains.as_array().unwrap().iter().find(|h| h["message_id"].is_null()).unwrap_or_else(|| panic!("{trains}"));
    let id = title_hit["conversation_id"].as_i64().unwrap();

    // Renamed, pinned to the top, then deleted.
    let out = run(dir.path(), &["chats", "rename", &id.to_string(), "Railways"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list = json(dir.path(), &["chats", "list"]);
    assert_eq!((list[0]["id"].as_i64(), list[0]["title"].as_str()), (Some(id), Some("Railways")), "newest first");
    let older = list[1]["id"].as_i64().unwrap();
    assert!(run(dir.path(), &["chats", "pin", &older.to_string()]).status.success());
    let list = json(dir.path(), &["chats", "list"]);
    assert_eq!((list[0]["id"].as_i64(), list[0]["pinned"].as_bool()), (Some(older), Some(true)));
    assert!(json(dir.path(), &["chats", "search", "railw"]).as_array().unwrap().iter().any(|h| h["conversation_id"] == id));
    let out = run(dir.path(), &["chats", "rename", &id.to_string(), "  \n "]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(run(dir.path(), &["chats", "delete", &id.to_string()]).status.success());
    let out = run(dir.path(), &["chats", "show", &id.to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(json(dir.path(), &["chats", "search", "trains"]).as_array().unwrap().is_empty(), "its messages left the index");
}

#[test]
fn a_regenerated_reply_and_an_edited_message_keep_their_old_versions() {
    // The second reply is cut after its first words; continued, it ends.
    let cut = vec![sse_head(), Step::Write(delta("Lyon").into_bytes())];
    let (_rt, server) = server(vec![reply(&["Paris."]), cut, reply(&[" is the second city."]), reply(&["Marseille."])]);
    let dir = tempfile::tempdir().unwrap();
    add_gateway(dir.path(), &server.url);
    let first = json(dir.path(), &["chat", "Capital of France?"]);
    let (conversation, reply_id) = (first["conversation"]["id"].as_i64().unwrap(), first["reply"]["id"].as_i64().unwrap());

    let out = run(dir.path(), &["chat", "--regenerate", &reply_id.to_string()]);
    assert!(!out.status.success(), "a cut reply exits non-zero");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Lyon\n");
    let shown = run(dir.path(), &["chats", "show", &conversation.to_string()]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    let new_id = reply_id + 1; // The next message made.
    assert!(shown.contains(&format!("assistant (message {new_id}, version 2 of 2; others: {reply_id}):  [interrupted")), "{shown}");
    assert!(shown.contains("Lyon") && !shown.contains("Paris."), "{shown}");

    // Continued where it stopped: printed from its start, stored as one reply.
    let out = run(dir.path(), &["chat", "--continue", &new_id.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Lyon is the second city.\n");

    // The first version shown again, then the question edited.
    let switched = run(dir.path(), &["chats", "show-version", &reply_id.to_string()]);
    assert!(switched.status.success());
    let shown = json(dir.path(), &["chats", "show", &conversation.to_string()]);
    assert_eq!(shown["messages"][1]["text"], "Paris.");
    let question = shown["messages"][0]["id"].as_i64().unwrap();
    let edited = json(dir.path(), &["chat", "--edit", &question.to_string(), "Largest city in the south?"]);
    assert_eq!(edited["reply"]["text"], "Marseille.");
    let shown = json(dir.path(), &["chats", "show", &conversation.to_string()]);
    assert_eq!(shown["messages"][0]["text"], "Largest city in the south?");
    assert_eq!(shown["messages"][0]["versions"].as_array().unwrap().len(), 2);
    // Asking to edit a reply is refused in a sentence.
    let out = run(dir.path(), &["chat", "--edit", &reply_id.to_string(), "x"]);
    assert_eq!(out.status.code(), Some(2), "an input error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("only the person's messages are edited"));
}

#[test]
fn conversations_go_out_as_markdown_and_json_and_the_json_comes_back_elsewhere() {
    let (_rt, server) = server(vec![reply(&["Paris", " is the capital."])]);
    let dir = tempfile::tempdir().unwrap();
    add_gateway(dir.path(), &server.url);
    assert!(run(dir.path(), &["chat", "What is the capital of France?"]).status.success());

    let md = run(dir.path(), &["chats", "export", "--format", "markdown"]);
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.starts_with("# What is the capital of France?\n") && md.contains("Paris is the capital."), "{md}");
    // `md`, as the design's CLI contract spells it, is the same format.
    assert_eq!(String::from_utf8_lossy(&run(dir.path(), &["chats", "export", "--format", "md"]).stdout), md);

    let file = dir.path().join("all.json");
    let out = run(dir.path(), &["chats", "export", "-o", file.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("exported 1 conversation to {}", file.display()));
    let other = tempfile::tempdir().unwrap();
    let imported = json(other.path(), &["chats", "import", file.to_str().unwrap()]);
    let id = imported["imported"][0].as_i64().unwrap();
    let shown = json(other.path(), &["chats", "show", &id.to_string()]);
    let texts: Vec<&str> = shown["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["What is the capital of France?", "Paris is the capital."]);

    // Not an export: a clear refusal, exit code 2.
    let wrong = dir.path().join("wrong.json");
    std::fs::write(&wrong, "{\"hello\": 1}").unwrap();
    let out = run(other.path(), &["chats", "import", wrong.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is not a Gatehouse export") && err.contains("hint:"), "{err}");
}
