//! Workspace roots: the directories commands may write in. A command's working directory must
//! be inside one (after following symlinks), and it is the only place the command can write.
//! The data directory's `workspace/` is always one.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::writer::{db, WriteOp};
use crate::store::Store;

pub(crate) fn default_root(data_dir: &Path) -> PathBuf {
    data_dir.join("workspace")
}

/// The roots, the default one first.
pub(crate) async fn roots(store: &Store, data_dir: &Path) -> Result<Vec<PathBuf>> {
    let stored: Vec<String> = store
        .read(|c| c.prepare_cached("SELECT path FROM exec_workspaces ORDER BY path")?.query_map([], |r| r.get(0))?.collect())
        .await?;
    let mut roots = vec![default_root(data_dir)];
    roots.extend(stored.into_iter().map(PathBuf::from));
    Ok(roots)
}

/// The canonical working directory for a command, if it lies inside a root.
pub(crate) fn check(cwd: &Path, roots: &[PathBuf]) -> Result<PathBuf> {
    let real = std::fs::canonicalize(cwd)
        .map_err(|e| Error::ExecWorkspace(format!("the working directory {} cannot be used: {e}", cwd.display())))?;
    if !real.is_dir() {
        return Err(Error::ExecWorkspace(format!("{} is not a directory", cwd.display())));
    }
    let inside = roots.iter().filter_map(|r| std::fs::canonicalize(r).ok()).any(|root| real.starts_with(&root));
    if !inside {
        return Err(Error::ExecWorkspace(format!(
            "blocked by policy: {} is outside every workspace root (it resolves to {}); add one with `gatehouse exec workspace add DIR`",
            cwd.display(),
            real.display()
        )));
    }
    Ok(real)
}

pub(crate) struct Add(pub PathBuf);

impl WriteOp for Add {
    type Output = ();
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<()> {
        conn.execute(
            "INSERT INTO exec_workspaces (path, created_at) VALUES (?1, ?2) ON CONFLICT (path) DO NOTHING",
            params![self.0.to_string_lossy(), now],
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
