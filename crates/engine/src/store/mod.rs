//! The SQLite store.
//!
//! One file, `gatehouse.db` in the data directory, shared by every Gatehouse process on the
//! machine. Writes go through exactly one connection per process, owned by the `writer`
//! thread, which groups whatever writes are waiting into one `BEGIN IMMEDIATE` transaction
//! (group commit): a burst of submits or completions costs one commit, not one each. Reads use
//! a few read-only connections on tokio's blocking threads, which WAL lets run beside the writer.
//!
//! Why rusqlite on our own thread rather than sqlx (which DESIGN.md first named): sqlx's
//! SQLite driver runs every statement on a connection thread with a channel hop each way,
//! measured at 81 µs per `SELECT 1` on the 2-core target machine. A claim is several
//! statements, so the queue could not pass ~3,000 jobs/s; with the statements run in place on
//! the writer thread it does over 12,000 (docs/performance.md).
//!
//! The connection settings are set at open and read back: SQLite ignores a pragma it does not
//! know, so a typo or an unsupported mode would otherwise go unnoticed.

pub mod backup;
pub(crate) mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::clock::SharedClock;
use crate::error::{Error, Result};
pub(crate) use writer::Writer;

/// The database's file name in the data directory; every process on the machine opens this one.
pub const DB_FILE: &str = "gatehouse.db";

/// How long a statement waits for another process's write lock before failing with
/// `store.busy`. Write transactions here are short (a batch of row updates), so five seconds
/// means something is wrong, not merely busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections. The CLI makes one or two reads at a time; the desktop app a handful of
/// windows' worth. SQLite readers are cheap under WAL, but each holds a file handle and a cache.
const READERS: usize = 4;

/// The schema, oldest first. Never edit a released migration: add one.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_jobs.sql"),
    include_str!("../../migrations/0002_chat.sql"),
    include_str!("../../migrations/0003_exec.sql"),
    include_str!("../../migrations/0004_exec_grants.sql"),
    include_str!("../../migrations/0005_settings.sql"),
    include_str!("../../migrations/0006_message_tools.sql"),
    include_str!("../../migrations/0007_exec_grant_scope.sql"),
    include_str!("../../migrations/0008_remote_sessions.sql"),
    include_str!("../../migrations/0009_gateway_token_keyring.sql"),
    include_str!("../../migrations/0010_exec_identity.sql"),
    include_str!("../../migrations/0011_job_feed.sql"),
    include_str!("../../migrations/0012_exec_approvals.sql"),
    include_str!("../../migrations/0013_chat_feed.sql"),
    include_str!("../../migrations/0014_chat_search.sql"),
    include_str!("../../migrations/0015_job_interruptions.sql"),
    include_str!("../../migrations/0016_turn_history.sql"),
    include_str!("../../migrations/0017_tool_output.sql"),
];

/// The open database: one writer thread and a few read connections, shared by cloning.
#[derive(Clone)]
pub struct Store {
    pub(crate) path: PathBuf,
    read: Arc<Readers>,
    pub(crate) writer: Writer,
    /// Held while the store is open: a restore refuses while any process holds it.
    _in_use: Arc<backup::InUse>,
}

impl Store {
    /// Open (creating if needed) the database in `data_dir`, migrate it, and start the writer.
    pub async fn open(data_dir: &Path, clock: SharedClock) -> Result<Store> {
        crate::paths::prepare_data_dir(data_dir)?;
        let path = data_dir.join(DB_FILE);
        let dir = data_dir.to_owned();
        let db = path.clone();
        let now = clock.now();
        let (conn, in_use) = tokio::task::spawn_blocking(move || -> Result<(Connection, backup::InUse)> {
            // Waits while a restore swaps the database file.
            let in_use = backup::InUse::share(&dir)?;
            // Two processes opening a new database at once must not both create, switch to WAL
            // and migrate it: SQLite answers the loser with SQLITE_BUSY at once, without
            // waiting, while the journal mode changes.
            let _lock = OpenLock::take(&dir)?;
            let mut conn = connect(&db, false)?;
            migrate(&mut conn, &db, &dir, now)?;
            Ok((conn, in_use))
        })
        .await
        .map_err(|e| Error::Store(e.to_string()))??;
        let read = Arc::new(Readers { path: path.clone(), conns: (0..READERS).map(|_| Mutex::new(None)).collect() });
        let writer = Writer::start(conn, clock)?;
        Ok(Store { path, read, writer, _in_use: Arc::new(in_use) })
    }

