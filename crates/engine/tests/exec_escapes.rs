//! The exec sandbox against the ways out an outside review found (issue 11), with real
//! bubblewrap: each test plays the attacker — a command, or something racing it, that can
//! write its own workspace — and checks that the check held on the object that ran.
//! Races are tried many times; a single win is a failure.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use gatehouse_engine::exec::policy::Action;
use gatehouse_engine::pool::kind::BoxFuture;
use gatehouse_engine::{
    Approval, ApprovalEvent, ApprovalRequest, Approver, Engine, ExecSpec, NewJob, NewRule, NoApprover, PoolConfig,
};

mod common;
use common::{engine, Ran, Yes};

async fn run_with(engine: &Engine, spec: ExecSpec, approver: &dyn Approver) -> Ran {
    common::run(engine, spec, approver, Duration::from_secs(30)).await
}

async fn sh(engine: &Engine, cwd: Option<&Path>, script: &str) -> Ran {
    let mut spec = ExecSpec::new("sh", ["-c", script]);
    spec.cwd = cwd.map(Path::to_owned);
    run_with(engine, spec, &NoApprover).await
}

/// Keep swapping `dir` for a symlink to `target` and back, until dropped.
struct Swapper {
    stop: Arc<AtomicBool>,
    /// How long the swapper stays in the real state, in microseconds (0: one yield). Raised
    /// by `calm_down` when no run got past the checks: how the swapper is scheduled against
    /// the runs depends on the machine's load (a loaded 2-core CI once refused all 600 jobs
    /// while the dwell was counted in yields, which cost nothing when a core is free).
    calm: Arc<AtomicU32>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl Swapper {
    fn start(dir: &Path, target: &str) -> Swapper {
        let (dir, target) = (dir.to_owned(), target.to_owned());
        let aside = dir.with_extension("aside");
        let stop = Arc::new(AtomicBool::new(false));
        let calm = Arc::new(AtomicU32::new(0));
        let (flag, dwell) = (stop.clone(), calm.clone());
        let thread = std::thread::spawn(move || {
            let mut swaps = 0;
            while !flag.load(Ordering::Relaxed) {
                if std::fs::rename(&dir, &aside).is_ok() {
                    let _ = std::os::unix::fs::symlink(&target, &dir);
                    std::thread::yield_now();
                    let _ = std::fs::remove_file(&dir);
                    let _ = std::fs::rename(&aside, &dir);
                    swaps += 1;
                    // The attacker's rhythm, not a synchronisation: some time in the real
                    // state, so that some checks pass and the race is run past them.
                    match dwell.load(Ordering::Relaxed) {
                        0 => std::thread::yield_now(),
                        us => std::thread::sleep(Duration::from_micros(us.into())),
                    }
                }
            }
            swaps
        });
        Swapper { stop, calm, thread: Some(thread) }
    }

    /// Stay longer in the real state: 50 µs, then doubling up to about 50 ms (where nearly
    /// every check passes, and the swaps still come many times a second).
    fn calm_down(&self) {
        let now = self.calm.load(Ordering::Relaxed);
        self.calm.store((now * 2).clamp(50, 51_200), Ordering::Relaxed);
    }

    fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

fn data_dir_reached(dir: &Path, output: &str) -> bool {
    output.contains("gatehouse.db") || std::fs::read_dir(dir).unwrap().flatten().any(|e| e.file_name().to_string_lossy().starts_with("pwned"))
}

// 1. The checked directory is the mounted directory.
#[tokio::test]
async fn a_working_directory_swapped_for_a_symlink_to_the_data_dir_never_exposes_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let sub = dir.path().join("workspace/sub");
    std::fs::create_dir_all(&sub).unwrap();
    // `sub` → `..` is the data directory itself, seen from the default workspace.
    let swapper = Swapper::start(&sub, "..");
    // Runs until enough got past the checks to prove the race was run, at most 400.
    let (mut ran_ok, mut runs, mut refusals) = (0, 0, std::collections::BTreeSet::new());
    while (ran_ok < 5 || runs < 40) && runs < 400 {
        runs += 1;
        let ran = sh(&engine, Some(&sub), "ls -a; touch pwned-$$").await;
        let all = format!("{}{}", ran.stdout, ran.stderr);
        assert!(!data_dir_reached(dir.path(), &all), "the data directory was reached: {all}");
        match &ran.result {
            Ok(_) => ran_ok += 1,
            Err(e) => _ = refusals.insert(e.to_string()),
        }
        if runs % 10 == 0 && ran_ok == 0 {
            swapper.calm_down();
        }
    }
    assert!(swapper.stop() > 0, "the race was run");
    assert!(ran_ok > 0, "some runs got past the checks (else the race proves nothing); refusals: {refusals:#?}");
}

#[tokio::test]
async fn exec_jobs_three_at_once_in_a_swapped_directory_never_reach_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let sub = dir.path().join("workspace/sub");
    std::fs::create_dir_all(&sub).unwrap();
    let swapper = Swapper::start(&sub, "..");
    let pool = engine.start_pool(PoolConfig { workers: 3, ..PoolConfig::default() }).await.unwrap();
    // Batches until enough jobs got past the checks to prove the race was run (how many do
    // depends on how the swapper is scheduled against the workers), at most 600 jobs.
    let (mut started, mut submitted, mut refusals) = (0, 0, std::collections::BTreeSet::new());
    while (started < 5 || submitted < 30) && submitted < 600 {
        let before = started;
        let mut ids = Vec::new();
        for _ in 0..15 {
            let mut spec = ExecSpec::new("sh", ["-c", "ls -a; touch pwned-$$"]);
            spec.cwd = Some(sub.clone());
            // Submitting checks the directory too, and may meet it swapped: refused is fine.
            match engine.submit(NewJob::new("exec", serde_json::to_value(spec).unwrap())).await {
                Ok(id) => ids.push(id),
                Err(e) => _ = refusals.insert(format!("at submit: {e}")),
            }
        }
        submitted += 15;
        for id in &ids {
            let job = engine.wait(*id, Some(Instant::now() + Duration::from_secs(60))).await.unwrap();
            assert!(job.state.is_finished(), "{job:?}");
            let lines: String =
                engine.output(*id, 0, 1000).await.unwrap().into_iter().map(|l| l.text + "\n").collect();
            assert!(!data_dir_reached(dir.path(), &lines), "job {id} reached the data directory: {lines}");
            started += lines.contains("..") as usize;
            if let Some(e) = &job.error {
                refusals.insert(e.message.clone());
            }
        }
        if started == before {
            swapper.calm_down();
        }
    }
    assert!(swapper.stop() > 0);
    assert!(started > 0, "some jobs got past the checks (else the race proves nothing); refusals: {refusals:#?}");
    pool.shutdown(Duration::from_secs(5)).await;
}

