//! A child process in its own process group, with its output captured line by line.
//!
//! Stopping it (cancel, timeout, shutdown) signals the whole group: SIGTERM, then SIGKILL
//! after the grace period. The group id is only signalled while its leader is still our
//! unreaped child — until then the id cannot be reused. After the leader is gone, leftovers
//! (a background grandchild, a child that ignores SIGTERM, one that called `setsid`) are found
//! by their marker and killed one by one. The child also gets a parent-death signal, so it dies with a pool that is
//! killed outright; the pool that rescues the job cleans up the rest.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::error::JobError;
use crate::pool::job::Stream;
use crate::pool::kind::Outcome;
use crate::pool::lease::sweep;
use crate::pool::output::OutputSink;
use tokio_util::sync::CancellationToken;

/// Longest line kept, in bytes; the rest of a longer line is counted and cut.
pub(crate) const MAX_LINE: usize = 16 * 1024;

/// After the command exits, its output pipes are read to the end — unless nothing arrives for
/// `DRAIN_STALL`, or it takes longer than `DRAIN_MAX`, or the job is stopped: a process that
/// escaped (cleared its environment and left the group) and holds a pipe open cannot hold the
/// job hostage.
const DRAIN_STALL: Duration = Duration::from_secs(2);
const DRAIN_MAX: Duration = Duration::from_secs(10);

/// A command about to be started and watched.
pub(crate) struct Launch<'a> {
    /// Program, arguments, working directory and environment already set.
    pub command: Command,
    /// For messages.
    pub program: &'a str,
    /// Set in the command's environment by whoever built it; finds its leftovers.
    pub marker: &'a str,
    pub cancel: &'a CancellationToken,
    pub output: OutputSink,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// How a supervised command ended.
pub(crate) struct Ended {
    pub outcome: Outcome,
    /// Bytes of output it wrote (all of them, including what was cut from long lines).
    pub bytes: u64,
    /// The signal that ended the process we started, when one did.
    pub signal: Option<i32>,
}

/// Start `launch.command` in its own process group, pump its output, stop it when `cancel`
/// fires, and clean up whatever it leaves. `spawned` is told the process group and answers
/// whether to go on.
pub(crate) async fn supervise<F: std::future::Future<Output = bool>>(
    launch: Launch<'_>,
    spawned: impl FnOnce(i32) -> F,
) -> Ended {
    let ended = |outcome, bytes| Ended { outcome, bytes, signal: None };
    let Launch { mut command, program, marker, cancel, output, grace } = launch;
    let mut child = match spawn(&mut command) {
        Ok(child) => child,
        Err(e) => {
            let error = JobError::new("job.spawn", format!("could not start `{program}`: {e}"));
            return ended(Outcome::Failed { exit_code: None, error }, 0);
        }
    };
    let pgid = child.id().map(|p| p as i32);
    // Recording the group also re-checks the lease: a pool that stalled between its claim and
    // this spawn may have been presumed dead, and the job re-run elsewhere.
    let still_ours = match pgid {
        Some(pgid) => spawned(pgid).await,
        None => true,
    };
    if !still_ours {
        let _ = terminate(&mut child, pgid, Duration::ZERO).await;
        sweep(marker).await;
        return ended(Outcome::Stopped { exit_code: None }, 0);
    }
    let read = Arc::new(AtomicUsize::new(0));
    let pumps = [
        child.stdout.take().map(|out| tokio::spawn(pump(out, Stream::Stdout, output.clone(), read.clone()))),
        child.stderr.take().map(|err| tokio::spawn(pump(err, Stream::Stderr, output.clone(), read.clone()))),
    ];
    drop(output);

    let mut stopped = false;
    let status = tokio::select! {
        status = child.wait() => status,
        _ = cancel.cancelled() => {
            stopped = true;
            terminate(&mut child, pgid, grace).await
        }
    };
    sweep(marker).await;
    let drain_until = tokio::time::Instant::now() + DRAIN_MAX;
    for mut pump in pumps.into_iter().flatten() {
        loop {
            let before = read.load(Ordering::Relaxed);
            tokio::select! {
                _ = &mut pump => break,
                _ = tokio::time::sleep(DRAIN_STALL) => {
                    let stalled = read.load(Ordering::Relaxed) == before;
                    if stalled || tokio::time::Instant::now() >= drain_until || cancel.is_cancelled() {
                        pump.abort();
                        break;
                    }
                }
            }
        }
    }

    let bytes = read.load(Ordering::Relaxed) as u64;
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            let error = JobError::new("job.spawn", format!("lost track of `{program}`: {e}"));
            return ended(Outcome::Failed { exit_code: None, error }, bytes);
        }
    };
    let exit_code = status.code();
    let outcome = if stopped {
        Outcome::Stopped { exit_code }
    } else if status.success() {
        Outcome::Succeeded { exit_code }
    } else {
        Outcome::Failed { exit_code, error: describe_failure(program, status) }
    };
    Ended { outcome, bytes, signal: status.signal() }
}

fn describe_failure(program: &str, status: ExitStatus) -> JobError {
    match (status.code(), status.signal()) {
        (Some(code), _) => JobError::new("job.exit", format!("`{program}` exited with status {code}")),
        (None, Some(sig)) => JobError::new("job.signal", format!("`{program}` was killed by signal {sig}")),
        _ => JobError::new("job.exit", format!("`{program}` failed")),
    }
}

fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).kill_on_drop(true);
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Die with the thread that spawned us; that thread lives as long as the
                // runtime, i.e. the pool process.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("the pool exited while the job was starting"));
                }
                Ok(())
            });
        }
    }
    cmd.spawn()
}

/// SIGTERM the group, SIGKILL it after `grace`, and reap the leader.
async fn terminate(child: &mut Child, pgid: Option<i32>, grace: Duration) -> std::io::Result<ExitStatus> {
    let Some(pgid) = pgid else { return child.wait().await };
    // SAFETY: plain syscalls. The leader is our unreaped child, so `pgid` is still ours.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            child.wait().await
        }
    }
}

/// Read lines from `reader` into the job's output, cutting lines longer than [`MAX_LINE`].
async fn pump<R: AsyncRead + Unpin>(reader: R, stream: Stream, sink: OutputSink, read: Arc<AtomicUsize>) {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut line: Vec<u8> = Vec::new();
    let mut cut = 0usize;
    loop {
        let (used, ended_line) = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(buf) => {
                let (chunk, used, ended) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (&buf[..i], i + 1, true),
                    None => (buf, buf.len(), false),
                };
                let room = MAX_LINE.saturating_sub(line.len()).min(chunk.len());
                line.extend_from_slice(&chunk[..room]);
                cut += chunk.len() - room;
                (used, ended)
            }
        };
        reader.consume(used);
        read.fetch_add(used, Ordering::Relaxed);
        if ended_line {
            sink.line(stream, take_line(&mut line, &mut cut)).await;
        }
    }
    if !line.is_empty() || cut > 0 {
        sink.line(stream, take_line(&mut line, &mut cut)).await;
    }
}

fn take_line(line: &mut Vec<u8>, cut: &mut usize) -> String {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let mut text = String::from_utf8_lossy(line).into_owned();
    if *cut > 0 {
        text.push_str(&format!(" [… {} more bytes cut]", *cut));
    }
    line.clear();
    *cut = 0;
    text
}
