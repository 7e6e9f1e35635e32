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
fn a_command_that_must_be_asked_about_is_asked_on_the_machine_that_runs_it_and_shows_waiting_everywhere() {
    let db = fresh_database("gatehouse_cli_shared_ask");
    let (runner, submitter) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (runner, submitter) = (runner.path(), submitter.path());
    let worker = Worker(on(runner, &db).args(["worker", "--workers", "1", "--grace", "1"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    // The default policy asks about sh; nobody is at the submitting "terminal".
    let id = json(submitter, &db, &["jobs", "submit", "exec", "--", "sh", "-c", "echo allowed"])["id"].as_i64().unwrap();
    // The question is the running machine's; the job shows as waiting on every machine.
    let request = gatehouse_testkit::eventually("the running machine to ask", Duration::from_secs(30), || {
        json(runner, &db, &["approvals", "list"]).as_array().unwrap().iter().find(|r| r["job_id"] == id).cloned()
    });
    assert!(json(submitter, &db, &["approvals", "list"]).as_array().unwrap().is_empty(), "the submitting machine asks nothing");
    let shown = gatehouse_testkit::eventually("the job shown waiting on the shared row", Duration::from_secs(10), || {
        let job = json(submitter, &db, &["jobs", "show", &id.to_string()]);
        (job["waiting_approval"] == request["id"]).then_some(job)
    });
    assert_eq!(shown["state"], "running");
    let out = on(runner, &db).args(["approvals", "allow", &request["id"].to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let done = waited(submitter, &db, id);
    assert_eq!((&done["state"], &done["waiting_approval"]), (&Value::from("succeeded"), &Value::Null), "{done}");
    let logs = on(submitter, &db).args(["jobs", "logs", &id.to_string()]).output().unwrap();
    assert!(String::from_utf8_lossy(&logs.stdout).contains("allowed"));
    drop(worker);
}

#[test]
fn the_commands_of_exec_jobs_are_audited_in_the_shared_database_where_every_machine_sees_them() {
    let db = fresh_database("gatehouse_cli_shared_audit");
    let (runner, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (runner, other) = (runner.path(), other.path());
    let worker = Worker(on(runner, &db).args(["worker", "--workers", "1", "--grace", "1"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    // Allowed by the default policy, and asked about then declined on the running machine.
    let echo = json(other, &db, &["jobs", "submit", "exec", "--", "echo", "audited"])["id"].as_i64().unwrap();
    assert_eq!(waited(other, &db, echo)["state"], "succeeded");
    let sh = json(other, &db, &["jobs", "submit", "exec", "--", "sh", "-c", "echo never"])["id"].as_i64().unwrap();
    let request = gatehouse_testkit::eventually("the running machine to ask", Duration::from_secs(30), || {
        json(runner, &db, &["approvals", "list"]).as_array().unwrap().iter().find(|r| r["job_id"] == sh).cloned()
    });
    let out = on(runner, &db).args(["approvals", "deny", &request["id"].to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(waited(other, &db, sh)["state"], "failed");
    // A person's own command on the other machine: its log, not the shared one.
    let out = on(other, &db).args(["exec", "--", "echo", "mine"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_owned();
    let audit = json(other, &db, &["exec", "audit"]);
    let rows = |audit: &Value, requester: &str| -> Vec<Value> {
        audit.as_array().unwrap().iter().filter(|r| r["requester"] == requester).cloned().collect()
    };
    let ran = rows(&audit, &format!("job:{echo}"));
    assert_eq!(ran.len(), 1, "one row for the job's one command: {audit}");
    assert_eq!((&ran[0]["host"], &ran[0]["decision"], &ran[0]["exit_code"]), (&Value::from(host.as_str()), &Value::from("allow"), &Value::from(0)), "{}", ran[0]);
    assert!(ran[0]["program"].as_str().unwrap().contains("echo") && ran[0]["args"] == serde_json::json!(["audited"]), "{}", ran[0]);
    assert!(ran[0]["ended_at"].is_string(), "the row is completed when the command ends: {}", ran[0]);
    let declined = rows(&audit, &format!("job:{sh}"));
    assert_eq!(declined.len(), 1, "{audit}");
    assert_eq!((&declined[0]["host"], &declined[0]["decision"]), (&Value::from(host.as_str()), &Value::from("ask")), "{}", declined[0]);
    assert!(declined[0]["approval"].as_str().unwrap().starts_with("denied"), "{}", declined[0]);
    let mine = rows(&audit, "person");
    assert_eq!((mine.len(), &mine[0]["host"]), (1, &Value::Null), "the other machine's own command, in its own log: {audit}");
    assert_eq!(json(runner, &db, &["exec", "audit"]), audit.as_array().unwrap().iter().filter(|r| r["host"] != Value::Null).cloned().collect::<Value>(), "the running machine sees the same shared rows, and not the other machine's own");

    // Nothing of the jobs in the running machine's own log: the shared database holds them.
    let out = on(runner, &db).env_remove("GATEHOUSE_DATABASE_URL").args(["--json", "exec", "audit"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), serde_json::json!([]));
    let text = on(other, &db).args(["exec", "audit"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("job:{echo} on {host}")), "the log says which machine ran a job's command: {text}");
    drop(worker);
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

/// The chaos test: four worker processes stand for four machines (each its own data directory,
/// pool and — through a UTS namespace — hostname) and drain 10,000 exec jobs from one queue
/// while one machine is killed with SIGKILL, another is stopped (SIGSTOP) past its lease and
/// then resumed, and PostgreSQL itself restarts once. Every job's command writes a line when it
/// starts and one when it ends to a file in a workspace all machines share, so the file's
/// order (O_APPEND) is the order things happened in: no job may start while another run of it
/// is still going, every job must end up succeeded, and a run without an end must have been
/// cut by the kill or the stall, each accounted for by an attempt in the job's row and by a
/// row in the shared audit log.
#[test]
fn four_machines_drain_ten_thousand_jobs_through_a_kill_a_stall_and_a_database_restart() {
    const JOBS: usize = 10_000;
    let db = fresh_database("gatehouse_chaos");
    let shared = tempfile::tempdir().unwrap();
    let log = shared.path().join("runs.log");
    let dirs: Vec<tempfile::TempDir> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    for dir in &dirs {
        for args in [&["exec", "policy", "add", "allow", "sh", "--any-args"][..], &["exec", "workspace", "add", shared.path().to_str().unwrap()]] {
            let out = on(dir.path(), &db).args(args).output().unwrap();
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let mut machines: Vec<Machine> = (1..=4).map(|n| Machine::start(dirs[n - 1].path(), &db, &format!("chaos-{n}"))).collect();
    let hosts = || psql(&db, "SELECT host FROM pools ORDER BY host");
    gatehouse_testkit::eventually("four machines registered", Duration::from_secs(30), || (hosts() == "chaos-1\nchaos-2\nchaos-3\nchaos-4").then_some(()));

    // The fifth machine submits, through the engine as the CLI would, while the others drain.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let engine = rt
        .block_on(gatehouse_engine::Engine::open(gatehouse_engine::EngineOptions {
            database: Some(db.clone()),
            ..gatehouse_engine::EngineOptions::new(dirs[4].path())
        }))
        .unwrap();
    // A start line, an end line, and one in four dozen jobs lasts long enough to be caught
    // running; `read` and `echo` are the shell's own, so a job is one process.
    let script = r#"read h < /proc/sys/kernel/hostname; echo "s $1 $h" >> runs.log
if [ $(($1 % 48)) -eq 0 ]; then sleep 0.3; fi; echo "e $1 $h" >> runs.log; echo "job $1 ran on $h""#;
    let submitting = {
        let (engine, cwd) = (engine.clone(), shared.path().to_owned());
        rt.spawn(async move {
            let mut ids = Vec::with_capacity(JOBS);
            for n in 0..JOBS {
                let mut spec = gatehouse_engine::ExecSpec::new("sh", ["-c", script, "job", &n.to_string()]);
                spec.cwd = Some(cwd.clone());
                let job = gatehouse_engine::NewJob::new("exec", serde_json::to_value(spec).unwrap());
                ids.push(engine.submit(job).await.unwrap());
            }
            ids
        })
    };
    let count = |state: gatehouse_engine::JobState| {
        rt.block_on(engine.job_counts()).ok().map(|c| c.iter().filter(|(s, _)| *s == state).map(|(_, n)| *n).sum::<i64>())
    };
    // Counted a few times a second, not every 20 ms: the count is a query the workers would wait on.
    let succeeded = |at_least: i64| {
        let mut asked = std::time::Instant::now() - Duration::from_secs(1);
        move || {
            if asked.elapsed() < Duration::from_millis(250) {
                return None;
            }
            asked = std::time::Instant::now();
            count(gatehouse_engine::JobState::Succeeded).filter(|n| *n >= at_least).map(|_| ())
        }
    };
    let long = Duration::from_secs(600);

    // 1. A machine dies in the middle of a long job: everything its processes left is gone
    //    before the mark is written.
    gatehouse_testkit::eventually("1,500 jobs done", long, succeeded(1500));
    machines[0].wait_for_a_long_job();
    machines[0].kill(&log);
    // 2. A machine stalls past its lease in the middle of a long job: the others rescue its
    //    jobs; then it comes back, finds its lease gone, and its ends are refused. Only the
    //    worker stops, as a machine cut off from the database: its commands go on and end
    //    (0.3 s at most, well inside the lease), so a rescued run starts after they did.
    gatehouse_testkit::eventually("4,000 jobs done", long, succeeded(4000));
    machines[1].wait_for_a_long_job();
    machines[1].signal(libc::SIGSTOP);
    gatehouse_testkit::eventually("the stalled machine's jobs rescued", Duration::from_secs(60), || (hosts() == "chaos-3\nchaos-4").then_some(()));
    machines[1].signal(libc::SIGCONT);
    gatehouse_testkit::eventually("the stalled machine back in the pool", Duration::from_secs(30), || (hosts() == "chaos-2\nchaos-3\nchaos-4").then_some(()));
    // 3. The database restarts under all of them (every job submitted by then).
    let ids = rt.block_on(submitting).unwrap();
    gatehouse_testkit::eventually("6,500 jobs done", long, succeeded(6500));
    let restart = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/peers/postgres")).arg("restart").output().unwrap();
    assert!(restart.status.success(), "restarting PostgreSQL: {}", String::from_utf8_lossy(&restart.stderr));

    let all = JOBS as i64;
    let finished = gatehouse_testkit::eventually_or(long, succeeded(all));
    if finished.is_none() {
        for m in &machines {
            eprintln!("--- {} (last lines of its log)\n{}", m.name, m.log_tail());
        }
        panic!("not every job succeeded: {:?}", rt.block_on(engine.job_counts()));
    }
    // Nothing stuck, nothing failed: every job is one of the 10,000 that succeeded.
    assert_eq!(rt.block_on(engine.job_counts()).unwrap(), vec![(gatehouse_engine::JobState::Succeeded, all)]);
    drop(machines);

    let attempts: std::collections::HashMap<i64, i64> = psql(&db, "SELECT id, attempts FROM jobs")
        .lines()
        .map(|l| l.split_once('|').map(|(id, n)| (id.parse().unwrap(), n.parse().unwrap())).unwrap())
        .collect();
    // What a person reads in `jobs logs`: every job's last attempt kept its command's output,
    // through the restart too (a write that fails is tried again).
    let without_output = psql(
        &db,
        "SELECT count(*) FROM jobs j WHERE NOT EXISTS (
             SELECT 1 FROM job_output o WHERE o.job_id = j.id AND o.attempt = j.attempts AND o.text LIKE 'job % ran on %')",
    );
    assert_eq!(without_output, "0", "jobs whose output is missing");
    // The audit in the shared database: every job's successful command completed its row (its
    // end written through the restart too), and no run started without a row.
    let unaudited = psql(
        &db,
        "SELECT count(*) FROM jobs j WHERE NOT EXISTS (
             SELECT 1 FROM exec_audit a WHERE a.requester = 'job:' || j.id AND a.exit_code = 0 AND a.ended_at IS NOT NULL)",
    );
    assert_eq!(unaudited, "0", "jobs without a completed audit row");
    let audited: std::collections::HashMap<i64, usize> = psql(&db, "SELECT substr(requester, 5), count(*) FROM exec_audit GROUP BY requester")
        .lines()
        .map(|l| l.split_once('|').map(|(id, n)| (id.parse().unwrap(), n.parse().unwrap())).unwrap())
        .collect();
    let runs = Runs::read(&std::fs::read_to_string(&log).unwrap(), JOBS);
    eprintln!(
        "chaos: {JOBS} jobs, {} runs started, {} cut by the kill, {} cut on the stalled machine, {} jobs run more than once",
        runs.starts.iter().sum::<usize>(),
        runs.cut_by_kill,
        runs.cut_elsewhere.iter().filter(|h| *h == "chaos-2").count(),
        runs.starts.iter().filter(|n| **n > 1).count()
    );
    // The chaos bit: the kill cut a run short, and the jobs of the killed and the stalled
    // machine ran again elsewhere.
    assert!(runs.cut_by_kill >= 1, "the kill came while a long job ran");
    assert!(runs.starts.iter().filter(|n| **n > 1).count() >= 2, "jobs of both machines ran again");
    assert_eq!(runs.overlaps, Vec::<String>::new(), "a job started while another run of it was going");
    assert_eq!(runs.strays, Vec::<String>::new(), "lines that belong to no run");
    assert!(runs.cut_elsewhere.iter().all(|h| h == "chaos-2"), "runs that never ended on a machine nothing happened to: {:?}", runs.cut_elsewhere);
    for (n, id) in ids.iter().enumerate() {
        assert!(runs.ended[n] >= 1, "job {n} (id {id}) succeeded but its command never ended");
        assert!(runs.starts[n] as i64 <= attempts[id], "job {n} (id {id}) ran {} times on {} attempts", runs.starts[n], attempts[id]);
        assert!(runs.starts[n] <= audited[id], "job {n} (id {id}) ran {} times with {} audit rows", runs.starts[n], audited[id]);
    }
}

/// The machines' lease: long enough that PostgreSQL's restart (a few seconds without
/// heartbeats) kills nobody, short enough that the stalled machine is rescued soon.
const LEASE: &str = "8";

/// What the shared file says about each job's runs, in the order they happened.
struct Runs {
    starts: Vec<usize>,
    ended: Vec<usize>,
    /// A job started while one of its runs had started and not ended (and was not cut by a kill).
    overlaps: Vec<String>,
    /// Runs the kill cut (started, never ended, their machine dead before the mark).
    cut_by_kill: usize,
    /// Hosts of the other runs that never ended.
    cut_elsewhere: Vec<String>,
    /// An end without its start, or anything from a machine after it was killed.
    strays: Vec<String>,
}

impl Runs {
    fn read(log: &str, jobs: usize) -> Runs {
        let mut runs = Runs { starts: vec![0; jobs], ended: vec![0; jobs], overlaps: vec![], cut_by_kill: 0, cut_elsewhere: vec![], strays: vec![] };
        let mut open: std::collections::HashMap<usize, String> = Default::default();
        let mut dead: Vec<String> = vec![];
        for line in log.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields[..] {
                ["K", host] => {
                    let before = open.len();
                    open.retain(|_, h| h != host);
                    runs.cut_by_kill += before - open.len();
                    dead.push(host.to_owned());
                }
                [_, _, host] if dead.iter().any(|d| d == host) => runs.strays.push(format!("after its machine was killed: {line}")),
                ["s", n, host] => {
                    let n: usize = n.parse().unwrap();
                    runs.starts[n] += 1;
                    if let Some(other) = open.insert(n, host.to_owned()) {
                        runs.overlaps.push(format!("job {n} started on {host} while it ran on {other}"));
                    }
                }
                ["e", n, host] => {
                    let n: usize = n.parse().unwrap();
                    match open.remove(&n) {
                        Some(h) if h == host => runs.ended[n] += 1,
                        _ => runs.strays.push(format!("an end without its start: {line}")),
                    }
                }
                _ => runs.strays.push(format!("not a run's line: {line}")),
            }
        }
        runs.cut_elsewhere = open.into_values().collect();
        runs
    }
}

/// One line per row, columns separated by `|`.
fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql").args([db, "-Atc", sql]).output().expect("psql (scripts/peers/postgres installs it)");
    // While the database restarts: nothing yet.
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A `gatehouse worker` standing for a machine: its own data directory and, in a UTS namespace
/// of its own, its own hostname (the pool's identity and what its jobs' commands see).
struct Machine {
    name: String,
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Machine {
    fn start(dir: &Path, db: &str, name: &str) -> Machine {
        let log = dir.join("worker.log");
        let mut cmd = Command::new("unshare");
        // Root may make a UTS namespace by itself; anyone else in a user namespace of their own.
        if unsafe { libc::geteuid() } != 0 {
            cmd.arg("--map-current-user");
        }
        cmd.args(["--uts", "--", "sh", "-c", r#"hostname "$0" && exec "$@""#, name, env!("CARGO_BIN_EXE_gatehouse")])
            .arg("--data-dir")
            .arg(dir)
            .args(["worker", "--workers", "4", "--lease", LEASE, "--grace", "1"])
            .env("GATEHOUSE_DATABASE_URL", db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = cmd.spawn().expect("unshare (util-linux) starts each machine in its own UTS namespace");
        Machine { name: name.to_owned(), child: Some(child), log }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Until one of the jobs this machine runs is a long one (its command sleeps).
    fn wait_for_a_long_job(&self) {
        let pid = self.pid();
        gatehouse_testkit::eventually("a long job running", Duration::from_secs(60), || {
            descendants(pid)
                .iter()
                .any(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sleep"))
                .then_some(())
        });
    }

    /// SIGKILL, as a machine dies; then, once every process its jobs left behind is gone
    /// (bubblewrap dies with its parent), a `K host` line marks the moment in the shared file.
    fn kill(&mut self, log: &Path) {
        let pid = self.pid();
        // Stopped first so it starts nothing between the census of its processes and the kill.
        self.signal(libc::SIGSTOP);
        gatehouse_testkit::eventually("the machine stopped", Duration::from_secs(10), || (proc_state(pid) == Some('T')).then_some(()));
        let left = descendants(pid);
        self.signal(libc::SIGKILL);
        self.child.take().unwrap().wait().unwrap();
        gatehouse_testkit::eventually("the dead machine's processes gone", Duration::from_secs(30), || {
            left.iter().all(|p| matches!(proc_state(*p), None | Some('Z'))).then_some(())
        });
        // bubblewrap (0.8) sets its sandbox's parent-death signal only once the sandbox exists,
        // and does not check that its own parent is still there: a sandbox bubblewrap was making
        // when the machine died (after the census above: bubblewrap is not stopped) outlives
        // it and runs its command once, unsupervised. That run began before the death; it is
        // waited for too (every process of a job carries its pool's marker, `host:pid:…`).
        let marker = format!("GATEHOUSE_JOB={}:", self.name);
        let orphans = marked(&marker);
        if orphans > 0 {
            eprintln!("chaos: {orphans} process(es) of {} outlived it (bubblewrap's parent-death race)", self.name);
        }
        gatehouse_testkit::eventually("the dead machine's orphaned commands ended", Duration::from_secs(30), || {
            (marked(&marker) == 0).then_some(())
        });
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().append(true).open(log).unwrap();
        writeln!(file, "K {}", self.name).unwrap();
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            let _ = child.wait();
        }
    }
}

/// Live processes with an environment variable that starts with `prefix` (`NAME=value…`).
fn marked(prefix: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.parse::<i32>().is_ok()))
        .filter(|e| std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| !s.contains(") Z ")))
        .filter_map(|e| std::fs::read(e.path().join("environ")).ok())
        .filter(|env| env.split(|&b| b == 0).any(|var| var.starts_with(prefix.as_bytes())))
        .count()
}

/// A process's state letter (`R`, `S`, `T`, `Z`, …), `None` once it is gone.
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next())
}

/// Every process below `pid`, read until two reads agree.
fn descendants(pid: i32) -> Vec<i32> {
    let read = || {
        let mut parent_of = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(p) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
            let ppid = stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<i32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((p, ppid));
            }
        }
        let mut found = vec![pid];
        let mut i = 0;
        while i < found.len() {
            let me = found[i];
            found.extend(parent_of.iter().filter(|(_, pp)| *pp == me).map(|(p, _)| *p));
            i += 1;
        }
        found.remove(0);
        found.sort();
        found
    };
    let mut last = read();
    loop {
        let now = read();
        if now == last {
            return now;
        }
        last = now;
    }
}
