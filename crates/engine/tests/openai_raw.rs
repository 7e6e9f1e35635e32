//! The OpenAI-compatible client against a server of our own that writes exact bytes: every
//! shape of stream the client must accept, every way a gateway can fail, and proof that a
//! request is never sent twice.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use gatehouse_engine::gateway::openai::{OpenAi, OpenAiConfig};
use gatehouse_engine::gateway::{ChatEvent, ChatMessage, ChatRequest, Gateway, Role};
use gatehouse_testkit::{delta, serve, sse_head, status, Step};
use tokio_util::sync::CancellationToken;

fn client(url: &str) -> OpenAi {
    let mut config = OpenAiConfig::new("test", url);
    config.model = Some("m".into());
    config.token = Some("sk-secret".into());
    config.idle_timeout = Duration::from_millis(500);
    OpenAi::new(config).unwrap()
}

fn request() -> ChatRequest {
    ChatRequest { messages: vec![ChatMessage::new(Role::User, "hi")], ..Default::default() }
}

/// Collect a reply: the text, the other events, and the error that ended it (if any).
async fn collect(gw: &OpenAi) -> (String, Vec<ChatEvent>, Option<gatehouse_engine::Error>) {
    let mut stream = gw.stream(request(), CancellationToken::new());
    let (mut text, mut events) = (String::new(), Vec::new());
    while let Some(item) = tokio::time::timeout(Duration::from_secs(20), stream.next()).await.expect("stream hung") {
        match item {
            Ok(ChatEvent::Delta { text: t }) => text.push_str(&t),
            Ok(other) => events.push(other),
            Err(e) => return (text, events, Some(e)),
        }
    }
    (text, events, None)
}

#[tokio::test]
async fn a_lenient_stream_split_at_every_byte_is_read_whole() {
    let body = [
        ": comment line\r\n",
        "event: message\r\nid: 1\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\r\n\r\n",
        "data:{\"choices\":[{\"index\":0,\"delta\":{}}]}\r\n\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":null}}]}\r\n\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Bonjour, \"}}]}\r\n\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ça va ? 😀\"},\"finish_reason\":\"stop\"}]}\r\n\r\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":4}}\r\n\r\n",
        "data: [DONE]\r\n\r\n",
    ]
    .concat();
    let server = serve(vec![sse_head(), Step::Trickle(body.into_bytes())]).await;
    let (text, events, err) = collect(&client(&server.url)).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text, "Bonjour, ça va ? 😀");
    assert_eq!(
        events,
        [
            ChatEvent::Usage { prompt_tokens: 5, completion_tokens: 4 },
            ChatEvent::Done { finish_reason: Some("stop".into()) }
        ]
    );
    let sent: serde_json::Value = serde_json::from_str(&server.bodies.lock().unwrap()[0]).unwrap();
    assert_eq!((sent["stream"].as_bool(), sent["model"].as_str()), (Some(true), Some("m")));
    assert_eq!(sent["messages"][0]["content"], "hi");
}

#[tokio::test]
async fn a_stream_without_done_is_incomplete_keeps_its_text_and_is_not_resent() {
    let server = serve(vec![sse_head(), Step::Write(format!("{}{}", delta("half "), delta("a reply")).into_bytes())]).await;
    let (text, _, err) = collect(&client(&server.url)).await;
    assert_eq!(text, "half a reply");
    assert_eq!(err.unwrap().code(), "gateway.incomplete");
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_socket_cut_mid_chunk_is_incomplete_and_not_resent() {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    let first = delta("before the cut");
    let bytes = format!("{head}{:x}\r\n{first}\r\n40\r\ndata: {{\"choi", first.len());
    let server = serve(vec![Step::Write(bytes.into_bytes())]).await;
    let (text, _, err) = collect(&client(&server.url)).await;
    assert_eq!(text, "before the cut");
    assert_eq!(err.unwrap().code(), "gateway.incomplete");
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_error_chunk_after_a_200_is_an_error() {
    let error = "data: {\"error\":{\"message\":\"context length exceeded\",\"type\":\"invalid_request_error\"}}\n\n";
    let server = serve(vec![sse_head(), Step::Write(format!("{}{error}", delta("par")).into_bytes())]).await;
    let (text, _, err) = collect(&client(&server.url)).await;
    let err = err.unwrap();
    assert_eq!((text.as_str(), err.code()), ("par", "gateway.reply_error"));
    assert!(err.to_string().contains("context length exceeded"), "{err}");
}

#[tokio::test]
async fn a_server_that_stalls_mid_reply_times_out() {
    let server = serve(vec![sse_head(), Step::Write(delta("waiting").into_bytes()), Step::Stall]).await;
    let (text, _, err) = collect(&client(&server.url)).await;
    assert_eq!(text, "waiting");
    assert_eq!(err.unwrap().code(), "gateway.timeout");
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn http_errors_become_sentences_with_codes() {
    let cases: Vec<(Step, &str, &str)> = vec![
        (status(401, "", r#"{"error":{"message":"Incorrect API key"}}"#), "gateway.unauthorized", "Incorrect API key"),
        (status(403, "", r#"{"error":"model not allowed"}"#), "gateway.forbidden", "model not allowed"),
        (status(404, "", "<html><body>Not Found</body></html>"), "gateway.not_found", "an HTML page"),
        (status(429, "retry-after: 17\r\n", "slow down"), "gateway.rate_limited", "retry after 17 s"),
        (status(500, "", ""), "gateway.server_error", "empty body"),
        (status(502, "", "upstream died"), "gateway.server_error", "upstream died"),
        (status(200, "content-type: text/html\r\n", "<html>login</html>"), "gateway.protocol", "web page"),
    ];
    for (step, code, says) in cases {
        let server = serve(vec![step]).await;
        let (text, _, err) = collect(&client(&server.url)).await;
        let err = err.expect(code);
        assert_eq!((text.as_str(), err.code()), ("", code), "{err}");
        assert!(err.to_string().contains(says), "{code}: {err}");
        assert!(!err.to_string().contains("sk-secret"));
        assert_eq!(server.requests.load(Ordering::SeqCst), 1, "{code} was retried");
    }
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let (_, _, err) = collect(&client(&url)).await;
    let err = err.unwrap();
    assert_eq!(err.code(), "gateway.unreachable");
    assert!(err.to_string().contains("is it running?"));
}

#[tokio::test]
async fn cancel_ends_the_stream_at_once() {
    let server = serve(vec![sse_head(), Step::Write(delta("first").into_bytes()), Step::Stall]).await;
    let gw = client(&server.url);
    let cancel = CancellationToken::new();
    let mut stream = gw.stream(request(), cancel.clone());
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first, ChatEvent::Delta { text: "first".into() });
    cancel.cancel();
    let rest = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("stream ended");
    assert!(rest.is_none());
}

#[tokio::test]
async fn a_ten_megabyte_line_in_a_thousand_pieces_arrives_whole() {
    let big = "x".repeat(10 * 1024 * 1024);
    let line = delta(&big);
    let pieces: Vec<Step> = line.as_bytes().chunks(line.len() / 1024 + 1).map(|c| Step::Write(c.to_vec())).collect();
    let mut steps = vec![sse_head()];
    steps.extend(pieces);
    steps.push(Step::Write(b"data: [DONE]\n\n".to_vec()));
    let server = serve(steps).await;
    let (text, _, err) = collect(&client(&server.url)).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text.len(), big.len());
}