// 2. Workspace roots cannot be redirected.
#[tokio::test]
async fn nested_roots_are_refused_and_a_replaced_root_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let outer = tempfile::tempdir().unwrap();
    let inner = outer.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    engine.add_workspace(outer.path()).await.unwrap();
    let err = engine.add_workspace(&inner).await.unwrap_err();
    assert!(err.to_string().contains("nested"), "{err}");

    // A root replaced by a symlink to `/` (by anyone: a command cannot, since no root lies in
    // another) is refused, not followed — and so is one replaced by another directory.
    let other = tempfile::tempdir().unwrap();
    let root = other.path().join("project");
    std::fs::create_dir(&root).unwrap();
    engine.add_workspace(&root).await.unwrap();
    std::fs::rename(&root, other.path().join("moved")).unwrap();
    std::os::unix::fs::symlink("/", &root).unwrap();
    let ran = sh(&engine, Some(&root.join("etc")), "touch pwned").await;
    assert_eq!(ran.result.unwrap_err().code(), "exec.workspace");
    std::fs::remove_file(&root).unwrap();
    std::fs::create_dir(&root).unwrap();
    let err = sh(&engine, Some(&root), "true").await.result.unwrap_err();
    assert!(err.to_string().contains("not the directory that was added"), "{err}");

    for forbidden in ["/", "/usr", "/tmp"] {
        assert!(engine.add_workspace(Path::new(forbidden)).await.is_err(), "{forbidden}");
    }
    let home = std::fs::canonicalize(std::env::var("HOME").unwrap()).unwrap();
    let err = engine.add_workspace(&home).await.unwrap_err();
    assert!(err.to_string().contains("home directory"), "{err}");
}