    /// The database file's path, for messages and diagnostics.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` on a read connection, on a blocking thread.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let readers = self.read.clone();
        tokio::task::spawn_blocking(move || readers.with(f)).await.map_err(|e| Error::Store(e.to_string()))?
    }

    /// Let queued writes finish and close every connection (checkpointing the WAL).
    pub async fn close(self) {
        let Store { read, writer, .. } = self;
        drop(read);
        writer.close().await;
    }
}

/// A read-only connection of its own, for a reader that must keep one connection (the job
/// feed's `PRAGMA data_version` counts commits by *other* connections than the one asking).
pub(crate) fn reader(path: &Path) -> Result<Connection> {
    connect(path, true)
}

/// Open a connection with the settings every connection must have, and check that SQLite took
/// them.
fn connect(path: &Path, read_only: bool) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let err = |e| Error::from_sqlite(e, path);
    let conn = Connection::open_with_flags(path, flags).map_err(err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    let mut settings = vec![("synchronous", "NORMAL", "1"), ("foreign_keys", "ON", "1")];
    if !read_only {
        settings.insert(0, ("journal_mode", "WAL", "wal"));
    }
    for (pragma, value, _) in &settings {
        // journal_mode answers with a row; the others answer nothing.
        conn.query_row(&format!("PRAGMA {pragma} = {value}"), [], |_| Ok(())).or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(()),
            e => Err(err(e)),
        })?;
    }
    settings.push(("busy_timeout", "", "5000"));
    if read_only {
        settings.push(("journal_mode", "", "wal"));
    }
    for (pragma, _, wanted) in settings {
        let got: String = conn
            .query_row(&format!("PRAGMA {pragma}"), [], |row| {
                row.get::<_, String>(0).or_else(|_| row.get::<_, i64>(0).map(|n| n.to_string()))
            })
            .map_err(err)?;
        if !got.eq_ignore_ascii_case(wanted) {
            return Err(Error::StorePragma { pragma, wanted: wanted.to_owned(), got });
        }
    }
    Ok(conn)
}

/// Bring the schema up to date. A database made by an older Gatehouse is snapshotted first
/// (`snapshots/`, the newest three kept): an upgrade never loses a history, and if one goes
/// wrong the data from before it is a file away. No snapshot, no migration.
fn migrate(conn: &mut Connection, path: &Path, data_dir: &Path, now: crate::clock::Millis) -> Result<()> {
    use rusqlite_migration::{Error as MigrationError, MigrationDefinitionError, Migrations, M};
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| Error::from_sqlite(e, path))?;
    let latest = MIGRATIONS.len() as i64;
    if version > 0 && version < latest {
        let kept = backup::snapshot(data_dir, path, &format!("v{version}-before-v{latest}"), now).map_err(|e| {
            Error::Store(format!("the database needs upgrading (schema {version} to {latest}) and could not be snapshotted first, so it was left as it is: {e}"))
        })?;
        tracing::info!(from = version, to = latest, snapshot = %kept.display(), "upgrading the database schema");
    }
    let migrations = Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect());
    match migrations.to_latest(conn) {
        Ok(()) => Ok(()),
        Err(MigrationError::MigrationDefinition(MigrationDefinitionError::DatabaseTooFarAhead)) => {
            let found = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap_or(-1);
            Err(Error::StoreNewerSchema { path: path.to_owned(), found, known: MIGRATIONS.len() as i64 })
        }
        Err(MigrationError::RusqliteError { err, .. }) => Err(Error::from_sqlite(err, path)),
        Err(e) => Err(Error::Store(format!("migrating {}: {e}", path.display()))),
    }
}

/// The read side: a few connections, opened on first use, each used by one blocking task at a
/// time.
struct Readers {
    path: PathBuf,
    conns: Vec<Mutex<Option<Connection>>>,
}

