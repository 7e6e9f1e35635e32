//! Copies of the database: a backup taken while Gatehouse runs, a restore while it does not,
//! and the snapshot taken before every schema migration.
//!
//! All three copy through SQLite's online backup API in one step: the copy is one read
//! transaction, so it is the database as of one moment even while workers and chats write
//! (WAL lets them go on), and it includes what the WAL holds. A copy is written beside its
//! destination as `.part`, checked (`PRAGMA integrity_check`), then renamed: a half-written
//! file never has the real name.
//!
//! Running Gatehouse processes hold a shared lock on `gatehouse.db.inuse` for as long as their
//! store is open; a restore takes it exclusively without waiting, so it refuses while the app,
//! a worker or a chat is running — and no process can open the database while it swaps it.
//!
//! Snapshots (before a migration, and of the data a restore replaces) go to `snapshots/` in
//! the data directory, named by schema version and time; the newest [`SNAPSHOTS_KEPT`] stay.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use super::{DB_FILE, MIGRATIONS};
use crate::error::{Error, Result};

/// Snapshots kept in `snapshots/`: an upgrade that goes wrong is noticed within a few.
pub const SNAPSHOTS_KEPT: usize = 3;

/// The folder of snapshots in a data directory.
pub fn snapshots_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots")
}

/// What a copy of the database holds, as read from the copy itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copied {
    /// Where the copy is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its schema version (the number of migrations applied to it).
    pub schema: i64,
    /// Conversations in it.
    pub conversations: i64,
    /// Jobs in it.
    pub jobs: i64,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restored {
    /// The database now in use, as restored.
    pub restored: Copied,
    /// The data it replaced, kept as a snapshot (`None` when there was no database).
    pub previous: Option<PathBuf>,
}

fn fail(message: String) -> Error {
    Error::Backup(message)
}

/// The lock every open store holds shared, and a restore exclusively.
pub(crate) struct InUse {
    _file: std::fs::File,
}

impl InUse {
    /// Shared: this process uses the database. Waits while a restore swaps it.
    pub(crate) fn share(data_dir: &Path) -> Result<InUse> {
        InUse::take(data_dir, super::Lock::Shared)
    }

    fn take(data_dir: &Path, how: super::Lock) -> Result<InUse> {
        let path = data_dir.join(format!("{DB_FILE}.inuse"));
        match super::lock(&path, how) {
            Ok(file) => Ok(InUse { _file: file }),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(Error::InUse { path: data_dir.to_owned() }),
            Err(e) => Err(super::lock_failed(&path, e)),
        }
    }
}

/// Copy the database at `from` (a live one is fine) to `to`, which must not exist, and check
/// the copy. Blocking.
pub(crate) fn copy(from: &Path, to: &Path) -> Result<Copied> {
    if to.symlink_metadata().is_ok() {
        return Err(fail(format!("{} already exists; choose another name, or delete it first", to.display())));
    }
    let part = part_of(to);
    let _ = std::fs::remove_file(&part);
    let result = (|| {
        let src = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| fail(format!("cannot open {}: {e}", from.display())))?;
        src.busy_timeout(super::BUSY_TIMEOUT).map_err(|e| fail(e.to_string()))?;
        let mut dst = Connection::open(&part).map_err(|e| fail(format!("cannot write {}: {e}", part.display())))?;
        {
            let backup = rusqlite::backup::Backup::new(&src, &mut dst)
                .map_err(|e| fail(format!("cannot copy {}: {e}", from.display())))?;
            // All pages in one step: one read transaction, so one moment of the database.
            backup.step(-1).map_err(|e| copy_failed(e, &part))?;
        }
        drop(src);
        // A copy of a WAL database is marked WAL too; a backup is one file, so not here.
        dst.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
            .map_err(|e| fail(format!("cannot write {}: {e}", part.display())))?;
        let copied = check(&dst, &part)?;
        drop(dst);
        std::fs::File::open(&part)
            .and_then(|f| f.sync_all())
            .map_err(|e| fail(format!("cannot write {}: {e}", part.display())))?;
        std::fs::rename(&part, to).map_err(|e| fail(format!("cannot move the copy to {}: {e}", to.display())))?;
        Ok(Copied { path: to.to_owned(), ..copied })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

fn part_of(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".part");
    path.with_file_name(name)
}

fn copy_failed(e: rusqlite::Error, path: &Path) -> Error {
    match Error::from_sqlite(e, path) {
        Error::DiskFull => Error::DiskFull,
        other => fail(format!("the copy failed: {other}")),
    }
}

/// Check a copy: intact, a Gatehouse database of a schema this build knows; what it holds.
fn check(conn: &Connection, path: &Path) -> Result<Copied> {
    let q = |e: rusqlite::Error| fail(format!("{} cannot be read as a Gatehouse database ({e})", path.display()));
    let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(q)?;
    if verdict != "ok" {
        return Err(fail(format!("{} is damaged (SQLite's integrity check says: {verdict})", path.display())));
    }
    let schema: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(q)?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('jobs', 'conversations')", [], |r| r.get(0))
        .map_err(q)?;
    if schema < 1 || tables < 1 {
        return Err(fail(format!("{} is not a Gatehouse database or backup", path.display())));
    }
    if schema > MIGRATIONS.len() as i64 {
        return Err(Error::StoreNewerSchema { path: path.to_owned(), found: schema, known: MIGRATIONS.len() as i64 });
    }
    let count = |table: &str| -> Result<i64> {
        let exists: bool = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| r.get(0))
            .map_err(q)?;
        if !exists {
            return Ok(0);
        }
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).map_err(q)
    };
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(Copied { path: path.to_owned(), bytes, schema, conversations: count("conversations")?, jobs: count("jobs")? })
}

