//! The exec tool with real bubblewrap: each way a command could reach past its sandbox is
//! contained, audited and explained.

use std::path::Path;
use std::time::Duration;

use gatehouse_engine::exec::policy::Action;
use gatehouse_engine::{Engine, ExecRequest, ExecSpec, NoApprover, Requester, Stream};
use tokio_util::sync::CancellationToken;

mod common;
use common::{engine, Ran};

async fn run(engine: &Engine, cwd: Option<&Path>, timeout: Duration, program: &str, args: &[&str]) -> Ran {
    let mut spec = ExecSpec::new(program, args.iter().copied());
    spec.cwd = cwd.map(Path::to_owned);
    run_spec(engine, spec, timeout).await
}

async fn run_spec(engine: &Engine, spec: ExecSpec, timeout: Duration) -> Ran {
    common::run(engine, spec, &NoApprover, timeout).await
}

fn sh(script: &str) -> [&str; 2] {
    ["-c", script]
}

const T: Duration = Duration::from_secs(30);

#[tokio::test]
async fn writes_land_only_in_the_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("escaped");
    let script = format!("echo in > inside.txt; echo out > {}; echo etc > /etc/gatehouse-escaped", target.display());
    let ran = run(&engine, None, T, "sh", &sh(&script)).await;
    let result = ran.result.unwrap();
    assert_ne!(result.exit_code, Some(0));
    assert!(ran.stderr.contains("Read-only file system"), "{}", ran.stderr);
    assert!(dir.path().join("workspace/inside.txt").exists());
    assert!(!target.exists() && !Path::new("/etc/gatehouse-escaped").exists());
}

#[tokio::test]
async fn the_data_dir_is_hidden_and_a_workspace_symlink_cannot_lead_out() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    std::fs::write(dir.path().join("token"), "sk-hidden").unwrap();
    let ran = run(&engine, None, T, "sh", &sh(&format!("cat {}/token; ls {}", dir.path().display(), dir.path().display()))).await;
    ran.result.unwrap();
    assert!(!ran.stdout.contains("sk-hidden") && !ran.stdout.contains("gatehouse.db"), "{}", ran.stdout);
    assert!(ran.stdout.contains("workspace"), "the workspace inside it stays visible: {}", ran.stdout);

    let ws = dir.path().join("workspace");
    std::os::unix::fs::symlink("/etc", ws.join("etc-link")).unwrap();
    let ran = run(&engine, Some(&ws.join("etc-link")), T, "ls", &[]).await;
    let err = ran.result.unwrap_err();
    assert_eq!(err.code(), "exec.workspace");
    assert!(err.to_string().contains("resolves to /etc"), "{err}");
    std::os::unix::fs::symlink("/etc/hostname", ws.join("host-link")).unwrap();
    let ran = run(&engine, None, T, "sh", &sh("echo x >> host-link")).await;
    assert_ne!(ran.result.unwrap().exit_code, Some(0));
}

#[tokio::test]
async fn the_network_is_reachable_only_when_a_rule_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = format!("import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3); print('connected')");
    engine.add_exec_rule(Action::Allow, "python3", vec!["-c".into(), "/.*/".into()], false, false).await.unwrap();
    let ran = run(&engine, None, T, "python3", &["-c", &connect]).await;
    assert_ne!(ran.result.unwrap().exit_code, Some(0));
    assert!(!ran.stdout.contains("connected"));

    let dir = tempfile::tempdir().unwrap();
    let engine = self::engine(dir.path()).await;
    engine.add_exec_rule(Action::Allow, "python3", vec!["-c".into(), "/.*/".into()], false, true).await.unwrap();
    let ran = run(&engine, None, T, "python3", &["-c", &connect]).await;
    assert_eq!(ran.result.unwrap().exit_code, Some(0), "{}", ran.stderr);
    assert!(ran.stdout.contains("connected"));
}

#[tokio::test]
async fn loader_and_path_overrides_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    for var in ["LD_PRELOAD", "PATH", "GIT_CONFIG_COUNT", "BASH_ENV", "PYTHONPATH"] {
        let mut spec = ExecSpec::new("sh", ["-c", "true"]);
        spec.env = vec![(var.into(), "/tmp/evil".into())];
        let err = run_spec(&engine, spec, T).await.result.unwrap_err();
        assert_eq!(err.code(), "exec.denied");
        assert!(err.to_string().starts_with("blocked by policy") && err.to_string().contains(var), "{err}");
    }
    let audit = engine.exec_audit(10).await.unwrap();
    assert_eq!(audit.len(), 5);
    assert!(audit.iter().all(|e| e.decision == "deny" && e.error_code.as_deref() == Some("exec.denied")));
}

