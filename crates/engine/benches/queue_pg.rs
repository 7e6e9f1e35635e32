//! The pool on PostgreSQL against the floor PostgreSQL allows: prints figures, asserts nothing
//! about speed. Needs GATEHOUSE_TEST_DATABASE_URL (a cluster from `scripts/peers/postgres`);
//! every run makes fresh databases in it.
//!
//! `cargo bench -p gatehouse-engine --features postgres --bench queue_pg` runs it in full
//! (release build, 10,000 jobs); under `cargo test` it is a smoke run (300 jobs).
//!
//! For 3, 8 and 16 workers, side by side in one run:
//! 1. pool drain: N queued no-op jobs drained by the workers of two engines standing for two
//!    machines (separate data directories, one shared database), jobs/s;
//! 2. pool submit+drain: the same while a producer submits (16 in flight), jobs/s;
//! 3. bare loop: the same N rows drained by W tasks each running `UPDATE … WHERE id = (SELECT
//!    … FOR UPDATE SKIP LOCKED)` then an `UPDATE` to finish — no leases, no output, no events:
//!    jobs/s and the claim statement's latency p50/p99;
//!
//! then 4. pick-up across machines: a job submitted by one engine, until the other's idle pool
//! runs it (LISTEN/NOTIFY), p50/p95.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_engine::{Engine, EngineOptions, JobEvent, JobKind, JobRun, JobState, NewJob, Outcome, PoolConfig};

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

