//! The pool's jobs on a shared PostgreSQL (feature `postgres`, issue 16): several machines'
//! pools drain one queue.
//!
//! The rows and their meaning are the SQLite store's (`ops/`), with what sharing needs:
//! - A claim is one statement: it finishes the worker's previous job, then takes the next
//!   queued one with `FOR UPDATE SKIP LOCKED`, so claims on many machines never wait on each
//!   other's row and never take the same job.
//! - Every claim draws a new **lease epoch**; every write a worker makes to its job (output,
//!   its end, its process group) names it. A worker that was paused or cut off past its lease,
//!   whose job was rescued and claimed again elsewhere, is refused and stops that job.
//! - A submit notifies the channel [`CHANNEL`] (`LISTEN/NOTIFY`), so an idle worker on another
//!   machine starts at once; polling stays as the fallback (a notification is lost when the
//!   listening connection drops).
//! - The jobs' rows live here, and the audit rows of the commands exec jobs run (with the
//!   machine that ran them); conversations, settings, the exec policy and the audit of commands
//!   run outside a job stay in each machine's local SQLite. The one pool-wide switch, pause, is in `pool_flags`.
//!
//! Layout: this file (connecting, errors, the wake-up listener); one file per write, as in
//! `ops/`.

pub(crate) mod append_output;
pub(crate) mod audit;
pub(crate) mod cancel;
pub(crate) mod claim;
pub(crate) mod complete;
pub(crate) mod feed;
pub(crate) mod heartbeat;
pub(crate) mod prune;
pub(crate) mod query;
pub(crate) mod register;
pub(crate) mod rescue;
pub(crate) mod retry;
pub(crate) mod submit;
pub(crate) mod waiting;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::PgPool;

use crate::error::{Error, Result};

/// The channel a submit (and a job queued again) notifies; idle workers listen on it.
pub const CHANNEL: &str = "gatehouse_jobs";

/// A connection pool to the shared database, its schema migrated.
#[derive(Clone)]
pub struct Shared {
    pub(crate) db: PgPool,
    /// The URL without its password, for messages.
    at: String,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("at", &self.at).finish()
    }
}

impl Shared {
    /// Connect to `url` (`postgres://user[:password]@host[:port]/database`) with up to
    /// `connections` connections, and bring the schema up to date. Connections: one per worker
    /// is enough (a worker holds one only for a statement), plus the heartbeat's, the
    /// listener's and the front end's.
    pub async fn connect(url: &str, connections: u32) -> Result<Shared> {
        let at = redact(url);
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| Error::SharedUnreachable { at: at.clone(), reason: format!("not a PostgreSQL URL ({e})") })?;
        let db = PgPoolOptions::new()
            .max_connections(connections.max(2))
            // A database that does not answer is an error a person sees, not a hang.
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.application_name("gatehouse"))
            .await
            .map_err(|e| Error::SharedUnreachable { at: at.clone(), reason: e.to_string() })?;
        // sqlx takes an advisory lock around the migrations: machines starting together
        // migrate once.
        sqlx::migrate!("./migrations-pg")
            .run(&db)
            .await
            .map_err(|e| Error::Store(format!("migrating the shared database at {at}: {e}")))?;
        Ok(Shared { db, at })
    }

    /// The URL without its password.
    pub fn at(&self) -> &str {
        &self.at
    }

    /// Start listening for new work. See [`Wakeups`].
    pub async fn listen(&self) -> Result<Wakeups> {
        let mut listener = PgListener::connect_with(&self.db).await.map_err(pg)?;
        listener.listen(CHANNEL).await.map_err(pg)?;
        Ok(Wakeups { listener })
    }

    /// Close every connection.
    pub async fn close(&self) {
        self.db.close().await;
    }
}

/// Notifications that jobs are waiting, from any machine.
pub struct Wakeups {
    listener: PgListener,
}

impl Wakeups {
    /// Wait for the next notification: `Some(payload)` (`job`, `resumed`, or `cancel OWNER
    /// ID`), or `None` when the connection dropped and was made again — notifications sent
    /// meanwhile are lost, so the caller looks for work once.
    pub async fn next(&mut self) -> Result<Option<String>> {
        match self.listener.try_recv().await {
            Ok(Some(n)) => Ok(Some(n.payload().to_owned())),
            Ok(None) => Ok(None),
            Err(e) => Err(pg(e)),
        }
    }
}

/// A PostgreSQL error as the engine's: unreachable when the connection is the problem.
pub(crate) fn pg(e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            Error::SharedUnreachable { at: "the shared database".into(), reason: e.to_string() }
        }
        e => Error::Store(e.to_string()),
    }
}

/// `url` with its password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "(not a URL)".into() };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((auth, host)) => (Some(auth), host),
        None => (None, rest),
    };
    let host = host.split('?').next().unwrap_or(host);
    match auth.map(|a| a.split_once(':').map_or(a, |(user, _)| user)) {
        Some(user) if auth.is_some_and(|a| a.contains(':')) => format!("{scheme}://{user}:***@{host}"),
        Some(user) => format!("{scheme}://{user}@{host}"),
        None => format!("{scheme}://{host}"),
    }
}

#[cfg(test)]
mod tests;