impl Readers {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        // A free connection if there is one, else wait for the first.
        let mut guard = match self.conns.iter().find_map(|c| c.try_lock().ok()) {
            Some(guard) => guard,
            None => self.conns[0].lock().unwrap_or_else(|e| e.into_inner()),
        };
        if guard.is_none() {
            *guard = Some(connect(&self.path, true)?);
        }
        let conn = guard.as_ref().expect("opened above");
        f(conn).map_err(|e| Error::from_sqlite(e, &self.path))
    }
}

/// An exclusive lock on `<data dir>/gatehouse.db.lock`, released on drop (or when the
/// process dies, so a crash never leaves it held).
struct OpenLock {
    _file: std::fs::File,
}

impl OpenLock {
    fn take(data_dir: &Path) -> Result<OpenLock> {
        let path = data_dir.join(format!("{DB_FILE}.lock"));
        let file = lock(&path, Lock::Exclusive).map_err(|e| lock_failed(&path, e))?;
        Ok(OpenLock { _file: file })
    }
}

/// How [`lock`] takes its lock.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lock {
    /// Shared with other shared holders; waits for an exclusive one.
    Shared,
    /// Alone; waits for every other holder.
    Exclusive,
    /// Alone, or at once `WouldBlock`.
    ExclusiveNow,
}

/// Lock `path` (created if needed) as `how` says, held until the returned file is closed.
/// The standard library's file lock: `flock` on Linux and macOS, `LockFileEx` on Windows.
pub(crate) fn lock(path: &Path, how: Lock) -> std::io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
    match how {
        Lock::Shared => file.lock_shared()?,
        Lock::Exclusive => file.lock()?,
        Lock::ExclusiveNow => file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => std::io::ErrorKind::WouldBlock.into(),
            std::fs::TryLockError::Error(e) => e,
        })?,
    }
    Ok(file)
}

