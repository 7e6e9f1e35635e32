//! Queue benchmark: prints figures, asserts nothing about speed.
//!
//! `cargo bench -p gatehouse-engine --bench queue` runs it in full (release build). Under
//! `cargo test` (no `--bench` argument) it runs a small smoke version so it cannot rot.
//!
//! 1. submit latency: N sequential in-process submits, p50/p99/max;
//! 2. drain: N queued no-op jobs, 3 workers, jobs/s until all have succeeded;
//! 3. mixed: the same N submitted by a producer while 3 workers drain, jobs/s — first one
//!    submit at a time, then 16 in flight;
//! 4. cross-process pick-up: a job submitted through a second engine (its own connections, as
//!    another process would have), time until the pool has it running;
//! 5. worker count raised by another process: a 1-worker pool holds a job and has a second
//!    queued; a second engine raises the count to 2; time until the second job runs.
//!
//! The no-op kind does nothing, so the figures are the queue's own cost: claim, complete,
//! submit, all through SQLite on disk (a temp dir), WAL, synchronous=NORMAL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_engine::{
    Engine, EngineOptions, JobEvent, JobKind, JobRun, JobState, NewJob, Outcome, PoolConfig,
};

/// Runs until the benchmark adds a permit.
struct Hold(Arc<tokio::sync::Semaphore>);
impl JobKind for Hold {
    fn name(&self) -> &'static str {
        "hold"
    }
    fn validate(&self, _: &serde_json::Value) -> gatehouse_engine::Result<()> {
        Ok(())
    }
    fn run(&self, _: JobRun) -> std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send>> {
        let permits = self.0.clone();
        Box::pin(async move {
            permits.acquire().await.expect("open").forget();
            Outcome::Succeeded { exit_code: None }
        })
    }
}

struct NoOp;
impl JobKind for NoOp {
    fn name(&self) -> &'static str {
        "noop"
    }
    fn validate(&self, _: &serde_json::Value) -> gatehouse_engine::Result<()> {
        Ok(())
    }
    fn run(&self, _: JobRun) -> std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send>> {
        Box::pin(async { Outcome::Succeeded { exit_code: None } })
    }
}

async fn engine(dir: &std::path::Path) -> Engine {
    let mut options = EngineOptions::new(dir);
    options.extra_kinds = vec![Arc::new(NoOp)];
    Engine::open(options).await.expect("open engine")
}

