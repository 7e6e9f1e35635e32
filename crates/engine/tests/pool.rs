//! The worker pool against a real SQLite database and real child processes — and, with
//! GATEHOUSE_TEST_POOL_STORE=postgres, the same tests with the jobs in a real PostgreSQL
//! (`scripts/test` runs both: one set of tests, two stores).
//!
//! Waits are on the engine's own events (with a deadline that only matters when something is
//! broken), never on sleeps. Kinds defined here (`record`, `gate`, `flaky`) are real job kinds
//! registered through the public extension point, not mocks of the pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_engine::exec::policy::Action;
use gatehouse_engine::{
    Canceled, Clock, Engine, EngineOptions, ExecSpec, Job, JobEvent, JobKind, JobRun, JobState, ManualClock,
    NewJob, Outcome, PoolConfig,
};
use tokio::sync::{broadcast, Semaphore};

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Records the order in which jobs start.
struct Record(Arc<Mutex<Vec<i64>>>);
impl JobKind for Record {
    fn name(&self) -> &'static str {
        "record"
    }
    fn validate(&self, _: &serde_json::Value) -> gatehouse_engine::Result<()> {
        Ok(())
    }
    fn run(&self, run: JobRun) -> BoxFuture<Outcome> {
        self.0.lock().unwrap().push(run.id);
        Box::pin(async { Outcome::Succeeded { exit_code: None } })
    }
}

/// Holds each job until the test releases a permit, and tracks how many run at once.
struct Gate {
    permits: Arc<Semaphore>,
    now: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
    started: broadcast::Sender<usize>,
}
impl Gate {
    /// No job passes until the test adds permits.
    fn closed() -> Gate {
        Gate { permits: Arc::new(Semaphore::new(0)), now: Default::default(), max: Default::default(), started: broadcast::channel(64).0 }
    }
}
impl JobKind for Gate {
    fn name(&self) -> &'static str {
        "gate"
    }
    fn validate(&self, _: &serde_json::Value) -> gatehouse_engine::Result<()> {
        Ok(())
    }
    fn run(&self, run: JobRun) -> BoxFuture<Outcome> {
        let (permits, now, max, started) = (self.permits.clone(), self.now.clone(), self.max.clone(), self.started.clone());
        Box::pin(async move {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(n, Ordering::SeqCst);
            let _ = started.send(n);
            let outcome = tokio::select! {
                permit = permits.acquire() => { permit.unwrap().forget(); Outcome::Succeeded { exit_code: Some(0) } }
                _ = run.cancel.cancelled() => Outcome::Stopped { exit_code: None },
            };
            now.fetch_sub(1, Ordering::SeqCst);
            outcome
        })
    }
}

/// Fails until its attempt number reaches `succeed_on`, recording when each attempt ran.
struct Flaky {
    succeed_on: i64,
    clock: Arc<ManualClock>,
    runs: Arc<Mutex<Vec<i64>>>,
}
impl JobKind for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }
    fn validate(&self, _: &serde_json::Value) -> gatehouse_engine::Result<()> {
        Ok(())
    }
    fn run(&self, run: JobRun) -> BoxFuture<Outcome> {
        self.runs.lock().unwrap().push(self.clock.now());
        let ok = run.attempt >= self.succeed_on;
        Box::pin(async move {
            if ok {
                Outcome::Succeeded { exit_code: Some(0) }
            } else {
                Outcome::Failed { exit_code: Some(1), error: gatehouse_engine::JobError::new("job.exit", "flaky") }
            }
        })
    }
}

/// Engine options on `dir`, with the jobs in the store the run tests: SQLite, or a PostgreSQL
/// database of this data directory's own (two engines on one directory, standing for two
/// processes, share it).
async fn options(dir: &std::path::Path) -> EngineOptions {
    let mut options = EngineOptions::new(dir);
    if std::env::var("GATEHOUSE_TEST_POOL_STORE").as_deref() == Ok("postgres") {
        options.database = Some(database_of(dir).await);
    }
    options
}

#[cfg(feature = "postgres")]
async fn database_of(dir: &std::path::Path) -> String {
    use std::hash::{Hash, Hasher};
    let url = std::env::var("GATEHOUSE_TEST_DATABASE_URL").expect(
        "GATEHOUSE_TEST_DATABASE_URL is not set: start a cluster with `./scripts/peers/postgres start` and export the URL it prints (scripts/test does both)",
    );
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    let name = format!("gatehouse_pool_{}_{:016x}", std::process::id(), h.finish());
    let admin = sqlx::PgPool::connect(&url).await.expect("the test cluster answers");
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&name)
        .fetch_one(&admin)
        .await
        .unwrap();
    if !exists {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.unwrap();
    }
    admin.close().await;
    format!("{}/{name}", url.rsplit_once('/').expect("a URL with a database").0)
}

