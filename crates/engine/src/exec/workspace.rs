//! Workspace roots: the directories commands may write in.
//!
//! A command runs in a directory inside one root, and that whole root — the directory that was
//! checked, held open and compared by identity — is what the sandbox binds writable; the
//! working directory is then entered inside the sandbox. (Binding the working directory
//! itself by name was the hole: a command could swap it for a symlink between the check and
//! the mount.) So that nothing a command can write leads elsewhere:
//! - a root is stored with its device and inode, and a root whose path now leads to another
//!   directory, or through a symlink, is refused;
//! - roots do not nest (a command in the outer one could replace the inner one);
//! - no root is, contains or lies inside the data directory (but the data directory's own
//!   `workspace/`, the default root), and none contains a gateway token file — checked on the
//!   objects, by walking `..` from them, when a root is added and before every command;
//! - the home directory, `/`, the system directories and the shared scratch places cannot be
//!   roots at all.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

use super::held::FileId;
#[cfg(target_os = "linux")]
use super::held::Held;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::writer::{db, WriteOp};
use crate::store::Store;

pub(crate) fn default_root(data_dir: &Path) -> PathBuf {
    data_dir.join("workspace")
}

/// A root as stored (the default one is not stored).
#[derive(Debug, Clone)]
pub(crate) struct Root {
    pub path: PathBuf,
    pub id: Option<FileId>,
    pub default: bool,
}

/// The roots, the default one first (its path canonical when it exists).
pub(crate) async fn roots(store: &Store, data_dir: &Path) -> Result<Vec<Root>> {
    let stored: Vec<(String, Option<i64>, Option<i64>)> = store
        .read(|c| {
            c.prepare_cached("SELECT path, dev, ino FROM exec_workspaces ORDER BY path")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .await?;
    let default = default_root(&std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned()));
    let mut roots = vec![Root { path: default, id: None, default: true }];
    roots.extend(stored.into_iter().map(|(path, dev, ino)| Root {
        path: PathBuf::from(path),
        id: dev.zip(ino).map(|(dev, ino)| FileId { dev: dev as u64, ino: ino as u64 }),
        default: false,
    }));
    Ok(roots)
}

/// What must never be inside a root.
pub(crate) struct Secrets<'a> {
    pub data_dir: &'a Path,
    pub token_files: &'a [PathBuf],
}

/// Where a command runs: the root the sandbox binds writable, and its working directory
/// inside (entered inside the sandbox).
#[derive(Debug, Clone)]
pub(crate) struct Place {
    pub root: PathBuf,
    pub cwd: PathBuf,
    /// A root stored before roots had identities: record this one (its first use).
    pub(crate) record: Option<(PathBuf, FileId)>,
}

/// Check that `cwd` lies inside a root, on the objects themselves.
#[cfg(target_os = "linux")]
pub(crate) fn check(cwd: &Path, roots: &[Root], secrets: &Secrets<'_>) -> Result<Place> {
    let real = std::fs::canonicalize(cwd).map_err(|e| {
        Error::ExecWorkspace(format!("the working directory {} cannot be used: {e}", super::shown_path(cwd)))
    })?;
    if !real.is_dir() {
        return Err(Error::ExecWorkspace(format!("{} is not a directory", super::shown_path(cwd))));
    }
    let containing: Vec<&Root> = roots.iter().filter(|r| real.starts_with(&r.path)).collect();
    let root = match containing.as_slice() {
        [] => {
            return Err(Error::ExecWorkspace(format!(
                "blocked by policy: {} is outside every workspace root (it resolves to {}); add it, or a directory above it, as a workspace root",
                super::shown_path(cwd),
                super::shown_path(&real)
            )))
        }
        [root] => *root,
        [a, b, ..] => return Err(nested(&a.path, &b.path)),
    };
    if let Some(other) = roots.iter().find(|r| r.path != root.path && r.path.starts_with(&root.path)) {
        return Err(nested(&root.path, &other.path));
    }
    let held = open_root(root, secrets.data_dir)?;
    let id = held.id().map_err(|e| gone(&root.path, e))?;
    if root.id.is_some_and(|stored| stored != id) {
        return Err(Error::ExecWorkspace(format!(
            "the workspace root {} is not the directory that was added (it was replaced); if that is expected, remove it and add it again",
            super::shown_path(&root.path)
        )));
    }
    guard(&held, id, root, secrets)?;
    let rel = real.strip_prefix(&root.path).unwrap_or(Path::new(""));
    // The directory is found again from the held root with no symlink allowed: whatever it
    // is now, it is inside the root.
    held.open_beneath(rel).map_err(|e| {
        Error::ExecWorkspace(format!("the working directory {} changed while it was checked: {e}", super::shown_path(cwd)))
    })?;
    let record = (!root.default && root.id.is_none()).then(|| (root.path.clone(), id));
    Ok(Place { root: root.path.clone(), cwd: real, record })
}

