//! OpenClaw benchmark against the real gateway (started by `scripts/peers/openclaw`; its URL in
//! `GATEHOUSE_TEST_OPENCLAW_URL`, token in `GATEHOUSE_TEST_OPENCLAW_TOKEN`, a MOCK provider
//! behind it). Prints figures; checks only that every reply arrives whole.
//!
//! `cargo bench -p gatehouse-engine --bench openclaw`; under `cargo test` a small smoke run.
//!
//! 1. connect: WebSocket + challenge + signed connect + hello-ok, as `gateways test` does;
//! 2. time to first delta over the WebSocket and over the same gateway's HTTP endpoint (most of
//!    it is the gateway's own agent preparing the run);
//! 3. a cut mid-reply: from the cut to the next delta on screen (reconnect + handshake +
//!    chat.history catch-up), through a loopback proxy.

use std::time::{Duration, Instant};

use gatehouse_engine::{Engine, EngineOptions, GatewayKind, Profile, ReplyEvent, SendOptions};
use gatehouse_testkit::Proxy;
use tokio_util::sync::CancellationToken;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

async fn engine(kind: GatewayKind, url: String) -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions::new(dir.path())).await.unwrap();
    let profile = Profile {
        name: "claw".into(),
        kind,
        url: Some(url),
        model: (kind == GatewayKind::Openai).then(|| "openclaw/default".into()),
        token_env: Some("GATEHOUSE_TEST_OPENCLAW_TOKEN".into()),
        token_file: None,
        token_keyring: false,
        is_default: true,
    };
    engine.add_gateway(profile).await.unwrap();
    (dir, engine)
}

/// Send in `conversation` (a new one if `None`, which becomes it); time to the first delta and
/// to the end; the whole text.
async fn one(engine: &Engine, conversation: &mut Option<i64>, words: usize, delay_ms: u64) -> (Duration, Duration, String) {
    let started = Instant::now();
    let text = format!("bench [[stub:words={words},delay_ms={delay_ms}]]");
    let options = SendOptions { conversation: *conversation, ..Default::default() };
    let mut reply = engine.send(text, options, CancellationToken::new()).await.unwrap();
    *conversation = Some(reply.conversation_id);
    let (mut first, mut text) = (None, String::new());
    while let Some(event) = reply.events.recv().await {
        match event {
            ReplyEvent::Delta { text: t, .. } => {
                first.get_or_insert_with(|| started.elapsed());
                text.push_str(&t);
            }
            ReplyEvent::Finished { error, .. } => assert!(error.is_none(), "{error:?}"),
            ReplyEvent::Tool(_) => {}
        }
    }
    (first.unwrap(), started.elapsed(), text)
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = if full { 10 } else { 2 };
    let url = std::env::var("GATEHOUSE_TEST_OPENCLAW_URL")
        .expect("GATEHOUSE_TEST_OPENCLAW_URL: start scripts/peers/openclaw (scripts/test does) and set it and GATEHOUSE_TEST_OPENCLAW_TOKEN");
    println!("openclaw benchmark{}: the real gateway, a mock provider, {rounds} rounds", if full { "" } else { " (smoke run)" });

    // A gateway keeps its connection: a new connection is a new engine's first call; later
    // calls ride the open one.
    let (mut connects, mut reused) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (_dir, fresh) = engine(GatewayKind::Openclaw, url.clone()).await;
        let (_, gateway) = fresh.open_gateway(None).await.unwrap();
        let t = Instant::now();
        gateway.check().await.unwrap();
        connects.push(ms(t.elapsed()));
        let t = Instant::now();
        gateway.check().await.unwrap();
        reused.push(ms(t.elapsed()));
    }
    println!("  connect + handshake      p50 {:.1} ms (on the open connection: {:.2} ms)", median(connects), median(reused));
    let (_ws_dir, ws) = engine(GatewayKind::Openclaw, url.clone()).await;

    let (_http_dir, http) = engine(GatewayKind::Openai, url.replacen("ws://", "http://", 1) + "/v1").await;
    let (mut ws_first, mut http_first) = (Vec::new(), Vec::new());
    // One conversation each, first turn not counted: a new OpenClaw session costs seconds of
    // set-up on the gateway (measured: ~5 s), whatever the transport.
    let (mut ws_conv, mut http_conv) = (None, None);
    let (new_session, _, _) = one(&ws, &mut ws_conv, 1, 1).await;
    one(&http, &mut http_conv, 1, 1).await;
    println!("  first delta, new session {:.0} ms (one sample)", ms(new_session));
    for _ in 0..rounds {
        let (f, _, text) = one(&ws, &mut ws_conv, 5, 5).await;
        assert!(text.ends_with("end."), "{text}");
        ws_first.push(ms(f));
        let (f, _, text) = one(&http, &mut http_conv, 5, 5).await;
        assert!(text.ends_with("end."), "{text}");
        http_first.push(ms(f));
    }
    println!("  first delta, WebSocket   p50 {:.0} ms", median(ws_first));
    println!("  first delta, HTTP        p50 {:.0} ms", median(http_first));

    // A cut mid-reply: the gap the person sees.
    let proxy = Proxy::start(url.trim_start_matches("ws://").parse().unwrap()).await;
    let (_cut_dir, cut) = engine(GatewayKind::Openclaw, format!("ws://{}", proxy.addr)).await;
    let mut gaps = Vec::new();
    for _ in 0..rounds {
        let mut reply = cut
            .send("cut [[stub:words=120,delay_ms=20]]".into(), SendOptions::default(), CancellationToken::new())
            .await
            .unwrap();
        let (mut text, mut cut_at, mut done) = (String::new(), None, false);
        while let Some(event) = reply.events.recv().await {
            match event {
                ReplyEvent::Delta { text: t, .. } => {
                    if let Some(at) = cut_at.take() {
                        gaps.push(ms(Instant::now().duration_since(at)));
                    }
                    text.push_str(&t);
                    if !done && text.len() > 30 {
                        proxy.cut();
                        cut_at = Some(Instant::now());
                        done = true;
                    }
                }
                ReplyEvent::Finished { error, .. } => assert!(error.is_none(), "{error:?}"),
                ReplyEvent::Tool(_) => {}
            }
        }
        assert!(text.ends_with(" w120 end."), "whole after the cut: {text}");
    }
    println!("  cut → next delta         p50 {:.0} ms ({} cuts, every reply whole)", median(gaps.clone()), gaps.len());
    ws.close().await;
}
