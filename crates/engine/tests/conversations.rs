//! The conversation list and long conversations in pages; rename, pin and delete, told to
//! other front ends through the conversation feed. Replies come from the raw-bytes test server
//! (a mock), which answers every message the same way.

use gatehouse_engine::{ConversationEvent, Engine, EngineOptions, MessagesAt, Profile, ReplyEvent, SendOptions};
use gatehouse_testkit::{delta, serve, sse_head, Step};
use tokio_util::sync::CancellationToken;

async fn engine(dir: &std::path::Path, url: &str) -> Engine {
    let engine = Engine::open(EngineOptions::new(dir)).await.unwrap();
    engine.add_gateway(Profile::openai("raw", url, Some("m"))).await.unwrap();
    engine
}

/// Send `text` (in `conversation`, or a new one) and wait for the reply to settle.
async fn say(engine: &Engine, conversation: Option<i64>, text: &str) -> i64 {
    let options = SendOptions { conversation, ..Default::default() };
    let mut reply = engine.send(text.into(), options, CancellationToken::new()).await.unwrap();
    while let Some(event) = reply.events.recv().await {
        if let ReplyEvent::Finished { .. } = event {
            break;
        }
    }
    reply.conversation_id
}

#[tokio::test]
async fn a_long_conversation_opens_a_page_at_a_time() {
    let server = serve(vec![sse_head(), Step::Write(format!("{}data: [DONE]\n\n", delta("ok")).into_bytes())]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &server.url).await;
    let id = say(&engine, None, "message 0").await;
    for i in 1..30 {
        say(&engine, Some(id), &format!("message {i}")).await;
    }
    // 60 messages: the newest 10 first.
    let latest = engine.messages(id, MessagesAt::Latest, 10).await.unwrap();
    let texts = |page: &gatehouse_engine::MessagePage| page.messages.iter().map(|m| m.text.clone()).collect::<Vec<_>>();
    assert_eq!(latest.messages.len(), 10);
    assert_eq!((latest.more_before, latest.more_after), (true, false));
    assert_eq!(texts(&latest)[8], "message 29");
    // Scrolling up, page by page, to the start, with no gap and no repeat.
    let mut all = latest.messages.clone();
    let mut page = latest;
    while page.more_before {
        page = engine.messages(id, MessagesAt::Before(page.messages[0].id), 10).await.unwrap();
        assert!(page.more_after);
        all.splice(0..0, page.messages.clone());
    }
    let ids: Vec<i64> = all.iter().map(|m| m.id).collect();
    assert_eq!(all.len(), 60);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(all[0].text, "message 0");
    // A search hit opened in the middle.
    let middle = all[30].id;
    let around = engine.messages(id, MessagesAt::Around(middle), 10).await.unwrap();
    assert_eq!(around.messages.iter().map(|m| m.id).collect::<Vec<_>>(), ids[25..35].to_vec());
    assert_eq!((around.more_before, around.more_after), (true, true));
    let after = engine.messages(id, MessagesAt::After(ids[54]), 10).await.unwrap();
    assert_eq!((after.messages.len(), after.more_before, after.more_after), (5, true, false));
    assert_eq!(engine.messages(id + 1, MessagesAt::Latest, 10).await.unwrap_err().code(), "chat.not_found");
}

#[tokio::test]
async fn the_list_pages_pinned_first_and_other_front_ends_hear_of_renames_and_deletes() {
    let server = serve(vec![sse_head(), Step::Write(format!("{}data: [DONE]\n\n", delta("ok")).into_bytes())]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &server.url).await;
    let other = Engine::open(EngineOptions::new(dir.path())).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(say(&engine, None, &format!("chat {i}")).await);
    }
    let mut feed = other.watch_conversations().await.unwrap();
    engine.pin_conversation(ids[0], true).await.unwrap();
    engine.rename_conversation(ids[1], "Renamed\nhere").await.unwrap();
    engine.delete_conversation(ids[2]).await.unwrap();
    // Pinned first, then newest first; pages of 3 with a cursor, nothing twice or missed.
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = other.conversations_page(after.as_deref(), 3).await.unwrap();
        listed.extend(page.conversations.iter().map(|c| c.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, [ids[0], ids[6], ids[5], ids[4], ids[3], ids[1]]);
    let mut told = Vec::new();
    while told.len() < 3 {
        match feed.next().await.unwrap() {
            ConversationEvent::Changed { conversation } if conversation.id == ids[0] && conversation.pinned => told.push("pinned"),
            ConversationEvent::Changed { conversation } if conversation.id == ids[1] => {
                assert_eq!(conversation.title, "Renamed here");
                told.push("renamed")
            }
            ConversationEvent::Deleted { id } if id == ids[2] => told.push("deleted"),
            _ => {}
        }
    }
    assert_eq!(told, ["pinned", "renamed", "deleted"]);
    assert_eq!(other.rename_conversation(ids[2], "x").await.unwrap_err().code(), "chat.not_found");
    assert_eq!(other.rename_conversation(ids[1], " ").await.unwrap_err().code(), "chat.invalid");
    assert_eq!(other.conversations_page(Some("nonsense"), 3).await.unwrap_err().code(), "chat.invalid");
}