#[cfg(target_os = "linux")]
fn open_root(root: &Root, data_dir: &Path) -> Result<Held> {
    if root.default {
        // Inside the data directory, which no command can write: create it if needed.
        std::fs::create_dir_all(&root.path).map_err(|e| {
            Error::ExecWorkspace(format!("cannot create the workspace {}: {e}", super::shown_path(&root.path)))
        })?;
        let data = std::fs::canonicalize(data_dir).map_err(|e| gone(data_dir, e))?;
        return Held::open_dir_nofollow(&data)
            .and_then(|d| d.open_beneath(Path::new("workspace")))
            .map_err(|e| gone(&root.path, e));
    }
    Held::open_dir_nofollow(&root.path).map_err(|e| gone(&root.path, e))
}

/// The data directory and token files are not inside `root`, nor is `root` inside the data
/// directory (but for the default root).
#[cfg(target_os = "linux")]
fn guard(held: &Held, id: FileId, root: &Root, secrets: &Secrets<'_>) -> Result<()> {
    let refuse = |what: String| {
        Err(Error::ExecWorkspace(format!(
            "{what}, so commands there could read or change it; move it, or stop using {} as a workspace root",
            super::shown_path(&root.path)
        )))
    };
    let data = std::fs::canonicalize(secrets.data_dir).ok().and_then(|d| Held::open_dir_nofollow(&d).ok());
    if let Some(data) = data {
        if data.is_within(id).unwrap_or(true) {
            return refuse(format!(
                "Gatehouse's data directory {} is inside the workspace root {}",
                super::shown_path(secrets.data_dir),
                super::shown_path(&root.path)
            ));
        }
        if !root.default && data.id().is_ok_and(|d| held.is_within(d).unwrap_or(true)) {
            return refuse(format!(
                "the workspace root {} is inside Gatehouse's data directory",
                super::shown_path(&root.path)
            ));
        }
    }
    let home = std::env::var_os("HOME").and_then(|h| std::fs::canonicalize(h).ok()).and_then(|h| Held::open_dir_nofollow(&h).ok());
    if home.is_some_and(|h| h.is_within(id).unwrap_or(true)) {
        return refuse(format!(
            "your home directory (keys, browser profiles, shell history) is inside the workspace root {}",
            super::shown_path(&root.path)
        ));
    }
    for file in secrets.token_files {
        let dir = std::fs::canonicalize(file).ok().and_then(|f| f.parent().map(Path::to_owned));
        let Some(dir) = dir.and_then(|d| Held::open(&d).ok()) else { continue };
        if dir.is_within(id).unwrap_or(true) {
            return refuse(format!(
                "the gateway token file {} is inside the workspace root {}",
                super::shown_path(file),
                super::shown_path(&root.path)
            ));
        }
    }
    Ok(())
}

/// The root that holds `file`, by identity (walking up from the file's own directory).
#[cfg(target_os = "linux")]
pub(crate) fn root_holding(file: &Path, roots: &[Root]) -> Option<PathBuf> {
    let dir = std::fs::canonicalize(file).ok()?.parent()?.to_owned();
    let dir = Held::open(&dir).ok()?;
    roots.iter().find_map(|root| {
        let id = Held::open_dir_nofollow(&root.path).ok()?.id().ok()?;
        dir.is_within(id).unwrap_or(true).then(|| root.path.clone())
    })
}

#[cfg(target_os = "linux")]
fn nested(a: &Path, b: &Path) -> Error {
    Error::ExecWorkspace(format!(
        "the workspace roots {} and {} are nested (a command in the outer one could replace the inner one); remove one of them as a workspace root",
        super::shown_path(a),
        super::shown_path(b)
    ))
}

#[cfg(target_os = "linux")]
fn gone(path: &Path, e: std::io::Error) -> Error {
    Error::ExecWorkspace(format!(
        "the workspace root {} cannot be used ({e}); it must be a directory reached without symlinks",
        super::shown_path(path)
    ))
}