fn noop() -> NewJob {
    NewJob::new("noop", serde_json::Value::Null)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// A fresh database on the cluster; its URL.
async fn database(admin: &sqlx::PgPool, base: &str, name: &str) -> String {
    let name = format!("gatehouse_bench_{}_{name}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(admin).await.unwrap();
    format!("{base}/{name}")
}

async fn machine(dir: &std::path::Path, url: &str) -> Engine {
    let mut options = EngineOptions::new(dir);
    options.extra_kinds = vec![Arc::new(NoOp)];
    options.database = Some(url.to_owned());
    Engine::open(options).await.expect("open engine")
}

/// Until the pools of `machines` have run `n` jobs between them (their events, subscribed
/// before the pools started; a lagging receiver re-reads the shared count).
async fn until_done(machines: &[&Engine], events: &mut [tokio::sync::broadcast::Receiver<JobEvent>], n: i64) {
    let mut done = 0;
    while done < n {
        let next = futures::future::select_all(events.iter_mut().map(|rx| Box::pin(rx.recv()))).await.0;
        match next {
            Ok(JobEvent::State { state: JobState::Succeeded, .. }) => done += 1,
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                let counts = machines[0].job_counts().await.unwrap();
                done = counts.into_iter().find(|(s, _)| *s == JobState::Succeeded).map_or(0, |(_, n)| n);
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => panic!("engine closed"),
        }
    }
}

/// Drain `n` queued jobs with `workers` split over two machines; jobs/s. With `producer`, the
/// jobs are submitted (16 in flight) while the pools drain.
async fn pool_run(admin: &sqlx::PgPool, base: &str, n: usize, workers: usize, producer: bool) -> f64 {
    let url = database(admin, base, &format!("pool_{workers}_{producer}")).await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, b) = (machine(dirs[0].path(), &url).await, machine(dirs[1].path(), &url).await);
    let submit = |e: Engine| async move {
        use futures::StreamExt;
        futures::stream::iter(0..n).map(|_| e.submit(noop())).buffer_unordered(16).for_each(|r| async move { r.unwrap(); }).await;
    };
    if !producer {
        submit(a.clone()).await;
    }
    let mut events = [a.subscribe(), b.subscribe()];
    let t = Instant::now();
    let config = |w| PoolConfig { workers: w, ..PoolConfig::default() };
    let pools = [a.start_pool(config(workers - workers / 2)).await.unwrap(), b.start_pool(config(workers / 2)).await.unwrap()];
    let feeding = producer.then(|| tokio::spawn(submit(a.clone())));
    until_done(&[&a, &b], &mut events, n as i64).await;
    let took = t.elapsed();
    if let Some(f) = feeding {
        f.await.unwrap();
    }
    for p in pools {
        p.shutdown(Duration::from_secs(5)).await;
    }
    a.close().await;
    b.close().await;
    n as f64 / took.as_secs_f64()
}

/// The floor: W tasks claiming with SKIP LOCKED and finishing with one more UPDATE.
async fn bare_run(admin: &sqlx::PgPool, base: &str, n: usize, workers: usize) -> (f64, Vec<Duration>) {
    let url = database(admin, base, &format!("bare_{workers}")).await;
    let db = sqlx::postgres::PgPoolOptions::new().max_connections(workers as u32 + 1).connect(&url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE jobs (id bigserial PRIMARY KEY, priority bigint NOT NULL DEFAULT 0, state text NOT NULL DEFAULT 'queued');
         CREATE INDEX jobs_queue ON jobs (priority DESC, id) WHERE state = 'queued';",
    )
    .execute(&db)
    .await
    .unwrap();
    sqlx::query("INSERT INTO jobs (priority) SELECT 0 FROM generate_series(1, $1)").bind(n as i64).execute(&db).await.unwrap();
    let t = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let c = Instant::now();
                    let id: Option<i64> = sqlx::query_scalar(
                        "UPDATE jobs SET state = 'running' WHERE id = (
                            SELECT id FROM jobs WHERE state = 'queued' ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED)
                         RETURNING id",
                    )
                    .fetch_optional(&db)
                    .await
                    .unwrap();
                    lat.push(c.elapsed());
                    let Some(id) = id else { return lat };
                    sqlx::query("UPDATE jobs SET state = 'done' WHERE id = $1").bind(id).execute(&db).await.unwrap();
                }
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let took = t.elapsed();
    db.close().await;
    lat.sort();
    (n as f64 / took.as_secs_f64(), lat)
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = if full { 10_000 } else { 300 };
    let url = std::env::var("GATEHOUSE_TEST_DATABASE_URL").expect(
        "GATEHOUSE_TEST_DATABASE_URL is not set: start a cluster with `./scripts/peers/postgres start` and export the URL it prints",
    );
    let base = url.rsplit_once('/').expect("a URL with a database").0.to_owned();
    let admin = sqlx::PgPool::connect(&url).await.expect("the cluster answers");
    println!("PostgreSQL queue benchmark: {n} no-op jobs{}", if full { "" } else { " (smoke run)" });
    println!("workers | pool drain | pool submit+drain | bare SKIP LOCKED loop | pool/bare | bare claim p50 / p99");
    for workers in [3, 8, 16] {
        let drain = pool_run(&admin, &base, n, workers, false).await;
        let mixed = pool_run(&admin, &base, n, workers, true).await;
        let (bare, lat) = bare_run(&admin, &base, n, workers).await;
        println!(
            "{workers:7} | {drain:6.0} jobs/s | {mixed:6.0} jobs/s | {bare:6.0} jobs/s | {:4.0} % | {} / {}",
            drain / bare * 100.0,
            ms(pct(&lat, 0.5)),
            ms(pct(&lat, 0.99))
        );
    }

    // 4. Pick-up across machines: an idle pool on one, a submit on the other.
    let url = database(&admin, &base, "pickup").await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, b) = (machine(dirs[0].path(), &url).await, machine(dirs[1].path(), &url).await);
    let pool = a.start_pool(PoolConfig::default()).await.unwrap();
    let mut events = a.subscribe();
    let samples = if full { 100 } else { 10 };
    let mut pickups = Vec::new();
    for _ in 0..samples {
        let t = Instant::now();
        let id = b.submit(noop()).await.unwrap();
        loop {
            match events.recv().await {
                Ok(JobEvent::State { id: j, state: JobState::Running }) if j == id => break,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => panic!("engine closed"),
                _ => {}
            }
        }
        pickups.push(t.elapsed());
        // Let the pool go idle again (its workers wait for a notification, not a poll).
        until_done(&[&a], std::slice::from_mut(&mut events), 1).await;
    }
    pickups.sort();
    println!(
        "pick-up across machines (submit on one, idle pool on the other): p50 {}  p95 {}  max {} ({samples} samples)",
        ms(pct(&pickups, 0.5)),
        ms(pct(&pickups, 0.95)),
        ms(*pickups.last().unwrap())
    );
    pool.shutdown(Duration::from_secs(5)).await;
    a.close().await;
    b.close().await;
    admin.close().await;
}
