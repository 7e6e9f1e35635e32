//! The job feed: what a front end sees of jobs that other processes submit and run.
//!
//! Two engines on one data directory stand for two processes: each has its own connections,
//! and SQLite tells a follower about the other's commits exactly as it would about another
//! process's. (The CLI suite checks it with real separate processes.)

use std::path::Path;
use std::time::Duration;

use gatehouse_engine::exec::policy::Action;
use gatehouse_engine::{Engine, EngineOptions, ExecSpec, JobFeed, JobState, JobWatch, NewJob, PoolConfig};
use tokio::time::Instant;

async fn engine(dir: &Path) -> Engine {
    let engine = Engine::open(EngineOptions::new(dir)).await.unwrap();
    engine.add_exec_rule(Action::Allow, "sh", vec![], true, false).await.unwrap();
    engine
}

fn sh(script: &str) -> NewJob {
    NewJob::new("exec", serde_json::to_value(ExecSpec::new("sh", ["-c", script])).unwrap())
}

/// The events about job `id` until it has finished. The deadline only matters when something
/// is broken.
async fn events_of(feed: &mut JobWatch, id: i64) -> Vec<JobFeed> {
    let mut seen = Vec::new();
    let collect = async {
        while let Some(event) = feed.next().await {
            assert!(!matches!(event, JobFeed::Resync), "no subscriber here falls behind");
            if event.job_id() == Some(id) {
                let done = matches!(event, JobFeed::Finished { .. });
                seen.push(event);
                if done {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), collect).await.expect("the job finished in time");
    seen
}

fn kinds(events: &[JobFeed]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            JobFeed::Output { line, .. } => format!("output {} {}", line.seq, line.text),
            other => serde_json::to_value(other).unwrap()["type"].as_str().unwrap().to_owned(),
        })
        .collect()
}

#[tokio::test]
async fn a_job_another_process_submits_and_runs_is_seen_step_by_step() {
    let dir = tempfile::tempdir().unwrap();
    let (app, worker) = (engine(dir.path()).await, engine(dir.path()).await);
    let mut feed = app.watch_jobs().await.unwrap();
    let pool = worker.start_pool(PoolConfig::default()).await.unwrap();
    let id = worker.submit(sh("echo one; echo two; exit 3")).await.unwrap();
    let events = events_of(&mut feed, id).await;
    assert_eq!(kinds(&events), ["submitted", "claimed", "output 1 one", "output 2 two", "finished"]);
    let JobFeed::Finished { job } = events.last().unwrap() else { unreachable!() };
    assert_eq!((job.state, job.exit_code), (JobState::Failed, Some(3)));

    // Retried from here, run there again: back in the queue, claimed, its new output.
    app.retry(id).await.unwrap();
    let events = events_of(&mut feed, id).await;
    assert_eq!(kinds(&events), ["requeued", "claimed", "output 3 one", "output 4 two", "finished"]);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_pause_and_a_resume_by_another_process_are_told_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let (app, cli) = (engine(dir.path()).await, engine(dir.path()).await);
    let mut feed = app.watch_jobs().await.unwrap();
    async fn next(feed: &mut JobWatch) -> JobFeed {
        tokio::time::timeout(Duration::from_secs(10), feed.next()).await.expect("an event in time").unwrap()
    }
    cli.pause_pool().await.unwrap();
    assert!(matches!(next(&mut feed).await, JobFeed::Paused { paused: true }));
    // Pausing again changes nothing: no news. A job submitted after is the next event.
    cli.pause_pool().await.unwrap();
    let id = cli.submit(sh("true")).await.unwrap();
    assert!(matches!(next(&mut feed).await, JobFeed::Submitted { job } if job.id == id));
    app.resume_pool().await.unwrap();
    assert!(matches!(next(&mut feed).await, JobFeed::Paused { paused: false }));
}

#[tokio::test]
async fn live_lines_and_a_stored_page_merge_without_gaps_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let (app, worker) = (engine(dir.path()).await, engine(dir.path()).await);
    let pool = worker.start_pool(PoolConfig::default()).await.unwrap();
    // More lines than the feed reads per job per tick, written while the page is read.
    let id = worker.submit(sh("i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo line $i; done")).await.unwrap();
    // As a window opening on a running job does: subscribe, then read what is stored.
    let mut feed = app.watch_jobs().await.unwrap();
    let page = app.output(id, 0, 100_000).await.unwrap();
    let mut seqs: Vec<i64> = page.iter().map(|l| l.seq).collect();
    let mut last = seqs.last().copied().unwrap_or(0);
    for event in events_of(&mut feed, id).await {
        if let JobFeed::Output { line, .. } = event {
            if line.seq > last {
                assert_eq!(line.text, format!("line {}", line.seq));
                last = line.seq;
                seqs.push(line.seq);
            }
        }
    }
    let gap = seqs.iter().zip(1..).find(|(seq, want)| **seq != *want);
    assert_eq!((seqs.len(), gap), (3000, None), "every line once, in order");
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_told_to_resync_and_blocks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (app, worker) = (engine(dir.path()).await, engine(dir.path()).await);
    let mut idle = app.watch_jobs().await.unwrap();
    let mut feed = app.watch_jobs().await.unwrap();
    let pool = worker.start_pool(PoolConfig::default()).await.unwrap();
    // Far more events than a subscriber's buffer, none read by `idle`.
    let id = worker.submit(sh("seq 1 20000")).await.unwrap();
    let mut done = false;
    let reading = async {
        while let Some(event) = feed.next().await {
            if matches!(&event, JobFeed::Finished { job } if job.id == id) {
                done = true;
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), reading).await.expect("the job finished");
    assert!(done, "a reading subscriber saw the job finish while another did not read");
    assert!(matches!(idle.next().await, Some(JobFeed::Resync)));
    assert_eq!(app.job(id).await.unwrap().state, JobState::Succeeded);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn wait_returns_the_finished_job_or_the_job_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (app, worker) = (engine(dir.path()).await, engine(dir.path()).await);
    let id = worker.submit(sh("echo hi")).await.unwrap();
    // Nobody runs it yet: the deadline passes.
    let job = app.wait(id, Some(Instant::now() + Duration::from_millis(300))).await.unwrap();
    assert_eq!(job.state, JobState::Queued);
    let pool = worker.start_pool(PoolConfig::default()).await.unwrap();
    let job = app.wait(id, Some(Instant::now() + Duration::from_secs(60))).await.unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    let err = app.wait(id + 100, None).await.unwrap_err();
    assert_eq!(err.code(), "job.not_found");
    pool.shutdown(Duration::from_secs(5)).await;
}
