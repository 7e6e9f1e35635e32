//! Confinement with bubblewrap (Linux).
//!
//! The command sees the whole file system read-only, its working directory (inside a
//! configured workspace root) writable, a private `/tmp`, and none of the places that hold
//! secrets: Gatehouse's own data directory (keys, tokens, the database), `~/.ssh`, `~/.gnupg`
//! and the usual cloud-credential directories are replaced by empty ones. It gets its own PID,
//! IPC and UTS namespaces (it cannot see or signal other processes, and when its init dies the
//! kernel kills everything in it), no network unless the rule allows it, no capabilities, no
//! new privileges (bubblewrap sets `no_new_privs`), a new session (no terminal injection), and
//! it dies with its parent. Its environment is rebuilt from a scrubbed copy of ours.
//!
//! Without bubblewrap, or where it cannot create namespaces, the command is refused with a
//! sentence that says how to fix it; there is no silent unconfined fallback.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::ExecSpec;
use crate::error::{Error, Result};
use crate::pool::lease::MARKER_ENV;

/// Directories under `$HOME` that hold credentials.
const HIDDEN_IN_HOME: &[&str] = &[
    ".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".kube", ".docker", ".password-store", ".local/share/keyrings",
    ".config/gh", ".config/hub", ".config/git/credentials", ".terraform.d", ".vault-token",
];
/// Files under `$HOME` that hold credentials or history.
const HIDDEN_FILES_IN_HOME: &[&str] = &[
    ".netrc", ".git-credentials", ".pgpass", ".npmrc", ".pypirc", ".cargo/credentials", ".cargo/credentials.toml",
    ".bash_history", ".zsh_history", ".python_history", ".psql_history", ".mysql_history",
];

/// Environment variables never passed on, by name fragment (case-insensitive) or prefix.
fn secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "COOKIE", "SESSION"]
        .iter()
        .any(|f| upper.contains(f))
        || upper.starts_with("LD_")
        || upper == "DYLD_INSERT_LIBRARIES"
}

/// Proxy settings are kept unless they carry credentials (`user:pass@`).
fn proxy_with_credentials(name: &str, value: &str) -> bool {
    name.to_ascii_uppercase().ends_with("_PROXY") && value.contains('@')
}

/// Names a request may not set at all: they change what runs, not what it does.
pub(crate) fn forbidden_override(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("LD_") || upper.starts_with("DYLD_") || upper == "GCONV_PATH" {
        Some("it changes which libraries are loaded")
    } else if upper == "PATH" {
        Some("it changes which programs run")
    } else if upper.starts_with("GIT_")
        || ["BASH_ENV", "ENV", "IFS", "PS4", "SHELLOPTS", "NODE_OPTIONS", "RUBYOPT", "PERL5OPT", "PERL5LIB"].contains(&upper.as_str())
        || upper.starts_with("PYTHON")
    {
        Some("it can make the program run other code")
    } else if upper == MARKER_ENV {
        Some("Gatehouse uses it to track the command's processes")
    } else {
        None
    }
}

/// What a confined command may touch.
#[derive(Debug, Clone)]
pub struct Confinement {
    /// Writable; the command's working directory. Canonical, inside a workspace root.
    pub workspace: PathBuf,
    /// The data directory's workspace: visible although the data directory is hidden.
    pub default_root: PathBuf,
    /// Replaced by empty directories.
    pub hidden: Vec<PathBuf>,
    pub network: bool,
}

impl Confinement {
    /// The default hidden set: the data directory and the credential places under `$HOME`.
    pub fn new(workspace: PathBuf, data_dir: &Path, network: bool) -> Confinement {
        // Canonical, like `workspace`, so the prefix tests below compare like with like.
        let data_dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
        let default_root = data_dir.join("workspace");
        let mut hidden = vec![data_dir];
        if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
            hidden.extend(HIDDEN_IN_HOME.iter().map(|d| home.join(d)));
            hidden.extend(HIDDEN_FILES_IN_HOME.iter().map(|f| home.join(f)));
        }
        Confinement { workspace, default_root, hidden, network }
    }
}

fn bwrap() -> Result<PathBuf> {
    super::resolve_program("bwrap").ok_or_else(|| {
        Error::SandboxUnavailable(
            "commands run inside bubblewrap, which is not installed; install it with `sudo apt-get install bubblewrap`"
                .into(),
        )
    })
}

/// Check once that bubblewrap can create its namespaces here.
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

/// The scrubbed environment: ours without secrets, plus the request's additions.
pub(crate) fn environment(spec: &ExecSpec, marker: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, v)| !secret(k) && !proxy_with_credentials(k, v) && k != MARKER_ENV)
        .collect();
    for (k, v) in &spec.env {
        env.retain(|(name, _)| name != k);
        env.push((k.clone(), v.clone()));
    }
    env.push((MARKER_ENV.to_owned(), marker.to_owned()));
    env
}

/// Replace each path with an empty one: a directory with a tmpfs, a file with /dev/null.
fn hide(cmd: &mut Command, paths: &[&PathBuf]) {
    for path in paths {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                cmd.arg("--tmpfs").arg(path);
            }
            Ok(_) => {
                cmd.arg("--ro-bind").arg("/dev/null").arg(path);
            }
            Err(_) => {}
        }
    }
}

