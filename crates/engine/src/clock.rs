//! Injected time.
//!
//! Leases, backoff and retention read the time through a [`Clock`], so tests move time forward
//! with a [`ManualClock`] instead of waiting. Timestamps are milliseconds since the Unix
//! epoch (UTC) because they are stored in SQLite and compared across processes.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// Where the engine reads the time: [`SystemClock`] in use, [`ManualClock`] in tests.
pub trait Clock: Send + Sync + 'static {
    /// The time now, in milliseconds since the Unix epoch.
    fn now(&self) -> Millis;
}

/// Wall-clock time. Pools in different processes compare leases with it.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0)
    }
}

/// The clock as the store, the pool and the engine share it.
pub type SharedClock = Arc<dyn Clock>;

/// RFC 3339 UTC with milliseconds, the form every front end prints.
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// A clock that moves only when told to. Tests and benchmarks drive leases, backoff and
/// retention with it. (tokio's paused clock cannot be used for that here: it auto-advances to
/// the next timer whenever the runtime waits on SQLite's own thread, so virtual time races.)
pub struct ManualClock {
    now: std::sync::atomic::AtomicI64,
}

impl ManualClock {
    /// Starts at the current wall-clock time.
    pub fn new() -> ManualClock {
        ManualClock { now: std::sync::atomic::AtomicI64::new(SystemClock.now()) }
    }

    /// Move the clock forward by `by`, so leases expire and backoffs end without waiting.
    pub fn advance(&self, by: std::time::Duration) {
        self.now.fetch_add(by.as_millis() as Millis, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.now.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Serde helpers: timestamps serialize as RFC 3339 strings in every front-end contract.
pub(crate) mod serde_rfc3339 {
    use super::{rfc3339, Millis};
    use serde::Serializer;

    pub(crate) fn time<S: Serializer>(t: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(*t))
    }

    pub(crate) fn opt_time<S: Serializer>(t: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&rfc3339(*t)),
            None => s.serialize_none(),
        }
    }
}
