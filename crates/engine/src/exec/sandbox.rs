//! Confinement with bubblewrap (Linux).
//!
//! What a command sees is an allowlist, not the host minus a list of known secrets:
//! - the system directories (`super::program::SYSTEM_DIRS`) and `/sys`, read-only — with
//!   the data directory, gateway token files, `/etc/shadow`, `/etc/gshadow`, `/etc/sudoers`
//!   and the host's SSH keys blanked out wherever they would show;
//! - its workspace root, writable: the directory that was checked (see `super::workspace`);
//! - paths its rule names (`--see`), read-only;
//! - a private `/tmp` (also its `HOME`), a minimal `/dev`, its own `/proc`, an empty `/run`.
//!
//! Not the home directory (browser profiles, shell history, cloud and SSH keys, other tools'
//! data directories), not `/var` or `/run` (host daemons' sockets: a read-only mount does not
//! stop `connect()`), not the host's `/tmp`.
//!
//! It gets its own PID, IPC and UTS namespaces (it cannot see or signal other processes, and
//! when its init dies the kernel kills everything in it), no network unless its rule allows it
//! (with the network it shares the host's network namespace, so the host's abstract Unix
//! sockets are reachable too), no capabilities, no new privileges (bubblewrap sets
//! `no_new_privs`), a seccomp filter (`super::seccomp`), a new session (no terminal
//! injection), none of the descriptors this process inherited, and it dies with its parent.
//! Its environment is built from an allowlist too (`environment`).
//!
//! Without bubblewrap, or where it cannot create namespaces, the command is refused with a
//! sentence that says how to fix it; there is no silent unconfined fallback.

#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd, OwnedFd};
#[cfg(target_os = "linux")]
use std::path::{Path, PathBuf};

#[cfg(target_os = "linux")]
use tokio::process::Command;

#[cfg(target_os = "linux")]
use super::program::{Program, Source, SANDBOX_PATH};
#[cfg(target_os = "linux")]
use super::ExecSpec;
#[cfg(target_os = "linux")]
use crate::error::{Error, Result};
use crate::pool::lease::MARKER_ENV;

/// Files in the visible system directories that are blanked out (they matter when the
/// command runs as root, which may read them).
#[cfg(target_os = "linux")]
const HIDDEN_SYSTEM_FILES: &[&str] = &["/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers", "/etc/sudoers.d"];

/// Where a program copied into the sandbox is run from.
#[cfg(target_os = "linux")]
const COPIED_PROGRAMS: &str = "/run/gatehouse/bin";

/// Variables passed on from our own environment: how to show text, who the user is.
#[cfg(target_os = "linux")]
fn passed_on(name: &str) -> bool {
    settable(name) || ["USER", "LOGNAME"].contains(&name)
}

/// Names a request may set without a rule naming them: how text is shown, nothing that
/// changes what runs.
pub fn settable(name: &str) -> bool {
    ["LANG", "LANGUAGE", "TZ", "TERM", "COLORTERM", "NO_COLOR", "COLUMNS", "LINES"].contains(&name)
        || name.starts_with("LC_")
}

/// Names never set, whatever a rule says: each makes some program load or run other code
/// (a library, a startup file, a shell function, an option that runs a command), or changes
/// which program runs.
pub fn never(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    let prefixed = |p: &[&str]| p.iter().any(|p| upper.starts_with(p));
    if prefixed(&["LD_", "DYLD_"]) || ["GCONV_PATH", "LOCPATH", "NLSPATH", "HOSTALIASES", "RESOLV_HOST_CONF"].contains(&upper.as_str()) {
        Some("it changes which libraries and files the C library loads")
    } else if ["PATH", "HOME", "SHELL", "TMPDIR", "EDITOR", "VISUAL", "PAGER", "BROWSER"].contains(&upper.as_str())
        || prefixed(&["XDG_"])
    {
        Some("it changes which programs and configuration files are used")
    } else if prefixed(&["BASH_FUNC_", "PYTHON", "PYENV_", "PERL", "RUBY", "NODE_", "NPM_", "GIT_", "LESS", "OPENSSL_", "SSL_", "CURL_", "WGET", "JAVA_", "_JAVA_", "JDK_", "GEM_", "BUNDLE_", "CARGO_", "RUSTC", "RUSTUP_", "GO", "CC", "CXX", "MAKE"])
        || upper.ends_with("_OPTIONS")
        || upper.ends_with("_OPTS")
        || ["BASH_ENV", "ENV", "IFS", "PS4", "SHELLOPTS", "BASHOPTS", "PROMPT_COMMAND", "CDPATH", "GLOBIGNORE", "TAR_OPTIONS", "ZDOTDIR", "INPUTRC", "MANPAGER", "GREP_OPTIONS"]
            .contains(&upper.as_str())
    {
        Some("it can make the program run other code")
    } else if upper == MARKER_ENV {
        Some("Gatehouse uses it to track the command's processes")
    } else {
        None
    }
}

