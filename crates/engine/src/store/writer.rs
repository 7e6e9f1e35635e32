//! The single writer: one thread owns the process's only write connection and applies write
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
//!
//! The writer is an OS thread, not a task: SQLite calls block (on the disk, on another
//! process's lock), and running them in place, with cached prepared statements, costs a few
//! microseconds each instead of a thread hop per statement.

use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::clock::{Millis, SharedClock};
use crate::error::{Error, Result};

/// Writes waiting for the writer. The bound gives back-pressure to producers (a submit loop
/// waits instead of growing memory) while being far above what one commit takes at once.
const QUEUE: usize = 4096;

/// Operations per transaction. Large enough that a burst is one commit, small enough that a
/// transaction never holds the write lock long enough to starve other processes.
const MAX_BATCH: usize = 512;

/// A write. `apply` runs inside the writer's open transaction, with the time of the batch.
pub(crate) trait WriteOp: Send + 'static {
    type Output: Send + 'static;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<Self::Output>;
}

/// Database failures abort the batch; anything else is the operation's own answer.
fn aborts_batch(e: &Error) -> bool {
    matches!(e, Error::Store(_) | Error::DiskFull | Error::StoreBusy | Error::StoreCorrupt { .. })
}

trait Queued: Send {
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<()>;
    fn reply(self: Box<Self>);
    fn fail(self: Box<Self>, e: Error);
}

struct Entry<O: WriteOp> {
    op: O,
    result: Option<Result<O::Output>>,
    reply: oneshot::Sender<Result<O::Output>>,
}

impl<O: WriteOp> Queued for Entry<O> {
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<()> {
        match self.op.apply(conn, now) {
            Err(e) if aborts_batch(&e) => Err(e),
            r => {
                self.result = Some(r);
                Ok(())
            }
        }
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
    thread: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Writer {
    pub(crate) fn start(conn: Connection, clock: SharedClock) -> Result<Writer> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("gatehouse-writer".into())
            .spawn(move || run(conn, rx, clock))
            .map_err(|e| Error::Store(format!("cannot start the database writer: {e}")))?;
        Ok(Writer { tx, thread: Arc::new(std::sync::Mutex::new(Some(thread))) })
    }

    /// Apply `op` in the next batch and return its result once committed.
    pub(crate) async fn apply<O: WriteOp>(&self, op: O) -> Result<O::Output> {
        let (reply, answer) = oneshot::channel();
        let entry: Box<dyn Queued> = Box::new(Entry { op, result: None, reply });
        self.tx.send(entry).await.map_err(|_| Error::ShuttingDown)?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Stop accepting writes, finish the queued ones and close the connection. The thread ends
    /// once every handle is gone; this waits for it if this was the last one.
    pub(crate) async fn close(self) {
        let Writer { tx, thread } = self;
        drop(tx);
        if Arc::strong_count(&thread) == 1 {
            let handle = thread.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(handle) = handle {
                let _ = tokio::task::spawn_blocking(move || handle.join()).await;
            }
        }
    }
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Box<dyn Queued>>, clock: SharedClock) {
    let mut batch: Vec<Box<dyn Queued>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = next(&mut rx) {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let now = clock.now();
        match apply_all(&conn, &mut batch, now) {
            Ok(()) => batch.drain(..).for_each(|e| e.reply()),
            Err(e) => {
                tracing::warn!(error = %e, ops = batch.len(), "write batch failed; retrying its operations one by one");
                let _ = conn.execute_batch("ROLLBACK");
                let entries = std::mem::take(&mut batch);
                for entry in entries {
                    let mut one = [entry];
                    match apply_all(&conn, &mut one, now) {
                        Ok(()) => one.into_iter().for_each(|e| e.reply()),
                        Err(e) => {
                            let _ = conn.execute_batch("ROLLBACK");
                            let [entry] = one;
                            entry.fail(e);
                        }
                    }
                }
            }
        }
    }
    // Every sender is gone: checkpoint and close.
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the write connection");
    }
}

/// How long the writer keeps looking for more work before it sleeps. Waking a sleeping thread
/// costs tens of microseconds here, about as much as a whole commit; a writer that just
/// answered is likely to be asked again at once (a worker's next claim, a producer's next
/// submit), so it yields for a moment first.
const LINGER: std::time::Duration = std::time::Duration::from_micros(200);

fn next(rx: &mut mpsc::Receiver<Box<dyn Queued>>) -> Option<Box<dyn Queued>> {
    let start = std::time::Instant::now();
    while start.elapsed() < LINGER {
        match rx.try_recv() {
            Ok(op) => return Some(op),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
    rx.blocking_recv()
}

fn apply_all(conn: &Connection, batch: &mut [Box<dyn Queued>], now: Millis) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
    // This transaction's number in the job feed (migration 0011): the job rows it writes are
    // stamped with it. Taken under the write lock, so numbers follow commit order across
    // processes.
    conn.prepare_cached("UPDATE job_feed_counter SET n = n + 1").and_then(|mut st| st.execute([])).map_err(db)?;
    for entry in batch.iter_mut() {
        entry.apply(conn, now)?;
    }
    conn.execute_batch("COMMIT").map_err(db)?;
    Ok(())
}

/// Map a SQLite error inside an operation. Database failures abort the batch (see the module
/// docs); the path is only used to name a corrupt file.
pub(crate) fn db(e: rusqlite::Error) -> Error {
    Error::from_sqlite(e, std::path::Path::new(super::DB_FILE))
}