fn noop() -> NewJob {
    NewJob::new("noop", serde_json::Value::Null)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// Wait until job `id` runs. `events` was subscribed before it was submitted, so its start is
/// not missed.
async fn until_running(events: &mut tokio::sync::broadcast::Receiver<JobEvent>, id: i64) {
    loop {
        match events.recv().await {
            Ok(JobEvent::State { id: j, state: JobState::Running }) if j == id => return,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => panic!("engine closed"),
            _ => {}
        }
    }
}

/// Wait until `n` jobs have succeeded, counting events and re-reading the store after a lag.
async fn until_succeeded(engine: &Engine, events: &mut tokio::sync::broadcast::Receiver<JobEvent>, n: i64) {
    let mut done = 0;
    while done < n {
        match events.recv().await {
            Ok(JobEvent::State { state: JobState::Succeeded, .. }) => done += 1,
            Ok(_) => {}
            Err(_) => {
                done = engine
                    .job_counts()
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|(s, _)| *s == JobState::Succeeded)
                    .map_or(0, |(_, n)| n);
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = if full { 10_000 } else { 200 };
    let workers = 3;
    println!("queue benchmark: {n} jobs, {workers} workers{}", if full { "" } else { " (smoke run)" });

    // 1. Submit latency.
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        e.submit(noop()).await.unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "submit latency (sequential, in-process): p50 {}  p99 {}  max {}",
        us(pct(&lat, 0.5)),
        us(pct(&lat, 0.99)),
        us(*lat.last().unwrap())
    );

    // 2. Drain what was just submitted.
    let mut events = e.subscribe();
    let t = Instant::now();
    let pool = e.start_pool(PoolConfig { workers, ..PoolConfig::default() }).await.unwrap();
    until_succeeded(&e, &mut events, n as i64).await;
    let took = t.elapsed();
    println!("drain {n} queued no-op jobs: {:.3} s = {:.0} jobs/s", took.as_secs_f64(), n as f64 / took.as_secs_f64());
    pool.shutdown(Duration::from_secs(5)).await;
    e.close().await;

    // 3. Mixed: a producer submits while the pool drains — one submit at a time (each waits
    //    for its commit), then with up to 16 submits in flight (as several clients would).
    let mut last = None;
    for in_flight in [1, 16] {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path()).await;
        let mut events = e.subscribe();
        let pool = e.start_pool(PoolConfig { workers, ..PoolConfig::default() }).await.unwrap();
        let t = Instant::now();
        let producer = {
            let e = e.clone();
            tokio::spawn(async move {
                use futures::StreamExt;
                let submits = futures::stream::iter(0..n).map(|_| e.submit(noop())).buffer_unordered(in_flight);
                submits.for_each(|r| async move { r.unwrap(); }).await;
            })
        };
        until_succeeded(&e, &mut events, n as i64).await;
        let took = t.elapsed();
        producer.await.unwrap();
        println!(
            "mixed: {n} jobs submitted ({in_flight} in flight) while draining: {:.3} s = {:.0} jobs/s",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        );
        last = Some((dir, e, events, pool));
    }
    let (dir, e, mut events, pool) = last.unwrap();

    // 4. Cross-process pick-up (the pool only learns of the job by polling).
    let other = engine(dir.path()).await;
    let samples = if full { 20 } else { 3 };
    let mut pickups = Vec::new();
    for _ in 0..samples {
        let t = Instant::now();
        let id = other.submit(noop()).await.unwrap();
        loop {
            match events.recv().await {
                Ok(JobEvent::State { id: j, state: JobState::Running }) if j == id => break,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => panic!("engine closed"),
                _ => {}
            }
        }
        pickups.push(t.elapsed());
    }
    pickups.sort();
    println!(
        "cross-process pick-up: p50 {:.0} ms  max {:.0} ms ({samples} samples)",
        pct(&pickups, 0.5).as_secs_f64() * 1e3,
        pickups.last().unwrap().as_secs_f64() * 1e3
    );
    pool.shutdown(Duration::from_secs(5)).await;
    other.close().await;
    e.close().await;

    // 5. The worker count raised from another process.
    let dir = tempfile::tempdir().unwrap();
    let permits = Arc::new(tokio::sync::Semaphore::new(0));
    let mut options = EngineOptions::new(dir.path());
    options.extra_kinds = vec![Arc::new(Hold(permits.clone()))];
    let e = Engine::open(options).await.expect("open engine");
    let other = Engine::open(EngineOptions::new(dir.path())).await.expect("open engine");
    let count = |n| gatehouse_engine::SettingsChange { workers: Some(n), ..Default::default() };
    other.change_settings(count(1)).await.unwrap();
    let pool = e.start_pool(PoolConfig::default()).await.unwrap();
    let mut events = e.subscribe();
    let samples = if full { 20 } else { 3 };
    let mut raises = Vec::new();
    for _ in 0..samples {
        let first = e.submit(NewJob::new("hold", serde_json::Value::Null)).await.unwrap();
        until_running(&mut events, first).await;
        let second = e.submit(NewJob::new("hold", serde_json::Value::Null)).await.unwrap();
        let t = Instant::now();
        other.change_settings(count(2)).await.unwrap();
        until_running(&mut events, second).await;
        raises.push(t.elapsed());
        other.change_settings(count(1)).await.unwrap();
        permits.add_permits(2);
        until_succeeded(&e, &mut events, 2).await;
        // Past the pool's next look (cancel_poll, 250 ms): the next sample starts from one worker.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    raises.sort();
    println!(
        "worker count raised by another process, until the next job runs: p50 {:.0} ms  max {:.0} ms ({samples} samples)",
        pct(&raises, 0.5).as_secs_f64() * 1e3,
        raises.last().unwrap().as_secs_f64() * 1e3
    );
    pool.shutdown(Duration::from_secs(5)).await;
    other.close().await;
    e.close().await;
}
