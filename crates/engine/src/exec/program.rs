//! The program a command runs, resolved once to an open file.
//!
//! The policy decides on that file and the sandbox runs that file:
//! - a bare name is looked up on [`SANDBOX_PATH`], the system directories a command can see
//!   (not the caller's `PATH`: a `python3` under `~/.pyenv` would not exist inside the
//!   sandbox, and a name must mean the same thing to the check and to the run);
//! - a path is opened as given (relative to the working directory), following symlinks —
//!   that one open is the resolution;
//! - a program in a system directory (read-only to every command, owned by root) runs from
//!   its own path, so `argv[0]` and everything that finds its files through it work;
//! - any other program (one in a workspace, which a command can rewrite) is copied out of the
//!   opened file into a sealed memory file, hashed on the way, and bubblewrap copies that into
//!   the sandbox: the bytes that were checked are the bytes that run, whatever happens to the
//!   name afterwards.

#[cfg(target_os = "linux")]
use std::io::{Read, Seek, Write};
#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
#[cfg(target_os = "linux")]
use std::os::unix::fs::PermissionsExt;
#[cfg(target_os = "linux")]
use std::path::Component;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::held::FileId;
use crate::error::{Error, Result};

/// Where bare program names are found: what a command sees of the host's programs.
pub const SANDBOX_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Directories every command sees read-only. None of them is writable by a command, and on a
/// normal system only root can change them.
pub(crate) const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"];

/// Programs larger than this are not copied into a sandbox (a workspace program is a script
/// or a small tool; a bigger one belongs in a system directory).
#[cfg(target_os = "linux")]
const MAX_COPY: u64 = 256 * 1024 * 1024;

#[derive(Debug)]
pub(crate) struct Program {
    /// As the request named it, made absolute (and found on [`SANDBOX_PATH`] for a bare name).
    pub found: PathBuf,
    /// Where the opened file is.
    pub real: PathBuf,
    pub id: FileId,
    /// How it reaches the sandbox.
    pub source: Source,
}

#[derive(Debug)]
pub(crate) enum Source {
    /// In a system directory: run from `found`, which resolves to the same file inside.
    System,
    /// Anywhere else: these bytes (a sealed memory file) with this hash.
    Copy {
        #[cfg(target_os = "linux")]
        bytes: OwnedFd,
        sha256: String,
    },
}

impl Program {
    /// Its name, as `argv[0]` shows it to the program (multi-call programs look at it).
    pub(crate) fn name(&self) -> String {
        let name = self.found.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.is_empty() || name == "." || name == ".." {
            "program".into()
        } else {
            name
        }
    }

    pub(crate) fn sha256(&self) -> Option<&str> {
        match &self.source {
            Source::System => None,
            Source::Copy { sha256, .. } => Some(sha256),
        }
    }

    /// Said in an approval prompt and the audit: the name, and the file when they differ.
    pub(crate) fn describe(&self) -> String {
        if self.found == self.real {
            self.real.display().to_string()
        } else {
            format!("{} → {}", self.found.display(), self.real.display())
        }
    }
}

/// Resolve `program` (a bare name, or a path relative to `cwd`) to an open file.
#[cfg(target_os = "linux")]
pub(crate) fn resolve(program: &str, cwd: Option<&Path>) -> Result<Program> {
    let not_found = || {
        Error::ExecInvalid(format!(
            "the program `{}` was not found or is not executable (bare names are looked up in {SANDBOX_PATH})",
            super::shown(program)
        ))
    };
    let candidates: Vec<PathBuf> = if program.contains('/') {
        let p = Path::new(program);
        vec![match (p.is_absolute(), cwd) {
            (false, Some(cwd)) => cwd.join(p),
            (false, None) => std::path::absolute(p).map_err(|_| not_found())?,
            _ => p.to_owned(),
        }]
    } else if program.is_empty() || program == "." || program == ".." {
        return Err(not_found());
    } else {
        SANDBOX_PATH.split(':').map(|dir| Path::new(dir).join(program)).collect()
    };
    for found in candidates {
        let Ok(file) = std::fs::File::open(&found) else { continue };
        let Ok(meta) = file.metadata() else { continue };
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            continue;
        }
        use std::os::unix::fs::MetadataExt;
        let id = FileId { dev: meta.dev(), ino: meta.ino() };
        let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(|_| not_found())?;
        let found = normalize(&found);
        // Both names inside the system directories, and the name still leading to this very
        // file: then it is the same file inside the sandbox.
        let system = in_system_dir(&found)
            && in_system_dir(&real)
            && std::fs::metadata(&found).is_ok_and(|m| FileId { dev: m.dev(), ino: m.ino() } == id);
        let source = if system {
            Source::System
        } else {
            if meta.len() > MAX_COPY {
                return Err(Error::ExecInvalid(format!(
                    "{} is too large to run from outside the system directories ({} MiB; at most {} MiB)",
                    super::shown(&real.to_string_lossy()),
                    meta.len() >> 20,
                    MAX_COPY >> 20
                )));
            }
            let (bytes, sha256) = copy_sealed(file, &found)
                .map_err(|e| Error::ExecInvalid(format!("cannot read the program {}: {e}", found.display())))?;
            Source::Copy { bytes, sha256 }
        };
        return Ok(Program { found, real, id, source });
    }
    Err(not_found())
}

