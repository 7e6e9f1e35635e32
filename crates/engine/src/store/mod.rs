//! The SQLite store.
//!
//! One file, `gatehouse.db` in the data directory, shared by every Gatehouse process on the
//! machine. Writes go through exactly one connection per process, owned by the [`writer`] task,
//! which groups whatever writes are waiting into one `BEGIN IMMEDIATE` transaction (group
//! commit): a burst of submits or completions costs one commit, not one each. Reads use a small
//! pool of read-only connections, which WAL lets run beside the writer.
//!
//! The connection settings are set at open and read back: SQLite ignores a pragma it does not
//! know, so a typo or an unsupported mode would otherwise go unnoticed.

pub(crate) mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, SqliteConnection};

use crate::clock::SharedClock;
use crate::error::{Error, Result};
pub(crate) use writer::Writer;

pub const DB_FILE: &str = "gatehouse.db";

/// How long a statement waits for another process's write lock before failing with
/// `store.busy`. Write transactions here are short (a batch of row updates), so five seconds
/// means something is wrong, not merely busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections. The CLI makes one or two reads at a time; the desktop app a handful of
/// windows' worth. SQLite readers are cheap under WAL, but each holds a file handle and a cache.
const READERS: usize = 4;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct Store {
    pub(crate) path: PathBuf,
    pub(crate) read: Arc<Readers>,
    pub(crate) writer: Writer,
}

impl Store {
    /// Open (creating if needed) the database in `data_dir`, migrate it, and start the writer.
    pub async fn open(data_dir: &Path, clock: SharedClock) -> Result<Store> {
        crate::paths::prepare_data_dir(data_dir)?;
        let path = data_dir.join(DB_FILE);
        let err = |e: sqlx::Error| Error::from_sqlx(e, &path);

        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(err)?
            .filename(&path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .disable_statement_logging();

        let mut conn = options.clone().create_if_missing(true).connect().await.map_err(err)?;
        verify_pragmas(&mut conn).await.map_err(|e| match e {
            PragmaCheck::Sql(e) => err(e),
            PragmaCheck::Mismatch(e) => e,
        })?;
        {
            // Two processes opening a new database at once must not both run the migrations
            // (sqlx takes no lock on SQLite): serialise them on a lock file.
            let _lock = MigrationLock::take(data_dir).await?;
            migrate(&mut conn, &path).await?;
        }

        let read = Arc::new(Readers {
            options: options.read_only(true),
            conns: (0..READERS).map(|_| tokio::sync::Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        });
        let writer = Writer::start(conn, path.clone(), clock);
        Ok(Store { path, read, writer })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn err(&self, e: sqlx::Error) -> Error {
        Error::from_sqlx(e, &self.path)
    }

    /// A read connection, opened on first use.
    pub(crate) async fn reader(&self) -> Result<Read<'_>> {
        let readers = &*self.read;
        // A free connection if there is one, else wait for the next in turn.
        let mut guard = match readers.conns.iter().find_map(|c| c.try_lock().ok()) {
            Some(guard) => guard,
            None => readers.conns[readers.next.fetch_add(1, Ordering::Relaxed) % READERS].lock().await,
        };
        if guard.is_none() {
            *guard = Some(readers.options.connect().await.map_err(|e| self.err(e))?);
        }
        Ok(Read(guard))
    }

    /// Let queued writes finish and close every connection (checkpointing the WAL).
    pub async fn close(self) {
        for conn in &self.read.conns {
            if let Some(conn) = conn.lock().await.take() {
                let _ = sqlx::Connection::close(conn).await;
            }
        }
        self.writer.close().await;
    }
}

/// The read side: a few plain connections rather than sqlx's pool, whose acquire timeouts and
/// reaper run on tokio timers and so fire at once under a paused test clock.
pub(crate) struct Readers {
    options: SqliteConnectOptions,
    conns: Vec<tokio::sync::Mutex<Option<SqliteConnection>>>,
    next: AtomicUsize,
}

pub(crate) struct Read<'a>(tokio::sync::MutexGuard<'a, Option<SqliteConnection>>);

impl std::ops::Deref for Read<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.0.as_ref().expect("opened in reader()")
    }
}

impl std::ops::DerefMut for Read<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.0.as_mut().expect("opened in reader()")
    }
}

