//! `gatehouse exec` as a person and a script use it (real bubblewrap).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn gatehouse(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.arg("--data-dir").arg(dir).env_remove("GATEHOUSE_DATA_DIR").stdin(Stdio::null());
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Output {
    gatehouse(dir).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn python_version_runs_and_refusals_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["exec", "--", "python3", "--version"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("Python 3"));

    let out = run(dir.path(), &["exec", "--", "sh", "-c", "echo hi"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("needs a person's approval") && stderr.contains("gatehouse approvals allow"), "{stderr}");

    let deny = run(dir.path(), &["exec", "policy", "add", "deny", "uname"]);
    let id = text(&deny.stdout).trim().to_owned();
    let out = run(dir.path(), &["exec", "--", "uname"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("blocked by policy") && stderr.contains(&format!("rule {id}")), "{stderr}");

    let audit: Value = serde_json::from_slice(&run(dir.path(), &["--json", "exec", "audit"]).stdout).unwrap();
    let decisions: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["decision"].as_str().unwrap()).collect();
    assert_eq!(decisions, ["deny", "ask", "allow"]);
    assert_eq!(audit[2]["exit_code"], 0);
}

#[test]
fn secrets_and_loader_variables_in_our_environment_do_not_reach_the_command() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(dir.path(), &["exec", "policy", "add", "allow", "sh", "--any-args"]).status.success());
    let out = gatehouse(dir.path())
        .args(["exec", "--", "sh", "-c", "echo token=${OPENAI_API_KEY:-absent} preload=${LD_PRELOAD:-absent} lang=$LANG"])
        .env("OPENAI_API_KEY", "sk-live-123")
        .env("LD_PRELOAD", "")
        .env("LANG", "C.UTF-8")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "token=absent preload=absent lang=C.UTF-8");

    // Nor through the sandbox's init (bubblewrap itself), which /proc/1/environ would show.
    let out = gatehouse(dir.path())
        .args(["exec", "--", "cat", "/proc/1/environ"])
        .env("OPENAI_API_KEY", "sk-live-123")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("sk-live-123"));

    // The user's sockets in /run (session bus, agents) are out of reach.
    let out = run(dir.path(), &["exec", "--", "ls", "-A", "/run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "");
}

#[test]
fn policy_and_workspaces_are_managed_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["--json", "exec", "policy", "add", "allow", "git", "--arg", "/status|log/", "--any-args"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["id"].as_i64().unwrap();
    let rules: Value = serde_json::from_slice(&run(dir.path(), &["--json", "exec", "policy", "list"]).stdout).unwrap();
    let rule = rules.as_array().unwrap().iter().find(|r| r["id"] == id).unwrap().clone();
    assert!(rule["program"].as_str().unwrap().starts_with('/'), "stored resolved: {rule}");
    assert_eq!(rule["args"][0], "/status|log/");
    assert!(run(dir.path(), &["exec", "policy", "remove", &id.to_string()]).status.success());
    assert_eq!(run(dir.path(), &["exec", "policy", "remove", &id.to_string()]).status.code(), Some(2));
    assert_eq!(run(dir.path(), &["exec", "policy", "add", "allow", "ls", "--arg", "/(/"]).status.code(), Some(2));

    let elsewhere = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["exec", "--cwd", elsewhere.path().to_str().unwrap(), "--", "ls"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("outside every workspace root"));
    assert!(run(dir.path(), &["exec", "workspace", "add", elsewhere.path().to_str().unwrap()]).status.success());
    std::fs::write(elsewhere.path().join("seen.txt"), "").unwrap();
    let out = run(dir.path(), &["exec", "--cwd", elsewhere.path().to_str().unwrap(), "--", "ls"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "seen.txt");
    let roots: Value = serde_json::from_slice(&run(dir.path(), &["--json", "exec", "workspace", "list"]).stdout).unwrap();
    assert_eq!(roots.as_array().unwrap().len(), 2);
}

#[test]
fn the_home_directory_is_hidden_by_default_and_cannot_be_inside_a_workspace() {
    let dir = tempfile::tempdir().unwrap();
    // A home outside /tmp (commands get a private /tmp anyway), with what the outside review
    // read through the default `cat` rule.
    let home = tempfile::tempdir_in("/var/tmp").unwrap();
    let h = home.path();
    let secrets = [
        (".mozilla/firefox/p.default/cookies.sqlite", "session-cookie"),
        (".config/Code/User/globalStorage/state.vscdb", "vscode-state"),
        (".config/rclone/rclone.conf", "rclone-pass"),
        (".bash_history", "mysql -p hunter2"),
        (".local/share/gatehouse/gatehouse.db", "other-gatehouse"),
        (".ssh/id_ed25519", "PRIVATE KEY"),
    ];
    for (file, content) in secrets {
        std::fs::create_dir_all(h.join(file).parent().unwrap()).unwrap();
        std::fs::write(h.join(file), content).unwrap();
    }
    for (file, content) in secrets {
        let path = h.join(file);
        let out = gatehouse(dir.path()).args(["exec", "--", "cat", path.to_str().unwrap()]).env("HOME", h).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{file}");
        assert!(!text(&out.stdout).contains(content), "{file} was read");
    }
    let out = gatehouse(dir.path()).args(["exec", "--", "ls", "-A", h.to_str().unwrap()]).env("HOME", h).output().unwrap();
    assert!(text(&out.stdout).trim().is_empty(), "{}", text(&out.stdout));

    // A home inside a workspace root: commands there are refused, not shown the home.
    let inside = dir.path().join("workspace/home");
    std::fs::create_dir_all(inside.join(".ssh")).unwrap();
    std::fs::write(inside.join(".ssh/id_ed25519"), "PRIVATE KEY").unwrap();
    let out = gatehouse(dir.path()).args(["exec", "--", "cat", "home/.ssh/id_ed25519"]).env("HOME", &inside).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("home directory") && !text(&out.stdout).contains("PRIVATE"), "{}", text(&out.stderr));
    let err = gatehouse(dir.path()).args(["exec", "workspace", "add", h.to_str().unwrap()]).env("HOME", h).output().unwrap();
    assert_eq!(err.status.code(), Some(2), "the home cannot be a root");
}

#[test]
fn control_characters_from_a_command_reach_the_terminal_escaped_unless_raw() {
    let dir = tempfile::tempdir().unwrap();
    // A clipboard write (OSC 52), a clear-screen and a carriage return.
    let nasty = r"\033]52;c;ZXZpbA==\007\033[2Jok\r";
    let out = run(dir.path(), &["exec", "--", "printf", nasty]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!out.stdout.contains(&0x1b) && !out.stdout.contains(&b'\r'), "{:?}", text(&out.stdout));
    assert!(text(&out.stdout).contains(r"\u{1b}]52;c;ZXZpbA=="), "{}", text(&out.stdout));
    let raw = run(dir.path(), &["--raw", "exec", "--", "printf", nasty]);
    assert!(raw.stdout.starts_with(b"\x1b]52;c;"), "--raw passes it on: {:?}", raw.stdout);

    // A newline inside an argument cannot forge a row of the audit listing.
    let forged = "x\n99999  2026-01-01 00:00:00  person  allow  exit 0      /usr/bin/ls";
    assert!(run(dir.path(), &["exec", "--", "echo", forged]).status.success());
    let audit = text(&run(dir.path(), &["exec", "audit"]).stdout);
    assert!(!audit.lines().any(|l| l.starts_with("99999")), "{audit}");
    assert!(audit.contains(r"x\n99999"), "{audit}");

    // Nor through a job's output.
    let out = run(dir.path(), &["--json", "jobs", "submit", "exec", "--", "printf", nasty]);
    let id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["id"].as_i64().unwrap().to_string();
    let mut worker = gatehouse(dir.path()).args(["worker", "--workers", "1"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let waited = run(dir.path(), &["jobs", "wait", &id, "--timeout", "60"]);
    let logs = run(dir.path(), &["jobs", "logs", &id]);
    let _ = worker.kill();
    let _ = worker.wait();
    assert!(waited.status.success(), "{}", text(&waited.stderr));
    assert!(!logs.stdout.contains(&0x1b) && text(&logs.stdout).contains(r"\u{1b}[2J"), "{:?}", text(&logs.stdout));
}

#[test]
fn a_run_whose_runner_is_killed_is_on_record_with_no_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = gatehouse(dir.path()).args(["exec", "--", "sleep", "30"]).stdout(Stdio::null()).spawn().unwrap();
    // The row is written before the command starts: wait for it, then kill the runner.
    let row = gatehouse_testkit::eventually("the audit row", std::time::Duration::from_secs(20), || {
        let audit: Value = serde_json::from_slice(&run(dir.path(), &["--json", "exec", "audit"]).stdout).ok()?;
        audit.as_array()?.first().cloned()
    });
    assert_eq!((row["decision"].as_str(), row["ended_at"].is_null()), (Some("allow"), true), "{row}");
    child.kill().unwrap();
    child.wait().unwrap();
    let audit = text(&run(dir.path(), &["exec", "audit"]).stdout);
    assert!(audit.contains("no end") && audit.contains("sleep 30"), "{audit}");
}

/// Processes of `uid` whose command line is exactly `cmdline` (NUL-separated), not zombies.
fn processes(uid: u32, cmdline: &[u8]) -> usize {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == cmdline))
        .filter(|e| std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| !s.contains(") Z ")))
        .count()
}

