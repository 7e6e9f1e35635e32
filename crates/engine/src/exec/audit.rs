//! The audit trail: every exec request, what was decided and why, who approved it, and how it
//! ended.
//!
//! A command that runs is written down before it starts (`Record` with no end) and completed
//! when it ends (`Finish`); if the first write fails, it does not run. So a runner killed
//! mid-command (Ctrl-C, SIGKILL, a full disk) leaves a row with no end, never a run with no
//! row.
//!
//! Where the row goes (`Log`): this machine's SQLite, except for a command an exec job runs
//! on a shared queue (PostgreSQL, `--database`): its row goes to the shared database, with the
//! machine that ran it, so every machine's log shows every job's commands.

use rusqlite::{params, Connection};
use serde::Serialize;

use crate::clock::Millis;
use crate::error::Result;
use crate::store::writer::{db, WriteOp, Writer};
use crate::store::Store;

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
/// One command in the audit log: who asked, what, what the policy said, how it ended. Written
/// before the command starts and completed when it ends.
pub struct AuditEntry {
    /// Its id, in order of asking.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub id: i64,
    /// The machine that ran it, for a row in the shared database (a command of an exec job on
    /// a shared queue; ids there are the shared log's own); `None` for this machine's own log.
    pub host: Option<String>,
    #[serde(serialize_with = "crate::clock::serde_rfc3339::time")]
    /// When it was asked for.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub at: Millis,
    /// `person`, `model` or `job:N`.
    pub requester: String,
    /// The program as requested.
    pub program: String,
    /// The arguments, exactly as passed (no shell).
    pub args: Vec<String>,
    /// Where it was to run, as requested.
    pub cwd: Option<String>,
    /// `allow`, `ask` or `deny`, as the policy said.
    pub decision: String,
    /// The rule that decided, if one did.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub rule_id: Option<i64>,
    /// Why: the rule in words, or the refusal.
    pub reason: String,
    /// How a person answered when asked (`once`, `for N s`, `denied`, …).
    pub approval: Option<String>,
    /// Its exit code, when it exited by itself.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub exit_code: Option<i64>,
    /// The signal that ended it, when one did.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub signal: Option<i64>,
    /// How long it ran.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub duration_ms: Option<i64>,
    /// Bytes of output it wrote.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub output_bytes: Option<i64>,
    /// Output past the cap was not kept.
    pub truncated: bool,
    /// Why it did not run or did not end by itself: the error's code.
    pub error_code: Option<String>,
    /// Names of the variables the request set (their values are not kept: they may be secret).
    pub env: Vec<String>,
    /// When it ended; `None` while it runs, or if its runner died before it could say.
    #[serde(serialize_with = "crate::clock::serde_rfc3339::opt_time")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub ended_at: Option<Millis>,
}


/// A new row: `ended` for a refusal (over as soon as written), not for a command about to start.
pub(crate) struct Record {
    pub entry: AuditEntry,
    pub ended: bool,
}

impl WriteOp for Record {
    type Output = i64;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<i64> {
        let e = &self.entry;
        conn.query_row(
            "INSERT INTO exec_audit (at, requester, program, args, cwd, decision, rule_id, reason, approval,
                                     exit_code, signal, duration_ms, output_bytes, truncated, error_code, env, ended_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) RETURNING id",
            params![
                now,
                e.requester,
                e.program,
                serde_json::to_string(&e.args).unwrap_or_default(),
                e.cwd,
                e.decision,
                e.rule_id,
                e.reason,
                e.approval,
                e.exit_code,
                e.signal,
                e.duration_ms,
                e.output_bytes,
                e.truncated,
                e.error_code,
                serde_json::to_string(&e.env).unwrap_or_default(),
                self.ended.then_some(now)
            ],
            |r| r.get(0),
        )
        .map_err(db)
    }
}

/// How a started command ended.
pub(crate) struct Finish {
    pub id: i64,
    pub exit_code: Option<i64>,
    /// The signal that ended the sandbox, when one did (a stop, a timeout, a kill).
    pub signal: Option<i64>,
    pub duration_ms: i64,
    pub output_bytes: i64,
    pub truncated: bool,
    pub error_code: Option<String>,
}

impl WriteOp for Finish {
    type Output = ();
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<()> {
        conn.execute(
            "UPDATE exec_audit SET exit_code = ?2, duration_ms = ?3, output_bytes = ?4, truncated = ?5, error_code = ?6,
                                   ended_at = ?7, signal = ?8
             WHERE id = ?1",
            params![
                self.id,
                self.exit_code,
                self.duration_ms,
                self.output_bytes,
                self.truncated,
                self.error_code,
                now,
                self.signal
            ],
        )
        .map_err(db)?;
        Ok(())
    }
}