enum PragmaCheck {
    Sql(sqlx::Error),
    Mismatch(Error),
}

impl From<sqlx::Error> for PragmaCheck {
    fn from(e: sqlx::Error) -> Self {
        PragmaCheck::Sql(e)
    }
}

/// Read back what the connect options asked for. WAL in particular silently stays `delete` on
/// file systems that cannot share memory, and a misspelt pragma is simply ignored.
async fn verify_pragmas(conn: &mut SqliteConnection) -> std::result::Result<(), PragmaCheck> {
    let checks: [(&'static str, &str); 4] = [
        ("journal_mode", "wal"),
        ("synchronous", "1"),
        ("foreign_keys", "1"),
        ("busy_timeout", "5000"),
    ];
    for (pragma, wanted) in checks {
        use sqlx::Row;
        let row = sqlx::query(&format!("PRAGMA {pragma}")).fetch_one(&mut *conn).await?;
        let got = row
            .try_get::<String, _>(0)
            .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
            .unwrap_or_else(|_| "?".into());
        if !got.eq_ignore_ascii_case(wanted) {
            return Err(PragmaCheck::Mismatch(Error::StorePragma {
                pragma,
                wanted: wanted.to_owned(),
                got,
            }));
        }
    }
    Ok(())
}

async fn migrate(conn: &mut SqliteConnection, path: &Path) -> Result<()> {
    use sqlx::migrate::MigrateError;
    let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    match MIGRATOR.run(conn).await {
        Ok(()) => Ok(()),
        Err(MigrateError::VersionMissing(found)) => {
            Err(Error::StoreNewerSchema { path: path.to_owned(), found, known })
        }
        Err(MigrateError::Execute(e)) => Err(Error::from_sqlx(e, path)),
        Err(e) => Err(Error::Store(format!("migrating {}: {e}", path.display()))),
    }
}

/// An exclusive `flock` on `<data dir>/gatehouse.db.lock`, released on drop (or when the
/// process dies, so a crash never leaves it held).
struct MigrationLock(std::fs::File);

impl MigrationLock {
    async fn take(data_dir: &Path) -> Result<MigrationLock> {
        use std::os::fd::AsRawFd;
        let path = data_dir.join(format!("{DB_FILE}.lock"));
        let bad = |e: std::io::Error| Error::DataDir { path: path.clone(), reason: format!("cannot lock it ({e})") };
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(bad)?;
        let file = tokio::task::spawn_blocking(move || {
            // SAFETY: a valid open descriptor; flock blocks until the other process is done.
            match unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } {
                0 => Ok(file),
                _ => Err(std::io::Error::last_os_error()),
            }
        })
        .await
        .map_err(|e| Error::Store(e.to_string()))?
        .map_err(bad)?;
        Ok(MigrationLock(file))
    }
}

/// A plain connection beside the store, for tests that tamper with the file.
#[cfg(test)]
pub(crate) async fn raw_connection(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new().filename(path).connect().await.expect("raw connection")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use sqlx::Connection;
    use std::sync::Arc;

    #[tokio::test]
    async fn pragmas_hold_on_every_connection() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Arc::new(SystemClock)).await.unwrap();
        let mut conn = store.reader().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut *conn).await.unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&mut *conn).await.unwrap();
        assert_eq!(fk, 1);
        drop(conn);
        store.close().await;
    }

    #[tokio::test]
    async fn a_file_that_is_not_sqlite_is_reported_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), vec![b'x'; 8192]).unwrap();
        let err = Store::open(dir.path(), Arc::new(SystemClock)).await.err().expect("must fail");
        assert_eq!(err.code(), "store.corrupt", "{err}");
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused_with_its_version() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path(), Arc::new(SystemClock)).await.unwrap().close().await;
        let mut conn = raw_connection(&dir.path().join(DB_FILE)).await;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (9999, 'from the future', 1, x'00', 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        let err = Store::open(dir.path(), Arc::new(SystemClock)).await.err().expect("must fail");
        assert_eq!(err.code(), "store.newer_schema", "{err}");
        assert!(err.to_string().contains("9999"), "{err}");
    }

    #[tokio::test]
    async fn a_data_dir_that_is_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        let err = Store::open(&file, Arc::new(SystemClock)).await.err().expect("must fail");
        assert_eq!(err.code(), "store.data_dir");
    }
}
