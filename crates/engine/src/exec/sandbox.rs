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
];
/// Files under `$HOME` that hold credentials.
const HIDDEN_FILES_IN_HOME: &[&str] = &[".netrc", ".git-credentials", ".pgpass"];

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
    if upper.starts_with("LD_") || upper.starts_with("DYLD_") {
        Some("it changes which libraries are loaded")
    } else if upper == "PATH" {
        Some("it changes which programs run")
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
    /// Replaced by empty directories.
    pub hidden: Vec<PathBuf>,
    pub network: bool,
}

impl Confinement {
    /// The default hidden set: the data directory and the credential places under `$HOME`.
    pub fn new(workspace: PathBuf, data_dir: &Path, network: bool) -> Confinement {
        let mut hidden = vec![data_dir.to_owned()];
        if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
            hidden.extend(HIDDEN_IN_HOME.iter().map(|d| home.join(d)));
            hidden.extend(HIDDEN_FILES_IN_HOME.iter().map(|f| home.join(f)));
        }
        Confinement { workspace, hidden, network }
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
    let out = std::process::Command::new(&bwrap)
        .args(["--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--die-with-parent", "--", "true"])
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

/// `bwrap … -- program args`, ready to spawn. `program` is the resolved absolute path.
pub(crate) fn command(spec: &ExecSpec, program: &Path, confinement: &Confinement, marker: &str) -> Result<Command> {
    let mut cmd = Command::new(bwrap()?);
    cmd.args(["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]);
    cmd.args(["--unshare-cgroup-try", "--cap-drop", "ALL"]);
    if !confinement.network {
        cmd.arg("--unshare-net");
    }
    cmd.args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]);
    for path in &confinement.hidden {
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
    // After the hidden ones: a workspace inside the data directory is visible again.
    cmd.arg("--bind").arg(&confinement.workspace).arg(&confinement.workspace);
    cmd.arg("--chdir").arg(&confinement.workspace);
    cmd.arg("--clearenv");
    for (k, v) in environment(spec, marker) {
        cmd.arg("--setenv").arg(k).arg(v);
    }
    cmd.arg("--").arg(program).args(&spec.args);
    // bwrap itself gets our marker too, so leftovers are found whatever happens.
    cmd.env(MARKER_ENV, marker);
    Ok(cmd)
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
