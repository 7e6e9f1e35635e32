//! Replies any window can follow: the text so far and then every delta, from another engine
//! on the same database (its own connections and feed, as another process has), a stop from
//! anywhere, and the conversation feed. The gateway is the raw-bytes test server (a mock: it
//! paces a stream exactly as told).

use std::time::Duration;

use gatehouse_engine::{
    ConversationEvent, Engine, EngineOptions, MessageState, Profile, ReplyEvent, ReplyFeed, ReplyWatch,
    SendOptions,
};
use gatehouse_testkit::{delta, serve, sse_head, Step};
use tokio_util::sync::CancellationToken;

async fn open(dir: &std::path::Path, url: Option<&str>) -> Engine {
    let engine = Engine::open(EngineOptions::new(dir)).await.unwrap();
    if let Some(url) = url {
        engine.add_gateway(Profile::openai("raw", url, Some("m"))).await.unwrap();
    }
    engine
}

/// Everything a follower is told: the text pieces (checked to follow each other with no gap
/// or overlap) and how the reply settled.
async fn follow(mut watch: ReplyWatch) -> (String, usize, MessageState) {
    let (mut text, mut pieces) = (String::new(), 0);
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), watch.next()).await.expect("the follower hung");
        match event {
            Some(ReplyFeed::Text { offset, text: piece }) => {
                assert_eq!(offset, text.len(), "each piece starts where the last ended");
                text.push_str(&piece);
                pieces += 1;
            }
            Some(ReplyFeed::Tool { .. }) => {}
            Some(ReplyFeed::Settled { state, .. }) => {
                assert!(watch.next().await.is_none(), "nothing after the end");
                return (text, pieces, state);
            }
            None => panic!("ended without settling"),
        }
    }
}

/// The reply's deltas as the sender got them, checked for offsets.
async fn sent(mut reply: gatehouse_engine::Reply) -> (String, MessageState) {
    let mut text = String::new();
    while let Some(event) = reply.events.recv().await {
        match event {
            ReplyEvent::Delta { offset, text: piece } => {
                assert_eq!(offset, text.len());
                text.push_str(&piece);
            }
            ReplyEvent::Finished { state, .. } => return (text, state),
            ReplyEvent::Tool(_) => {}
        }
    }
    panic!("no end")
}

