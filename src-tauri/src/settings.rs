//! Settings commands: gateway profiles, models, the shared settings (worker count,
//! notifications), and the exec tool's policy rules, workspaces and audit log. Tokens never
//! come through here: a profile names where its token is.

use std::path::PathBuf;

use gatehouse_engine::models::{FetchProgress, ModelInfo};
use gatehouse_engine::exec::audit::AuditEntry;
use gatehouse_engine::exec::policy::{Action, Rule};
use gatehouse_engine::{GatewayKind, NewRule, Profile, Settings, SettingsChange};
use tauri::ipc::Channel;
use tauri::State;

use crate::error::{Failure, Result};
use crate::state::Core;

/// The gateway profiles (tokens are never sent: only where each comes from).
#[tauri::command]
pub async fn gateways(core: State<'_, Core>) -> Result<Vec<Profile>> {
    Ok(core.engine.gateways().await?)
}

/// The local models: the built-in one (whether it is fetched) and those added, the default marked.
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

/// The shared settings: worker count, retention, notifications.
#[tauri::command]
pub async fn settings(core: State<'_, Core>) -> Result<Settings> {
    Ok(core.engine.settings().await?)
}

/// Change some settings (the fields given); pools on the database follow. Returns them all.
#[tauri::command]
pub async fn change_settings(core: State<'_, Core>, change: SettingsChange) -> Result<Settings> {
    Ok(core.engine.change_settings(change).await?)
}

/// Where a new gateway's token is, as the person chose it. Never logged, never sent back.
#[derive(serde::Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum Token {
    /// The gateway takes no token.
    None,
    /// An environment variable of the app's holds it.
    Env { var: String },
    /// An owner-only file holds it.
    File { path: PathBuf },
    /// Keep it in the OS keyring: the token itself, typed once.
    Keyring { token: String },
}

/// A gateway profile to add, from the settings form.
#[derive(serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct NewGateway {
    /// The name chats and jobs use.
    pub name: String,
    /// `openai` or `openclaw`.
    pub kind: String,
    /// Where it is: `http(s)://…/v1` or `ws(s)://…`.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub url: Option<String>,
    /// The model to ask for; none = the server's default.
    #[cfg_attr(feature = "ts", ts(optional))]
    pub model: Option<String>,
    /// Where its token is.
    pub token: Token,
}

/// Add (or replace) a gateway profile; a token for the keyring is kept there first, so a
/// keyring that refuses leaves no profile without its token.
#[tauri::command]
pub async fn add_gateway(core: State<'_, Core>, gateway: NewGateway) -> Result<()> {
    let kind = GatewayKind::parse(&gateway.kind).ok_or_else(|| Failure::invalid(format!("`{}` is not a gateway kind", gateway.kind)))?;
    let blank = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let (mut token_env, mut token_file, mut keyring) = (None, None, None);
    match gateway.token {
        Token::None => {}
        Token::Env { var } => token_env = blank(Some(var)),
        Token::File { path } => token_file = Some(std::path::absolute(&path).map_err(|e| Failure::invalid(e.to_string()))?),
        Token::Keyring { token } => keyring = Some(token),
    }
    let profile = Profile {
        name: gateway.name.trim().to_owned(),
        kind,
        url: blank(gateway.url),
        model: blank(gateway.model),
        token_env,
        token_file,
        token_keyring: keyring.is_some(),
        is_default: false,
    };
    profile.validate()?;
    if let Some(token) = keyring {
        core.engine.keep_gateway_token(&profile.name, token).await?;
    }
    Ok(core.engine.add_gateway(profile).await?)
}

/// Remove gateway profile `name` (and its token from the keyring).
#[tauri::command]
pub async fn remove_gateway(core: State<'_, Core>, name: String) -> Result<()> {
    Ok(core.engine.remove_gateway(&name).await?)
}