/// Elsewhere nothing is resolved: commands run only in the Linux sandbox.
#[cfg(not(target_os = "linux"))]
pub(crate) fn resolve(_program: &str, _cwd: Option<&Path>) -> Result<Program> {
    Err(super::unsupported())
}

/// Elsewhere no rule names a file (no command runs).
#[cfg(not(target_os = "linux"))]
pub(crate) fn rule_target(_path: &str) -> Option<(FileId, Option<String>)> {
    None
}

/// The file a rule's program path stands for now, and whether the rule names it by another
/// name (a symlink such as `/usr/sbin/reboot` → `systemctl`): then only that name matches,
/// because a multi-call program does what its name says.
#[cfg(target_os = "linux")]
pub(crate) fn rule_target(path: &str) -> Option<(FileId, Option<String>)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let id = FileId { dev: meta.dev(), ino: meta.ino() };
    let named = Path::new(path).file_name()?.to_string_lossy().into_owned();
    let real = std::fs::canonicalize(path).ok()?;
    let alias = (real.file_name()?.to_string_lossy() != named).then_some(named);
    Some((id, alias))
}

#[cfg(target_os = "linux")]
pub(crate) fn in_system_dir(path: &Path) -> bool {
    SYSTEM_DIRS.iter().any(|d| path.starts_with(d))
}

/// `.` and `..` taken out by their text (for display and for the system-directory test; the
/// kernel's own resolution is what [`resolve`] opened).
#[cfg(target_os = "linux")]
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Copy `file` into a sealed memory file (nothing can change it afterwards), hashing it.
#[cfg(target_os = "linux")]
fn copy_sealed(mut file: std::fs::File, found: &Path) -> std::io::Result<(OwnedFd, String)> {
    let name = std::ffi::CString::new("gatehouse-program").expect("no NUL");
    // SAFETY: a valid C string; the fd is owned exactly once below.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor, owned by nobody else.
    let mut memory = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        if total > MAX_COPY {
            return Err(std::io::Error::other(format!("{} grew past {} MiB while it was read", found.display(), MAX_COPY >> 20)));
        }
        hash.update(&buf[..n]);
        memory.write_all(&buf[..n])?;
    }
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: plain fcntl on a descriptor we own.
    if unsafe { libc::fcntl(memory.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    memory.rewind()?;
    let digest = hash.finalize();
    Ok((memory.into(), digest.iter().map(|b| format!("{b:02x}")).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_come_from_the_system_directories_and_run_from_there() {
        let sh = resolve("sh", None).unwrap();
        assert!(in_system_dir(&sh.found), "{:?}", sh.found);
        assert!(matches!(sh.source, Source::System));
        assert_eq!(sh.name(), "sh");
    }

    #[test]
    fn a_program_in_a_writable_place_is_copied_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\necho hi\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = resolve("./tool", Some(dir.path())).unwrap();
        let Source::Copy { sha256, .. } = &p.source else { panic!("not copied") };
        assert_eq!(sha256.len(), 64);
        std::fs::write(&tool, "#!/bin/sh\necho changed\n").unwrap();
        assert_ne!(resolve("./tool", Some(dir.path())).unwrap().sha256(), Some(sha256.as_str()));
    }
}
