//! Formatting for people. (Programs use `--json`.)
//!
//! Text that a command, a model or a gateway wrote is printed through [`safe`] or
//! [`safe_text`]: control characters shown escaped, so that none of it can move the cursor,
//! retitle the terminal, write the clipboard (OSC 52) or forge a line of ours. `--raw` turns
//! that off.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

static RAW: AtomicBool = AtomicBool::new(false);

/// Print what commands and models wrote as it is (`--raw`).
pub fn set_raw(raw: bool) {
    RAW.store(raw, Ordering::Relaxed);
}

pub fn is_raw() -> bool {
    RAW.load(Ordering::Relaxed)
}

/// One field or line, every control character escaped (newlines too).
pub fn safe(text: &str) -> Cow<'_, str> {
    if RAW.load(Ordering::Relaxed) {
        return Cow::Borrowed(text);
    }
    gatehouse_engine::exec::shown(text)
}

/// Running text (a streamed reply): newlines and tabs kept, other control characters escaped.
pub fn safe_text(text: &str) -> Cow<'_, str> {
    if RAW.load(Ordering::Relaxed) || !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.split('\n').map(|line| gatehouse_engine::exec::shown(line).into_owned()).collect::<Vec<_>>().join("\n"))
}

use gatehouse_engine::clock::rfc3339;
use gatehouse_engine::Job;

pub fn short_time(ms: i64) -> String {
    // 2026-11-29T17:40:01.123Z -> 2026-11-29 17:40:01
    let t = rfc3339(ms);
    t.get(..19).map(|s| s.replace('T', " ")).unwrap_or(t)
}

pub fn table(jobs: &[Job]) {
    if jobs.is_empty() {
        println!("no jobs");
        return;
    }
    println!("{:>6}  {:<9}  {:<6}  {:>4}  {:>5}  {:<19}  COMMAND", "ID", "STATE", "KIND", "PRI", "TRIES", "CREATED (UTC)");
    for job in jobs {
        let mut what = job.title.clone();
        if what.chars().count() > 60 {
            what = what.chars().take(59).collect::<String>() + "…";
        }
        println!(
            "{:>6}  {:<9}  {:<6}  {:>4}  {:>5}  {:<19}  {}",
            job.id,
            if job.waiting_approval.is_some() { "waiting" } else { job.state.as_str() },
            job.kind,
            job.priority,
            format!("{}/{}", job.attempts, job.max_attempts),
            short_time(job.created_at),
            what
        );
    }
}

pub fn details(job: &Job) {
    let row = |k: &str, v: String| println!("{k:<12} {v}");
    row("id", job.id.to_string());
    row("kind", job.kind.clone());
    row("command", job.title.clone());
    if let Some(cwd) = job.spec.get("cwd").and_then(|c| c.as_str()) {
        row("cwd", cwd.to_owned());
    }
    match job.waiting_approval {
        Some(request) => row(
            "state",
            format!("running, waiting for approval (request {request}: `gatehouse approvals allow {request}` or `deny {request}`)"),
        ),
        None => row("state", job.state.to_string()),
    }
    row("priority", job.priority.to_string());
    row("attempts", format!("{} of {}", job.attempts, job.max_attempts));
    if let Some(ms) = job.timeout_ms {
        row("timeout", format!("{} s", ms as f64 / 1000.0));
    }
    row("created", rfc3339(job.created_at));
    if let Some(t) = job.started_at {
        row("started", rfc3339(t));
    }
    if let Some(t) = job.finished_at {
        row("finished", rfc3339(t));
    }
    if job.state == gatehouse_engine::JobState::Queued && job.attempts > 0 {
        row("retry at", rfc3339(job.run_after));
    }
    if let Some(code) = job.exit_code {
        row("exit code", code.to_string());
    }
    if let Some(p) = job.progress {
        row("progress", format!("{p:.0}%"));
    }
    if let Some(e) = &job.error {
        row("error", format!("{} ({})", e.message, e.code));
    }
    let dropped = if job.output_dropped_lines > 0 {
        format!(" ({} older lines, {}, dropped)", job.output_dropped_lines, bytes(job.output_dropped_bytes))
    } else {
        String::new()
    };
    row("output", format!("{} line(s){dropped}; `gatehouse jobs logs {}`", job.output_lines, job.id));
}

pub fn bytes(n: i64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
