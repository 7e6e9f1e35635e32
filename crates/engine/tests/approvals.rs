//! Approvals as the engine's own facts: an exec job that meets an `ask` rule waits for a
//! person — whichever process answers — and nothing a caller writes into a spec skips that.

use std::time::Duration;

use tokio::time::Instant;

use gatehouse_engine::pool::kind::BoxFuture;
use gatehouse_engine::{
    Approval, ApprovalEvent, ApprovalRequest, ApprovalState, ApprovalWatch, Approver, Engine, EngineOptions, ExecSpec,
    JobFeed, JobState, NewJob, PoolConfig,
};

mod common;
use common::Yes;

async fn open(dir: &std::path::Path) -> Engine {
    Engine::open(EngineOptions::new(dir)).await.unwrap()
}

/// The next question a job asks.
async fn asked_by(watch: &mut ApprovalWatch, job: i64) -> ApprovalRequest {
    loop {
        match watch.next().await {
            Some(ApprovalEvent::Requested { approval }) if approval.job_id == Some(job) => return approval,
            Some(_) => {}
            None => panic!("the feed ended"),
        }
    }
}

/// How request `id` was closed.
async fn resolved(watch: &mut ApprovalWatch, id: i64) -> ApprovalRequest {
    loop {
        match watch.next().await {
            Some(ApprovalEvent::Resolved { approval } | ApprovalEvent::Expired { approval }) if approval.id == id => return approval,
            Some(_) => {}
            None => panic!("the feed ended"),
        }
    }
}

fn deadline() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(60))
}

#[tokio::test]
async fn a_spec_that_says_it_was_approved_runs_nothing_an_ask_rule_covers() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    // What an old CLI (or a webview relaying specs) could write: "approved", with the very
    // fingerprint of the program. The default policy asks about sh.
    let spec = ExecSpec::new("sh", ["-c", "echo ran > ran.txt; echo ran"]);
    let fingerprint = engine.check_exec(&spec).await.unwrap().program;
    let mut json = serde_json::to_value(&spec).unwrap();
    json["approved"] = true.into();
    json["approved_program"] = fingerprint.into();
    let id = engine.submit(NewJob::new("exec", json)).await.unwrap();
    let mut approvals = engine.watch_approvals().await.unwrap();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    let request = asked_by(&mut approvals, id).await;
    let job = engine.job(id).await.unwrap();
    assert_eq!((job.state, job.waiting_approval), (JobState::Running, Some(request.id)));
    assert_eq!(engine.approvals().await.unwrap().len(), 1);
    // Canceled while it waits: the question is withdrawn everywhere, nothing ran.
    engine.cancel(id).await.unwrap();
    let job = engine.wait(id, deadline()).await.unwrap();
    assert_eq!(job.state, JobState::Canceled);
    assert_eq!(resolved(&mut approvals, request.id).await.state, ApprovalState::Withdrawn);
    assert!(engine.approvals().await.unwrap().is_empty());
    assert!(!dir.path().join("workspace/ran.txt").exists());
    assert!(engine.output(id, 0, 10).await.unwrap().is_empty());
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_waiting_job_runs_when_another_front_end_allows_it_and_its_feed_says_it_waits() {
    let dir = tempfile::tempdir().unwrap();
    let (worker, app) = (open(dir.path()).await, open(dir.path()).await);
    let mut jobs = app.watch_jobs().await.unwrap();
    let mut approvals = app.watch_approvals().await.unwrap();
    let id = worker.submit(NewJob::new("exec", serde_json::to_value(ExecSpec::new("sh", ["-c", "echo allowed"])).unwrap())).await.unwrap();
    let pool = worker.start_pool(PoolConfig::default()).await.unwrap();
    let request = asked_by(&mut approvals, id).await;
    assert_eq!((request.requester.as_str(), request.job_id), ("job", Some(id)));
    // The job feed of the other front end shows the job waiting, and on which question.
    loop {
        match jobs.next().await {
            Some(JobFeed::Submitted { job } | JobFeed::Claimed { job } | JobFeed::Changed { job })
                if job.id == id && job.waiting_approval == Some(request.id) =>
            {
                break
            }
            Some(_) => {}
            None => panic!("the feed ended"),
        }
    }
    app.answer_approval(request.id, Approval::Once).await.unwrap();
    let job = app.wait(id, deadline()).await.unwrap();
    pool.shutdown(Duration::from_secs(5)).await;
    assert_eq!((job.state, job.waiting_approval), (JobState::Succeeded, None));
    let output = app.output(id, 0, 10).await.unwrap();
    assert_eq!(output.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["allowed"]);
    let audit = &app.exec_audit(1).await.unwrap()[0];
    assert_eq!(audit.approval.as_deref(), Some(format!("once (request {})", request.id).as_str()));
}