/// Proxy settings are passed on (with a network) unless they carry credentials (`user:pass@`).
#[cfg(target_os = "linux")]
fn proxy(name: &str, value: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["http_proxy", "https_proxy", "no_proxy", "all_proxy"].contains(&lower.as_str()) && !value.contains('@')
}

/// What a confined command may touch.
#[derive(Debug, Clone)]
#[cfg(target_os = "linux")]
pub struct Confinement {
    /// Writable: the workspace root that was checked.
    pub root: PathBuf,
    /// Entered inside the sandbox; inside `root`.
    pub cwd: PathBuf,
    /// Blanked out wherever they would show (the data directory, token files, …).
    pub hidden: Vec<PathBuf>,
    /// Read-only: paths the rule names.
    pub see: Vec<PathBuf>,
    /// The command may use the network; else it gets a network namespace of its own, with none.
    pub network: bool,
}

#[cfg(target_os = "linux")]
impl Confinement {
    pub(crate) fn new(place: &super::workspace::Place, data_dir: &Path, network: bool) -> Confinement {
        let data_dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
        let mut hidden = vec![data_dir];
        hidden.extend(HIDDEN_SYSTEM_FILES.iter().map(PathBuf::from));
        if let Ok(entries) = std::fs::read_dir("/etc/ssh") {
            hidden.extend(entries.flatten().map(|e| e.path()).filter(|p| {
                p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("ssh_host_") && !n.to_string_lossy().ends_with(".pub"))
            }));
        }
        Confinement { root: place.root.clone(), cwd: place.cwd.clone(), hidden, see: Vec::new(), network }
    }
}

#[cfg(target_os = "linux")]
fn bwrap() -> Result<PathBuf> {
    super::resolve_program("bwrap").ok_or_else(|| {
        Error::SandboxUnavailable(
            "commands run inside bubblewrap, which is not installed; install it with `sudo apt-get install bubblewrap`"
                .into(),
        )
    })
}

/// Check once that bubblewrap can create its namespaces here.
#[cfg(target_os = "linux")]
pub fn probe() -> Result<()> {
    let bwrap = bwrap()?;
    // The same namespaces a command gets, so what fails here is what would fail there.
    // SAFETY: geteuid has no preconditions.
    let user = if unsafe { libc::geteuid() } != 0 && user_namespace_cap_works() { &["--unshare-user"][..] } else { &[] };
    let out = std::process::Command::new(&bwrap)
        .args(["--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--die-with-parent"])
        .args(user)
        .args(["--", "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::SandboxUnavailable(format!("cannot run {}: {e}", bwrap.display())))?;
    reap_sandbox_inits();
    if out.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    Err(Error::SandboxUnavailable(format!(
        "bubblewrap cannot create a sandbox here ({why}); unprivileged user namespaces may be disabled: \
         `sudo sysctl -w kernel.unprivileged_userns_clone=1` (Debian) or \
         `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu)"
    )))
}

/// Make this process the reaper of its orphaned descendants, so that each sandbox's init —
/// which bubblewrap leaves behind when it exits (killed by its parent-death signal, never
/// waited for) — comes back to us to be reaped by [`reap_sandbox_inits`], instead of piling up
/// as zombies under whatever init the system has (a container's may reap nothing).
#[cfg(target_os = "linux")]
pub(crate) fn become_reaper() {
    // SAFETY: a plain prctl with no pointers.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Reap the children of ours that were the init of a PID namespace of their own: sandbox
/// inits orphaned by their bubblewrap (see [`become_reaper`]). Nothing else of ours is one,
/// so no other child's exit status is taken from whoever waits for it.
#[cfg(target_os = "linux")]
pub(crate) fn reap_sandbox_inits() -> usize {
    let mut reaped = 0;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    let children: Vec<i32> = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|list| list.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<i32>>())
        .collect();
    for pid in children {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
        let nspid = status.lines().find_map(|l| l.strip_prefix("NSpid:")).unwrap_or("");
        let ids: Vec<&str> = nspid.split_whitespace().collect();
        if ids.len() >= 2 && ids.last() == Some(&"1") {
            // SAFETY: our own unreaped child: its pid cannot have been reused. It is killed
            // already (parent-death signal); SIGKILL again in case it was not yet.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                if libc::waitpid(pid, std::ptr::null_mut(), 0) == pid {
                    reaped += 1;
                }
            }
        }
    }
    reaped
}

