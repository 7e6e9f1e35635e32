//! Built-in model benchmark: the whole engine against llama.cpp driven directly, in one run.
//! Prints figures; checks only that both produced the same tokens (greedy decoding).
//!
//! `cargo bench -p gatehouse-engine --features local --bench local`; under `cargo test` a
//! small smoke run. The model file: `GATEHOUSE_TEST_MODEL`, else the default data directory's.
//!
//! 1. bare: llama-cpp-2 on this thread — template, tokenize, prefill, greedy loop, one
//!    sequence in a context of its own (the least work anyone could do);
//! 2. engine: the `local` gateway's stream (channel → inference thread → batched decode →
//!    UTF-8 assembly → deltas back to the async runtime), same prompt, same token budget;
//! 3. engine, whole chat: time to first delta of `Engine::send` (conversation stored first);
//! 4. four replies at once (a chat beside three prompt jobs): aggregate tokens/s;
//! 5. resident memory after loading and after the runs.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gatehouse_engine::gateway::{ChatEvent, ChatMessage, ChatRequest, Role};
use gatehouse_engine::{Engine, EngineOptions, ReplyEvent, SendOptions};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use tokio_util::sync::CancellationToken;

const PROMPT: &str = "Write a short story about a robot who learns to paint.";

fn model_file() -> PathBuf {
    let file = std::env::var_os("GATEHOUSE_TEST_MODEL").map(PathBuf::from).unwrap_or_else(|| {
        let dir = gatehouse_engine::paths::resolve_data_dir(None).unwrap();
        gatehouse_engine::models::dir(&dir).join(format!("{}.gguf", gatehouse_engine::models::BUILTIN.name))
    });
    assert!(file.exists(), "no model at {}: run `gatehouse models fetch` or set GATEHOUSE_TEST_MODEL", file.display());
    file
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

struct Run {
    first: Duration,
    total: Duration,
    tokens: u32,
    text: String,
}

impl Run {
    fn tps(&self) -> f64 {
        // Generation speed after the first token, as llama.cpp reports "eval" speed.
        (self.tokens.saturating_sub(1)) as f64 / (self.total - self.first).as_secs_f64()
    }
}

fn bare(model: &LlamaModel, budget: u32) -> Run {
    let backend = gatehouse_engine::gateway::local::backend().unwrap();
    let started = Instant::now();
    let template = model.chat_template(None).unwrap();
    let chat = [LlamaChatMessage::new("user".into(), PROMPT.into()).unwrap()];
    let prompt = model.apply_chat_template(&template, &chat, true).unwrap();
    let params = LlamaContextParams::default().with_n_ctx(NonZeroU32::new(2048)).with_n_threads(1).with_n_threads_batch(1);
    let mut ctx = model.new_context(backend, params).unwrap();
    let vocab = model.vocab();
    let tokens = vocab.tokenize(prompt.as_bytes(), true, true);
    let mut batch = LlamaBatch::new(512, 1);
    for (i, t) in tokens.iter().enumerate() {
        batch.add(*t, i as i32, &[0], i + 1 == tokens.len()).unwrap();
    }
    ctx.decode(&mut batch).unwrap();
    let mut sampler = LlamaSampler::greedy();
    let mut pos = tokens.len() as i32;
    let (mut first, mut n, mut bytes) = (None, 0, Vec::new());
    loop {
        let t = sampler.sample(&ctx, batch.n_tokens() - 1);
        if vocab.is_eog(t) {
            break;
        }
        first.get_or_insert_with(|| started.elapsed());
        n += 1;
        vocab.token_to_piece_into(t, &mut bytes, false, None);
        if n >= budget {
            break;
        }
        batch.clear();
        batch.add(t, pos, &[0], true).unwrap();
        pos += 1;
        ctx.decode(&mut batch).unwrap();
    }
    Run { first: first.unwrap(), total: started.elapsed(), tokens: n, text: String::from_utf8_lossy(&bytes).into_owned() }
}

async fn engine_stream(engine: &Engine, budget: u32) -> Run {
    let (_, gateway) = engine.open_gateway(None).await.unwrap();
    let request = ChatRequest { messages: vec![ChatMessage::new(Role::User, PROMPT)], max_tokens: Some(budget), ..Default::default() };
    let started = Instant::now();
    let mut stream = gateway.stream(request, CancellationToken::new());
    let (mut first, mut tokens, mut text) = (None, 0, String::new());
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            ChatEvent::Delta { text: t } => {
                first.get_or_insert_with(|| started.elapsed());
                text.push_str(&t);
            }
            ChatEvent::Usage { completion_tokens, .. } => tokens = completion_tokens as u32,
            _ => {}
        }
    }
    Run { first: first.unwrap(), total: started.elapsed(), tokens, text }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, budget) = if full { (5, 128) } else { (1, 16) };
    println!("local model benchmark{}: SmolLM2-135M Q4_1, greedy, {budget} tokens, 1 thread", if full { "" } else { " (smoke run)" });
    let file = model_file();
    let rss_start = rss_mib();

    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions::new(dir.path())).await.unwrap();
    engine.add_model(&file, None).unwrap();
    // Load the engine's copy first (its thread loads on first use), then the bare one.
    engine_stream(&engine, 1).await;
    let rss_engine_loaded = rss_mib();
    let backend = gatehouse_engine::gateway::local::backend().unwrap();
    let model = LlamaModel::load_from_file(backend, &file, &LlamaModelParams::default()).unwrap();

    let (mut bare_first, mut bare_tps, mut eng_first, mut eng_tps) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        let b = tokio::task::block_in_place(|| bare(&model, budget));
        let e = engine_stream(&engine, budget).await;
        assert_eq!(b.tokens, e.tokens, "same prompt, greedy: the same number of tokens");
        assert_eq!(b.text, e.text, "same prompt, greedy: the same text");
        bare_first.push(b.first.as_secs_f64() * 1e3);
        eng_first.push(e.first.as_secs_f64() * 1e3);
        bare_tps.push(b.tps());
        eng_tps.push(e.tps());
    }
    drop(model);
    let (bf, ef, bt, et) = (median(bare_first), median(eng_first), median(bare_tps), median(eng_tps));
    println!("  time to first token   bare {bf:.1} ms   engine {ef:.1} ms   ({:+.1} ms)", ef - bf);
    println!("  tokens/s after first  bare {bt:.1}      engine {et:.1}      ({:+.1}%)", (et / bt - 1.0) * 100.0);

    // The whole chat path: conversation and message rows written before the request goes out.
    let mut firsts = Vec::new();
    for _ in 0..rounds {
        let cancel = CancellationToken::new();
        let started = Instant::now();
        let mut reply = engine.send(PROMPT.into(), SendOptions::default(), cancel.clone()).await.unwrap();
        while let Some(event) = reply.events.recv().await {
            if let ReplyEvent::Delta { .. } = event {
                firsts.push(started.elapsed().as_secs_f64() * 1e3);
                cancel.cancel();
                break;
            }
        }
        while reply.events.recv().await.is_some() {}
    }
    println!("  engine.send first delta (chat stored) {:.1} ms", median(firsts));

    // Four at once.
    let started = Instant::now();
    let runs = futures::future::join_all((0..4).map(|_| engine_stream(&engine, budget))).await;
    let total: u32 = runs.iter().map(|r| r.tokens).sum();
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "  4 replies at once     {total} tokens in {:.2} s = {:.1} tokens/s together ({:.1} each)",
        elapsed,
        total as f64 / elapsed,
        total as f64 / elapsed / 4.0
    );
    println!(
        "  RSS: {rss_start:.0} MiB at start, {rss_engine_loaded:.0} MiB with the engine's model loaded, {:.0} MiB at the end",
        rss_mib()
    );
    engine.close().await;
}
