//! Issue 5's acceptance, as a person does it: no gateway set up, no server running — the
//! built-in model answers `gatehouse chat`, and five prompt jobs finish while an interactive
//! chat keeps answering. Against the real model (`GATEHOUSE_TEST_MODEL`, which `scripts/test`
//! fetches with `gatehouse models fetch`; else the default data directory's).
#![cfg(feature = "local")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use gatehouse_testkit::{collect_stdout, eventually};
use serde_json::Value;

fn gatehouse(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.arg("--data-dir").arg(dir).env_remove("GATEHOUSE_DATA_DIR");
    cmd
}

fn model_file() -> PathBuf {
    gatehouse_testkit::builtin_model()
}

/// A fresh data dir whose built-in model is the real file, linked in as `models fetch` would
/// have put it (under the built-in name).
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = gatehouse(dir.path()).args(["models", "add"]).arg(model_file()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

#[test]
fn chat_answers_from_the_built_in_model_with_nothing_set_up() {
    let dir = data_dir();
    let out = gatehouse(dir.path()).args(["chat", "What is the capital of France?"]).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Paris"));

    let out = gatehouse(dir.path()).args(["--json", "chats", "show", "1"]).output().unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["conversation"]["gateway"], "local");
    assert_eq!(shown["messages"][1]["state"], "complete");

    let out = gatehouse(dir.path()).args(["gateways", "test"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("is ready"));
}

#[test]
fn five_prompt_jobs_finish_while_an_interactive_chat_keeps_answering() {
    let dir = data_dir();
    let mut ids = Vec::new();
    for q in ["Name a fruit.", "Name a colour.", "Name an animal.", "Name a country.", "Name a planet."] {
        let out = gatehouse(dir.path()).args(["jobs", "submit", "prompt", "--", q]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        ids.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    let mut worker =
        gatehouse(dir.path()).args(["worker", "--workers", "3"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();

    let mut chat = gatehouse(dir.path())
        .args(["chat", "--interactive"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = collect_stdout(&mut chat);
    let mut stdin = chat.stdin.take().unwrap();
    stdin.write_all(b"What is the capital of France?\n").unwrap();
    eventually("the first answer", Duration::from_secs(60), || seen.lock().unwrap().contains("Paris").then_some(()));
    // A second turn, in the same conversation, while the pool is still busy.
    let before = seen.lock().unwrap().len();
    stdin.write_all(b"Thank you. What is the capital of Germany?\n").unwrap();
    eventually("the second answer", Duration::from_secs(60), || {
        let s = seen.lock().unwrap();
        (s.len() > before + 10 && s[before..].contains("Berlin")).then_some(())
    });
    drop(stdin); // Ctrl-D
    assert!(chat.wait().unwrap().success());

    for id in &ids {
        let out = gatehouse(dir.path()).args(["jobs", "wait", id, "--timeout", "120"]).output().unwrap();
        assert!(out.status.success(), "job {id}: {}", String::from_utf8_lossy(&out.stderr));
        let logs = gatehouse(dir.path()).args(["jobs", "logs", id]).output().unwrap();
        assert!(!String::from_utf8_lossy(&logs.stdout).trim().is_empty(), "job {id} has no reply");
    }
    unsafe { libc::kill(worker.id() as i32, libc::SIGTERM) };
    assert!(worker.wait().unwrap().success());
}