/// The command's environment, from allowlists: what ours says about how to show text and who
/// the user is, a `PATH` of the system directories, `HOME` in the private `/tmp`, proxies when
/// it has a network, and the request's own variables (already checked against
/// [`settable`], [`never`] and its rule).
#[cfg(target_os = "linux")]
pub(crate) fn environment(spec: &ExecSpec, marker: &str, network: bool) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> =
        std::env::vars().filter(|(k, v)| passed_on(k) || (network && proxy(k, v))).collect();
    env.push(("PATH".into(), SANDBOX_PATH.into()));
    env.push(("HOME".into(), "/tmp".into()));
    for (k, v) in &spec.env {
        env.retain(|(name, _)| name != k);
        env.push((k.clone(), v.clone()));
    }
    env.push((MARKER_ENV.to_owned(), marker.to_owned()));
    env
}

/// Blank each path out: a directory with an empty tmpfs, a file with /dev/null.
#[cfg(target_os = "linux")]
fn hide(cmd: &mut Command, paths: &[PathBuf]) {
    for path in paths {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                cmd.arg("--tmpfs").arg(path);
            }
            Ok(m) if m.is_file() => {
                cmd.arg("--ro-bind").arg("/dev/null").arg(path);
            }
            _ => {}
        }
    }
}

/// A bubblewrap command ready to spawn, and what it needs until it has been spawned.
#[cfg(target_os = "linux")]
pub(crate) struct Sandboxed {
    pub command: Command,
    /// Kept until the command is over.
    pub cap: ProcessCap,
    /// Descriptors bubblewrap reads (the program's bytes, the seccomp filters): held until
    /// the spawn, closed in the command itself by bubblewrap.
    pub fds: Vec<OwnedFd>,
}

/// `bwrap … -- program args`, ready to spawn, on a command made by `launcher`.
#[cfg(target_os = "linux")]
pub(crate) fn command(
    spec: &ExecSpec,
    program: &Program,
    confinement: &Confinement,
    marker: &str,
    launcher: &dyn super::Launcher,
) -> Result<Sandboxed> {
    let bwrap = bwrap()?;
    let mut cmd = Command::from(
        launcher
            .command(&bwrap)
            .map_err(|e| Error::SandboxUnavailable(format!("cannot make the command that starts {}: {e}", bwrap.display())))?,
    );
    // First of the steps between fork and exec: nothing this process inherited (a shell's
    // `7<gatehouse.db`) reaches bubblewrap or the command. The descriptors meant for
    // bubblewrap are let through by the steps added after this one.
    close_inherited(&mut cmd);
    cmd.args(["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]);
    cmd.args(["--unshare-cgroup-try", "--cap-drop", "ALL"]);
    let cap = ProcessCap::attach(&mut cmd)?;
    if !confinement.network {
        cmd.arg("--unshare-net");
    }
    for dir in super::program::SYSTEM_DIRS.iter().chain(&["/sys"]) {
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(dir) {
                    cmd.arg("--symlink").arg(target).arg(dir);
                }
            }
            Ok(m) if m.is_dir() => {
                cmd.args(["--ro-bind", dir, dir]);
            }
            _ => {}
        }
    }
    cmd.args(["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/run"]);
    if confinement.network {
        // Name resolution may live there (systemd-resolved's stub).
        cmd.args(["--ro-bind-try", "/run/systemd/resolve", "/run/systemd/resolve"]);
    }
    for path in &confinement.see {
        cmd.arg("--ro-bind").arg(path).arg(path);
    }
    // Blanked out after what could show them, and before the root: the data directory holds
    // the default root, which must show through.
    hide(&mut cmd, &confinement.hidden);
    cmd.arg("--bind").arg(&confinement.root).arg(&confinement.root);
    cmd.arg("--chdir").arg(&confinement.cwd);

    let mut fds: Vec<OwnedFd> = Vec::new();
    let run = match &program.source {
        Source::System => program.found.clone(),
        Source::Copy { bytes, .. } => {
            let copy = bytes.try_clone().map_err(|e| Error::SandboxUnavailable(format!("cannot pass the program on: {e}")))?;
            let at = Path::new(COPIED_PROGRAMS).join(program.name());
            cmd.args(["--perms", "0555", "--ro-bind-data"]).arg(copy.as_raw_fd().to_string()).arg(&at);
            fds.push(copy);
            at
        }
    };
    let filters = super::seccomp::filters()
        .map_err(|e| Error::SandboxUnavailable(format!("cannot build the sandbox's system call filter: {e}")))?;
    for filter in filters {
        cmd.arg("--add-seccomp-fd").arg(filter.as_raw_fd().to_string());
        fds.push(filter);
    }
    pass_fds(&mut cmd, fds.iter().map(|f| f.as_raw_fd()).collect());
    cmd.arg("--").arg(run).args(&spec.args);
    // bwrap's own environment is the command's, not just its child's: bwrap stays in the
    // sandbox as its init, and /proc/1/environ would show anything it was given.
    cmd.env_clear().envs(environment(spec, marker, confinement.network));
    Ok(Sandboxed { command: cmd, cap, fds })
}

