//! The tray's model and quitting, on a real engine and pool: what the tray shows for the
//! pool's state, and what quitting does to the jobs running here.

use std::time::Duration;

use gatehouse_desktop::tray::{TrayItem, TrayModel, TrayState};
use gatehouse_desktop::Core;
use gatehouse_engine::{Engine, EngineOptions, ExecSpec, JobFilter, JobState, NewJob, PoolConfig};

fn exec(program: &str, args: &[&str]) -> NewJob {
    NewJob::new("exec", serde_json::to_value(ExecSpec::new(program, args.iter().copied())).unwrap())
}

async fn model(engine: &Engine) -> TrayModel {
    let status = engine.pool_status().await.unwrap();
    let recent = engine.jobs(&JobFilter { state: None, limit: Some(8) }).await.unwrap();
    TrayModel::of(&status, &recent, &engine.approvals().await.unwrap())
}

/// Wait (on the job feed, not a clock) until job `id` is in `state`.
async fn until_state(engine: &Engine, id: i64, state: JobState) {
    let mut events = engine.subscribe();
    while engine.job(id).await.unwrap().state != state {
        let _ = tokio::time::timeout(Duration::from_secs(1), events.recv()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tray_shows_the_counts_the_recent_jobs_and_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions::new(dir.path())).await.unwrap();
    let idle = model(&engine).await;
    assert_eq!(idle.state, TrayState::Idle);
    assert_eq!(idle.summary, "0 running, 0 queued");
    assert_eq!(idle.items.last(), Some(&TrayItem::Quit));
    assert!(idle.items.contains(&TrayItem::OpenChat) && idle.items.contains(&TrayItem::OpenJobs));
    assert!(idle.items.contains(&TrayItem::Pause(true)), "offers to pause a running pool");

    engine.pause_pool().await.unwrap();
    let a = engine.submit(exec("sleep", &["30"])).await.unwrap();
    let b = engine.submit(exec("false", &[])).await.unwrap();
    let queued = model(&engine).await;
    assert_eq!(queued.summary, "0 running, 2 queued (paused)");
    assert_eq!(queued.items[0], TrayItem::Note("0 running · 2 queued · paused".into()));
    assert!(queued.items.contains(&TrayItem::Pause(false)), "offers to resume a paused pool");
    let jobs: Vec<_> = queued.items.iter().filter_map(|i| if let TrayItem::Job { id, label } = i { Some((*id, label.clone())) } else { None }).collect();
    assert_eq!(jobs, vec![(b, format!("#{b} queued — false")), (a, format!("#{a} queued — sleep 30"))], "newest first");

    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    engine.resume_pool().await.unwrap();
    until_state(&engine, b, JobState::Failed).await;
    until_state(&engine, a, JobState::Running).await;
    let failed = model(&engine).await;
    assert_eq!(failed.state, TrayState::Failed, "the last job to finish failed");
    assert_eq!(failed.summary, "1 running, 0 queued, the last job failed");
    engine.cancel(a).await.unwrap();
    until_state(&engine, a, JobState::Canceled).await;
    let ok = engine.submit(exec("true", &[])).await.unwrap();
    until_state(&engine, ok, JobState::Succeeded).await;
    assert_eq!(model(&engine).await.state, TrayState::Idle, "a job that finished well since clears the failure");
    pool.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quitting_now_requeues_the_running_jobs_and_waiting_lets_them_finish() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions::new(dir.path())).await.unwrap();
    let core = Core::new(engine.clone(), Some(engine.start_pool(PoolConfig::default()).await.unwrap()));
    let long = engine.submit(exec("sleep", &["30"])).await.unwrap();
    until_state(&engine, long, JobState::Running).await;
    assert_eq!(core.stop_pool(Duration::ZERO).await, 1, "quit now: the running job goes back");
    let job = engine.job(long).await.unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Queued, 0), "re-queued, its attempt not counted");
    assert_eq!(core.stop_pool(Duration::ZERO).await, 0, "a second quit has nothing to stop");

    engine.cancel(long).await.unwrap();
    let core = Core::new(engine.clone(), Some(engine.start_pool(PoolConfig::default()).await.unwrap()));
    let short = engine.submit(exec("sleep", &["1"])).await.unwrap();
    until_state(&engine, short, JobState::Running).await;
    assert_eq!(core.stop_pool(Duration::from_secs(3600)).await, 0, "wait: nothing is re-queued");
    assert_eq!(engine.job(short).await.unwrap().state, JobState::Succeeded, "the running job finished");
}