#[tokio::test]
async fn a_fork_bomb_a_term_ignoring_command_and_an_orphan_are_all_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let ran = run(&engine, None, Duration::from_secs(3), "sh", &sh("bomb() { bomb | bomb & }; bomb; sleep 60")).await;
    let result = ran.result.unwrap();
    // Either the process cap stopped it (its shell could not fork `sleep` any more) or the
    // timeout did; either way nothing of it is left.
    assert!(result.timed_out || result.exit_code != Some(0), "{result:?}");
    assert!(result.timed_out || ran.stderr.contains("Cannot fork"), "{}", ran.stderr);
    assert_eq!(left_running(b"bomb()"), 0, "fork bomb processes outlived the command");

    // Ignores SIGTERM, and leaves a grandchild behind that would outlive it.
    let ran = run(
        &engine,
        None,
        Duration::from_millis(500),
        "sh",
        &sh("trap '' TERM; (sleep 600 &); echo started; sleep 600"),
    )
    .await;
    let result = ran.result.unwrap();
    assert!(result.timed_out && ran.stdout.contains("started"));
    assert_eq!(left_running(b"sleep\x00600"), 0, "sandboxed processes outlived the command");
    // The audit says how it ended: stopped by its timeout, by a signal.
    let audit = &engine.exec_audit(1).await.unwrap()[0];
    assert_eq!(audit.error_code.as_deref(), Some("exec.timeout"), "{audit:?}");
    assert!(audit.signal.is_some() && audit.duration_ms.is_some(), "{audit:?}");
}

/// A secret in the environment Gatehouse runs in (an API key the person exported) reaches neither
/// the command nor the sandbox's init, whose /proc/1/environ the command can read. The secret is
/// put in the environment of a second run of this test binary, which does the checking: setting
/// the environment of this running, multi-threaded test process would not be sound.
#[test]
fn a_secret_in_our_environment_reaches_neither_the_command_nor_the_sandbox_init() {
    const SECRET: &str = "sk-live-gatehouse-test-123";
    if std::env::var("OPENAI_API_KEY").as_deref() != Ok(SECRET) {
        // This test's name as the harness knows it (`sandbox::…` when the app's suite includes it).
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
        let name = [module, "a_secret_in_our_environment_reaches_neither_the_command_nor_the_sandbox_init"]
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("::");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env("OPENAI_API_KEY", SECRET)
            .env("LD_PRELOAD", "")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && said.contains("1 passed"), "{said}{}", String::from_utf8_lossy(&out.stderr));
        return;
    }
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path()).await;
        let ran = run(&engine, None, T, "sh", &sh("echo token=${OPENAI_API_KEY:-absent} preload=${LD_PRELOAD-absent}")).await;
        assert_eq!(ran.result.unwrap().exit_code, Some(0), "{}", ran.stderr);
        assert_eq!(ran.stdout.trim(), "token=absent preload=absent");
        let ran = run(&engine, None, T, "sh", &sh("tr '\\0' '\\n' </proc/1/environ; echo read")).await;
        assert!(ran.stdout.contains("read") && !ran.stdout.contains(SECRET), "{}{}", ran.stdout, ran.stderr);
    });
}

/// Live processes whose command line contains `part` and that carry a Gatehouse exec marker.
fn left_running(part: &[u8]) -> usize {
    let marker = b"GATEHOUSE_JOB=exec/";
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c.windows(part.len()).any(|w| w == part)))
        .filter(|e| std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| !s.contains(") Z ")))
        .filter_map(|e| std::fs::read(e.path().join("environ")).ok())
        .filter(|env| env.windows(marker.len()).any(|w| w == marker))
        .count()
}

#[tokio::test]
async fn a_gigabyte_of_output_is_cut_at_the_cap_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let ran = run(&engine, None, Duration::from_secs(120), "sh", &sh("head -c 1000000000 /dev/zero | tr '\\0' 'x' | fold -w 1000")).await;
    let result = ran.result.unwrap();
    assert_eq!(result.exit_code, Some(0));
    assert!(result.truncated);
    assert!(result.output_bytes >= 1_000_000_000, "{}", result.output_bytes);
    assert!(ran.stdout.len() as u64 <= gatehouse_engine::exec::OUTPUT_CAP);
    let audit = &engine.exec_audit(1).await.unwrap()[0];
    assert!(audit.truncated && audit.output_bytes.unwrap() >= 1_000_000_000);
}

#[tokio::test]
async fn asking_with_no_one_to_answer_refuses_and_default_rules_allow_read_only_tools() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(common::options(dir.path())).await.unwrap();
    // The default policy asks about sh; nobody is here.
    let ran = run(&engine, None, T, "sh", &sh("true")).await;
    let err = ran.result.unwrap_err();
    assert_eq!(err.code(), "exec.needs_approval");
    let entry = &engine.exec_audit(1).await.unwrap()[0];
    assert_eq!(entry.decision, "ask");
    assert!(entry.approval.as_deref().is_some_and(|a| a.starts_with("unavailable (request ")), "{:?}", entry.approval);
    // And a default allow rule runs at once.
    let ran = run(&engine, None, T, "python3", &["--version"]).await;
    assert_eq!(ran.result.unwrap().exit_code, Some(0));
    assert!(ran.stdout.starts_with("Python 3"), "{}", ran.stdout);
}