/// Mark every descriptor above stderr close-on-exec in the child (`close_range`, Linux 5.11;
/// one `fcntl` per possible descriptor before that).
#[cfg(target_os = "linux")]
fn close_inherited(cmd: &mut Command) {
    // SAFETY: only async-signal-safe syscalls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
            if libc::syscall(libc::SYS_close_range, 3 as libc::c_uint, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC) == 0 {
                return Ok(());
            }
            let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 { limit.rlim_cur.min(1 << 20) } else { 1024 };
            for fd in 3..top as libc::c_int {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
            Ok(())
        });
    }
}

/// Let these descriptors (close-on-exec in this process) through to bubblewrap.
#[cfg(target_os = "linux")]
fn pass_fds(cmd: &mut Command, fds: Vec<libc::c_int>) {
    // SAFETY: only fcntl between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Processes a command may have at once (a fork bomb stops here, not at the host's limit).
#[cfg(target_os = "linux")]
pub const MAX_PROCESSES: u32 = 256;

/// How one command's process count is capped.
///
/// Root is exempt from RLIMIT_NPROC, so root uses a `pids` cgroup. Anyone else gets
/// RLIMIT_NPROC set on the sandbox's first process once bubblewrap has made the sandbox's
/// own user namespace: since Linux 5.14 that limit counts a user's processes per user
/// namespace, so it caps the command's processes and not the person's others. (Set on
/// bubblewrap itself, before the namespace exists, it would count every process the person
/// has, and a desktop with a few hundred would refuse to start the sandbox at all.)
/// Bubblewrap names that process on `--info-fd` and waits on `--block-fd` until the limit
/// is set, so the command never runs uncapped.
#[cfg(target_os = "linux")]
pub(crate) enum ProcessCap {
    /// Held for its drop, which removes the cgroup.
    Cgroup { _held: PidsLimit },
    Rlimit(Option<StartGate>),
    /// Root without a pids controller, or a kernel older than 5.14: the PID namespace and
    /// the timeout are what remains.
    None,
}

#[cfg(target_os = "linux")]
impl ProcessCap {
    /// Choose the cap for this process and wire it into the bubblewrap command line (before
    /// its `--`).
    fn attach(cmd: &mut Command) -> Result<ProcessCap> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            return Ok(match PidsLimit::create(&format!("{:016x}", fastrand::u64(..))) {
                Some(limit) => {
                    limit.apply(cmd);
                    ProcessCap::Cgroup { _held: limit }
                }
                None => {
                    tracing::debug!("no pids cgroup here; relying on the PID namespace and the timeout");
                    ProcessCap::None
                }
            });
        }
        if !user_namespace_cap_works() {
            tracing::debug!("no per-namespace RLIMIT_NPROC here (kernel < 5.14, or a setuid bubblewrap); no process cap");
            return Ok(ProcessCap::None);
        }
        cmd.arg("--unshare-user");
        let gate = StartGate::attach(cmd)
            .map_err(|e| Error::SandboxUnavailable(format!("cannot prepare the sandbox's process limit: {e}")))?;
        Ok(ProcessCap::Rlimit(Some(gate)))
    }

    /// What must happen once the command has been spawned, before it may run.
    pub(crate) fn take_gate(&mut self) -> Option<StartGate> {
        match self {
            ProcessCap::Rlimit(gate) => gate.take(),
            ProcessCap::Cgroup { .. } | ProcessCap::None => None,
        }
    }
}