#[cfg(not(feature = "postgres"))]
async fn database_of(_: &std::path::Path) -> String {
    panic!("GATEHOUSE_TEST_POOL_STORE=postgres needs the engine's `postgres` feature")
}

async fn open(dir: &std::path::Path, kinds: Vec<Arc<dyn JobKind>>) -> Engine {
    let mut options = options(dir).await;
    options.extra_kinds = kinds;
    let engine = Engine::open(options).await.expect("open engine");
    // Jobs here script with sh, which the default exec policy asks about.
    engine.add_exec_rule(Action::Allow, "sh", vec![], true, false).await.unwrap();
    engine
}

/// Live processes of attempt `attempt` of job `id` run by `pool`.
fn processes_of(pool: &gatehouse_engine::Pool, id: i64, attempt: i64) -> usize {
    gatehouse_testkit::processes_with_env(&format!("GATEHOUSE_JOB={}/{id}/{attempt}", pool.owner()))
}

fn exec(program: &str, args: &[&str]) -> NewJob {
    NewJob::new("exec", serde_json::to_value(ExecSpec::new(program, args.iter().copied())).unwrap())
}

/// Wait until job `id` is in `state`, by events, re-reading the store after a lag.
async fn wait_for(engine: &Engine, events: &mut broadcast::Receiver<JobEvent>, id: i64, state: JobState) -> Job {
    wait_until(engine, events, id, |job| job.state == state).await
}