/// Make gateway profile `name` the default for new conversations and prompt jobs.
#[tauri::command]
pub async fn set_default_gateway(core: State<'_, Core>, name: String) -> Result<()> {
    Ok(core.engine.set_default_gateway(&name).await?)
}

/// Whether the gateway answers and takes its token, as a sentence.
#[tauri::command]
pub async fn check_gateway(core: State<'_, Core>, name: String) -> Result<String> {
    Ok(core.engine.check_gateway(Some(&name)).await?)
}

/// Make a GGUF file on this computer available to the built-in gateway.
#[tauri::command]
pub async fn add_model(core: State<'_, Core>, path: PathBuf, name: Option<String>) -> Result<ModelInfo> {
    let name = name.filter(|n| !n.trim().is_empty());
    Ok(core.engine.add_model(&path, name.as_deref())?)
}

/// Make local model `name` the one the `local` gateway uses.
#[tauri::command]
pub async fn set_default_model(core: State<'_, Core>, name: String) -> Result<()> {
    Ok(core.engine.set_default_model(&name).await?)
}

/// Forget local model `name`: an added one is unlinked (its file kept), the fetched built-in one
/// deleted.
#[tauri::command]
pub async fn remove_model(core: State<'_, Core>, name: String) -> Result<()> {
    Ok(core.engine.remove_model(&name).await?)
}

/// Most audit rows the settings screen reads at once (it filters them where it shows them).
const MAX_AUDIT_ROWS: i64 = 5_000;

/// A policy rule as the settings form sends it.
#[derive(Debug, Clone, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct NewExecRule {
    pub action: Action,
    /// A name on the sandbox's PATH, or a path.
    pub program: String,
    /// Argument patterns, one per argument: an exact string, or `/re/` for the whole argument.
    pub args: Vec<String>,
    /// Arguments after the patterns are free.
    pub any_args: bool,
    /// Commands under an allow rule may use the network.
    pub network: bool,
}

/// The exec policy, in the order rules are matched.
#[tauri::command]
pub async fn exec_rules(core: State<'_, Core>) -> Result<Vec<Rule>> {
    Ok(core.engine.exec_rules().await?)
}

/// Add a rule; returns its id. A bad pattern or program is refused with a sentence.
#[tauri::command]
pub async fn add_exec_rule(core: State<'_, Core>, rule: NewExecRule) -> Result<i64> {
    let args = rule.args.into_iter().filter(|a| !a.is_empty()).collect();
    let rule = NewRule { action: rule.action, program: rule.program.trim().into(), args, any_args: rule.any_args, network: rule.network, see: vec![], env: vec![] };
    Ok(core.engine.add_rule(rule).await?)
}

/// Remove exec policy rule `id`.
#[tauri::command]
pub async fn remove_exec_rule(core: State<'_, Core>, id: i64) -> Result<()> {
    Ok(core.engine.remove_exec_rule(id).await?)
}

/// Workspace roots (where commands may run and write), the default one first.
#[tauri::command]
pub async fn workspaces(core: State<'_, Core>) -> Result<Vec<PathBuf>> {
    Ok(core.engine.workspaces().await?)
}

/// Add a workspace directory commands may write in; returns it as stored (resolved). The home
/// directory itself, system directories and the data directory are refused.
#[tauri::command]
pub async fn add_workspace(core: State<'_, Core>, dir: PathBuf) -> Result<PathBuf> {
    Ok(core.engine.add_workspace(&dir).await?)
}

/// Remove a workspace directory.
#[tauri::command]
pub async fn remove_workspace(core: State<'_, Core>, dir: PathBuf) -> Result<()> {
    Ok(core.engine.remove_workspace(&dir).await?)
}

/// The exec audit log, newest first.
#[tauri::command]
pub async fn exec_audit(core: State<'_, Core>, limit: i64) -> Result<Vec<AuditEntry>> {
    Ok(core.engine.exec_audit(limit.clamp(1, MAX_AUDIT_ROWS)).await?)
}