// 3. Hidden places are hidden by what they are.
#[tokio::test]
async fn a_root_holding_the_data_dir_or_a_token_file_is_refused_whatever_its_names() {
    let outer = tempfile::tempdir().unwrap();
    let data = outer.path().join("a/b/data");
    std::fs::create_dir_all(&data).unwrap();
    let engine = engine(&data).await;
    let err = engine.add_workspace(outer.path()).await.unwrap_err();
    assert!(err.to_string().contains("data directory"), "{err}");

    // A token file inside a root is refused when the gateway is added; one that was there
    // already (a root added around it, or an older data directory) refuses commands in the root.
    let project = tempfile::tempdir().unwrap();
    engine.add_workspace(project.path()).await.unwrap();
    let secrets = project.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("token"), "sk-secret").unwrap();
    std::fs::set_permissions(secrets.join("token"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let profile = gatehouse_engine::Profile {
        name: "claw".into(),
        kind: gatehouse_engine::GatewayKind::Openai,
        url: Some("http://127.0.0.1:9/v1".into()),
        model: None,
        token_env: None,
        token_file: Some(secrets.join("token")),
        token_keyring: false,
        is_default: false,
    };
    let err = engine.add_gateway(profile.clone()).await.unwrap_err();
    assert!(err.to_string().contains("workspace root"), "{err}");
    // The other order: the gateway first, then a root around its token file.
    engine.remove_workspace(project.path()).await.unwrap();
    engine.add_gateway(profile).await.unwrap();
    let err = engine.add_workspace(project.path()).await.unwrap_err();
    assert!(err.to_string().contains("token file"), "{err}");
    // And the data directory from below: a root inside it is refused too.
    let inside = data.join("mine");
    std::fs::create_dir(&inside).unwrap();
    assert!(engine.add_workspace(&inside).await.is_err());
}

#[tokio::test]
async fn a_path_outside_the_allowlist_is_seen_only_through_a_rule_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let tools = tempfile::tempdir_in("/var/tmp").unwrap();
    std::fs::write(tools.path().join("readme"), "tool docs").unwrap();
    let file = tools.path().join("readme");
    let file = file.to_str().unwrap();
    let ran = run_with(&engine, ExecSpec::new("head", [file]), &NoApprover).await;
    assert!(!ran.stdout.contains("tool docs"), "hidden by default");
    let rule = |see: &Path| NewRule {
        action: Action::Allow,
        program: "head".into(),
        args: vec![],
        any_args: true,
        network: false,
        see: vec![see.to_owned()],
        env: vec![],
    };
    engine.add_rule(rule(tools.path())).await.unwrap();
    let ran = run_with(&engine, ExecSpec::new("head", [file]), &NoApprover).await;
    assert_eq!(ran.stdout.trim(), "tool docs", "{}", ran.stderr);
    // Not a path a command could swap, nor one holding the data directory.
    let err = engine.add_rule(rule(&dir.path().join("workspace"))).await.unwrap_err();
    assert!(err.to_string().contains("workspace root"), "{err}");
    let err = engine.add_rule(rule(dir.path())).await.unwrap_err();
    assert!(err.to_string().contains("may not see") || err.to_string().contains("workspace root"), "{err}");
}

// 4. The program that runs is the program that was checked.
#[tokio::test]
async fn a_deny_rule_holds_for_the_file_under_every_name() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine.add_exec_rule(Action::Deny, "/usr/bin/uname", vec![], true, false).await.unwrap();
    let link = dir.path().join("workspace/u");
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/usr/bin/uname", &link).unwrap();
    for name in ["uname", "/bin/uname", "/usr/bin/../bin/uname", "/usr/bin/./uname", "./u"] {
        let ran = run_with(&engine, ExecSpec::new(name, ["-a"]), &NoApprover).await;
        let err = ran.result.unwrap_err();
        assert_eq!(err.code(), "exec.denied", "{name}: {err}");
    }
}

/// Says yes, for a while, and remembers what it was asked.
struct Grants(std::sync::Mutex<Vec<String>>);

impl Approver for Grants {
    fn approve(&self, request: &ApprovalRequest) -> BoxFuture<Approval> {
        self.0.lock().unwrap().push(request.prompt.clone());
        Box::pin(async { Approval::For(Duration::from_secs(600)) })
    }
}