/// Wait until job `id` satisfies `done`, re-reading it after each event. The deadline only
/// matters when something is broken.
async fn wait_until(
    engine: &Engine,
    events: &mut broadcast::Receiver<JobEvent>,
    id: i64,
    done: impl Fn(&Job) -> bool,
) -> Job {
    let waiting = async {
        loop {
            let job = engine.job(id).await.unwrap();
            if done(&job) {
                return job;
            }
            match events.recv().await {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => panic!("events closed"),
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(30), waiting).await {
        Ok(job) => job,
        Err(_) => panic!("job {id} never got there: {:?}", engine.job(id).await.unwrap()),
    }
}


#[tokio::test]
async fn jobs_run_by_priority_then_in_submission_order() {
    let dir = tempfile::tempdir().unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let engine = open(dir.path(), vec![Arc::new(Record(order.clone()))]).await;
    let mut ids = Vec::new();
    for priority in [0, 5, 0, 5, -1, 0] {
        let mut job = NewJob::new("record", serde_json::json!({}));
        job.priority = priority;
        ids.push(engine.submit(job).await.unwrap());
    }
    let mut events = engine.subscribe();
    let pool = engine.start_pool(PoolConfig { workers: 1, ..PoolConfig::default() }).await.unwrap();
    for id in &ids {
        wait_for(&engine, &mut events, *id, JobState::Succeeded).await;
    }
    pool.shutdown(Duration::from_secs(5)).await;
    let expected = vec![ids[1], ids[3], ids[0], ids[2], ids[5], ids[4]];
    assert_eq!(*order.lock().unwrap(), expected);
}

#[tokio::test]
async fn exactly_n_jobs_run_at_once_and_submit_does_not_wait_for_a_worker() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::closed();
    let (permits, max, mut started) = (gate.permits.clone(), gate.max.clone(), gate.started.subscribe());
    let engine = open(dir.path(), vec![Arc::new(gate)]).await;
    let pool = engine.start_pool(PoolConfig { workers: 3, ..PoolConfig::default() }).await.unwrap();

    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(engine.submit(NewJob::new("gate", serde_json::json!({}))).await.unwrap());
    }
    // All eight were accepted while no job could finish: submit never waits for a worker.
    let mut states = Vec::new();
    for id in &ids {
        states.push(engine.job(*id).await.unwrap().state);
    }
    assert!(states.iter().all(|s| matches!(s, JobState::Queued | JobState::Running)), "{states:?}");

    // Three start; release them one at a time and the rest follow, never more than three.
    let mut seen = 0;
    while seen < 3 {
        started.recv().await.unwrap();
        seen += 1;
    }
    let running = engine.jobs(&gatehouse_engine::JobFilter { state: Some(JobState::Running), limit: None }).await.unwrap();
    assert_eq!(running.len(), 3);
    assert_eq!(engine.jobs_running_here(), 3, "what quitting this process would stop (the app hides instead)");
    let mut events = engine.subscribe();
    permits.add_permits(ids.len());
    for id in &ids {
        wait_for(&engine, &mut events, *id, JobState::Succeeded).await;
    }
    assert_eq!(engine.jobs_running_here(), 0);
    assert_eq!(max.load(Ordering::SeqCst), 3, "at most (and at some point exactly) 3 ran at once");
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn queued_and_finished_jobs_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), vec![]).await;
    let done = engine.submit(exec("true", &[])).await.unwrap();
    let mut events = engine.subscribe();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    wait_for(&engine, &mut events, done, JobState::Succeeded).await;
    pool.shutdown(Duration::from_secs(5)).await;
    let waiting = engine.submit(exec("echo", &["after restart"])).await.unwrap();
    engine.close().await;

    let engine = open(dir.path(), vec![]).await;
    assert_eq!(engine.job(done).await.unwrap().state, JobState::Succeeded);
    assert_eq!(engine.job(waiting).await.unwrap().state, JobState::Queued);
    let mut events = engine.subscribe();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    wait_for(&engine, &mut events, waiting, JobState::Succeeded).await;
    let out = engine.output(waiting, 0, 10).await.unwrap();
    assert_eq!(out.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["after restart"]);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn cancel_kills_a_running_command_and_its_children_within_two_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), vec![]).await;
    let mut events = engine.subscribe();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    // The shell and its children ignore SIGTERM, so only the SIGKILL stops them.
    let id = engine.submit(exec("sh", &["-c", "trap '' TERM; sleep 600 & echo ready; sleep 600"])).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(JobEvent::Output { id: j, .. }) = events.recv().await {
                if j == id {
                    return;
                }
            }
        }
    })
    .await
    .expect("the command started");
    assert!(processes_of(&pool, id, 1) >= 3, "sandbox, shell and two sleeps");

    let asked = std::time::Instant::now();
    assert_eq!(engine.cancel(id).await.unwrap(), Canceled::Requested);
    wait_for(&engine, &mut events, id, JobState::Canceled).await;
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(2), "cancel took {took:?}");
    assert_eq!(processes_of(&pool, id, 1), 0, "processes survived the cancel");
    let job = engine.job(id).await.unwrap();
    assert_eq!(job.error.unwrap().code, "job.canceled");
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_job_that_runs_past_its_timeout_fails_as_timed_out() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), vec![]).await;
    let mut events = engine.subscribe();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    let mut job = exec("sleep", &["600"]);
    job.timeout = Some(Duration::from_millis(300));
    let id = engine.submit(job).await.unwrap();
    wait_for(&engine, &mut events, id, JobState::Failed).await;
    let job = engine.job(id).await.unwrap();
    assert_eq!(job.error.as_ref().unwrap().code, "job.timeout");
    assert_eq!(job.attempts, 1);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_failing_command_keeps_its_exit_code_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), vec![]).await;
    let mut events = engine.subscribe();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    let id = engine.submit(exec("sh", &["-c", "echo out; echo err >&2; exit 3"])).await.unwrap();
    wait_for(&engine, &mut events, id, JobState::Failed).await;
    let job = engine.job(id).await.unwrap();
    assert_eq!(job.exit_code, Some(3));
    assert_eq!(job.error.unwrap().code, "job.exit");
    let lines = engine.output(id, 0, 10).await.unwrap();
    let mut texts: Vec<(&str, &str)> = lines.iter().map(|l| (l.stream.as_str(), l.text.as_str())).collect();
    texts.sort();
    assert_eq!(texts, [("stderr", "err"), ("stdout", "out")]);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn output_past_the_cap_keeps_the_newest_lines_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), vec![]).await;
    let mut events = engine.subscribe();
    let cap = 64 * 1024;
    let pool = engine.start_pool(PoolConfig { output_cap: cap, ..PoolConfig::default() }).await.unwrap();
    let id = engine.submit(exec("seq", &["1", "200000"])).await.unwrap();
    wait_for(&engine, &mut events, id, JobState::Succeeded).await;
    let job = engine.job(id).await.unwrap();
    let lines = engine.output(id, 0, 1_000_000).await.unwrap();
    let kept: i64 = lines.iter().map(|l| l.text.len() as i64).sum();
    assert!(kept <= cap, "kept {kept} bytes");
    assert_eq!(lines.last().unwrap().text, "200000");
    assert_eq!(job.output_dropped_lines + lines.len() as i64, 200000);
    // The kept lines are the contiguous tail.
    let first: i64 = lines[0].text.parse().unwrap();
    assert_eq!(first, 200000 - lines.len() as i64 + 1);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn bad_jobs_are_refused_before_they_are_queued() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), vec![]).await;
    let err = engine.submit(exec("no-such-program-gatehouse", &[])).await.unwrap_err();
    assert_eq!(err.code(), "job.invalid");
    let mut job = exec("true", &[]);
    job.spec["cwd"] = serde_json::json!("/no/such/dir");
    assert_eq!(engine.submit(job).await.unwrap_err().code(), "job.invalid");
    let err = engine.submit(NewJob::new("teleport", serde_json::json!({}))).await.unwrap_err();
    assert_eq!(err.code(), "job.kind_unavailable");
    assert!(engine.jobs(&Default::default()).await.unwrap().is_empty());
    assert_eq!(engine.job(42).await.unwrap_err().code(), "job.not_found");
}

