//! Settings commands: gateway profiles, models, the shared settings (worker count,
//! notifications). Tokens never come through here: a profile names where its token is.

use gatehouse_engine::models::{FetchProgress, ModelInfo};
use gatehouse_engine::{Profile, Settings, SettingsChange};
use tauri::ipc::Channel;
use tauri::State;

use crate::error::Result;
use crate::state::Core;

#[tauri::command]
pub async fn gateways(core: State<'_, Core>) -> Result<Vec<Profile>> {
    Ok(core.engine.gateways().await?)
}

#[tauri::command]
pub async fn models(core: State<'_, Core>) -> Result<Vec<ModelInfo>> {
    Ok(core.engine.models().await?)
}

/// Fetch the built-in model, telling `progress` how far it is; returns when it is in place.
#[tauri::command]
pub async fn fetch_model(core: State<'_, Core>, progress: Channel<FetchProgress>) -> Result<()> {
    core.engine.fetch_model(None, move |p| drop(progress.send(p))).await?;
    Ok(())
}

#[tauri::command]
pub async fn settings(core: State<'_, Core>) -> Result<Settings> {
    Ok(core.engine.settings().await?)
}

#[tauri::command]
pub async fn change_settings(core: State<'_, Core>, change: SettingsChange) -> Result<Settings> {
    Ok(core.engine.change_settings(change).await?)
}