#[tokio::test]
async fn a_timed_grant_holds_for_the_file_approved_not_for_a_retargeted_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(common::options(dir.path())).await.unwrap();
    let ws = dir.path().join("workspace");
    std::fs::create_dir_all(&ws).unwrap();
    // `env`: asked about by default, and harmless with these arguments.
    std::os::unix::fs::symlink("/usr/bin/env", ws.join("tool")).unwrap();
    let asked = Grants(Default::default());
    let ran = run_with(&engine, ExecSpec::new("./tool", ["-c", "echo escaped"]), &asked).await;
    assert!(ran.result.is_ok(), "approved, it ran");
    let prompt = asked.0.lock().unwrap()[0].clone();
    let truth = std::fs::canonicalize("/usr/bin/env").unwrap();
    assert!(prompt.contains(&format!("[runs {}]", truth.display())), "the prompt says what it resolves to: {prompt}");

    std::fs::remove_file(ws.join("tool")).unwrap();
    std::os::unix::fs::symlink("/bin/sh", ws.join("tool")).unwrap();
    let ran = run_with(&engine, ExecSpec::new("./tool", ["-c", "echo escaped"]), &NoApprover).await;
    assert_eq!(ran.result.unwrap_err().code(), "exec.needs_approval", "{}", ran.stdout);
    assert!(!ran.stdout.contains("escaped"));
}

