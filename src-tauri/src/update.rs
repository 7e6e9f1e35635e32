//! Updates from the release feed (tauri-plugin-updater).
//!
//! Only a build that carries a feed has an updater: the release workflow merges
//! `plugins.updater` (the public key the bundles are signed with, and the feed's address,
//! `latest.json` of the latest release) into the app's configuration. A build from source or
//! a test build has none, and never calls out. With a feed, the app looks for a newer version
//! when it starts (setting `check_updates`, on by default) and when a person asks (Settings);
//! an update is only installed when a person asks, after the plugin has checked its signature
//! against the built-in key. The plugin's own commands are not granted to any window: the
//! webview reaches the updater through the commands below only.

use std::sync::Mutex;

use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tauri_plugin_updater::UpdaterExt;

use crate::error::{Failure, Result};
use crate::state::Core;
use crate::windows::MAIN;

/// Event to the main window: what [`check_update`] would say, after the check at start found
/// a newer version.
pub const UPDATE: &str = "update";

/// Whether this build carries an update feed: `plugins.updater` with a public key.
pub fn configured(config: &tauri::Config) -> bool {
    config.plugins.0.get("updater").and_then(|u| u.get("pubkey")).and_then(|k| k.as_str()).is_some_and(|k| !k.trim().is_empty())
}

/// What the app knows about updates.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct UpdateStatus {
    /// This build carries a feed (else updates come with the package manager).
    pub feed: bool,
    /// The version running.
    pub current: String,
    /// A newer version the feed offers, if the last check found one.
    pub available: Option<Release>,
}

/// A newer release.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct Release {
    /// Its version.
    pub version: String,
    /// When it was published, if the feed says.
    pub date: Option<String>,
    /// Its notes, as the feed gives them.
    pub notes: Option<String>,
}

/// The update the last check found, kept for [`install_update`].
#[derive(Default)]
pub struct Found(Mutex<Option<tauri_plugin_updater::Update>>);

fn failed(code: &str, e: impl std::fmt::Display) -> Failure {
    Failure(gatehouse_engine::ErrorBody { code: code.into(), message: e.to_string(), hint: None, data: None })
}

fn status<R: Runtime>(app: &AppHandle<R>) -> UpdateStatus {
    let available = app.state::<Found>().0.lock().ok().and_then(|found| {
        found.as_ref().map(|u| Release { version: u.version.clone(), date: u.date.map(|d| d.to_string()), notes: u.body.clone() })
    });
    UpdateStatus { feed: configured(&app.config()), current: app.package_info().version.to_string(), available }
}

/// Ask the feed whether a newer version exists (nothing is downloaded).
async fn check<R: Runtime>(app: &AppHandle<R>) -> Result<UpdateStatus> {
    if !configured(&app.config()) {
        return Ok(status(app));
    }
    let updater = app.updater().map_err(|e| failed("update.failed", format!("the updater cannot start: {e}")))?;
    let found = updater.check().await.map_err(|e| failed("update.failed", format!("could not reach the update feed: {e}")))?;
    if let Ok(mut slot) = app.state::<Found>().0.lock() {
        *slot = found;
    }
    Ok(status(app))
}

/// Look for a newer version when the app starts, if the person has not turned it off; the
/// main window hears of one through [`UPDATE`]. A failure is logged, not shown: the person
/// did not ask.
pub fn check_at_start<R: Runtime>(app: AppHandle<R>) {
    if !configured(&app.config()) {
        return;
    }
    tauri::async_runtime::spawn(async move {
        let engine = app.state::<Core>().engine.clone();
        if !engine.settings().await.is_ok_and(|s| s.check_updates) {
            return;
        }
        match check(&app).await {
            Ok(status) if status.available.is_some() => {
                let _ = app.emit_to(MAIN, UPDATE, status);
            }
            Ok(_) => tracing::info!("Gatehouse is up to date"),
            Err(e) => tracing::warn!(error = %e.0.message, "the update check failed"),
        }
    });
}

/// What the app knows about updates, without asking the feed: whether this build has one, and
/// what the last check found.
#[tauri::command]
pub fn update_status<R: Runtime>(app: AppHandle<R>) -> UpdateStatus {
    status(&app)
}

/// What the app knows about updates, after asking the feed (when this build has one).
#[tauri::command]
pub async fn check_update<R: Runtime>(app: AppHandle<R>) -> Result<UpdateStatus> {
    check(&app).await
}

/// Download the update the last check found, check its signature against the key built into
/// this app, install it and restart. Refused when no check found one.
#[tauri::command]
pub async fn install_update<R: Runtime>(app: AppHandle<R>) -> Result<()> {
    let update = app.state::<Found>().0.lock().ok().and_then(|mut found| found.take());
    let Some(update) = update else {
        return Err(failed("update.none", "there is no update to install; check for updates first"));
    };
    if let Err(e) = update.download_and_install(|_, _| {}, || {}).await {
        return Err(failed("update.failed", format!("Gatehouse {} could not be installed: {e}", update.version)));
    }
    app.restart()
}
