//! Settings every front end shares, stored in the database: [`Settings`] is what they are,
//! [`SettingsChange`] what a front end changes ([`crate::Engine::change_settings`]). The CLI
//! and the app read and write the same rows, so a count changed in the app holds for
//! `gatehouse worker` too — and for pools already running: a claim reads the count, and a
//! pool running jobs looks for a change every `cancel_poll`.
//!
//! Stored one row per key (`settings`, migration 0005); a key never stored has its default.
//! The internal keys (the pause flag, the default model) use `get` and `Set`.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::writer::{db, WriteOp};
use crate::store::Store;

/// Jobs run at once when no count is stored.
pub const DEFAULT_WORKERS: u32 = 3;
/// The most jobs a database runs at once (each may be a process tree or a model stream).
pub const MAX_WORKERS: u32 = 64;
const DEFAULT_RETENTION_DAYS: u32 = 7;

pub(crate) const WORKERS: &str = "pool.workers";
pub(crate) const RETENTION_DAYS: &str = "pool.retention_days";
const NOTIFY_FINISHED: &str = "notify.finished";
const NOTIFY_FAILED: &str = "notify.failed";
const NOTIFY_APPROVALS: &str = "notify.approvals";
const CHAT_TOOLS: &str = "chat.tools";
const CHECK_UPDATES: &str = "app.check_updates";

/// The shared settings, each at its stored value or its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct Settings {
    /// Jobs run at once on this database, by every pool together (1 to [`MAX_WORKERS`]).
    /// A change reaches pools running jobs within their `cancel_poll`: more workers start at once;
    /// extra ones stop when their job ends (a running job is never stopped for it).
    pub workers: u32,
    /// Finished jobs are deleted this many days after they end (1 to 3650).
    pub retention_days: u32,
    /// Desktop notifications when a job finishes.
    pub notify_finished: bool,
    /// … when a job fails (or times out, or is interrupted for good).
    pub notify_failed: bool,
    /// … when a command waits for approval.
    pub notify_approvals: bool,
    /// The app's chat offers the model the exec tool (off until a person turns it on).
    pub chat_tools: bool,
    /// The app looks for a newer release when it starts (builds with an update feed only).
    pub check_updates: bool,
}

/// A change to [`Settings`]: what is `None` stays as it is.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct SettingsChange {
    /// The new worker count (1 to [`MAX_WORKERS`]).
    #[cfg_attr(feature = "ts", ts(optional))]
    pub workers: Option<u32>,
    /// The new number of days finished jobs are kept (1 to 3650).
    #[cfg_attr(feature = "ts", ts(optional))]
    pub retention_days: Option<u32>,
    /// Turn notifications of finished jobs on or off.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub notify_finished: Option<bool>,
    /// Turn notifications of failed jobs on or off.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub notify_failed: Option<bool>,
    /// Turn notifications of commands awaiting approval on or off.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub notify_approvals: Option<bool>,
    /// Offer the model the exec tool in the app's chat, or not.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub chat_tools: Option<bool>,
    /// Let the app look for a newer release when it starts, or not.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub check_updates: Option<bool>,
}

/// The number stored under `key` (`WORKERS`, `RETENTION_DAYS`), if one is: a pool uses
/// its own configuration until a person has chosen.
pub(crate) fn stored(conn: &Connection, key: &str) -> rusqlite::Result<Option<u32>> {
    let value: Option<String> =
        conn.prepare_cached("SELECT value FROM settings WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()?;
    Ok(value.and_then(|v| v.parse().ok()))
}

pub(crate) fn read(conn: &Connection) -> rusqlite::Result<Settings> {
    let mut st = conn.prepare_cached("SELECT value FROM settings WHERE key = ?1")?;
    let mut value = |key: &str| st.query_row([key], |r| r.get::<_, String>(0)).optional();
    let number = |v: Option<String>, default| v.and_then(|v| v.parse().ok()).unwrap_or(default);
    let flag = |v: Option<String>| v.map_or(true, |v| v == "1");
    Ok(Settings {
        workers: number(value(WORKERS)?, DEFAULT_WORKERS),
        retention_days: number(value(RETENTION_DAYS)?, DEFAULT_RETENTION_DAYS),
        notify_finished: flag(value(NOTIFY_FINISHED)?),
        notify_failed: flag(value(NOTIFY_FAILED)?),
        notify_approvals: flag(value(NOTIFY_APPROVALS)?),
        chat_tools: value(CHAT_TOOLS)?.is_some_and(|v| v == "1"),
        check_updates: flag(value(CHECK_UPDATES)?),
    })
}

pub(crate) async fn load(store: &Store) -> Result<Settings> {
    store.read(read).await
}

/// Apply a [`SettingsChange`]; returns the settings after it. Nothing is stored if any value
/// is out of range.
pub(crate) struct Change(pub SettingsChange);

impl WriteOp for Change {
    type Output = Settings;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<Settings> {
        let c = &self.0;
        let within = |name: &str, v: Option<u32>, lo: u32, hi: u32| match v {
            Some(n) if !(lo..=hi).contains(&n) => {
                Err(Error::SettingsInvalid(format!("{name} must be from {lo} to {hi}, not {n}")))
            }
            _ => Ok(()),
        };
        within("the worker count", c.workers, 1, MAX_WORKERS)?;
        within("the days finished jobs are kept", c.retention_days, 1, 3650)?;
        let flag = |b: bool| if b { "1" } else { "0" }.to_owned();
        let values = [
            (WORKERS, c.workers.map(|n| n.to_string())),
            (RETENTION_DAYS, c.retention_days.map(|n| n.to_string())),
            (NOTIFY_FINISHED, c.notify_finished.map(flag)),
            (NOTIFY_FAILED, c.notify_failed.map(flag)),
            (NOTIFY_APPROVALS, c.notify_approvals.map(flag)),
            (CHAT_TOOLS, c.chat_tools.map(flag)),
            (CHECK_UPDATES, c.check_updates.map(flag)),
        ];
        for (key, value) in values {
            if let Some(value) = value {
                Set { key, value: Some(value) }.apply(conn, now)?;
            }
        }
        read(conn).map_err(db)
    }
}

pub(crate) async fn get(store: &Store, key: &'static str) -> Result<Option<String>> {
    store
        .read(move |c| c.prepare_cached("SELECT value FROM settings WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional())
        .await
}

/// Set (or with `None`, clear) a setting.
pub(crate) struct Set {
    pub key: &'static str,
    pub value: Option<String>,
}

impl WriteOp for Set {
    type Output = ();
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<()> {
        match &self.value {
            Some(v) => conn.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![self.key, v],
            ),
            None => conn.execute("DELETE FROM settings WHERE key = ?1", [self.key]),
        }
        .map_err(db)?;
        Ok(())
    }
}
