//! Several machines sharing one queue in PostgreSQL (`--database`), as people run it: real
//! `gatehouse` processes, each "machine" a data directory of its own, a real PostgreSQL
//! (`scripts/peers/postgres`, URL in GATEHOUSE_TEST_DATABASE_URL).
#![cfg(feature = "postgres")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// A database of the test's own on the test cluster; returns its URL.
fn fresh_database(name: &str) -> String {
    let url = std::env::var("GATEHOUSE_TEST_DATABASE_URL").expect(
        "GATEHOUSE_TEST_DATABASE_URL is not set: start a cluster with `./scripts/peers/postgres start` and export the URL it prints (scripts/test does both)",
    );
    let name = format!("{name}_{}", std::process::id());
    for sql in [format!("DROP DATABASE IF EXISTS {name}"), format!("CREATE DATABASE {name}")] {
        let out = Command::new("psql").args([url.as_str(), "-qc", &sql]).output().expect("psql (scripts/peers/postgres installs it)");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    format!("{}/{name}", url.rsplit_once('/').unwrap().0)
}

/// `gatehouse` on machine `dir`, its jobs in `db`.
fn on(dir: &Path, db: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.arg("--data-dir").arg(dir).env("GATEHOUSE_DATABASE_URL", db).stdin(Stdio::null());
    cmd
}

/// `jobs wait ID` (exit 1 when it did not succeed), then the job as it ended.
fn waited(dir: &Path, db: &str, id: i64) -> Value {
    let id = id.to_string();
    on(dir, db).args(["jobs", "wait", &id, "--timeout", "20"]).output().unwrap();
    json(dir, db, &["jobs", "show", &id])
}

fn json(dir: &Path, db: &str, args: &[&str]) -> Value {
    let out = on(dir, db).arg("--json").args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let _ = self.0.wait();
    }
}

#[test]
fn two_machines_drain_one_queue_that_a_third_fills_and_a_cancel_reaches_the_machine_running_the_job() {
    let db = fresh_database("gatehouse_cli_shared");
    let machines: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let [a, b, submitter] = [machines[0].path(), machines[1].path(), machines[2].path()];
    let workers: Vec<Worker> = [a, b]
        .iter()
        .map(|m| {
            Worker(on(m, &db).args(["worker", "--workers", "2", "--grace", "1"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap())
        })
        .collect();
    let ids: Vec<i64> = (0..4)
        .map(|_| json(submitter, &db, &["jobs", "submit", "exec", "--", "sleep", "30"])["id"].as_i64().unwrap())
        .collect();
    // Two workers a machine: four running at once means both machines took jobs.
    let running = || json(submitter, &db, &["jobs", "list", "--state", "running"]).as_array().unwrap().len();
    gatehouse_testkit::eventually("four jobs running at once, on two machines", Duration::from_secs(30), || (running() == 4).then_some(()));
    assert_eq!(json(submitter, &db, &["pool", "status"])["live_pools"], 2);

    // Canceled from the third machine: the machine running it kills it.
    let canceled = ids[0].to_string();
    on(submitter, &db).args(["jobs", "cancel", &canceled]).output().unwrap();
    let job = waited(submitter, &db, ids[0]);
    assert_eq!(job["state"], "canceled", "{job}");
    for id in &ids[1..] {
        on(submitter, &db).args(["jobs", "cancel", &id.to_string()]).output().unwrap();
    }
    for id in &ids[1..] {
        assert_eq!(waited(submitter, &db, *id)["state"], "canceled");
    }
    let quick = json(submitter, &db, &["jobs", "submit", "exec", "--", "echo", "from the queue"])["id"].as_i64().unwrap();
    let done = waited(submitter, &db, quick);
    assert_eq!(done["state"], "succeeded", "{done}");
    drop(workers);
}

#[test]
fn a_database_that_does_not_answer_is_one_sentence_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let db = format!("postgres://gatehouse:s3cret@127.0.0.1:{port}/gatehouse");
    let out = on(dir.path(), &db).args(["jobs", "list"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the shared database at postgres://gatehouse:***@127.0.0.1"), "{err}");
    assert!(!err.contains("s3cret"), "the password is never shown: {err}");
}