pub(crate) fn lock_failed(path: &Path, e: std::io::Error) -> Error {
    Error::DataDir { path: path.to_owned(), reason: format!("cannot lock it ({e})") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    fn open(dir: &Path) -> impl std::future::Future<Output = Result<Store>> + '_ {
        Store::open(dir, Arc::new(SystemClock))
    }

    #[tokio::test]
    async fn pragmas_hold_on_every_connection() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await.unwrap();
        let (mode, fk, sync): (String, i64, i64) = store
            .read(|c| {
                Ok((
                    c.pragma_query_value(None, "journal_mode", |r| r.get(0))?,
                    c.pragma_query_value(None, "foreign_keys", |r| r.get(0))?,
                    c.pragma_query_value(None, "synchronous", |r| r.get(0))?,
                ))
            })
            .await
            .unwrap();
        assert_eq!((mode.as_str(), fk, sync), ("wal", 1, 1));
        store.close().await;
    }

    #[tokio::test]
    async fn a_file_that_is_not_sqlite_is_reported_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), vec![b'x'; 8192]).unwrap();
        let err = open(dir.path()).await.err().expect("must fail");
        assert_eq!(err.code(), "store.corrupt", "{err}");
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused_with_its_version() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path()).await.unwrap().close().await;
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.pragma_update(None, "user_version", 9999).unwrap();
        drop(conn);
        let err = open(dir.path()).await.err().expect("must fail");
        assert_eq!(err.code(), "store.newer_schema", "{err}");
        assert!(err.to_string().contains("9999"), "{err}");
    }

    #[tokio::test]
    async fn conversations_from_before_turn_history_become_one_branch_each() {
        use rusqlite_migration::{Migrations, M};
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        Migrations::new(MIGRATIONS[..15].iter().map(|sql| M::up(sql)).collect()).to_latest(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO gateways (name, kind, url, created_at) VALUES ('claw', 'openclaw', 'ws://x', 0), ('api', 'openai', 'http://x', 0);
             INSERT INTO conversations (id, title, gateway, created_at, updated_at) VALUES (1, 'a', 'claw', 0, 0), (2, 'b', 'api', 0, 0);
             INSERT INTO messages (id, conversation_id, role, text, state, created_at, updated_at) VALUES
                 (1, 1, 'user', 'q', 'complete', 0, 0), (2, 2, 'user', 'other', 'complete', 0, 0),
                 (3, 1, 'assistant', 'r', 'complete', 0, 0), (4, 1, 'user', 'q2', 'complete', 0, 0);",
        )
        .unwrap();
        drop(conn);
        let store = open(dir.path()).await.unwrap();
        let (links, sessions) = store
            .read(|c| {
                let links: Vec<(i64, Option<i64>, bool)> = c
                    .prepare("SELECT id, parent_id, active FROM messages ORDER BY id")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let sessions: Vec<(String, String, i64, i64)> = c
                    .prepare("SELECT gateway, key, conversation_id, last_message_id FROM chat_sessions")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                Ok((links, sessions))
            })
            .await
            .unwrap();
        assert_eq!(links, [(1, None, true), (2, None, true), (3, Some(1), true), (4, Some(3), true)]);
        // Only the OpenClaw conversation had a session, holding all of it.
        assert_eq!(sessions, [("claw".to_owned(), "gatehouse-1".to_owned(), 1, 4)]);
        store.close().await;
    }

    /// A database as an older Gatehouse (schema 15) left it, holding one conversation.
    fn older_database(dir: &Path, title: &str) {
        use rusqlite_migration::{Migrations, M};
        for side in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("{DB_FILE}{side}")));
        }
        let mut conn = Connection::open(dir.join(DB_FILE)).unwrap();
        Migrations::new(MIGRATIONS[..15].iter().map(|sql| M::up(sql)).collect()).to_latest(&mut conn).unwrap();
        conn.execute("INSERT INTO conversations (title, created_at, updated_at) VALUES (?1, 0, 0)", [title]).unwrap();
    }

    fn snapshots(dir: &Path) -> Vec<(String, i64, String)> {
        let mut found: Vec<PathBuf> = match std::fs::read_dir(backup::snapshots_dir(dir)) {
            Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
            Err(_) => return Vec::new(),
        };
        // Nothing but the snapshots themselves: no journal or lock files beside them.
        assert!(found.iter().all(|p| p.extension().is_some_and(|x| x == "db")), "{found:?}");
        found.sort();
        found
            .iter()
            .map(|path| {
                let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
                let version = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
                let title = c.query_row("SELECT title FROM conversations", [], |r| r.get(0)).unwrap();
                (path.file_name().unwrap().to_string_lossy().into_owned(), version, title)
            })
            .collect()
    }

    #[tokio::test]
    async fn an_older_database_is_snapshotted_before_each_upgrade_and_the_newest_three_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(crate::clock::ManualClock::new());
        let latest = MIGRATIONS.len();
        for round in 0..4 {
            older_database(dir.path(), &format!("round {round}"));
            clock.advance(Duration::from_secs(1));
            let store = Store::open(dir.path(), clock.clone()).await.unwrap();
            // Upgraded, the history intact.
            let title: String = store.read(|c| c.query_row("SELECT title FROM conversations", [], |r| r.get(0))).await.unwrap();
            assert_eq!(title, format!("round {round}"));
            store.close().await;
            let kept = snapshots(dir.path());
            assert_eq!(kept.len(), (round + 1).min(3));
            let (name, version, title) = kept.last().unwrap();
            assert!(name.ends_with(&format!("-v15-before-v{latest}.db")), "{name}");
            assert_eq!((*version, title.as_str()), (15, format!("round {round}").as_str()));
        }
        let titles: Vec<String> = snapshots(dir.path()).into_iter().map(|(_, _, t)| t).collect();
        assert_eq!(titles, ["round 1", "round 2", "round 3"]);
        // Opening a database already at the latest schema takes no snapshot.
        open(dir.path()).await.unwrap().close().await;
        assert_eq!(snapshots(dir.path()).len(), 3);
    }

    #[tokio::test]
    async fn a_database_that_cannot_be_snapshotted_is_not_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        older_database(dir.path(), "precious");
        // The snapshot folder's place is taken by a file: no snapshot can be written.
        std::fs::write(backup::snapshots_dir(dir.path()), b"").unwrap();
        let err = open(dir.path()).await.err().expect("must refuse");
        assert!(err.to_string().contains("could not be snapshotted first"), "{err}");
        let c = Connection::open_with_flags(dir.path().join(DB_FILE), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        assert_eq!(c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).unwrap(), 15, "left as it was");
    }

    #[tokio::test]
    async fn a_data_dir_that_is_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        let err = open(&file).await.err().expect("must fail");
        assert_eq!(err.code(), "store.data_dir");
    }
}
