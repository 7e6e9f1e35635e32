//! The single writer: one task owns the process's only write connection and applies write
//! operations ([`WriteOp`]) in batches.
//!
//! A batch is whatever is waiting when the writer becomes free (up to [`MAX_BATCH`]), run in
//! one `BEGIN IMMEDIATE` transaction. `IMMEDIATE` takes the write lock up front: a deferred
//! transaction that reads first and then writes fails at once with `SQLITE_BUSY` when another
//! process wrote in between, whatever the busy timeout. Each operation gets its answer only
//! after the commit, so "submitted" always means "on disk".
//!
//! If a batch fails on a database error, it is rolled back and its operations are retried one
//! transaction each, so one bad operation cannot fail the others. Operations must therefore
//! be re-runnable, and must check their preconditions before they write (a refused operation
//! returns an error but the batch still commits).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::clock::{Millis, SharedClock};
use crate::error::{Error, Result};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Writes waiting for the writer. The bound gives back-pressure to producers (a submit loop
/// waits instead of growing memory) while being far above what one commit takes at once.
const QUEUE: usize = 4096;

/// Operations per transaction. Large enough that a burst is one commit, small enough that a
/// transaction never holds the write lock long enough to starve other processes.
const MAX_BATCH: usize = 512;

/// A write. `apply` runs inside the writer's open transaction, with the time of the batch.
pub(crate) trait WriteOp: Send + 'static {
    type Output: Send + 'static;
    fn apply<'c>(
        &'c mut self,
        conn: &'c mut SqliteConnection,
        now: Millis,
    ) -> BoxFuture<'c, Result<Self::Output>>;
}

/// Database failures abort the batch; anything else is the operation's own answer.
fn aborts_batch(e: &Error) -> bool {
    matches!(e, Error::Store(_) | Error::DiskFull | Error::StoreBusy | Error::StoreCorrupt { .. })
}

trait Queued: Send {
    fn apply<'c>(&'c mut self, conn: &'c mut SqliteConnection, now: Millis) -> BoxFuture<'c, Result<()>>;
    fn reply(self: Box<Self>);
    fn fail(self: Box<Self>, e: Error);
}

struct Entry<O: WriteOp> {
    op: O,
    result: Option<Result<O::Output>>,
    reply: oneshot::Sender<Result<O::Output>>,
}

impl<O: WriteOp> Queued for Entry<O> {
    fn apply<'c>(&'c mut self, conn: &'c mut SqliteConnection, now: Millis) -> BoxFuture<'c, Result<()>> {
        Box::pin(async move {
            match self.op.apply(conn, now).await {
                Err(e) if aborts_batch(&e) => Err(e),
                r => {
                    self.result = Some(r);
                    Ok(())
                }
            }
        })
    }
    fn reply(self: Box<Self>) {
        let r = self.result.unwrap_or(Err(Error::Store("write was not applied".into())));
        let _ = self.reply.send(r);
    }
    fn fail(self: Box<Self>, e: Error) {
        let _ = self.reply.send(Err(e));
    }
}

#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Box<dyn Queued>>,
    done: std::sync::Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Writer {
    pub(crate) fn start(conn: SqliteConnection, path: PathBuf, clock: SharedClock) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(conn, rx, path, clock));
        Writer { tx, done: std::sync::Arc::new(tokio::sync::Mutex::new(Some(task))) }
    }

    /// Apply `op` in the next batch and return its result once committed.
    pub(crate) async fn apply<O: WriteOp>(&self, op: O) -> Result<O::Output> {
        let (reply, answer) = oneshot::channel();
        let entry: Box<dyn Queued> = Box::new(Entry { op, result: None, reply });
        self.tx.send(entry).await.map_err(|_| Error::ShuttingDown)?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Stop accepting writes, finish the queued ones and close the connection. Waits for the
    /// writer only once every other handle is gone (the channel closes then).
    pub(crate) async fn close(self) {
        let done = self.done.clone();
        drop(self);
        let task = done.lock().await.take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn run(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Box<dyn Queued>>, path: PathBuf, clock: SharedClock) {
    let mut batch: Vec<Box<dyn Queued>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let now = clock.now();
        match apply_all(&mut conn, &mut batch, now, &path).await {
            Ok(()) => batch.drain(..).for_each(|e| e.reply()),
            Err(e) => {
                tracing::warn!(error = %e, ops = batch.len(), "write batch failed; retrying its operations one by one");
                let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
                let entries: Vec<_> = batch.drain(..).collect();
                for entry in entries {
                    let mut one = [entry];
                    match apply_all(&mut conn, &mut one, now, &path).await {
                        Ok(()) => one.into_iter().for_each(|e| e.reply()),
                        Err(e) => {
                            let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
                            let [entry] = one;
                            entry.fail(e);
                        }
                    }
                }
            }
        }
    }
    // Every sender is gone: checkpoint and close.
    if let Err(e) = conn.close().await {
        tracing::warn!(error = %e, "closing the write connection");
    }
}

async fn apply_all(conn: &mut SqliteConnection, batch: &mut [Box<dyn Queued>], now: Millis, path: &std::path::Path) -> Result<()> {
    let err = |e| Error::from_sqlx(e, path);
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await.map_err(err)?;
    for entry in batch.iter_mut() {
        entry.apply(conn, now).await?;
    }
    sqlx::query("COMMIT").execute(&mut *conn).await.map_err(err)?;
    Ok(())
}

/// Map an sqlx error inside an operation. Database failures abort the batch (see the module
/// docs); the path is only used to name a corrupt file.
pub(crate) fn db(e: sqlx::Error) -> Error {
    Error::from_sqlx(e, std::path::Path::new(super::DB_FILE))
}