#[tokio::test]
async fn a_stored_request_is_answered_from_another_engine_for_a_while_and_the_grant_expires() {
    use gatehouse_engine::exec::approval::Elsewhere;
    use gatehouse_engine::{Approval, ApprovalEvent, ApprovalState, ManualClock};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new());
    let options = |clock: &Arc<ManualClock>| {
        let mut options = common::options(dir.path());
        options.clock = clock.clone();
        options.approval_wait = Duration::from_secs(60);
        options
    };
    let engine = Engine::open(options(&clock)).await.unwrap();
    // Another front end on the same database (its own connections and feed): the app's dialog.
    let other = Engine::open(options(&clock)).await.unwrap();
    let mut watch = other.watch_approvals().await.unwrap();

    let ask = |engine: &Engine, script: &'static str| {
        let asker = engine.clone();
        tokio::spawn(async move {
            let mut out = String::new();
            let mut on_line = |_: Stream, t: &str| out.push_str(t);
            let spec = ExecSpec::new("sh", ["-c", script]);
            let request = ExecRequest { spec, timeout: Some(T), requester: Requester::Model(Some(7)) };
            let result = asker.exec(request, &Elsewhere, &mut on_line, &CancellationToken::new()).await;
            (result, out)
        })
    };
    let waiting = ask(&engine, "echo approved");
    let Some(ApprovalEvent::Requested { approval: request }) = watch.next().await else { panic!("no request") };
    // The request says what runs, which file a bare name resolves to, where, and who asks.
    let real = std::fs::canonicalize("/usr/bin/sh").unwrap();
    let expected = format!("sh -c 'echo approved' [runs {}] (in /", real.display());
    assert!(request.prompt.starts_with(&expected), "{}", request.prompt);
    assert_eq!((request.requester.as_str(), request.conversation_id), ("model", Some(7)));
    assert_eq!((request.program_file.as_str(), request.args.as_slice()), (real.to_str().unwrap(), &["-c".to_owned(), "echo approved".into()][..]));
    assert!(request.reason.contains("rule"), "{}", request.reason);
    assert_eq!(other.approvals().await.unwrap(), vec![request.clone()]);

    let answered = other.answer_approval(request.id, Approval::For(Duration::from_secs(600))).await.unwrap();
    assert_eq!((answered.state, answered.grant_secs), (ApprovalState::Allowed, Some(600)));
    let (result, out) = waiting.await.unwrap();
    assert_eq!((result.unwrap().exit_code, out.as_str()), (Some(0), "approved"));
    let Some(ApprovalEvent::Resolved { approval }) = watch.next().await else { panic!("no resolution") };
    assert_eq!((approval.id, approval.state), (request.id, ApprovalState::Allowed));
    let again = other.answer_approval(request.id, Approval::Once).await.unwrap_err();
    assert_eq!(again.code(), "approval.closed", "answered only once: {again}");
    assert_eq!(other.answer_approval(request.id + 100, Approval::Once).await.unwrap_err().code(), "approval.not_found");
    assert!(engine.approvals().await.unwrap().is_empty());

    // The same command now runs with nobody asked; another one still needs a person.
    let again = run(&engine, None, T, "sh", &sh("echo approved")).await;
    assert_eq!(again.result.unwrap().exit_code, Some(0));
    let other_command = run(&engine, None, T, "sh", &sh("echo something else")).await;
    assert_eq!(other_command.result.unwrap_err().code(), "exec.needs_approval");
    // Only where it was given: the same command in another directory still needs a person.
    let elsewhere = dir.path().join("workspace/elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let moved = run(&engine, Some(&elsewhere), T, "sh", &sh("echo approved")).await;
    assert_eq!(moved.result.unwrap_err().code(), "exec.needs_approval");
    // Until the grant ends.
    clock.advance(Duration::from_secs(601));
    let later = run(&engine, None, T, "sh", &sh("echo approved")).await;
    assert_eq!(later.result.unwrap_err().code(), "exec.needs_approval");

    // Nobody answers: the request's time runs out (told by the feed, whoever asked), and that
    // is a no.
    let mut watch = other.watch_approvals().await.unwrap();
    let waiting = ask(&engine, "true");
    let request = loop {
        if let Some(ApprovalEvent::Requested { approval }) = watch.next().await {
            break approval;
        }
    };
    clock.advance(Duration::from_secs(61));
    let (result, _) = waiting.await.unwrap();
    let err = result.unwrap_err();
    assert!(err.to_string().contains("nobody answered in time"), "{err}");
    let expired = loop {
        match watch.next().await {
            Some(ApprovalEvent::Expired { approval }) => break approval,
            Some(_) => {}
            None => panic!("the feed ended"),
        }
    };
    assert_eq!(expired.id, request.id);
    assert!(engine.approvals().await.unwrap().is_empty());
    assert_eq!(engine.approval(request.id).await.unwrap().state, ApprovalState::Expired);
    let audit = engine.exec_audit(1).await.unwrap()[0].approval.clone().unwrap();
    assert_eq!(audit, format!("expired (request {})", request.id));
    assert_eq!(other.answer_approval(request.id, Approval::Once).await.unwrap_err().code(), "approval.closed");
}
