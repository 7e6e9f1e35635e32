//! The shared store's writes against a real PostgreSQL (`scripts/peers/postgres`, URL in
//! GATEHOUSE_TEST_DATABASE_URL); each test has a database of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::Millis;
use crate::error::JobError;
use crate::pool::job::{JobState, NewJob, Stream};
use crate::pool::lease::Identity;
use crate::pool::ops::append_output::AppendOutput;
use crate::pool::ops::complete::{End, Finish};

static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// A new, empty database on the test cluster, migrated.
async fn fresh() -> Shared {
    let url = std::env::var("GATEHOUSE_TEST_DATABASE_URL").expect(
        "GATEHOUSE_TEST_DATABASE_URL is not set: start a cluster with `./scripts/peers/postgres start` and export the URL it prints (scripts/test does both)",
    );
    let name = format!("gatehouse_test_{}_{}", std::process::id(), DATABASES.fetch_add(1, Ordering::SeqCst));
    let admin = PgPool::connect(&url).await.expect("the test cluster answers");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.unwrap();
    admin.close().await;
    let (base, _) = url.rsplit_once('/').expect("a URL with a database");
    Shared::connect(&format!("{base}/{name}"), 20).await.expect("the new database migrates")
}

fn job(priority: i64) -> NewJob {
    NewJob { priority, ..NewJob::new("exec", serde_json::json!({})) }
}

fn done(claimed: &crate::pool::ops::claim::Claimed, owner: &Arc<str>, end: End) -> Finish {
    Finish { id: claimed.id, attempt: claimed.attempt, epoch: claimed.epoch, owner: owner.clone(), exit_code: Some(0), end }
}

async fn state(shared: &Shared, id: i64) -> (String, i64) {
    sqlx::query_as("SELECT state, attempts FROM jobs WHERE id = $1").bind(id).fetch_one(&shared.db).await.unwrap()
}

const NOW: Millis = 1_700_000_000_000;

/// A claim committed whose answer never came back (the server restarted under it): the worker
/// asks again with the same token and gets the same job, attempt and epoch — not a second job
/// while the first stays running for nobody.
#[tokio::test]
async fn a_claim_asked_again_with_its_token_gets_back_the_job_it_took() {
    let shared = fresh().await;
    let ids = [submit::submit(&shared, &job(0), "{}", NOW).await.unwrap(), submit::submit(&shared, &job(0), "{}", NOW).await.unwrap()];
    let me = Identity::current(1);
    register::register(&shared, &me, NOW).await.unwrap();
    let lost = claim::claim(&shared, &me.owner, 7, None, NOW).await.unwrap().job.unwrap();
    let again = claim::claim(&shared, &me.owner, 7, None, NOW).await.unwrap().job.unwrap();
    assert_eq!((again.id, again.attempt, again.epoch), (lost.id, lost.attempt, lost.epoch));
    assert_eq!(state(&shared, ids[1]).await, ("queued".into(), 0));
    // Its end rides on the next claim, under a new token: the other job.
    let next = claim::claim(&shared, &me.owner, 8, Some(&done(&again, &me.owner, End::Succeeded)), NOW).await.unwrap();
    assert_eq!((next.finished, next.job.map(|j| j.id)), (Some(JobState::Succeeded), Some(ids[1])));
    assert_eq!(state(&shared, ids[0]).await, ("succeeded".into(), 1));
}

#[tokio::test]
async fn claims_go_by_priority_then_submission_order() {
    let shared = fresh().await;
    let mut ids = Vec::new();
    for p in [0, 5, 0, 5] {
        ids.push(submit::submit(&shared, &job(p), "{}", NOW).await.unwrap());
    }
    let me = Identity::current(1);
    register::register(&shared, &me, NOW).await.unwrap();
    let mut order = Vec::new();
    while let Some(j) = claim::claim(&shared, &me.owner, fastrand::i64(..), None, NOW).await.unwrap().job {
        order.push(j.id);
    }
    assert_eq!(order, vec![ids[1], ids[3], ids[0], ids[2]]);
}

