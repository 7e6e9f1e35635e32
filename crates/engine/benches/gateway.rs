//! Gateway benchmark: prints figures, asserts nothing about speed (it does check that no
//! token is lost or duplicated).
//!
//! `cargo bench -p gatehouse-engine --bench gateway`; under `cargo test` a small smoke run.
//!
//! 1. client-added time to first token: a loopback server answers at once; the time from
//!    sending to the first delta through the engine's `openai` gateway, against a bare reqwest
//!    request to the same server reading to its first `data:` line, interleaved in one run;
//! 2. sustained deltas/s through the gateway stream, text checked end to end;
//! 3. one 10 MB SSE line delivered in 1,024 pieces: our decoder vs eventsource-stream 0.2.

use std::time::{Duration, Instant};

use futures::StreamExt;
use gatehouse_engine::gateway::openai::{OpenAi, OpenAiConfig};
use gatehouse_engine::gateway::sse::Decoder;
use gatehouse_engine::gateway::{ChatEvent, ChatMessage, ChatRequest, Gateway, Role};
use gatehouse_testkit::{delta, serve, sse_head, Step};
use tokio_util::sync::CancellationToken;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn request() -> ChatRequest {
    ChatRequest { messages: vec![ChatMessage::new(Role::User, "hi")], ..Default::default() }
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, tokens, line_mb) = if full { (300, 200_000, 10) } else { (10, 2_000, 1) };
    println!("gateway benchmark{}", if full { "" } else { " (smoke run)" });

    // 1. Time to first token.
    let body = format!("{}data: [DONE]\n\n", delta("first"));
    let server = serve(vec![sse_head(), Step::Write(body.into_bytes())]).await;
    let gw = OpenAi::new(OpenAiConfig::new("bench", &server.url)).unwrap();
    let bare = reqwest::Client::new();
    let url = format!("{}/chat/completions", server.url);
    let (mut engine_t, mut bare_t) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let mut s = gw.stream(request(), CancellationToken::new());
        while let Some(item) = s.next().await {
            if matches!(item, Ok(ChatEvent::Delta { .. })) {
                break;
            }
        }
        engine_t.push(t.elapsed());
        drop(s);

        let t = Instant::now();
        let resp = bare.post(&url).json(&serde_json::json!({"stream": true, "messages": []})).send().await.unwrap();
        let mut bytes = resp.bytes_stream();
        let mut seen = Vec::new();
        while let Some(chunk) = bytes.next().await {
            seen.extend_from_slice(&chunk.unwrap());
            if seen.windows(5).any(|w| w == b"data:") && seen.contains(&b'\n') {
                break;
            }
        }
        bare_t.push(t.elapsed());
    }
    engine_t.sort();
    bare_t.sort();
    println!(
        "time to first token ({rounds} rounds): engine p50 {} p95 {}; bare reqwest p50 {} p95 {}; client-added p50 {} p95 {}",
        ms(pct(&engine_t, 0.5)),
        ms(pct(&engine_t, 0.95)),
        ms(pct(&bare_t, 0.5)),
        ms(pct(&bare_t, 0.95)),
        ms(pct(&engine_t, 0.5).saturating_sub(pct(&bare_t, 0.5))),
        ms(pct(&engine_t, 0.95).saturating_sub(pct(&bare_t, 0.95))),
    );

    // 2. Sustained rate: `tokens` deltas, each a distinct word, written in large segments.
    let words: Vec<String> = (0..tokens).map(|i| format!("w{i} ")).collect();
    let mut body = String::new();
    for w in &words {
        body.push_str(&delta(w));
    }
    body.push_str("data: [DONE]\n\n");
    let segments = body.as_bytes().chunks(64 * 1024).map(|c| Step::Write(c.to_vec())).collect::<Vec<_>>();
    let mut steps = vec![sse_head()];
    steps.extend(segments);
    let server = serve(steps).await;
    let gw = OpenAi::new(OpenAiConfig::new("bench", &server.url)).unwrap();
    let t = Instant::now();
    let mut s = gw.stream(request(), CancellationToken::new());
    let (mut text, mut n) = (String::with_capacity(body.len() / 4), 0usize);
    while let Some(item) = s.next().await {
        match item.expect("stream ok") {
            ChatEvent::Delta { text: d } => {
                text.push_str(&d);
                n += 1;
            }
            ChatEvent::Done { .. } => break,
            ChatEvent::Usage { .. } | ChatEvent::ToolCalls { .. } | ChatEvent::ToolActivity { .. } => {}
        }
    }
    let took = t.elapsed();
    assert_eq!(n, tokens, "deltas lost or duplicated");
    assert_eq!(text, words.concat(), "text differs");
    println!("sustained: {tokens} deltas in {:.3} s = {:.0} deltas/s, text identical", took.as_secs_f64(), tokens as f64 / took.as_secs_f64());

    // 3. One long line in 1,024 pieces.
    let line = delta(&"x".repeat(line_mb * 1024 * 1024));
    let piece = line.len() / 1024 + 1;
    let t = Instant::now();
    let mut decoder = Decoder::new();
    let mut events = 0;
    for chunk in line.as_bytes().chunks(piece) {
        events += decoder.feed(chunk).len();
    }
    assert_eq!(events, 1);
    let ours = t.elapsed();
    use eventsource_stream::Eventsource;
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
        line.as_bytes().chunks(piece).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
    let t = Instant::now();
    let mut es = futures::stream::iter(chunks).eventsource();
    let mut events = 0;
    while let Some(e) = es.next().await {
        e.expect("event");
        events += 1;
    }
    assert_eq!(events, 1);
    let theirs = t.elapsed();
    println!(
        "{line_mb} MB SSE line in 1,024 pieces: our decoder {} ; eventsource-stream 0.2 {}",
        ms(ours),
        ms(theirs)
    );
}