/// Snapshot the database at `db` (schema `version`) into `snapshots/` before it is changed,
/// and keep only the newest [`SNAPSHOTS_KEPT`]. `why` goes into the name (`before-v12`,
/// `before-restore`). Blocking.
pub(crate) fn snapshot(data_dir: &Path, db: &Path, why: &str, now_ms: i64) -> Result<PathBuf> {
    let dir = snapshots_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let stamp = chrono::DateTime::from_timestamp_millis(now_ms)
        .map(|t| t.format("%Y%m%d-%H%M%S%.3f").to_string())
        .unwrap_or_else(|| now_ms.to_string());
    let to = dir.join(format!("gatehouse-{stamp}-{why}.db"));
    copy(db, &to)?;
    prune_snapshots(&dir);
    Ok(to)
}

/// Delete all but the newest snapshots (their names sort by time).
fn prune_snapshots(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut names: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "db") && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("gatehouse-")))
        .collect();
    names.sort();
    let old = names.len().saturating_sub(SNAPSHOTS_KEPT);
    for path in &names[..old] {
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!(path = %path.display(), error = %e, "removing an old snapshot");
        }
    }
}

/// Replace the database in `data_dir` with the backup at `from`, which is checked first; the
/// data it replaces is kept as a snapshot. Refuses while Gatehouse runs on `data_dir`.
/// Blocking.
pub fn restore(data_dir: &Path, from: &Path, now_ms: i64) -> Result<Restored> {
    crate::paths::prepare_data_dir(data_dir)?;
    let _alone = InUse::take(data_dir, super::Lock::ExclusiveNow)?;
    let db = data_dir.join(DB_FILE);
    let incoming = data_dir.join(format!("{DB_FILE}.restoring"));
    let _ = std::fs::remove_file(&incoming);
    // Copied, then checked (intact, a Gatehouse database, a schema this build knows) before
    // anything of the current data is touched.
    let restored = copy(from, &incoming)?;
    // The old data, WAL included, is kept before anything replaces it.
    let previous = if db.exists() {
        let version: i64 = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
            .unwrap_or(0);
        let kept = snapshot(data_dir, &db, &format!("v{version}-before-restore"), now_ms)?;
        // Fold the WAL into the file and end it, so no old WAL can meet the new database.
        let conn = Connection::open(&db).map_err(|e| fail(format!("cannot open {}: {e}", db.display())))?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| fail(format!("cannot checkpoint {}: {e}", db.display())))?;
        drop(conn);
        Some(kept)
    } else {
        None
    };
    for side in ["-wal", "-shm"] {
        let path = data_dir.join(format!("{DB_FILE}{side}"));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail(format!("cannot remove {}: {e}", path.display()))),
        }
    }
    std::fs::rename(&incoming, &db).map_err(|e| fail(format!("cannot put the backup in place at {}: {e}", db.display())))?;
    Ok(Restored { restored: Copied { path: db, ..restored }, previous })
}