#[tokio::test]
async fn a_workspace_program_swapped_while_it_starts_runs_only_as_approved() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(common::options(dir.path())).await.unwrap();
    let ws = dir.path().join("workspace");
    std::fs::create_dir_all(&ws).unwrap();
    let write = |name: &str, body: &str| {
        let p = ws.join(name);
        std::fs::write(&p, format!("#!/bin/sh\necho {body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    write("tool", "good");
    write("evil", "evil");
    let rule = NewRule {
        action: Action::Allow,
        program: ws.join("tool").to_string_lossy().into_owned(),
        args: vec![],
        any_args: false,
        network: false,
        see: vec![],
        env: vec![],
    };
    engine.add_rule(rule).await.unwrap();
    // Swap the bytes under the name as fast as possible while it is checked and started.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (tool, evil, good) = (ws.join("tool"), ws.join("evil"), ws.join("good"));
    std::fs::copy(&tool, &good).unwrap();
    let swapper = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            let _ = std::fs::copy(&evil, ws.join("next"));
            let _ = std::fs::rename(ws.join("next"), &tool);
            let _ = std::fs::copy(&good, ws.join("next"));
            let _ = std::fs::rename(ws.join("next"), &tool);
        }
    });
    let (mut good_runs, mut refused) = (0, 0);
    for _ in 0..40 {
        let ran = run_with(&engine, ExecSpec::new("./tool", Vec::<String>::new()), &NoApprover).await;
        assert!(!ran.stdout.contains("evil"), "the swapped-in program ran: {}", ran.stdout);
        match ran.result {
            Ok(_) if ran.stdout.trim() == "good" => good_runs += 1,
            _ => refused += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert_eq!(good_runs + refused, 40);
    assert!(good_runs > 0, "the approved program still runs");
}

#[tokio::test]
async fn a_job_approved_at_submit_does_not_run_a_program_swapped_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(common::options(dir.path())).await.unwrap();
    let ws = dir.path().join("workspace");
    std::fs::create_dir_all(&ws).unwrap();
    let tool = ws.join("tool");
    std::fs::write(&tool, "#!/bin/sh\necho approved\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spec = ExecSpec::new("./tool", Vec::<String>::new());
    assert_eq!(engine.check_exec(&spec).await.unwrap().decision.action, Action::Ask);
    let id = engine.submit_exec(NewJob::new("exec", serde_json::to_value(&spec).unwrap()), &Yes).await.unwrap();
    // Queued, not yet run: the script is rewritten.
    std::fs::write(&tool, "#!/bin/sh\necho swapped\n").unwrap();
    let mut approvals = engine.watch_approvals().await.unwrap();
    let pool = engine.start_pool(PoolConfig::default()).await.unwrap();
    // The yes was for the other file: the job asks again, about the file it would run now.
    let request = loop {
        match approvals.next().await {
            Some(ApprovalEvent::Requested { approval }) if approval.job_id == Some(id) => break approval,
            Some(_) => {}
            None => panic!("the feed ended"),
        }
    };
    assert_eq!(engine.job(id).await.unwrap().waiting_approval, Some(request.id));
    engine.answer_approval(request.id, Approval::Denied).await.unwrap();
    let job = engine.wait(id, Some(Instant::now() + Duration::from_secs(60))).await.unwrap();
    pool.shutdown(Duration::from_secs(5)).await;
    assert_eq!(job.error.as_ref().map(|e| e.code.as_str()), Some("exec.denied"), "{job:?}");
    assert_eq!(job.waiting_approval, None);
    let output = engine.output(id, 0, 100).await.unwrap();
    assert!(output.iter().all(|l| !l.text.contains("swapped")), "{output:?}");
}

// 5. The environment cannot turn an exact rule into arbitrary code.
#[tokio::test]
async fn variables_that_run_code_are_refused_and_only_harmless_ones_or_a_rules_names_pass() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    for (name, value) in [
        ("TAR_OPTIONS", "--to-command=sh"),
        ("HOME", "/tmp/evil"),
        ("XDG_CONFIG_HOME", "/tmp/evil"),
        ("PYENV_VERSION", "system"),
        ("BASH_FUNC_echo%%", "() { id; }"),
        ("LESSOPEN", "|sh -c id"),
        ("PERL5OPT", "-Mevil"),
        ("OPENSSL_CONF", "/tmp/evil.cnf"),
        ("SOME_TOOL_SETTING", "x"),
    ] {
        let mut spec = ExecSpec::new("sh", ["-c", "echo ran"]);
        spec.env = vec![(name.into(), value.into())];
        let ran = run_with(&engine, spec.clone(), &NoApprover).await;
        assert_eq!(ran.result.unwrap_err().code(), "exec.denied", "{name}");
        assert!(!ran.stdout.contains("ran"));
        // Not as a job either: refused at submit.
        let job = NewJob::new("exec", serde_json::to_value(&spec).unwrap());
        if gatehouse_engine::exec::sandbox::never(name).is_some() {
            assert!(engine.submit(job).await.is_err(), "{name}");
        }
    }
    let mut spec = ExecSpec::new("sh", ["-c", "echo $LANG $TZ"]);
    spec.env = vec![("LANG".into(), "C.UTF-8".into()), ("TZ".into(), "UTC".into())];
    let ran = run_with(&engine, spec, &NoApprover).await;
    assert_eq!(ran.stdout.trim(), "C.UTF-8 UTC", "{}", ran.stderr);
    // A name a rule permits, under that rule.
    let rule = NewRule {
        action: Action::Allow,
        program: "printenv".into(),
        args: vec!["SOME_TOOL_SETTING".into()],
        any_args: false,
        network: false,
        see: vec![],
        env: vec!["SOME_TOOL_SETTING".into()],
    };
    engine.add_rule(rule).await.unwrap();
    let mut spec = ExecSpec::new("printenv", ["SOME_TOOL_SETTING"]);
    spec.env = vec![("SOME_TOOL_SETTING".into(), "x".into())];
    assert_eq!(run_with(&engine, spec, &NoApprover).await.stdout.trim(), "x");
    let err = engine
        .add_rule(NewRule {
            action: Action::Allow,
            program: "sh".into(),
            args: vec![],
            any_args: true,
            network: false,
            see: vec![],
            env: vec!["BASH_ENV".into()],
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("BASH_ENV"), "{err}");
}

// 6. The kernel is narrowed.
#[tokio::test]
async fn keyrings_are_refused_and_inherited_descriptors_closed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine.add_exec_rule(Action::Allow, "python3", vec!["-c".into(), "/(?s).*/".into()], false, false).await.unwrap();
    // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, create=1), then bpf() and
    // userfaultfd(): each must fail with EPERM.
    let nr = if cfg!(target_arch = "aarch64") { [219, 280, 282] } else { [250, 321, 323] };
    let script = format!(
        "import ctypes\nc = ctypes.CDLL(None, use_errno=True)\n\
         for n, args in (({k}, (0, -3, 1)), ({b}, (0, 0, 0)), ({u}, (0,))):\n    \
         r = c.syscall(n, *args)\n    print(n, r, ctypes.get_errno())",
        k = nr[0],
        b = nr[1],
        u = nr[2]
    );
    let ran = run_with(&engine, ExecSpec::new("python3", ["-c", &script]), &NoApprover).await;
    ran.result.unwrap();
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}{}", ran.stdout, ran.stderr);
    for line in lines {
        assert!(line.ends_with(&format!(" -1 {}", libc::EPERM)), "refused with EPERM: {line}");
    }

    // A descriptor this process holds without close-on-exec (as a shell's `7<file` would
    // leave it) does not reach the command.
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "inherited").unwrap();
    let file = std::fs::File::open(&secret).unwrap();
    // SAFETY: dup of a valid descriptor; closed below.
    let fd = unsafe { libc::dup(std::os::fd::AsRawFd::as_raw_fd(&file)) };
    assert!(fd > 2);
    let ran = sh(&engine, None, "ls -l /proc/self/fd/; for f in /proc/self/fd/*; do [ -f $f ] && cat $f; done; true").await;
    // SAFETY: the descriptor dup'ed above.
    unsafe { libc::close(fd) };
    assert!(!ran.stdout.contains("inherited") && !ran.stdout.contains("secret.txt"), "{}", ran.stdout);
}

