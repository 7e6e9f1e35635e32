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

/// A reply of `text`, whole.
fn answer(text: &str) -> Vec<Step> {
    vec![sse_head(), Step::Write(format!("{}data: [DONE]\n\n", delta(text)).into_bytes())]
}

/// Wait for `reply` to settle; how it ended.
async fn settled(mut reply: gatehouse_engine::Reply) -> gatehouse_engine::MessageState {
    while let Some(event) = reply.events.recv().await {
        if let ReplyEvent::Finished { state, .. } = event {
            return state;
        }
    }
    panic!("the reply ended without settling");
}

/// The texts of request `n`'s messages, as the gateway got them.
fn sent(server: &gatehouse_testkit::Server, n: usize) -> Vec<String> {
    let body: serde_json::Value = serde_json::from_str(&server.bodies.lock().unwrap()[n]).unwrap();
    body["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap().to_owned()).collect()
}

/// The branch shown: (text, versions).
async fn shown(engine: &Engine, id: i64) -> Vec<(String, Vec<i64>)> {
    let (_, messages) = engine.conversation(id).await.unwrap();
    messages.into_iter().map(|m| (m.text, m.versions)).collect()
}

#[tokio::test]
async fn regenerating_and_editing_keep_every_version_and_the_model_gets_the_branch_shown() {
    let replies = ["r1", "r2", "r2 again", "r1 after the edit", "r3"];
    let server = gatehouse_testkit::serve_each(replies.iter().map(|r| answer(r)).collect()).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &server.url).await;
    let id = say(&engine, None, "q1").await;
    say(&engine, Some(id), "q2").await;
    let (_, messages) = engine.conversation(id).await.unwrap();
    let (q1, r2) = (messages[0].id, messages[3].id);
    let branch_before = engine.conversation(id).await.unwrap().0.branch;

    // Regenerate: the model is asked the same question with the same history, and both
    // replies are kept, the new one shown.
    let again = engine.regenerate(r2, SendOptions::default(), CancellationToken::new()).await.unwrap();
    let r2b = again.message_id;
    assert_eq!(settled(again).await, gatehouse_engine::MessageState::Complete);
    assert_eq!(sent(&server, 2), ["q1", "r1", "q2"]);
    let texts = shown(&engine, id).await;
    assert_eq!(texts.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), ["q1", "r1", "q2", "r2 again"]);
    assert_eq!(texts[3].1, [r2, r2b]);
    assert!(engine.conversation(id).await.unwrap().0.branch > branch_before, "windows are told to reload");

    // Edit the first message: a new branch from the start; the model gets only it.
    let edited = engine.edit(q1, "q1, edited".into(), SendOptions::default(), CancellationToken::new()).await.unwrap();
    assert_eq!(settled(edited).await, gatehouse_engine::MessageState::Complete);
    assert_eq!(sent(&server, 3), ["q1, edited"]);
    let texts = shown(&engine, id).await;
    assert_eq!(texts.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), ["q1, edited", "r1 after the edit"]);
    assert_eq!(texts[0].1.len(), 2);
    assert_eq!(engine.conversation(id).await.unwrap().0.messages, 2);

    // Back to the first version: its newest continuation comes with it; then the older reply.
    engine.show_version(q1).await.unwrap();
    assert_eq!(shown(&engine, id).await.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), ["q1", "r1", "q2", "r2 again"]);
    engine.show_version(r2).await.unwrap();
    assert_eq!(shown(&engine, id).await[3].0, "r2");
    // A page of the conversation is the branch shown, too.
    let page = engine.messages(id, MessagesAt::Latest, 10).await.unwrap();
    assert_eq!(page.messages.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["q1", "r1", "q2", "r2"]);
    // And the next message goes on from it.
    say(&engine, Some(id), "q3").await;
    assert_eq!(sent(&server, 4), ["q1", "r1", "q2", "r2", "q3"]);

    // Deleting q2 takes what followed it, in every version; q1's branch ends at r1.
    let q2 = engine.conversation(id).await.unwrap().1[2].id;
    engine.delete_message(q2).await.unwrap();
    assert_eq!(shown(&engine, id).await.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), ["q1", "r1"]);
    for gone in [q2, r2, r2b] {
        assert_eq!(engine.message(gone).await.unwrap_err().code(), "chat.message_not_found");
    }
    assert!(engine.search("again", 10).await.unwrap().is_empty(), "a deleted reply is not found");
    // Deleting a shown version shows the other one.
    engine.delete_message(q1).await.unwrap();
    let texts = shown(&engine, id).await;
    assert_eq!(texts.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), ["q1, edited", "r1 after the edit"]);
    assert!(texts[0].1.is_empty(), "one version left: {texts:?}");
}

#[tokio::test]
async fn an_interrupted_reply_is_continued_in_place() {
    // The first reply is cut after its first words (the connection closes without [DONE]).
    let cut = vec![sse_head(), Step::Write(delta("The start").into_bytes())];
    let server = gatehouse_testkit::serve_each(vec![cut, answer(" and the end.")]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &server.url).await;
    let first = engine.send("Tell me".into(), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let (reply, conversation) = (first.message_id, first.conversation_id);
    assert_eq!(settled(first).await, gatehouse_engine::MessageState::Interrupted);
    // Only an interrupted reply, and only the last one shown, can be continued.
    let asked = engine.conversation(conversation).await.unwrap().1[0].id;
    let refused = engine.continue_reply(asked, SendOptions::default(), CancellationToken::new()).await;
    assert_eq!(refused.err().map(|e| e.code()), Some("chat.invalid"));

    let mut more = engine.continue_reply(reply, SendOptions::default(), CancellationToken::new()).await.unwrap();
    assert_eq!(more.message_id, reply, "the same reply goes on");
    let mut follower = engine.watch_reply(reply).await.unwrap();
    let Some(ReplyEvent::Delta { offset, text }) = more.events.recv().await else { panic!("no delta") };
    assert_eq!((offset, text.as_str()), ("The start".len(), " and the end."));
    assert_eq!(settled(more).await, gatehouse_engine::MessageState::Complete);
    // The model had the text so far, then was asked to go on.
    let asked_for = sent(&server, 1);
    assert_eq!(asked_for[..2], ["Tell me", "The start"]);
    assert!(asked_for[2].starts_with("Continue your last reply"), "{asked_for:?}");
    let message = engine.message(reply).await.unwrap();
    assert_eq!((message.text.as_str(), message.state), ("The start and the end.", gatehouse_engine::MessageState::Complete));
    // A window following it saw one reply: the text so far, then the rest at its offset.
    let mut seen = String::new();
    while let Some(event) = follower.next().await {
        match event {
            gatehouse_engine::ReplyFeed::Text { offset, text } => {
                assert_eq!(offset, seen.len());
                seen.push_str(&text);
            }
            gatehouse_engine::ReplyFeed::Settled { .. } => break,
            gatehouse_engine::ReplyFeed::Tool { .. } => {}
        }
    }
    assert_eq!(seen, "The start and the end.");
    // Found whole by search, once.
    assert_eq!(engine.search("end", 10).await.unwrap().len(), 1);
}