/// Where a command's audit row is written.
#[derive(Clone, Copy)]
pub(crate) enum Log<'a> {
    /// This machine's SQLite.
    Local(&'a Writer),
    /// The shared database the job came from, the clock its times are read from, and the job's
    /// stop token (a write that waits for the database gives up when the job must stop).
    #[cfg(feature = "postgres")]
    Shared(&'a crate::pool::pg::Shared, &'a crate::clock::SharedClock, &'a tokio_util::sync::CancellationToken),
}

/// How long a command waits for its row to be written to a shared database that does not
/// answer (a restart, a dropped connection) before it is refused: it never runs without one.
/// The default lease's length: past it the job is rescued elsewhere anyway.
#[cfg(feature = "postgres")]
const SHARED_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long the end of a command that has run is tried (the row otherwise shows no end).
#[cfg(feature = "postgres")]
const SHARED_FINISH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Log<'_> {
    /// Write a new row; returns its id.
    pub(crate) async fn record(self, entry: AuditEntry, ended: bool) -> Result<i64> {
        match self {
            Log::Local(writer) => writer.apply(Record { entry, ended }).await,
            #[cfg(feature = "postgres")]
            Log::Shared(db, clock, stop) => {
                let host = crate::pool::lease::hostname();
                retrying(SHARED_WAIT, Some(stop), || crate::pool::pg::audit::record(db, &host, &entry, ended, clock.now())).await
            }
        }
    }

    /// Complete a row with how its command ended.
    pub(crate) async fn finish(self, finish: Finish) -> Result<()> {
        match self {
            Log::Local(writer) => writer.apply(finish).await,
            #[cfg(feature = "postgres")]
            Log::Shared(db, clock, _) => {
                retrying(SHARED_FINISH_WAIT, None, || crate::pool::pg::audit::finish(db, &finish, clock.now())).await
            }
        }
    }
}

/// `write` until it succeeds, `wait` has passed, or `stop` fires; the last error otherwise.
#[cfg(feature = "postgres")]
async fn retrying<T, F: std::future::Future<Output = Result<T>>>(
    wait: std::time::Duration,
    stop: Option<&tokio_util::sync::CancellationToken>,
    mut write: impl FnMut() -> F,
) -> Result<T> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match write().await {
            Err(e) if tokio::time::Instant::now() < deadline && !stop.is_some_and(|s| s.is_cancelled()) => {
                tracing::warn!(error = %e, "writing an audit row to the shared database; trying again");
                let stopped = async {
                    match stop {
                        Some(s) => s.cancelled().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    // Between two tries, as for the job's output.
                    _ = tokio::time::sleep(crate::pool::output::RETRY_EVERY) => {}
                    _ = stopped => {}
                }
            }
            done => return done,
        }
    }
}

/// The newest `limit` rows, newest first: this machine's, and those of the shared database's
/// exec jobs when `queue` is shared (by time; the two logs number their rows apart).
pub(crate) async fn list(store: &Store, queue: &crate::pool::queue::Queue, limit: i64) -> Result<Vec<AuditEntry>> {
    #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
    let mut rows = local(store, limit).await?;
    #[cfg(feature = "postgres")]
    if let Some(db) = queue.shared() {
        rows.extend(crate::pool::pg::audit::list(db, limit).await?);
        rows.sort_by(|a, b| (b.at, b.host.is_some(), b.id).cmp(&(a.at, a.host.is_some(), a.id)));
        rows.truncate(limit.max(0) as usize);
    }
    #[cfg(not(feature = "postgres"))]
    let _ = queue;
    Ok(rows)
}

async fn local(store: &Store, limit: i64) -> Result<Vec<AuditEntry>> {
    store
        .read(move |c| {
            c.prepare_cached(
                "SELECT id, at, requester, program, args, cwd, decision, rule_id, reason, approval, exit_code,
                        signal, duration_ms, output_bytes, truncated, error_code, env, ended_at
                 FROM exec_audit ORDER BY id DESC LIMIT ?1",
            )?
            .query_map([limit], |r| {
                let args: String = r.get(4)?;
                let env: String = r.get(16)?;
                Ok(AuditEntry {
                    id: r.get(0)?,
                    host: None,
                    at: r.get(1)?,
                    requester: r.get(2)?,
                    program: r.get(3)?,
                    args: serde_json::from_str(&args).unwrap_or_default(),
                    cwd: r.get(5)?,
                    decision: r.get(6)?,
                    rule_id: r.get(7)?,
                    reason: r.get(8)?,
                    approval: r.get(9)?,
                    exit_code: r.get(10)?,
                    signal: r.get(11)?,
                    duration_ms: r.get(12)?,
                    output_bytes: r.get(13)?,
                    truncated: r.get(14)?,
                    error_code: r.get(15)?,
                    env: serde_json::from_str(&env).unwrap_or_default(),
                    ended_at: r.get(17)?,
                })
            })?
            .collect()
        })
        .await
}