/// Places that are never roots: a root there would hand commands the whole system, every
/// user's scratch files, or the person's home with its keys and browser profiles.
#[cfg(target_os = "linux")]
fn forbidden_root(path: &Path) -> Option<&'static str> {
    let home = std::env::var_os("HOME").map(PathBuf::from).and_then(|h| std::fs::canonicalize(h).ok());
    if home.as_ref().is_some_and(|h| h.starts_with(path)) {
        return Some("it is your home directory or contains it (keys, browser profiles, shell history); add a project directory instead");
    }
    if super::program::SYSTEM_DIRS.iter().any(|d| Path::new(d).starts_with(path) || path.starts_with(d)) {
        return Some("it is or contains a system directory");
    }
    let scratch = ["/tmp", "/var/tmp", "/dev/shm", "/run", "/var/run", "/var"];
    if scratch.iter().any(|d| path == Path::new(d)) || ["/proc", "/sys", "/dev", "/run", "/boot"].iter().any(|d| path.starts_with(d)) {
        return Some("it is a shared system place");
    }
    None
}

/// Check a new root (canonical) against everything above, and return it with its identity.
#[cfg(target_os = "linux")]
pub(crate) fn admit(dir: &Path, roots: &[Root], secrets: &Secrets<'_>) -> Result<(PathBuf, FileId)> {
    let real = std::fs::canonicalize(dir)
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| Error::ExecInvalid(format!("{} is not an existing directory", super::shown_path(dir))))?;
    if let Some(why) = forbidden_root(&real) {
        return Err(Error::ExecInvalid(format!("{} cannot be a workspace root: {why}", super::shown_path(&real))));
    }
    let held = Held::open_dir_nofollow(&real).map_err(|e| Error::ExecInvalid(gone(&real, e).to_string()))?;
    let id = held.id().map_err(|e| Error::ExecInvalid(e.to_string()))?;
    let root = Root { path: real.clone(), id: Some(id), default: false };
    guard(&held, id, &root, secrets).map_err(|e| Error::ExecInvalid(e.to_string()))?;
    if let Some(other) = roots.iter().find(|r| r.path != real && (r.path.starts_with(&real) || real.starts_with(&r.path))) {
        return Err(Error::ExecInvalid(match nested(&real, &other.path) {
            Error::ExecWorkspace(m) => m,
            e => e.to_string(),
        }));
    }
    Ok((real, id))
}

/// Elsewhere no command runs, so no directory is checked as a place to run one.
#[cfg(not(target_os = "linux"))]
pub(crate) fn check(_cwd: &Path, _roots: &[Root], _secrets: &Secrets<'_>) -> Result<Place> {
    Err(super::unsupported())
}

/// Elsewhere no command runs: no root is added.
#[cfg(not(target_os = "linux"))]
pub(crate) fn admit(_dir: &Path, _roots: &[Root], _secrets: &Secrets<'_>) -> Result<(PathBuf, FileId)> {
    Err(super::unsupported())
}

/// By path elsewhere: no command runs that could rename its way around it.
#[cfg(not(target_os = "linux"))]
pub(crate) fn root_holding(file: &Path, roots: &[Root]) -> Option<PathBuf> {
    let file = std::fs::canonicalize(file).ok()?;
    roots.iter().find(|r| file.starts_with(&r.path)).map(|r| r.path.clone())
}

pub(crate) struct Add(pub PathBuf, pub FileId);

impl WriteOp for Add {
    type Output = ();
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<()> {
        conn.execute(
            "INSERT INTO exec_workspaces (path, created_at, dev, ino) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (path) DO UPDATE SET dev = excluded.dev, ino = excluded.ino",
            params![self.0.to_string_lossy(), now, self.1.dev as i64, self.1.ino as i64],
        )
        .map_err(db)?;
        Ok(())
    }
}

/// Record the identity of a root stored before roots had one (its first use since).
pub(crate) struct Identify(pub PathBuf, pub FileId);

impl WriteOp for Identify {
    type Output = ();
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<()> {
        conn.execute(
            "UPDATE exec_workspaces SET dev = ?2, ino = ?3 WHERE path = ?1 AND dev IS NULL",
            params![self.0.to_string_lossy(), self.1.dev as i64, self.1.ino as i64],
        )
        .map_err(db)?;
        Ok(())
    }
}

pub(crate) struct Remove(pub PathBuf);

impl WriteOp for Remove {
    type Output = ();
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<()> {
        match conn.execute("DELETE FROM exec_workspaces WHERE path = ?1", [self.0.to_string_lossy()]).map_err(db)? {
            0 => Err(Error::ExecInvalid(format!(
                "{} is not a workspace root (the default one cannot be removed)",
                self.0.display()
            ))),
            _ => Ok(()),
        }
    }
}