#[tokio::test]
async fn workers_claiming_at_once_never_take_the_same_job_and_each_claim_finishes_the_last() {
    let shared = fresh().await;
    for _ in 0..400 {
        submit::submit(&shared, &job(0), "{}", NOW).await.unwrap();
    }
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let me = Identity::current(1);
                register::register(&shared, &me, NOW).await.unwrap();
                let (mut ran, mut last) = (Vec::new(), None::<Finish>);
                loop {
                    let out = claim::claim(&shared, &me.owner, fastrand::i64(..), last.as_ref(), NOW).await.unwrap();
                    if last.is_some() {
                        assert_eq!(out.finished, Some(JobState::Succeeded), "the claim finished the previous job");
                    }
                    let Some(j) = out.job else { break };
                    last = Some(done(&j, &me.owner, End::Succeeded));
                    ran.push(j.id);
                }
                // The claim that found nothing finished the last job.
                ran
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!((n, all.len()), (400, 400), "every job claimed exactly once");
    let (succeeded,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM jobs WHERE state = 'succeeded' AND attempts = 1").fetch_one(&shared.db).await.unwrap();
    assert_eq!(succeeded, 400);
}

#[tokio::test]
async fn a_worker_back_after_its_lease_ran_out_cannot_write_to_the_job_claimed_again() {
    let shared = fresh().await;
    let id = submit::submit(&shared, &job(0), "{}", NOW).await.unwrap();
    let (a, b) = (Identity::current(1), Identity::current(1));
    register::register(&shared, &a, NOW).await.unwrap();
    let first = claim::claim(&shared, &a.owner, fastrand::i64(..), None, NOW).await.unwrap().job.unwrap();
    let line = |text: &str, epoch_of: &crate::pool::ops::claim::Claimed| AppendOutput {
        id,
        attempt: epoch_of.attempt,
        cap_bytes: 1 << 20,
        lines: vec![(Stream::Stdout, NOW, text.to_owned())],
        progress: None,
    };
    assert!(append_output::append(&shared, first.epoch, &line("from a", &first)).await.unwrap());

    // A stops (SIGSTOP, a partition) past its lease; B notices, rescues and claims the job.
    let later = NOW + 31_000;
    register::register(&shared, &b, later).await.unwrap();
    let rescued = rescue::rescue(&shared, &b, 30_000, later).await.unwrap();
    assert_eq!(rescued.iter().map(|r| (r.id, r.state)).collect::<Vec<_>>(), vec![(id, JobState::Queued)]);
    let second = claim::claim(&shared, &b.owner, fastrand::i64(..), None, later).await.unwrap().job.unwrap();
    assert_eq!(second.id, id);
    assert!(second.epoch > first.epoch, "a new claim, a new epoch");

    // A comes back: its output, its process group and its end are refused; its heartbeat says
    // the lease is gone (so it stops the job), and its next claim says it was evicted.
    assert!(!append_output::append(&shared, first.epoch, &line("late from a", &first)).await.unwrap());
    assert!(!append_output::set_pgid(&shared, id, first.epoch, 4242).await.unwrap());
    assert_eq!(complete::complete(&shared, &done(&first, &a.owner, End::Succeeded), later).await.unwrap(), None);
    assert!(!heartbeat::heartbeat(&shared, &a.owner, later).await.unwrap());
    assert!(claim::claim(&shared, &a.owner, fastrand::i64(..), None, later).await.unwrap().evicted);
    assert_eq!(state(&shared, id).await, ("running".into(), 2), "still B's");

    assert!(append_output::append(&shared, second.epoch, &line("from b", &second)).await.unwrap());
    let f = done(&second, &b.owner, End::Failed(JobError::new("job.exit", "exited with status 1")));
    assert_eq!(complete::complete(&shared, &f, later).await.unwrap(), Some(JobState::Failed));
    let lines: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT seq, attempt, text FROM job_output WHERE job_id = $1 ORDER BY seq").bind(id).fetch_all(&shared.db).await.unwrap();
    assert_eq!(lines, vec![(1, 1, "from a".into()), (2, 2, "from b".into())]);
}

#[tokio::test]
async fn a_submit_wakes_a_worker_listening_on_another_connection() {
    let shared = fresh().await;
    let mut wakeups = shared.listen().await.unwrap();
    let other = shared.clone();
    let submitted = tokio::spawn(async move { submit::submit(&other, &job(0), "{}", NOW).await.unwrap() });
    let woken = tokio::time::timeout(Duration::from_secs(10), wakeups.next()).await.expect("a notification within 10 s");
    assert_eq!(woken.unwrap().as_deref(), Some("job"), "a notification, not a reconnect");
    submitted.await.unwrap();
}

#[tokio::test]
async fn a_cancel_reaches_the_pool_running_the_job_and_it_is_not_retried() {
    let shared = fresh().await;
    let id = submit::submit(&shared, &NewJob { max_attempts: 3, ..job(0) }, "{}", NOW).await.unwrap();
    let queued = submit::submit(&shared, &job(-1), "{}", NOW).await.unwrap();
    let me = Identity::current(1);
    register::register(&shared, &me, NOW).await.unwrap();
    let running = claim::claim(&shared, &me.owner, fastrand::i64(..), None, NOW).await.unwrap().job.unwrap();
    assert_eq!(running.id, id);
    let mut wakeups = shared.listen().await.unwrap();
    assert_eq!(cancel::cancel(&shared, id, NOW).await.unwrap(), crate::pool::ops::cancel::Canceled::Requested);
    let told = tokio::time::timeout(Duration::from_secs(10), wakeups.next()).await.unwrap().unwrap();
    assert_eq!(told, Some(format!("cancel {} {id}", me.owner)), "its machine is notified");
    assert_eq!(query::cancel_requests(&shared, &me.owner).await.unwrap(), vec![id], "its pool's poll finds it too");
    // Killed, the attempt ends as a failure that would be retried: canceled instead.
    let f = done(&running, &me.owner, End::Retry { error: JobError::new("job.exit", "killed"), delay_ms: 1000 });
    assert_eq!(complete::complete(&shared, &f, NOW).await.unwrap(), Some(JobState::Canceled));
    assert_eq!(cancel::cancel(&shared, queued, NOW).await.unwrap(), crate::pool::ops::cancel::Canceled::Done);
    assert!(matches!(cancel::cancel(&shared, id, NOW).await, Err(crate::Error::JobInvalidState { .. })));
    assert!(matches!(cancel::cancel(&shared, 999_999, NOW).await, Err(crate::Error::JobNotFound(999_999))));
}

#[tokio::test]
async fn paused_pools_claim_nothing_until_resumed() {
    let shared = fresh().await;
    submit::submit(&shared, &job(0), "{}", NOW).await.unwrap();
    let me = Identity::current(1);
    register::register(&shared, &me, NOW).await.unwrap();
    claim::set_paused(&shared, true).await.unwrap();
    assert!(claim::claim(&shared, &me.owner, fastrand::i64(..), None, NOW).await.unwrap().job.is_none());
    claim::set_paused(&shared, false).await.unwrap();
    assert!(claim::claim(&shared, &me.owner, fastrand::i64(..), None, NOW).await.unwrap().job.is_some());
}

#[tokio::test]
async fn output_past_the_cap_keeps_the_newest_lines_and_counts_the_rest() {
    let shared = fresh().await;
    let id = submit::submit(&shared, &job(0), "{}", NOW).await.unwrap();
    let me = Identity::current(1);
    register::register(&shared, &me, NOW).await.unwrap();
    let j = claim::claim(&shared, &me.owner, fastrand::i64(..), None, NOW).await.unwrap().job.unwrap();
    for batch in 0..10 {
        let lines = (0..5).map(|i| (Stream::Stdout, NOW, format!("line {:04}", batch * 5 + i))).collect();
        let out = AppendOutput { id, attempt: 1, cap_bytes: 200, lines, progress: Some(batch as f64 * 10.0) };
        assert!(append_output::append(&shared, j.epoch, &out).await.unwrap());
    }
    let (bytes, dropped_lines, dropped_bytes, lines): (i64, i64, i64, i64) =
        sqlx::query_as("SELECT output_bytes, output_dropped_lines, output_dropped_bytes, output_lines FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&shared.db)
            .await
            .unwrap();
    assert!(bytes <= 200, "at most the cap is kept ({bytes})");
    assert_eq!((lines, bytes + dropped_bytes), (50, 50 * 9), "every line counted, kept or dropped");
    let kept: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, text FROM job_output WHERE job_id = $1 ORDER BY seq").bind(id).fetch_all(&shared.db).await.unwrap();
    assert_eq!(kept.len() as i64, 50 - dropped_lines);
    assert_eq!(kept.last().unwrap(), &(50, "line 0049".to_owned()), "the newest is kept");
}

#[test]
fn a_url_is_shown_without_its_password() {
    assert_eq!(redact("postgres://gh:s3cret@db.example:5432/jobs"), "postgres://gh:***@db.example:5432/jobs");
    assert_eq!(redact("postgres://gh@db/jobs?password=s3cret"), "postgres://gh@db/jobs");
    assert_eq!(redact("postgres://db/jobs"), "postgres://db/jobs");
}

#[tokio::test]
async fn the_feed_tells_of_every_machine_s_changes_in_order_and_of_deleted_jobs() {
    let shared = fresh().await;
    let mut seen = feed::Seen::load(&shared).await.unwrap();
    let me = Identity::current(1);
    register::register(&shared, &me, NOW).await.unwrap();
    let id = submit::submit(&shared, &job(0), "{}", NOW).await.unwrap();
    let j = claim::claim(&shared, &me.owner, fastrand::i64(..), None, NOW).await.unwrap().job.unwrap();
    let out = AppendOutput { id, attempt: 1, cap_bytes: 1 << 20, lines: vec![(Stream::Stdout, NOW, "hello".into())], progress: None };
    assert!(append_output::append(&shared, j.epoch, &out).await.unwrap());
    complete::complete(&shared, &done(&j, &me.owner, End::Succeeded), NOW).await.unwrap();
    let kinds: Vec<String> = seen.step(&shared).await.unwrap().iter().map(|e| format!("{e:?}").split_whitespace().next().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["Submitted", "Claimed", "Output", "Finished"], "a quick job is told whole, in order");
    assert!(seen.step(&shared).await.unwrap().is_empty(), "nothing new, nothing told (the look back reads rows already told)");
    assert_eq!(prune::prune(&shared, 0, NOW + 1).await.unwrap(), 1);
    let events = seen.step(&shared).await.unwrap();
    assert!(matches!(events.as_slice(), [crate::pool::feed::JobFeed::Pruned { ids }] if ids == &[id]), "{events:?}");

    // A follower that fell behind the forgotten tombstones loads everything again.
    let mut late = feed::Seen::load(&shared).await.unwrap();
    let second = submit::submit(&shared, &job(0), "{}", NOW).await.unwrap();
    sqlx::query("DELETE FROM jobs WHERE id = $1").bind(second).execute(&shared.db).await.unwrap();
    assert_eq!(count(&shared, "SELECT count(*) FROM job_feed_gone").await, 2);
    prune::forget_tombstones(&shared, 0).await.unwrap();
    assert_eq!(count(&shared, "SELECT count(*) FROM job_feed_gone").await, 0, "every tombstone forgotten");
    let events = late.step(&shared).await.unwrap();
    assert!(matches!(events.as_slice(), [crate::pool::feed::JobFeed::Resync]), "{events:?}");
    assert!(late.step(&shared).await.unwrap().is_empty(), "loaded again, it is current");
}

async fn count(shared: &Shared, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&shared.db).await.unwrap()
}