#[tokio::test]
async fn cancel_and_retry_follow_the_job_states() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), vec![]).await;
    let id = engine.submit(exec("true", &[])).await.unwrap();
    assert_eq!(engine.cancel(id).await.unwrap(), Canceled::Done);
    assert_eq!(engine.job(id).await.unwrap().state, JobState::Canceled);
    assert_eq!(engine.cancel(id).await.unwrap_err().code(), "job.invalid_state");
    engine.retry(id).await.unwrap();
    assert_eq!(engine.job(id).await.unwrap().state, JobState::Queued);
    assert_eq!(engine.retry(id).await.unwrap_err().code(), "job.invalid_state");
    let mut events = engine.subscribe();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    wait_for(&engine, &mut events, id, JobState::Succeeded).await;
    assert_eq!(engine.retry(id).await.unwrap_err().code(), "job.invalid_state");
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn shutdown_requeues_what_did_not_finish_in_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), vec![]).await;
    let mut events = engine.subscribe();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    let id = engine.submit(exec("sleep", &["600"])).await.unwrap();
    wait_for(&engine, &mut events, id, JobState::Running).await;
    let requeued = pool.shutdown(Duration::from_millis(100)).await;
    assert_eq!(requeued, 1);
    let job = engine.job(id).await.unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Queued, 0));
}


/// An engine on a clock that only the test moves.
async fn open_manual(dir: &std::path::Path, clock: &Arc<ManualClock>, kind: Arc<dyn JobKind>) -> Engine {
    let mut options = options(dir).await;
    options.clock = clock.clone();
    options.seed = Some(7);
    options.extra_kinds = vec![kind];
    Engine::open(options).await.unwrap()
}