/// A desktop user is not root: the process cap has to hold without a cgroup of Gatehouse's
/// own, and has to count the command's processes, not the person's others.
#[test]
fn an_unprivileged_users_fork_bomb_stops_at_the_cap_and_spares_their_other_processes() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    // As root (CI), be `nobody`; as anyone else, be yourself.
    let uid = if root { 65534 } else { std::fs::metadata("/proc/self").unwrap().uid() };
    let mut binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_gatehouse"));
    if root {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid)).unwrap();
        // `nobody` may not be able to reach the build directory.
        let copy = dir.path().join("gatehouse");
        std::fs::copy(&binary, &copy).unwrap();
        binary = copy;
    }
    let as_user = |program: &Path| {
        let mut cmd = if root {
            let mut cmd = Command::new("setpriv");
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        cmd.env("HOME", dir.path()).env_remove("GATEHOUSE_DATA_DIR").stdin(Stdio::null());
        cmd
    };
    let data = dir.path().join("data");
    let gatehouse = |args: &[&str]| as_user(&binary).arg("--data-dir").arg(&data).args(args).output().unwrap();
    assert!(gatehouse(&["exec", "policy", "add", "allow", "sh", "--any-args"]).status.success());

    // The person's other processes: 60 of them, more than enough to matter if they counted.
    /// Killed however the test ends.
    struct Others(Vec<std::process::Child>);
    impl Drop for Others {
        fn drop(&mut self) {
            for other in &mut self.0 {
                let _ = other.kill();
                let _ = other.wait();
            }
        }
    }
    let mut others =
        Others((0..60).map(|_| as_user(Path::new("/bin/sleep")).arg("601").stdout(Stdio::null()).spawn().unwrap()).collect());
    gatehouse_testkit::eventually("the other processes", std::time::Duration::from_secs(10), || {
        (processes(uid, b"/bin/sleep\x00601\x00") == 60).then_some(())
    });

    // 400 processes that stay: without a cap they all start.
    let bomb = "i=0; while [ $i -lt 400 ]; do sleep 602 & i=$((i+1)); echo $i > count; done";
    let out = gatehouse(&["exec", "--timeout", "60", "--", "sh", "-c", &format!("sh -c '{bomb}'; echo started $(cat count)")]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let started: u32 = stdout.trim().strip_prefix("started ").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{stdout} {stderr}"));
    assert!(stderr.contains("Cannot fork"), "{stderr}");
    // The cap (256) less the sandbox's init and the two shells — not less the 60 others.
    assert!((250..=253).contains(&started), "{started} processes started; {stderr}");
    // None of it is left, and the person's own processes were never touched.
    gatehouse_testkit::eventually("the fork bomb to be gone", std::time::Duration::from_secs(10), || {
        (processes(uid, b"sleep\x00602\x00") == 0).then_some(())
    });
    assert_eq!(processes(uid, b"/bin/sleep\x00601\x00"), 60);
    for other in &mut others.0 {
        assert!(other.try_wait().unwrap().is_none(), "one of the person's own processes died");
    }
}
