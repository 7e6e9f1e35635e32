//! Conversations exported and imported: the JSON brings a conversation back whole (versions,
//! the branch shown, pinned) into another data directory; Markdown is the branch shown; a
//! file that does not hold together is refused with nothing written. Replies come from
//! testkit's raw-bytes server (a mock), which answers each request with the next script.

use gatehouse_engine::chat::export::{markdown, Export};
use gatehouse_engine::{Engine, EngineOptions, Profile, Reply, ReplyEvent, SendOptions};
use gatehouse_testkit::{delta, serve_each, sse_head, Step};
use tokio_util::sync::CancellationToken;

fn answer(text: &str) -> Vec<Step> {
    vec![sse_head(), Step::Write(format!("{}data: [DONE]\n\n", delta(text)).into_bytes())]
}

async fn settle(mut reply: Reply) -> Reply {
    while let Some(event) = reply.events.recv().await {
        if let ReplyEvent::Finished { .. } = event {
            break;
        }
    }
    reply
}

async fn say(engine: &Engine, conversation: Option<i64>, text: &str) -> Reply {
    let options = SendOptions { conversation, ..Default::default() };
    settle(engine.send(text.into(), options, CancellationToken::new()).await.unwrap()).await
}

/// An export with ids replaced by positions and the time of export dropped: what must survive
/// a round trip.
fn shape(export: &Export) -> Vec<(String, bool, Vec<(Option<usize>, String, String, String, bool)>)> {
    export
        .conversations
        .iter()
        .map(|c| {
            let at = |id: i64| c.messages.iter().position(|m| m.id == id).unwrap();
            let messages = c
                .messages
                .iter()
                .map(|m| (m.parent.map(at), m.role.clone(), m.text.clone(), m.state.clone(), m.active))
                .collect();
            (c.title.clone(), c.pinned, messages)
        })
        .collect()
}

#[tokio::test]
async fn a_json_export_brings_conversations_back_whole_and_markdown_shows_the_branch() {
    let server = serve_each(vec![answer("Paris."), answer("It is Paris."), answer("About 2 million."), answer("Hi!")]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions::new(dir.path())).await.unwrap();
    engine.add_gateway(Profile::openai("raw", &server.url, Some("m"))).await.unwrap();
    let first = say(&engine, None, "Capital of France?").await;
    let id = first.conversation_id;
    // A second version of the reply (shown), then a turn after it.
    let options = SendOptions { conversation: Some(id), ..Default::default() };
    settle(engine.regenerate(first.message_id, options, CancellationToken::new()).await.unwrap()).await;
    say(&engine, Some(id), "How many people live there?").await;
    let other = say(&engine, None, "Hello").await.conversation_id;
    engine.pin_conversation(other, true).await.unwrap();

    let export = engine.export_conversations(Vec::new()).await.unwrap();
    assert_eq!(export.conversations.len(), 2);
    assert_eq!(export.conversations[0].messages.len(), 5, "both versions of the reply are kept");
    let md = markdown(&export);
    assert!(md.contains("# Capital of France?") && md.contains("## You") && md.contains("It is Paris."), "{md}");
    assert!(!md.contains("\nParis.\n"), "the version not shown is not in the Markdown: {md}");
    assert!(md.find("It is Paris.").unwrap() < md.find("About 2 million.").unwrap());

    // Into another data directory, through the file format.
    let file = serde_json::to_string(&export).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let engine2 = Engine::open(EngineOptions::new(elsewhere.path())).await.unwrap();
    let ids = engine2.import_conversations(serde_json::from_str(&file).unwrap()).await.unwrap();
    assert_eq!(ids.len(), 2);
    let again = engine2.export_conversations(Vec::new()).await.unwrap();
    assert_eq!(shape(&again), shape(&export));
    // It is a conversation like any other: listed, pinned first, shown, searchable.
    let listed: Vec<String> = engine2.conversations(10).await.unwrap().into_iter().map(|c| c.title).collect();
    assert_eq!(listed, ["Hello", "Capital of France?"]);
    let (_, shown) = engine2.conversation(ids[0]).await.unwrap();
    let texts: Vec<&str> = shown.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["Capital of France?", "It is Paris.", "How many people live there?", "About 2 million."]);
    assert_eq!(shown[1].versions.len(), 2, "the other version is there to switch to");
    assert_eq!(engine2.search("million", 10).await.unwrap().len(), 1);
    engine.close().await;
    engine2.close().await;
}

#[tokio::test]
async fn a_file_that_does_not_hold_together_is_refused_with_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions::new(dir.path())).await.unwrap();
    let good = serde_json::json!({
        "gatehouse_export": 1,
        "exported_at": "2026-12-04T00:00:00Z",
        "conversations": [
            {"title": "fine", "created_at": 0, "updated_at": 0, "messages": [
                {"id": 1, "role": "user", "text": "hi", "state": "complete", "created_at": 0}]},
            {"title": "broken", "created_at": 0, "updated_at": 0, "messages": [
                {"id": 1, "parent": 2, "role": "user", "text": "hi", "state": "complete", "created_at": 0},
                {"id": 2, "role": "assistant", "text": "yo", "state": "complete", "created_at": 0}]}
        ]
    });
    let error = engine.import_conversations(serde_json::from_value(good).unwrap()).await.unwrap_err();
    assert_eq!(error.code(), "chat.invalid");
    assert!(error.to_string().contains("conversation 2 of the file (broken): message 1 follows message 2"), "{error}");
    assert!(engine.conversations(10).await.unwrap().is_empty(), "not even the good one was written");

    let future = serde_json::json!({"gatehouse_export": 2, "exported_at": "", "conversations": []});
    let error = engine.import_conversations(serde_json::from_value(future).unwrap()).await.unwrap_err();
    assert!(error.to_string().contains("export format 2"), "{error}");
    engine.close().await;
}