/// A bubblewrap command ready to spawn, and what caps its processes.
pub(crate) struct Sandboxed {
    pub command: Command,
    /// Kept until the command is over.
    pub cap: ProcessCap,
}

/// `bwrap … -- program args`, ready to spawn. `program` is the resolved absolute path.
pub(crate) fn command(spec: &ExecSpec, program: &Path, confinement: &Confinement, marker: &str) -> Result<Sandboxed> {
    // A hidden place cannot be a working directory (binding it would show it again) — except
    // the default workspace, which lives inside the hidden data directory.
    let (cwd, default_root) = (&confinement.workspace, &confinement.default_root);
    if let Some(hidden) = confinement
        .hidden
        .iter()
        .find(|p| cwd.starts_with(p) && !(default_root.starts_with(p) && cwd.starts_with(default_root)))
    {
        return Err(Error::ExecDenied(format!(
            "{} is inside {}, which commands may not see",
            confinement.workspace.display(),
            hidden.display()
        )));
    }
    let mut cmd = Command::new(bwrap()?);
    cmd.args(["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]);
    cmd.args(["--unshare-cgroup-try", "--cap-drop", "ALL"]);
    let cap = ProcessCap::attach(&mut cmd)?;
    if !confinement.network {
        cmd.arg("--unshare-net");
    }
    cmd.args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]);
    // /run holds the user's sockets (session bus, ssh and gpg agents, systemd): connecting to
    // them is a way out that read-only mounts and a network namespace do not close.
    cmd.args(["--tmpfs", "/run"]);
    if confinement.network {
        // Name resolution may live there (systemd-resolved's stub).
        cmd.args(["--ro-bind-try", "/run/systemd/resolve", "/run/systemd/resolve"]);
    }
    // Mounts stack: a hidden path that contains the working directory (the data directory
    // around its default workspace) is hidden first so the workspace shows through it; every
    // other hidden path goes on after the workspace, so a workspace that contains one (a home
    // directory made a workspace root) cannot expose it.
    let (around, inside): (Vec<&PathBuf>, Vec<&PathBuf>) =
        confinement.hidden.iter().partition(|p| confinement.workspace.starts_with(p));
    hide(&mut cmd, &around);
    cmd.arg("--bind").arg(&confinement.workspace).arg(&confinement.workspace);
    hide(&mut cmd, &inside);
    cmd.arg("--chdir").arg(&confinement.workspace);
    cmd.arg("--").arg(program).args(&spec.args);
    // bwrap's own environment is the scrubbed one, not just its child's: bwrap stays in the
    // sandbox as its init, and /proc/1/environ would show anything it was given.
    cmd.env_clear().envs(environment(spec, marker));
    Ok(Sandboxed { command: cmd, cap })
}

/// Processes a command may have at once (a fork bomb stops here, not at the host's limit).
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
pub(crate) enum ProcessCap {
    /// Held for its drop, which removes the cgroup.
    Cgroup { _held: PidsLimit },
    Rlimit(Option<StartGate>),
    /// Root without a pids controller, or a kernel older than 5.14: the PID namespace and
    /// the timeout are what remains.
    None,
}

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
fn user_namespace_cap_works() -> bool {
    use std::os::unix::fs::PermissionsExt;
    let setuid = bwrap().ok().and_then(|b| std::fs::metadata(b).ok()).is_some_and(|m| m.permissions().mode() & 0o4000 != 0);
    !setuid && nproc_counted_per_namespace()
}

/// RLIMIT_NPROC is counted per user namespace from Linux 5.14 on.
fn nproc_counted_per_namespace() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit()).map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (5, 14)
}

/// Holds bubblewrap between making the sandbox and starting the command in it.
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

impl StartGate {
    fn attach(cmd: &mut Command) -> std::io::Result<StartGate> {
        use std::os::fd::AsRawFd;
        let (info, info_end) = pipe()?;
        let (release, release_end) = socket_pair()?;
        let fds = [info_end.as_raw_fd(), release_end.as_raw_fd()];
        cmd.arg("--info-fd").arg(fds[0].to_string()).arg("--block-fd").arg(fds[1].to_string());
        // SAFETY: only fcntl between fork and exec. The fds are close-on-exec in every other
        // process this one starts.
        unsafe {
            cmd.pre_exec(move || {
                for fd in fds {
                    if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
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
pub(crate) struct PidsLimit {
    dir: PathBuf,
    procs: std::ffi::CString,
}

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
    fn secrets_and_loader_variables_are_scrubbed() {
        for name in ["OPENAI_API_KEY", "GITHUB_TOKEN", "aws_secret_access_key", "DB_PASSWORD", "LD_PRELOAD", "LD_LIBRARY_PATH"] {
            assert!(secret(name), "{name}");
        }
        for name in ["PATH", "HOME", "LANG", "TERM"] {
            assert!(!secret(name), "{name}");
        }
        assert!(proxy_with_credentials("https_proxy", "http://u:p@proxy:3128"));
        assert!(!proxy_with_credentials("https_proxy", "http://proxy:3128"));
        assert!(forbidden_override("LD_PRELOAD").is_some() && forbidden_override("PATH").is_some());
        assert!(forbidden_override("LANG").is_none());
    }
}