#[tokio::test]
async fn a_reply_is_followed_from_this_engine_and_another_from_its_text_so_far_to_its_end() {
    let parts: Vec<String> = (0..40).map(|i| format!("part {i}, ")).collect();
    let mut steps = vec![sse_head(), Step::Write(delta("Hello, ").into_bytes()), Step::Pause(Duration::from_millis(300))];
    for p in &parts {
        steps.push(Step::Write(delta(p).into_bytes()));
        steps.push(Step::Pause(Duration::from_millis(10)));
    }
    steps.push(Step::Write(b"data: [DONE]\n\n".to_vec()));
    let server = serve(steps).await;
    let dir = tempfile::tempdir().unwrap();
    let (writer, window) = (open(dir.path(), Some(&server.url)).await, open(dir.path(), None).await);
    let mut conversations = window.watch_conversations().await.unwrap();
    let reply = writer.send("say hello".into(), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let id = reply.message_id;
    // The other window learns of the new reply from the feed, and follows it from there.
    let started = loop {
        match conversations.next().await.unwrap() {
            ConversationEvent::Message { message, .. } if message.id == id => break message,
            _ => {}
        }
    };
    assert_eq!(started.state, MessageState::Streaming);
    let elsewhere = tokio::spawn(follow(window.watch_reply(id).await.unwrap()));
    let here = tokio::spawn(follow(writer.watch_reply(id).await.unwrap()));
    let (text, state) = sent(reply).await;
    let whole = format!("Hello, {}", parts.concat());
    assert_eq!((text.as_str(), state), (whole.as_str(), MessageState::Complete));
    for follower in [here, elsewhere] {
        let (followed, pieces, state) = follower.await.unwrap();
        assert_eq!((followed.as_str(), state), (whole.as_str(), MessageState::Complete));
        assert!(pieces > 1, "followed live, not only read at the end");
    }
    // The feed says it settled, with the whole text; a late follower gets it at once.
    let settled = loop {
        match conversations.next().await.unwrap() {
            ConversationEvent::Settled { message, .. } if message.id == id => break message,
            _ => {}
        }
    };
    assert_eq!(settled.text, whole);
    assert_eq!(follow(window.watch_reply(id).await.unwrap()).await, (whole.clone(), 1, MessageState::Complete));
    assert_eq!(window.message(id).await.unwrap().text, whole);
    assert_eq!(window.watch_reply(id + 100).await.err().map(|e| e.code()), Some("chat.message_not_found"));
}

#[tokio::test]
async fn a_follower_that_reads_nothing_until_the_end_still_gets_every_byte() {
    // 5,000 deltas: far more than a follower's live buffer holds.
    let body: String = (0..5000).map(|i| delta(&format!("{i} "))).collect::<String>() + "data: [DONE]\n\n";
    let server = serve(vec![sse_head(), Step::Pause(Duration::from_millis(200)), Step::Write(body.into_bytes())]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), Some(&server.url)).await;
    let reply = engine.send("count".into(), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let slow = engine.watch_reply(reply.message_id).await.unwrap();
    let id = reply.message_id;
    // The sender reads nothing until the reply is stored in full.
    let mut settled = engine.watch_conversations().await.unwrap();
    loop {
        if let Some(ConversationEvent::Settled { message, .. }) = settled.next().await {
            if message.id == id {
                break;
            }
        }
    }
    let whole: String = (0..5000).map(|i| format!("{i} ")).collect();
    assert_eq!(sent(reply).await, (whole.clone(), MessageState::Complete));
    let (followed, _, state) = follow(slow).await;
    assert_eq!((followed == whole, state), (true, MessageState::Complete));
}

#[tokio::test]
async fn a_reply_is_stopped_from_another_engine_and_keeps_what_arrived() {
    let server = serve(vec![sse_head(), Step::Write(delta("so far").into_bytes()), Step::Stall]).await;
    let dir = tempfile::tempdir().unwrap();
    let (writer, window) = (open(dir.path(), Some(&server.url)).await, open(dir.path(), None).await);
    let mut reply = writer.send("tell me".into(), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let id = reply.message_id;
    match reply.events.recv().await {
        Some(ReplyEvent::Delta { offset: 0, text }) => assert_eq!(text, "so far"),
        other => panic!("{other:?}"),
    }
    let watch = window.watch_reply(id).await.unwrap();
    assert!(window.stop_reply(id).await.unwrap(), "it was streaming");
    let (rest, state) = sent(reply).await;
    assert_eq!((rest.as_str(), state), ("", MessageState::Interrupted));
    assert_eq!(follow(watch).await.2, MessageState::Interrupted);
    let stored = window.message(id).await.unwrap();
    assert_eq!((stored.text.as_str(), stored.error.map(|e| e.code)), ("so far", Some("chat.stopped".into())));
    assert!(!window.stop_reply(id).await.unwrap(), "settled already: nothing to stop");
}

#[tokio::test]
async fn the_conversation_feed_shows_a_chat_made_elsewhere() {
    let server = serve(vec![sse_head(), Step::Write(format!("{}data: [DONE]\n\n", delta("Paris.")).into_bytes())]).await;
    let dir = tempfile::tempdir().unwrap();
    let (cli, app) = (open(dir.path(), Some(&server.url)).await, open(dir.path(), None).await);
    let mut feed = app.watch_conversations().await.unwrap();
    let reply = cli.send("Capital of France?".into(), SendOptions::default(), CancellationToken::new()).await.unwrap();
    let conversation = reply.conversation_id;
    sent(reply).await;
    let mut seen = Vec::new();
    while seen.last() != Some(&"settled".to_owned()) {
        let event = tokio::time::timeout(Duration::from_secs(30), feed.next()).await.unwrap().unwrap();
        seen.push(match event {
            ConversationEvent::Created { conversation: c } => {
                assert_eq!((c.id, c.title.as_str()), (conversation, "Capital of France?"));
                "created".to_owned()
            }
            ConversationEvent::Message { message, .. } => format!("message:{}", message.role),
            ConversationEvent::Settled { message, .. } => {
                assert_eq!((message.text.as_str(), message.state), ("Paris.", MessageState::Complete));
                "settled".to_owned()
            }
            ConversationEvent::Changed { .. } => continue,
            other => panic!("{other:?}"),
        });
    }
    assert_eq!(seen, ["created", "message:user", "message:assistant", "settled"]);
}