#[tokio::test]
async fn a_job_waiting_for_approval_still_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let mut approvals = engine.watch_approvals().await.unwrap();
    let mut job = NewJob::new("exec", serde_json::to_value(ExecSpec::new("sh", ["-c", "true"])).unwrap());
    job.timeout = Some(Duration::from_millis(500));
    let id = engine.submit(job).await.unwrap();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    let request = asked_by(&mut approvals, id).await;
    // The question lasts no longer than the job may.
    assert!(request.expires_at - request.asked_at <= 500, "{request:?}");
    let job = engine.wait(id, deadline()).await.unwrap();
    pool.shutdown(Duration::from_secs(5)).await;
    assert_eq!(job.error.map(|e| e.code), Some("job.timeout".into()));
    assert!(resolved(&mut approvals, request.id).await.state != ApprovalState::Pending);
    assert!(engine.approvals().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_yes_given_at_submit_holds_for_the_first_run_and_a_retry_asks_again() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let spec = serde_json::to_value(ExecSpec::new("sh", ["-c", "echo run; exit 3"])).unwrap();
    let id = engine.submit_exec(NewJob::new("exec", spec), &Yes).await.unwrap();
    let mut approvals = engine.watch_approvals().await.unwrap();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    let job = engine.wait(id, deadline()).await.unwrap();
    assert_eq!((job.state, job.exit_code), (JobState::Failed, Some(3)), "the approved first run ran");
    assert!(engine.approvals().await.unwrap().is_empty(), "nobody was asked");
    engine.retry(id).await.unwrap();
    let request = asked_by(&mut approvals, id).await;
    engine.answer_approval(request.id, Approval::Once).await.unwrap();
    let job = engine.wait(id, deadline()).await.unwrap();
    assert_eq!((job.attempts, job.exit_code), (2, Some(3)), "asked again, allowed, ran again");
    pool.shutdown(Duration::from_secs(5)).await;
    let lines = engine.output(id, 0, 10).await.unwrap();
    assert_eq!(lines.iter().filter(|l| l.text == "run").count(), 2);
}

#[tokio::test]
async fn a_no_at_submit_queues_nothing() {
    struct No;
    impl Approver for No {
        fn approve(&self, _: &ApprovalRequest) -> BoxFuture<Approval> {
            Box::pin(async { Approval::Denied })
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let spec = serde_json::to_value(ExecSpec::new("sh", ["-c", "true"])).unwrap();
    let err = engine.submit_exec(NewJob::new("exec", spec), &No).await.unwrap_err();
    assert_eq!(err.code(), "exec.denied");
    assert!(engine.jobs(&Default::default()).await.unwrap().is_empty());
    // Nor does a command the policy denies: refused at once, by its rule, without asking.
    let rule = engine.add_exec_rule(gatehouse_engine::exec::policy::Action::Deny, "touch", vec![], true, false).await.unwrap();
    let spec = serde_json::to_value(ExecSpec::new("touch", ["x"])).unwrap();
    let err = engine.submit_exec(NewJob::new("exec", spec), &No).await.unwrap_err();
    assert_eq!(err.code(), "exec.denied");
    assert!(err.to_string().contains(&format!("rule {rule}")), "{err}");
    assert!(engine.jobs(&Default::default()).await.unwrap().is_empty());
}