/// Whether a person's sandbox can get its own user namespace with its own process count:
/// Linux ≥ 5.14 (RLIMIT_NPROC counted per user namespace) and a bubblewrap that is not
/// setuid (a setuid one is installed where user namespaces are off, and runs privileged).
#[cfg(target_os = "linux")]
fn user_namespace_cap_works() -> bool {
    use std::os::unix::fs::PermissionsExt;
    let setuid = bwrap().ok().and_then(|b| std::fs::metadata(b).ok()).is_some_and(|m| m.permissions().mode() & 0o4000 != 0);
    !setuid && nproc_counted_per_namespace()
}

/// RLIMIT_NPROC is counted per user namespace from Linux 5.14 on.
#[cfg(target_os = "linux")]
fn nproc_counted_per_namespace() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit()).map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (5, 14)
}

/// Holds bubblewrap between making the sandbox and starting the command in it.
#[cfg(target_os = "linux")]
pub(crate) struct StartGate {
    /// bubblewrap writes `{"child-pid": N, …}` here once the namespaces exist.
    info: std::fs::File,
    /// bubblewrap reads one byte from here before it starts the command. A socket, not a
    /// pipe: writing to a bubblewrap that has died must be an error, not a SIGPIPE that
    /// kills this whole process (the CLI restores SIGPIPE's default).
    release: std::os::fd::OwnedFd,
    /// bubblewrap's ends; ours are closed once it has been spawned, so a bubblewrap that
    /// fails early shows as end-of-file instead of a wait forever.
    child_ends: Option<(std::fs::File, std::os::fd::OwnedFd)>,
}

#[cfg(target_os = "linux")]
impl StartGate {
    fn attach(cmd: &mut Command) -> std::io::Result<StartGate> {
        use std::os::fd::AsRawFd;
        let (info, info_end) = pipe()?;
        let (release, release_end) = socket_pair()?;
        let fds = [info_end.as_raw_fd(), release_end.as_raw_fd()];
        cmd.arg("--info-fd").arg(fds[0].to_string()).arg("--block-fd").arg(fds[1].to_string());
        pass_fds(cmd, fds.to_vec());
        Ok(StartGate { info, release, child_ends: Some((info_end, release_end)) })
    }

    /// Cap the spawned sandbox (bubblewrap leads process group `group`) and let its command
    /// start. An error means it must not run: the sandbox is killed before the gate closes,
    /// because bubblewrap takes end-of-file on `--block-fd` as "go".
    pub(crate) async fn open(mut self, group: i32) -> std::result::Result<(), String> {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        drop(self.child_ends.take());
        let mut info = self.info;
        let read = tokio::task::spawn_blocking(move || -> std::io::Result<Option<serde_json::Value>> {
            let (mut seen, mut chunk) = (Vec::new(), [0u8; 512]);
            loop {
                let n = match info.read(&mut chunk) {
                    Ok(0) => return Ok(None),
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                seen.extend_from_slice(&chunk[..n]);
                if let Ok(v) = serde_json::from_slice(&seen) {
                    return Ok(Some(v));
                }
            }
        })
        .await;
        let stop = |why: String| {
            // SAFETY: signalling our own child's process group, which it still leads (it is
            // not reaped before this returns).
            unsafe { libc::kill(-group, libc::SIGKILL) };
            Err(why)
        };
        let pid = match read {
            // bubblewrap ended before its sandbox was ready: nothing runs, and its own message
            // (on stderr) and exit status say why.
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(v))) => match v["child-pid"].as_i64().and_then(|p| i32::try_from(p).ok()) {
                Some(pid) => pid,
                None => return stop(format!("bubblewrap reported no sandbox process ({v})")),
            },
            Ok(Err(e)) => return stop(format!("reading the sandbox's state failed: {e}")),
            Err(e) => return stop(e.to_string()),
        };
        let limit = libc::rlimit { rlim_cur: MAX_PROCESSES.into(), rlim_max: MAX_PROCESSES.into() };
        // SAFETY: a plain syscall with a valid limit and no old-limit output.
        if unsafe { libc::prlimit(pid, libc::RLIMIT_NPROC, &limit, std::ptr::null_mut()) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ESRCH) {
                return Ok(()); // it has already ended; its status says why
            }
            return stop(format!("setting its process limit failed: {e}"));
        }
        // SAFETY: one byte from a valid buffer to a socket we own; MSG_NOSIGNAL: an error, not
        // a signal, if bubblewrap is gone.
        let sent = unsafe { libc::send(self.release.as_raw_fd(), b"1".as_ptr().cast(), 1, libc::MSG_NOSIGNAL) };
        if sent == 1 {
            return Ok(());
        }
        match std::io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::EPIPE) || e.raw_os_error() == Some(libc::ECONNRESET) => Ok(()),
            e => stop(format!("starting it failed: {e}")),
        }
    }
}

