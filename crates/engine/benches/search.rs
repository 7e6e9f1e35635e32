//! Search benchmark: prints figures, asserts nothing about speed.
//!
//! `cargo bench -p gatehouse-engine --bench search` fills a database with 100,000 messages
//! (1,000 conversations of 100; words drawn from a 20,000-word vocabulary with Zipf-like
//! frequencies, a common English word list at its head, 5–60 words a message) and times
//! `Engine::search` — what a search box runs on every keystroke — for a rare word, a common
//! one, one- and two-letter prefixes and two words, 50 runs each, p50/p95. Beside it, on the
//! same database, the query search used before (every match ranked, then the first 20 kept),
//! for comparison. Under `cargo test` it runs a smoke version (5,000 messages).

use std::time::Instant;

use gatehouse_engine::{Engine, EngineOptions};

const COMMON: &[&str] = &[
    "the", "be", "to", "of", "and", "a", "in", "that", "have", "it", "for", "not", "on", "with", "he", "as", "you",
    "do", "at", "this", "but", "his", "by", "from", "they", "we", "say", "her", "she", "or", "an", "will", "my",
    "one", "all", "would", "there", "their", "what", "so", "up", "out", "if", "about", "who", "get", "which", "go",
    "me", "when", "make", "can", "like", "time", "no", "just", "him", "know", "take", "people", "into", "year",
    "your", "good", "some", "could", "them", "see", "other", "than", "then", "now", "look", "only", "come", "its",
    "over", "think", "also", "back", "after", "use", "two", "how", "our", "work", "first", "well", "way", "even",
    "new", "want", "because", "any", "these", "give", "day", "most", "us", "hello", "help", "code", "error",
];

fn vocabulary(rng: &mut fastrand::Rng) -> Vec<String> {
    const SYLLABLES: &[&str] = &[
        "ka", "lo", "mi", "ne", "ru", "ta", "ve", "zo", "pri", "sta", "gen", "dor", "lin", "mar", "tes", "qu", "ber",
        "an", "el", "is", "on", "ur", "ex", "ph", "tra", "sol", "vin", "cor", "del", "fa",
    ];
    let mut words: Vec<String> = COMMON.iter().map(|w| w.to_string()).collect();
    while words.len() < 20_000 {
        let n = rng.usize(2..5);
        words.push((0..n).map(|_| SYLLABLES[rng.usize(..SYLLABLES.len())]).collect());
    }
    words
}

/// Rank r is drawn with weight 1/r.
fn zipf(rng: &mut fastrand::Rng, n: usize) -> usize {
    let h = (n as f64).ln() + 0.5772;
    let target = rng.f64() * h;
    (target.exp() - 0.5).clamp(0.0, (n - 1) as f64) as usize
}

fn fill(path: &std::path::Path, messages: usize) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(7);
    let words = vocabulary(&mut rng);
    let mut c = rusqlite::Connection::open(path).expect("open");
    let tx = c.transaction().expect("begin");
    {
        let mut conv = tx
            .prepare("INSERT INTO conversations (title, created_at, updated_at) VALUES (?1, ?2, ?2) RETURNING id")
            .expect("prepare");
        let mut msg = tx
            .prepare(
                "INSERT INTO messages (conversation_id, role, text, state, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'complete', ?4, ?4)",
            )
            .expect("prepare");
        let mut id = 0i64;
        for i in 0..messages {
            if i % 100 == 0 {
                let title: Vec<&str> = (0..4).map(|_| words[zipf(&mut rng, words.len())].as_str()).collect();
                id = conv.query_row(rusqlite::params![title.join(" "), i as i64], |r| r.get(0)).expect("conversation");
            }
            let n = rng.usize(5..=60);
            let text: Vec<&str> = (0..n).map(|_| words[zipf(&mut rng, words.len())].as_str()).collect();
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            msg.execute(rusqlite::params![id, role, text.join(" "), i as i64]).expect("message");
        }
    }
    tx.commit().expect("commit");
    words
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (messages, runs) = if full { (100_000, 50) } else { (5_000, 3) };
    let dir = tempfile::tempdir().expect("temp dir");
    // Made by the engine (the schema), filled directly (the engine writes a message a turn).
    Engine::open(EngineOptions::new(dir.path())).await.expect("open").close().await;
    let db = dir.path().join("gatehouse.db");
    let started = Instant::now();
    let words = fill(&db, messages);
    println!(
        "search benchmark: {messages} messages filled in {:.1} s{}",
        started.elapsed().as_secs_f64(),
        if full { "" } else { " (smoke run)" }
    );
    let engine = Engine::open(EngineOptions::new(dir.path())).await.expect("open");
    let rare = words[15_000].clone();
    let cases = [
        ("rare word", rare.clone()),
        ("common word `the`", "the".to_owned()),
        ("one letter `h`", "h".to_owned()),
        ("two letters `he`", "he".to_owned()),
        ("two words `hello wor`", "hello wor".to_owned()),
    ];
    let old = rusqlite::Connection::open(&db).expect("open");
    for (what, query) in &cases {
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..runs {
            let t = Instant::now();
            found = engine.search(query, 20).await.expect("search").len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        // The query used before: every match ranked, then the first 20 kept.
        let expr = query.split(' ').map(|w| format!("\"{w}\"*")).collect::<Vec<_>>().join(" ");
        let mut before = Vec::new();
        for _ in 0..runs.min(10) {
            let t = Instant::now();
            let mut st = old
                .prepare_cached("SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1 ORDER BY rank LIMIT 20")
                .expect("prepare");
            let n = st.query_map([&expr], |r| r.get::<_, i64>(0)).expect("query").count();
            assert!(n <= 20);
            before.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        before.sort_by(f64::total_cmp);
        println!(
            "  {what:<24} p50 {:>6.2} ms  p95 {:>6.2} ms  ({found} hits)   every match ranked: p50 {:>7.2} ms",
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            percentile(&before, 0.5)
        );
    }
}