#[tokio::test]
async fn failed_attempts_are_retried_with_exponential_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new());
    let runs = Arc::new(Mutex::new(Vec::new()));
    let flaky = Flaky { succeed_on: 3, clock: clock.clone(), runs: runs.clone() };
    let engine = open_manual(dir.path(), &clock, Arc::new(flaky)).await;
    let mut events = engine.subscribe();
    let config = PoolConfig {
        backoff_base: Duration::from_secs(10),
        backoff_max: Duration::from_secs(60),
        ..PoolConfig::default()
    };
    let pool = engine.start_pool(config).await.unwrap();
    let mut job = NewJob::new("flaky", serde_json::json!({}));
    job.max_attempts = 3;
    let id = engine.submit(job).await.unwrap();

    // Attempt n+1 is due 10 s x 2^(n-1) x [0.5, 1) after attempt n failed — and does not run
    // before: the clock stands still until the test moves it.
    for (attempt, low, high) in [(1, 5_000, 10_000), (2, 10_000, 20_000)] {
        let job = wait_until(&engine, &mut events, id, |j| j.attempts == attempt && j.state == JobState::Queued).await;
        let wait = job.run_after - clock.now();
        assert!((low..high).contains(&wait), "attempt {attempt}: backoff {wait} ms");
        assert_eq!(job.error.unwrap().message, "flaky");
        assert_eq!(runs.lock().unwrap().len(), attempt as usize);
        clock.advance(Duration::from_millis(wait as u64));
    }
    let job = wait_for(&engine, &mut events, id, JobState::Succeeded).await;
    assert_eq!(job.attempts, 3);
    assert_eq!(runs.lock().unwrap().len(), 3);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_job_out_of_attempts_fails_with_its_last_error() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new());
    let flaky = Flaky { succeed_on: 99, clock: clock.clone(), runs: Default::default() };
    let engine = open_manual(dir.path(), &clock, Arc::new(flaky)).await;
    let mut events = engine.subscribe();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    let mut job = NewJob::new("flaky", serde_json::json!({}));
    job.max_attempts = 2;
    let id = engine.submit(job).await.unwrap();
    let job = wait_until(&engine, &mut events, id, |j| j.attempts == 1 && j.state == JobState::Queued).await;
    clock.advance(Duration::from_millis((job.run_after - clock.now()) as u64));
    let job = wait_for(&engine, &mut events, id, JobState::Failed).await;
    assert_eq!((job.attempts, job.exit_code), (2, Some(1)));
    assert_eq!(job.error.unwrap().message, "flaky");
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn finished_jobs_are_pruned_after_the_retention_period() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new());
    let engine = open_manual(dir.path(), &clock, Arc::new(Record(Default::default()))).await;
    let mut events = engine.subscribe();
    let mut feed = engine.watch_jobs().await.unwrap();
    let config = PoolConfig {
        retention: Duration::from_secs(3600),
        prune_every: Duration::from_millis(20),
        ..PoolConfig::default()
    };
    let pool = engine.start_pool(config).await.unwrap();
    let old = engine.submit(NewJob::new("record", serde_json::json!({}))).await.unwrap();
    wait_for(&engine, &mut events, old, JobState::Succeeded).await;
    clock.advance(Duration::from_secs(3000));
    let young = engine.submit(NewJob::new("record", serde_json::json!({}))).await.unwrap();
    wait_for(&engine, &mut events, young, JobState::Succeeded).await;
    // Past the retention of the first job, not of the second.
    clock.advance(Duration::from_secs(1200));
    let pruned = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(JobEvent::Pruned { count }) = events.recv().await {
                return count;
            }
        }
    })
    .await
    .expect("a prune ran");
    assert_eq!(pruned, 1);
    assert_eq!(engine.job(old).await.unwrap_err().code(), "job.not_found");
    // Front ends following the job feed are told which jobs went.
    let ids = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(gatehouse_engine::JobFeed::Pruned { ids }) = feed.next().await {
                return ids;
            }
        }
    })
    .await
    .expect("the feed told of the prune");
    assert_eq!(ids, [old]);
    assert_eq!(engine.job(young).await.unwrap().state, JobState::Succeeded);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn processes_a_finished_job_leaves_behind_are_killed_even_in_their_own_session() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), vec![]).await;
    let mut events = engine.subscribe();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    let id = engine.submit(exec("sh", &["-c", "setsid sleep 600 & echo $!"])).await.unwrap();
    wait_for(&engine, &mut events, id, JobState::Succeeded).await;
    // SIGKILL was sent before the job was marked finished; on a loaded machine the process
    // may need a moment to be scheduled and die.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while processes_of(&pool, id, 1) > 0 {
        assert!(std::time::Instant::now() < deadline, "the setsid'd sleep outlived its job");
        tokio::task::yield_now().await;
    }
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_pause_from_another_process_holds_new_jobs_and_lets_running_ones_finish() {
    let dir = tempfile::tempdir().unwrap();
    let (app, worker) = (open(dir.path(), vec![]).await, open(dir.path(), vec![]).await);
    let mut events = worker.subscribe();
    // One worker: without the pause, the claim that finishes `first` would take `second`
    // in the same transaction.
    let pool = worker.start_pool(PoolConfig { workers: 1, ..PoolConfig::default() }).await.unwrap();
    // The job waits for a file in its workspace, which the test writes once the pause is on.
    let release = dir.path().join("workspace/release");
    std::fs::create_dir_all(release.parent().unwrap()).unwrap();
    let script = format!("while [ ! -e {} ]; do sleep 0.01; done", release.display());
    let first = worker.submit(exec("sh", &["-c", &script])).await.unwrap();
    wait_for(&worker, &mut events, first, JobState::Running).await;
    app.pause_pool().await.unwrap();
    assert!(app.pool_status().await.unwrap().paused);
    let second = app.submit(exec("true", &[])).await.unwrap();
    std::fs::write(&release, "").unwrap();
    let deadline = Some(tokio::time::Instant::now() + Duration::from_secs(30));
    assert_eq!(app.wait(first, deadline).await.unwrap().state, JobState::Succeeded, "running jobs go on");
    assert_eq!(app.job(second).await.unwrap().state, JobState::Queued, "nothing new starts");
    app.resume_pool().await.unwrap();
    assert_eq!(app.wait(second, deadline).await.unwrap().state, JobState::Succeeded);
    let status = app.pool_status().await.unwrap();
    assert_eq!((status.paused, status.live_pools, status.jobs.get("succeeded").copied()), (false, 1, Some(2)));
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn the_worker_count_changed_from_another_process_holds_for_a_running_pool() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::closed();
    let (permits, mut started) = (gate.permits.clone(), gate.started.subscribe());
    let worker = open(dir.path(), vec![Arc::new(gate)]).await;
    let app = open(dir.path(), vec![]).await;
    let pool = worker.start_pool(PoolConfig { workers: 1, ..PoolConfig::default() }).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(worker.submit(NewJob::new("gate", serde_json::json!({}))).await.unwrap());
    }
    let running = |engine: &Engine| {
        let engine = engine.clone();
        async move { engine.jobs(&gatehouse_engine::JobFilter { state: Some(JobState::Running), limit: None }).await.unwrap().len() }
    };
    assert_eq!(started.recv().await.unwrap(), 1);

    // Raised: two more start, without a restart.
    let now = app.change_settings(gatehouse_engine::SettingsChange { workers: Some(3), ..Default::default() }).await.unwrap();
    assert_eq!(now.workers, 3);
    assert_eq!((started.recv().await.unwrap(), started.recv().await.unwrap()), (2, 3));
    assert_eq!(running(&app).await, 3);
    assert_eq!(app.pool_status().await.unwrap().workers, 3);

    // Lowered: running jobs are not stopped; as they end, one at a time runs.
    app.change_settings(gatehouse_engine::SettingsChange { workers: Some(1), ..Default::default() }).await.unwrap();
    assert_eq!(running(&app).await, 3, "nothing was stopped");
    let deadline = Some(tokio::time::Instant::now() + Duration::from_secs(30));
    permits.add_permits(3);
    for id in &ids[..3] {
        assert_eq!(app.wait(*id, deadline).await.unwrap().state, JobState::Succeeded);
    }
    assert_eq!(started.recv().await.unwrap(), 1, "the next starts alone");
    assert_eq!(running(&app).await, 1);
    permits.add_permits(3);
    for id in &ids[3..] {
        assert_eq!(app.wait(*id, deadline).await.unwrap().state, JobState::Succeeded);
    }
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn settings_out_of_range_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), vec![]).await;
    let before = engine.settings().await.unwrap();
    assert_eq!((before.workers, before.retention_days, before.notify_failed), (3, 7, true));
    let change = gatehouse_engine::SettingsChange { workers: Some(0), retention_days: Some(30), ..Default::default() };
    let refused = engine.change_settings(change).await.unwrap_err();
    assert_eq!(refused.code(), "settings.invalid");
    assert!(refused.to_string().contains("from 1 to 64"), "{refused}");
    assert_eq!(engine.settings().await.unwrap(), before);
    let change = gatehouse_engine::SettingsChange { retention_days: Some(30), notify_finished: Some(false), ..Default::default() };
    let after = engine.change_settings(change).await.unwrap();
    assert_eq!((after.retention_days, after.notify_finished, after.workers), (30, false, 3));
}

#[tokio::test]
async fn close_returns_once_the_database_is_checkpointed_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), vec![]).await;
    let _feed = engine.watch_jobs().await.unwrap();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    let id = engine.submit(exec("true", &[])).await.unwrap();
    assert_eq!(engine.wait(id, None).await.unwrap().state, JobState::Succeeded);
    pool.shutdown(Duration::from_secs(5)).await;
    drop(_feed);
    assert!(dir.path().join("gatehouse.db-wal").exists(), "written through the WAL");
    engine.close().await;
    // A process that exits right now leaves a complete database and no WAL behind.
    assert!(!dir.path().join("gatehouse.db-wal").exists(), "the WAL was checkpointed and removed");
    let engine = open(dir.path(), vec![]).await;
    assert_eq!(engine.job(id).await.unwrap().state, JobState::Succeeded);
}