/// A close-on-exec connected pair of Unix stream sockets.
#[cfg(target_os = "linux")]
fn socket_pair() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: socketpair fills both slots on success; each fd is then owned exactly once.
    unsafe {
        if libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1])))
    }
}

/// A close-on-exec pipe: (read end, write end).
#[cfg(target_os = "linux")]
fn pipe() -> std::io::Result<(std::fs::File, std::fs::File)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills both slots on success; each fd is then owned by exactly one File.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((std::fs::File::from_raw_fd(fds[0]), std::fs::File::from_raw_fd(fds[1])))
    }
}

/// A cgroup that caps the number of processes of one command, where this process may create
/// one (root with a `pids` controller, cgroup v2 or v1). Its processes join it between fork and
/// exec; it is removed on drop.
#[cfg(target_os = "linux")]
pub(crate) struct PidsLimit {
    dir: PathBuf,
    procs: std::ffi::CString,
}

#[cfg(target_os = "linux")]
impl PidsLimit {
    pub(crate) fn create(name: &str) -> Option<PidsLimit> {
        let base = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            let root = Path::new("/sys/fs/cgroup");
            let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).ok()?;
            if !controllers.split_whitespace().any(|c| c == "pids") {
                return None;
            }
            let base = root.join("gatehouse");
            std::fs::create_dir_all(&base).ok()?;
            let _ = std::fs::write(root.join("cgroup.subtree_control"), "+pids");
            base
        } else if Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() {
            Path::new("/sys/fs/cgroup/pids/gatehouse").to_owned()
        } else {
            return None;
        };
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).ok()?;
        std::fs::write(dir.join("pids.max"), MAX_PROCESSES.to_string()).ok()?;
        let procs = std::ffi::CString::new(dir.join("cgroup.procs").to_string_lossy().as_bytes()).ok()?;
        Some(PidsLimit { dir, procs })
    }

    /// Make the command join the cgroup when it starts.
    pub(crate) fn apply(&self, cmd: &mut Command) {
        let procs = self.procs.clone();
        // SAFETY: only open/write/close between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                libc::close(fd);
                if ok { Ok(()) } else { Err(std::io::Error::last_os_error()) }
            });
        }
    }
}

#[cfg(target_os = "linux")]
impl Drop for PidsLimit {
    fn drop(&mut self) {
        // Anything still inside is a leftover of a finished command.
        if let Ok(pids) = std::fs::read_to_string(self.dir.join("cgroup.procs")) {
            for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                // SAFETY: plain syscall on a pid that is in our cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_harmless_variables_are_settable_and_code_loading_ones_never() {
        for name in ["LANG", "LC_ALL", "TZ", "TERM"] {
            assert!(settable(name) && never(name).is_none(), "{name}");
        }
        for name in [
            "LD_PRELOAD", "PATH", "HOME", "XDG_CONFIG_HOME", "TAR_OPTIONS", "PYENV_VERSION", "BASH_FUNC_ls%%", "LESSOPEN",
            "PERL5OPT", "PERLLIB", "OPENSSL_CONF", "BASH_ENV", "NODE_OPTIONS", "GIT_SSH_COMMAND", "JAVA_TOOL_OPTIONS",
            "PYTHONSTARTUP", "GATEHOUSE_JOB", "GCONV_PATH",
        ] {
            assert!(!settable(name) && never(name).is_some(), "{name}");
        }
        assert!(proxy("https_proxy", "http://proxy:3128") && !proxy("https_proxy", "http://u:p@proxy:3128"));
    }
}