#[tokio::test]
async fn host_unix_sockets_are_out_of_reach_even_with_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    // A host daemon's socket in a place no command sees (not /tmp: that is private anyway).
    let place = tempfile::tempdir_in("/var/tmp").unwrap();
    let path = place.path().join("daemon.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let connect = format!("import socket; s = socket.socket(socket.AF_UNIX); s.connect({:?}); print('connected')", path.to_str().unwrap());
    for network in [false, true] {
        engine.add_exec_rule(Action::Allow, "python3", vec!["-c".into(), "/.*/".into()], false, network).await.unwrap();
        let ran = run_with(&engine, ExecSpec::new("python3", ["-c", &connect]), &NoApprover).await;
        assert!(!ran.stdout.contains("connected"), "network {network}: {}", ran.stdout);
        assert!(listener.accept().is_err(), "nothing connected");
    }
}

// 8. Every command that runs is audited, and every sandbox process is waited for.
#[tokio::test]
async fn a_command_whose_audit_row_cannot_be_written_does_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    // A fault real SQLite can be made to produce: a trigger refusing audit rows that start a run.
    let db = rusqlite::Connection::open(dir.path().join("gatehouse.db")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER no_audit BEFORE INSERT ON exec_audit WHEN NEW.ended_at IS NULL
         BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
    )
    .unwrap();
    let ran = sh(&engine, None, "touch ran").await;
    let err = ran.result.unwrap_err();
    assert!(err.to_string().contains("audit"), "{err}");
    assert!(!dir.path().join("workspace/ran").exists(), "it did not run");
}

#[tokio::test]
async fn the_audit_row_is_there_before_the_command_ends_and_no_zombie_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let (e2, started) = (engine.clone(), dir.path().join("workspace/started"));
    let running = tokio::spawn(async move { sh(&e2, None, "touch started; sleep 30").await });
    let row = loop {
        if started.exists() {
            break engine.exec_audit(1).await.unwrap().remove(0);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((row.decision.as_str(), row.ended_at), ("allow", None), "written before it ends");
    running.abort();
    let _ = running.await;
    for _ in 0..5 {
        sh(&engine, None, "true").await.result.unwrap();
    }
    let me = std::process::id().to_string();
    let zombies: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let after = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
            let fields: Vec<&str> = after.split_whitespace().collect();
            fields.first() == Some(&"Z") && fields.get(1) == Some(&me.as_str())
        })
        .collect();
    assert!(zombies.is_empty(), "zombies left: {zombies:?}");
}

#[tokio::test]
async fn an_exec_job_without_a_timeout_gets_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let id = engine.submit(NewJob::new("exec", serde_json::to_value(ExecSpec::new("true", Vec::<String>::new())).unwrap())).await.unwrap();
    let job = engine.job(id).await.unwrap();
    assert_eq!(job.timeout_ms, Some(gatehouse_engine::exec::DEFAULT_JOB_TIMEOUT.as_millis() as i64));
}
