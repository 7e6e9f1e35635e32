//! Who holds a lease, whether they are still alive, and how to find their processes.
//!
//! A pool registers an [`Identity`]: host, pid and the pid's start time. A pid alone is not
//! proof of life — the kernel reuses pids — but the pair (pid, start time) names one process
//! for the life of the machine.
//!
//! Every process an attempt starts carries `GATEHOUSE_JOB=<marker>` in its environment. When a
//! pool dies, its direct children die with it (parent-death signal), but grandchildren do not;
//! whoever rescues the job kills every process that carries the attempt's marker, so a reused
//! pid or group id is never mistaken for the job. (A descendant that clears its environment
//! escapes this; the exec sandbox's PID namespace closes that gap.)

use std::sync::Arc;

/// The environment variable that marks an attempt's processes.
pub const MARKER_ENV: &str = "GATEHOUSE_JOB";

#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub owner: Arc<str>,
    pub host: String,
    pub pid: u32,
    pub pid_start: Option<u64>,
    pub workers: usize,
}

impl Identity {
    pub(crate) fn current(workers: usize) -> Identity {
        let pid = std::process::id();
        let host = hostname();
        let nonce = fastrand::u32(..);
        Identity {
            owner: format!("{host}:{pid}:{nonce:08x}").into(),
            host,
            pid,
            pid_start: start_time(pid as i32),
            workers,
        }
    }
}

pub(crate) fn marker(owner: &str, id: i64, attempt: i64) -> String {
    format!("{owner}/{id}/{attempt}")
}

/// This machine's name.
#[cfg(unix)]
pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // truncates, and we stop at the first NUL either way.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok && end > 0 {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "localhost".into()
    }
}

/// This machine's name.
#[cfg(not(unix))]
pub(crate) fn hostname() -> String {
    std::env::var("COMPUTERNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into())
}

/// SIGKILL `pid`; whether it was signalled.
#[cfg(unix)]
fn kill(pid: i32) -> bool {
    // SAFETY: plain syscall; at worst the process is already gone (ESRCH).
    unsafe { libc::kill(pid, libc::SIGKILL) == 0 }
}

/// Nothing to kill by marker: exec commands, the only marked processes, run on Linux only.
#[cfg(not(unix))]
fn kill(_pid: i32) -> bool {
    false
}

/// Fields of `/proc/<pid>/stat` after the command name (which may contain spaces and ')').
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The process's start time in clock ticks since boot (field 22 of stat), Linux only.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Is the process that registered as (pid, start time) still running?
pub(crate) fn process_alive(pid: i32, start: Option<u64>) -> bool {
    match start {
        Some(start) => stat_fields(pid)
            .map(|f| f.first().map(String::as_str) != Some("Z") && f.get(19).and_then(|s| s.parse().ok()) == Some(start))
            .unwrap_or(false),
        // Without /proc there is no start time to compare; a signal-0 probe is the best left.
        #[cfg(unix)]
        // SAFETY: plain syscall, no signal sent.
        None => unsafe { libc::kill(pid, 0) == 0 },
        // No probe here (Windows): taken as alive, so the lease's expiry decides.
        #[cfg(not(unix))]
        None => true,
    }
}

/// [`kill_marked`] until a pass finds nothing: killing a process can let another (one caught
/// mid-`execve`, whose environment reads empty for a moment) show up on the next pass. Sync,
/// for threads that may block (the writer). Commands run in a
/// bubblewrap PID namespace, so this is the second line: the kernel ends the namespace with
/// its init.
pub(crate) fn sweep_blocking(marker: &str) -> usize {
    let mut total = 0;
    for _ in 0..SWEEP_PASSES {
        let n = kill_marked(marker);
        total += n;
        if n == 0 {
            break;
        }
        std::thread::sleep(SWEEP_PAUSE);
    }
    total
}

/// [`sweep_blocking`] off the async runtime (it sleeps between passes).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // used by exec, which runs on Linux only
pub(crate) async fn sweep(marker: &str) -> usize {
    let marker = marker.to_owned();
    tokio::task::spawn_blocking(move || sweep_blocking(&marker)).await.unwrap_or(0)
}

const SWEEP_PASSES: usize = 5;
const SWEEP_PAUSE: std::time::Duration = std::time::Duration::from_millis(15);

/// SIGKILL every process whose environment carries `marker` — in the attempt's process group
/// or not (a descendant may have called `setsid`). The marker is unique to the attempt, so a
/// reused pid or group id is never mistaken for it. Returns how many were signalled.
pub(crate) fn kill_marked(marker: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    let needle = format!("{MARKER_ENV}={marker}");
    let me = std::process::id() as i32;
    let mut killed = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
        if environ.split(|&b| b == 0).any(|var| var == needle.as_bytes()) {
            if kill(pid) {
                killed += 1;
            }
        }
    }
    killed
}

/// `host:pid:start` of this process: who is writing a streaming reply.
pub(crate) fn process_tag() -> String {
    let pid = std::process::id();
    format!("{}:{pid}:{}", hostname(), start_time(pid as i32).unwrap_or(0))
}

/// Whether the process a [`process_tag`] names may still be running. Another host's processes
/// cannot be checked and count as alive.
pub(crate) fn tag_alive(tag: &str) -> bool {
    let mut parts = tag.rsplitn(3, ':');
    let (Some(start), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else { return false };
    if host != hostname() {
        return true;
    }
    let start = start.parse::<u64>().ok().filter(|s| *s != 0);
    pid.parse::<i32>().map(|pid| process_alive(pid, start)).unwrap_or(false)
}
