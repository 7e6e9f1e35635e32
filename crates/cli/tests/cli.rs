//! The `gatehouse` binary as a person or a script uses it: real processes, a real database,
//! real signals. Waits poll the CLI's own output for a condition, with a deadline that only
//! matters when something is broken.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

fn gatehouse(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.arg("--data-dir").arg(dir).env_remove("GATEHOUSE_DATA_DIR").stdin(Stdio::null());
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Output {
    gatehouse(dir).args(args).output().expect("run gatehouse")
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let out = run(dir, &full);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn submit(dir: &Path, extra: &[&str], command: &[&str]) -> i64 {
    let mut args = vec!["jobs", "submit", "exec"];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(command);
    let v = json(dir, &args);
    assert_eq!(v["state"], "queued");
    v["id"].as_i64().unwrap()
}

fn job(dir: &Path, id: i64) -> Value {
    json(dir, &["jobs", "show", &id.to_string()])
}

fn eventually<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    gatehouse_testkit::eventually(what, DEADLINE, check)
}

fn wait_state(dir: &Path, id: i64, state: &str) -> Value {
    eventually(&format!("job {id} to be {state}"), || Some(job(dir, id)).filter(|j| j["state"] == state))
}


/// Let jobs run `sh` and write in `work` (the default policy asks about sh, and commands
/// can only write in a workspace).
fn allow_scripts(dir: &Path, work: Option<&Path>) {
    // The tests tag their jobs' processes with a variable of their own, which the rule permits.
    let out = run(dir, &["exec", "policy", "add", "allow", "sh", "--any-args", "--env", "GH_TEST_TAG"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    if let Some(work) = work {
        assert!(run(dir, &["exec", "workspace", "add", work.to_str().unwrap()]).status.success());
    }
}

use gatehouse_testkit::processes_with_env as alive_with_env;

/// A `gatehouse worker` that is killed if the test ends early.
struct Worker(Child);

impl Worker {
    fn start(dir: &Path, workers: u32) -> Worker {
        let child = gatehouse(dir)
            .args(["worker", "--workers", &workers.to_string(), "--grace", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start worker");
        Worker(child)
    }

    fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.0.id() as i32, sig) };
    }

    fn wait(mut self) -> std::process::ExitStatus {
        let status = self.0.wait().unwrap();
        std::mem::forget(self);
        status
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn states(dir: &Path) -> Vec<String> {
    let list = json(dir, &["jobs", "list"]);
    list.as_array().unwrap().iter().map(|j| j["state"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn five_sleeps_with_a_worker_run_three_at_a_time_and_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let worker = Worker::start(dir.path(), 3);
    let ids: Vec<i64> = (0..5).map(|_| submit(dir.path(), &[], &["sleep", "2"])).collect();
    let seen = eventually("three jobs running", || {
        let s = states(dir.path());
        (s.iter().filter(|s| *s == "running").count() == 3).then_some(s)
    });
    assert_eq!(seen.iter().filter(|s| *s == "queued").count(), 2, "{seen:?}");
    for id in &ids {
        let out = run(dir.path(), &["jobs", "wait", &id.to_string()]);
        assert!(out.status.success(), "job {id}: {}", String::from_utf8_lossy(&out.stdout));
    }
    assert!(states(dir.path()).iter().all(|s| s == "succeeded"));
    worker.signal(libc::SIGTERM);
    assert!(worker.wait().success());
}

#[test]
fn json_output_follows_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let id = submit(dir.path(), &["--priority", "4", "--max-attempts", "2", "--timeout", "30"], &["true"]);
    let job = job(dir.path(), id);
    let mut keys: Vec<&str> = job.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["attempts", "created_at", "error", "exit_code", "finished_at", "id", "kind", "max_attempts", "priority", "started_at", "state", "title", "waiting_approval"]
    );
    assert_eq!(job["title"], "true", "the title is what the job runs");
    assert_eq!((job["kind"].as_str(), job["priority"].as_i64(), job["max_attempts"].as_i64()), (Some("exec"), Some(4), Some(2)));
    let created = job["created_at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(created).is_ok() && created.ends_with('Z'), "{created}");
    assert!(job["started_at"].is_null() && job["error"].is_null());
    let list = json(dir.path(), &["jobs", "list", "--state", "queued"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id);
}

#[test]
fn failures_are_one_sentence_with_the_right_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], i32, &str); 6] = [
        (&["jobs", "show", "99"], 2, "there is no job 99"),
        (&["jobs", "cancel", "99"], 2, "there is no job 99"),
        (&["jobs", "submit", "exec", "--", "no-such-program-gh"], 2, "was not found"),
        (&["jobs", "submit", "exec", "--cwd", "/no/such/dir", "--", "true"], 2, "does not exist"),
        (&["jobs", "submit", "exec", "--cwd", "/usr", "--", "true"], 2, "outside every workspace root"),
        (&["jobs", "list", "--state", "done"], 2, "unknown state"),
    ];
    for (args, code, says) in cases {
        let out = run(dir.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
    }

    // A data directory that is a file, a database that is not one, and a bad job id in JSON.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "").unwrap();
    let out = gatehouse(&file).args(["jobs", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("it is a file, not a directory"));

    let corrupt = tempfile::tempdir().unwrap();
    std::fs::write(corrupt.path().join("gatehouse.db"), vec![0x42u8; 4096]).unwrap();
    let out = run(corrupt.path(), &["jobs", "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not a valid Gatehouse database"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let out = run(dir.path(), &["--json", "jobs", "show", "7"]);
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "job.not_found");
}

#[test]
fn wait_and_logs_report_what_the_job_did() {
    let dir = tempfile::tempdir().unwrap();
    allow_scripts(dir.path(), None);
    let _worker = Worker::start(dir.path(), 2);
    let ok = submit(dir.path(), &[], &["sh", "-c", "echo first; sleep 0.3; echo second >&2; echo third"]);
    let bad = submit(dir.path(), &[], &["sh", "-c", "exit 7"]);

    let follow = run(dir.path(), &["jobs", "logs", "--follow", &ok.to_string()]);
    assert!(follow.status.success());
    assert_eq!(String::from_utf8_lossy(&follow.stdout), "first\nthird\n");
    assert_eq!(String::from_utf8_lossy(&follow.stderr), "second\n");

    let out = run(dir.path(), &["jobs", "wait", &bad.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("exited with status 7"));
    let job = job(dir.path(), bad);
    assert_eq!((job["exit_code"].as_i64(), job["error"]["code"].as_str()), (Some(7), Some("job.exit")));

    // Retry runs it again (and it fails again); its attempts add up.
    assert!(run(dir.path(), &["jobs", "retry", &bad.to_string()]).status.success());
    let out = run(dir.path(), &["jobs", "wait", &bad.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(job_attempts(dir.path(), bad), 2);

    let slow = submit(dir.path(), &[], &["sleep", "600"]);
    let out = run(dir.path(), &["jobs", "wait", "--timeout", "0.2", &slow.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("still"));
    wait_state(dir.path(), slow, "running");
    let out = run(dir.path(), &["jobs", "cancel", &slow.to_string()]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("job {slow} canceled"));
}

fn job_attempts(dir: &Path, id: i64) -> i64 {
    job(dir, id)["attempts"].as_i64().unwrap()
}

#[test]
fn a_worker_killed_mid_job_loses_nothing_and_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    allow_scripts(dir.path(), None);
    // Each job's processes carry a tag of their own, so the test can find them.
    let tag = |name: &str| format!("GH_TEST_TAG={name}-{}", std::process::id());
    let (again_tag, once_tag) = (tag("again"), tag("once"));
    let script = "sleep 600 & echo started; wait";
    let worker = Worker::start(dir.path(), 3);
    let again = submit(dir.path(), &["--max-attempts", "2", "--env", &again_tag], &["sh", "-c", script]);
    let once = submit(dir.path(), &["--env", &once_tag], &["sh", "-c", script]);
    for id in [again, once] {
        eventually("the job to start its processes", || {
            let logs = run(dir.path(), &["jobs", "logs", &id.to_string()]);
            String::from_utf8_lossy(&logs.stdout).contains("started").then_some(())
        });
    }
    assert!(alive_with_env(&again_tag) >= 2 && alive_with_env(&once_tag) >= 2);

    worker.signal(libc::SIGKILL);
    worker.wait();
    // The sandbox dies with the pool (its bubblewrap has a parent-death signal, and the
    // kernel ends a PID namespace with its init).
    eventually("the jobs' processes to die with the pool", || {
        (alive_with_env(&once_tag) == 0 && alive_with_env(&again_tag) == 0).then_some(())
    });

    // Nothing is "running" for ever: a new pool rescues both at once, and runs both again —
    // a crash is not the job's failure, so even the one with no attempts left goes back to
    // the queue (its interrupted attempt counted).
    let worker = Worker::start(dir.path(), 3);
    for (id, max) in [(again, 2), (once, 2)] {
        let requeued = eventually("the interrupted job to run again", || {
            let j = job(dir.path(), id);
            (j["state"] == "running" && j["attempts"] == 2).then_some(j)
        });
        assert_eq!(requeued["max_attempts"], max);
        assert!(run(dir.path(), &["jobs", "cancel", &id.to_string()]).status.success());
    }
    eventually("the canceled jobs' processes to go", || {
        (alive_with_env(&again_tag) == 0 && alive_with_env(&once_tag) == 0).then_some(())
    });
    worker.signal(libc::SIGTERM);
    assert!(worker.wait().success());
}

#[test]
fn two_pools_on_one_database_never_run_more_than_the_limit_nor_a_job_twice() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    allow_scripts(dir.path(), Some(work.path()));
    let log = work.path().join("log");
    let pools = [Worker::start(dir.path(), 2), Worker::start(dir.path(), 2)];
    let ids: Vec<i64> = (0..8)
        .map(|n| {
            let script = format!(
                "echo start {n} $(date +%s%N) >> {log}; sleep 0.3; echo end {n} $(date +%s%N) >> {log}",
                log = log.display()
            );
            submit(dir.path(), &["--cwd", work.path().to_str().unwrap()], &["sh", "-c", &script])
        })
        .collect();
    for id in &ids {
        assert!(run(dir.path(), &["jobs", "wait", &id.to_string()]).status.success());
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let mut events: Vec<(u128, i32, String)> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[2].parse().unwrap(), if f[0] == "start" { 1 } else { -1 }, f[1].to_owned())
        })
        .collect();
    events.sort();
    let (mut now, mut max) = (0, 0);
    for (_, delta, _) in &events {
        now += delta;
        max = max.max(now);
    }
    assert_eq!(max, 2, "jobs running at once across both pools");
    for n in 0..8 {
        let starts = events.iter().filter(|(_, d, j)| *d == 1 && *j == n.to_string()).count();
        assert_eq!(starts, 1, "job {n} started {starts} times");
    }
    for pool in pools {
        pool.signal(libc::SIGINT);
        assert!(pool.wait().success());
    }
}

#[test]
fn stopping_a_worker_requeues_what_outlives_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let worker = Worker::start(dir.path(), 1);
    let id = submit(dir.path(), &[], &["sleep", "600"]);
    wait_state(dir.path(), id, "running");
    worker.signal(libc::SIGTERM);
    assert!(worker.wait().success());
    let job = job(dir.path(), id);
    assert_eq!((job["state"].as_str(), job["attempts"].as_i64()), (Some("queued"), Some(0)));
}

/// A private session bus with a real Secret Service (GNOME Keyring) on it, unlocked; both
/// stopped on drop.
struct SecretService {
    dir: tempfile::TempDir,
    bus: String,
    children: Vec<std::process::Child>,
}

impl SecretService {
    fn start() -> SecretService {
        use std::io::{BufRead, Write};
        let dir = tempfile::tempdir().unwrap();
        let mut dbus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon: `sudo apt-get install dbus-daemon` (scripts/bootstrap installs it)");
        let mut bus = String::new();
        std::io::BufReader::new(dbus.stdout.take().unwrap()).read_line(&mut bus).unwrap();
        let bus = bus.trim().to_owned();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .env("HOME", dir.path())
            .env("XDG_RUNTIME_DIR", dir.path().join("run"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon: `sudo apt-get install gnome-keyring` (scripts/bootstrap installs it)");
        // The login keyring's password; it is created with it, unlocked.
        keyring.stdin.take().unwrap().write_all(b"gatehouse-test").unwrap();
        let service = SecretService { dir, bus, children: vec![dbus, keyring] };
        gatehouse_testkit::eventually("the Secret Service on the bus", std::time::Duration::from_secs(20), || {
            service.dir.path().join(".local/share/keyrings/login.keyring").exists().then_some(())
        });
        service
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_token_kept_in_the_keyring_is_used_never_stored_and_forgotten_with_its_profile() {
    let url = std::env::var("GATEHOUSE_TEST_OPENCLAW_URL").expect("GATEHOUSE_TEST_OPENCLAW_URL: run ./scripts/test");
    let token = std::env::var("GATEHOUSE_TEST_OPENCLAW_TOKEN").expect("GATEHOUSE_TEST_OPENCLAW_TOKEN");
    let service = SecretService::start();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = gatehouse(dir.path())
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &service.bus)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let add = ["gateways", "add", "claw", "--kind", "openclaw", "--url", &url, "--token-keyring"];

    // A wrong token first: kept, used, and refused by the gateway.
    let out = run(&add, "not-the-token\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["gateways", "test", "claw"], "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("token"), "{}", text(&out.stderr));

    // The right one replaces it; the gateway accepts it.
    assert!(run(&add, &format!("{token}\n")).status.success());
    let out = run(&["gateways", "test", "claw"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&run(&["gateways", "list"], "").stdout);
    assert!(listed.contains("token in the keyring"), "{listed}");
    // Re-added with no token given (a new URL, say): the one in the keyring stays.
    assert!(run(&add, "").status.success());
    assert!(run(&["gateways", "test", "claw"], "").status.success());
    // Another data directory with a profile of the same name keeps a token of its own.
    let other = tempfile::tempdir().unwrap();
    let mut elsewhere = gatehouse(other.path()).args(add).env("DBUS_SESSION_BUS_ADDRESS", &service.bus).stdin(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(&mut elsewhere.stdin.take().unwrap(), b"another-token\n").unwrap();
    assert!(elsewhere.wait().unwrap().success());
    assert!(run(&["gateways", "test", "claw"], "").status.success(), "the other installation's token replaced this one's");

    // Never in the database, nor in its write-ahead log.
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "token found in {:?}", entry.path());
    }

    // Removing the profile forgets the token: adding it back without one is refused.
    assert!(run(&["gateways", "remove", "claw"], "").status.success());
    let out = run(&add, "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("the keyring has none"), "{}", text(&out.stderr));

    // Without a Secret Service: a sentence that says what to do, and nothing saved.
    let out = gatehouse(dir.path()).args(add).env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent").output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("--token-file"), "{}", text(&out.stderr));
    assert!(!text(&run(&["gateways", "list"], "").stdout).contains("claw"));
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn jobs_watch_shows_what_two_other_processes_do_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut watch = gatehouse(dir.path())
        .args(["--json", "jobs", "watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, err) = (gatehouse_testkit::collect_stdout(&mut watch), gatehouse_testkit::collect(watch.stderr.take().unwrap()));
    eventually("the watch to start", || err.lock().unwrap().contains("watching jobs").then_some(()));
    let _watch = Worker(watch);
    // One process submits, another runs it.
    let id = submit(dir.path(), &[], &["echo", "hello"]);
    let worker = Worker::start(dir.path(), 1);
    let events: Vec<Value> = eventually("the job to finish in the feed", || {
        let text = out.lock().unwrap().clone();
        // Only whole lines: the watch's line may be read in more than one piece.
        let whole = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
        let events: Vec<Value> = whole.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        events.iter().any(|e| e["type"] == "finished").then_some(events)
    });
    let of_job: Vec<&str> = events
        .iter()
        .filter(|e| e["job"]["id"] == id || e["id"] == id)
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(of_job, ["submitted", "claimed", "output", "finished"]);
    let line = events.iter().find(|e| e["type"] == "output").unwrap();
    assert_eq!((line["line"]["seq"].as_i64(), line["line"]["text"].as_str()), (Some(1), Some("hello")));
    assert_eq!(events.last().unwrap()["job"]["state"], "succeeded");
    drop(worker);
}

#[test]
fn the_worker_count_set_from_another_terminal_holds_for_a_running_worker() {
    let dir = tempfile::tempdir().unwrap();
    allow_scripts(dir.path(), None);
    let _worker = Worker::start(dir.path(), 1);
    // Each job waits for the other to have started: they can only end if both run at once.
    let a = submit(dir.path(), &[], &["sh", "-c", "touch a; while [ ! -e b ]; do sleep 0.01; done"]);
    let b = submit(dir.path(), &[], &["sh", "-c", "touch b; while [ ! -e a ]; do sleep 0.01; done"]);
    wait_state(dir.path(), a, "running");
    assert_eq!(job(dir.path(), b)["state"], "queued");
    let set = json(dir.path(), &["settings", "set", "workers", "2"]);
    assert_eq!(set["workers"], 2);
    for id in [a, b] {
        let out = run(dir.path(), &["jobs", "wait", &id.to_string(), "--timeout", "30"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
    assert_eq!(json(dir.path(), &["pool", "status"])["workers"], 2);
    let shown = run(dir.path(), &["settings", "show"]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("workers           2"));
    // Out of range, or no such setting: a sentence, exit 2, nothing changed.
    let out = run(dir.path(), &["settings", "set", "workers", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("the worker count must be from 1 to 64, not 0"), "{}", text(&out.stderr));
    let out = run(dir.path(), &["settings", "set", "colour", "blue"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("there is no setting `colour`"), "{}", text(&out.stderr));
    assert_eq!(json(dir.path(), &["settings", "show"])["workers"], 2);
}

#[test]
fn pool_pause_holds_new_jobs_in_a_worker_process_and_resume_runs_them() {
    let dir = tempfile::tempdir().unwrap();
    allow_scripts(dir.path(), None);
    let _worker = Worker::start(dir.path(), 1);
    // Runs (in the default workspace) until the test lets it end.
    let first = submit(dir.path(), &[], &["sh", "-c", "while [ ! -e release ]; do sleep 0.01; done"]);
    wait_state(dir.path(), first, "running");
    let paused = json(dir.path(), &["pool", "pause"]);
    assert_eq!(paused["paused"], true);
    let second = submit(dir.path(), &[], &["true"]);
    std::fs::write(dir.path().join("workspace/release"), "").unwrap();
    let out = run(dir.path(), &["jobs", "wait", &first.to_string(), "--timeout", "30"]);
    assert!(out.status.success(), "a running job goes on: {}", String::from_utf8_lossy(&out.stdout));
    // With one worker, the claim that finished `first` would have taken `second` at once.
    assert_eq!(job(dir.path(), second)["state"], "queued", "nothing new starts");
    let status = json(dir.path(), &["pool", "status"]);
    assert_eq!((status["paused"].as_bool(), status["live_pools"].as_i64()), (Some(true), Some(1)));
    let resumed = json(dir.path(), &["pool", "resume"]);
    assert_eq!(resumed["paused"], false);
    let out = run(dir.path(), &["jobs", "wait", &second.to_string(), "--timeout", "30"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn an_exec_job_submitted_with_no_terminal_waits_until_another_terminal_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let _worker = Worker::start(dir.path(), 1);
    // The default policy asks about sh; nobody is at this "terminal" (stdin is not one).
    let out = gatehouse(dir.path()).args(["--json", "jobs", "submit", "exec", "--", "sh", "-c", "echo allowed"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the job will wait for it"), "{}", String::from_utf8_lossy(&out.stderr));
    let id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["id"].as_i64().unwrap();
    // It runs, and waits for a person.
    let request = eventually("the job to ask", || {
        let open = json(dir.path(), &["approvals", "list"]);
        open.as_array().unwrap().iter().find(|r| r["job_id"] == id).cloned()
    });
    assert_eq!(request["requester"], "job");
    assert!(request["prompt"].as_str().unwrap().starts_with("sh -c 'echo allowed'"), "{request}");
    let shown = job(dir.path(), id);
    assert_eq!((&shown["state"], &shown["waiting_approval"]), (&Value::from("running"), &request["id"]));
    let list = String::from_utf8_lossy(&run(dir.path(), &["jobs", "list"]).stdout).into_owned();
    let row = list.lines().find(|l| l.split_whitespace().next() == Some(&id.to_string())).unwrap_or_default();
    assert_eq!(row.split_whitespace().nth(1), Some("waiting"), "{list}");

    let rid = request["id"].as_i64().unwrap().to_string();
    let out = run(dir.path(), &["approvals", "allow", &rid]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(dir.path(), &["jobs", "wait", &id.to_string(), "--timeout", "30"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let logs = run(dir.path(), &["jobs", "logs", &id.to_string()]);
    assert!(String::from_utf8_lossy(&logs.stdout).contains("allowed"));
    // Answered once: a second answer says so.
    let out = run(dir.path(), &["approvals", "deny", &rid]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no longer open"), "{}", String::from_utf8_lossy(&out.stderr));

    // A denied one fails, saying so.
    let id = submit(dir.path(), &[], &["sh", "-c", "echo never"]);
    let request = eventually("the second job to ask", || {
        json(dir.path(), &["approvals", "list"]).as_array().unwrap().iter().find(|r| r["job_id"] == id).cloned()
    });
    let out = run(dir.path(), &["approvals", "deny", &request["id"].as_i64().unwrap().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let failed = wait_state(dir.path(), id, "failed");
    assert_eq!(failed["error"]["code"], "exec.denied");
}

#[test]
fn exec_with_no_terminal_can_wait_for_an_answer_from_another_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let asker = gatehouse(dir.path())
        .args(["exec", "--approval-wait", "60", "--", "sh", "-c", "echo ran"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let request = eventually("the command to ask", || {
        json(dir.path(), &["approvals", "list"]).as_array().unwrap().first().cloned()
    });
    assert_eq!(request["requester"], "person");
    let out = run(dir.path(), &["approvals", "allow", &request["id"].as_i64().unwrap().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = asker.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("gatehouse approvals allow"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_job_whose_pool_dies_every_time_is_given_up_after_a_few_tries() {
    let dir = tempfile::tempdir().unwrap();
    allow_scripts(dir.path(), None);
    let id = submit(dir.path(), &[], &["sh", "-c", "sleep 600 & echo started; wait"]);
    // Its pool is killed under it: requeued three times past its one attempt, then failed.
    for attempt in 1..=4 {
        let worker = Worker::start(dir.path(), 1);
        eventually("the attempt to start", || {
            let j = job(dir.path(), id);
            (j["state"] == "running" && j["attempts"] == attempt).then_some(())
        });
        eventually("its command to start", || {
            let logs = String::from_utf8_lossy(&run(dir.path(), &["jobs", "logs", &id.to_string()]).stdout).into_owned();
            (logs.matches("started").count() == attempt as usize).then_some(())
        });
        worker.signal(libc::SIGKILL);
        worker.wait();
    }
    let _worker = Worker::start(dir.path(), 1);
    let failed = wait_state(dir.path(), id, "failed");
    assert_eq!((failed["attempts"].as_i64(), failed["error"]["code"].as_str()), (Some(4), Some("job.interrupted")));
}

#[test]
fn a_backup_restores_from_the_terminal_but_not_while_a_worker_runs() {
    let dir = tempfile::tempdir().unwrap();
    let first = submit(dir.path(), &[], &["true"]);
    let file = dir.path().join("saved.db");
    let out = run(dir.path(), &["backup", file.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("0 conversations, 1 job,"), "{said}");
    // Again to the same file: refused, not overwritten.
    let again = run(dir.path(), &["backup", file.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let second = submit(dir.path(), &[], &["true"]);
    let worker = Worker::start(dir.path(), 1);
    eventually("the worker to be live", || (json(dir.path(), &["pool", "status"])["live_pools"] == 1).then_some(()));
    let refused = run(dir.path(), &["restore", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(err.contains("Gatehouse is running on") && err.contains("hint: close the app"), "{err}");
    worker.signal(libc::SIGINT);
    assert!(worker.wait().success());
    assert_eq!(job(dir.path(), second)["id"], second, "the live data has both jobs before the restore");

    let restored = run(dir.path(), &["restore", file.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&restored.stdout);
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stderr));
    assert!(said.contains("the data it replaced is kept at"), "{said}");
    // The backup's moment: the first job only, still queued.
    let ids: Vec<i64> = json(dir.path(), &["jobs", "list"]).as_array().unwrap().iter().map(|j| j["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [first]);
    assert_eq!(job(dir.path(), first)["state"], "queued");
}
