//! Gateway profiles: a name, a transport kind, where it is and how to authenticate.
//!
//! The token itself is never stored in the database and never printed or logged: a profile
//! names the environment variable or the owner-only file to read it from when the gateway is
//! used.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::openai::{OpenAi, OpenAiConfig};
use super::Gateway;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::writer::{db, WriteOp};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
/// What a gateway speaks.
pub enum GatewayKind {
    /// Any OpenAI-compatible HTTP API (`/v1/chat/completions` with SSE).
    Openai,
    /// The OpenClaw gateway's WebSocket protocol.
    Openclaw,
    /// The built-in model.
    Local,
}

impl GatewayKind {
    /// The word stored and taken by `--kind`: `openai`, `openclaw` or `local`.
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayKind::Openai => "openai",
            GatewayKind::Openclaw => "openclaw",
            GatewayKind::Local => "local",
        }
    }

    /// The kind named by `s`, if it is one.
    pub fn parse(s: &str) -> Option<GatewayKind> {
        [GatewayKind::Openai, GatewayKind::Openclaw, GatewayKind::Local].into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
/// A gateway profile: a name, how to reach the gateway, and where its token comes from (never
/// the token itself).
pub struct Profile {
    /// The name chats and jobs use (`--gateway NAME`).
    pub name: String,
    /// What it speaks.
    pub kind: GatewayKind,
    /// Where it is: `http(s)://…/v1` or `ws(s)://…`; `None` for `local`.
    pub url: Option<String>,
    /// The model to ask for; `None`: the server's default (or the default local model).
    pub model: Option<String>,
    /// The environment variable holding the token.
    pub token_env: Option<String>,
    /// The owner-only file holding the token.
    pub token_file: Option<PathBuf>,
    /// The token is in the OS keyring (see [`crate::Engine::keep_gateway_token`]).
    pub token_keyring: bool,
    /// Used when no profile is named.
    pub is_default: bool,
}

impl Profile {
    /// A profile for an OpenAI-compatible server at `url` (up to `/v1`), with no token.
    pub fn openai(name: &str, url: &str, model: Option<&str>) -> Profile {
        Profile {
            name: name.into(),
            kind: GatewayKind::Openai,
            url: Some(url.into()),
            model: model.map(Into::into),
            token_env: None,
            token_file: None,
            token_keyring: false,
            is_default: false,
        }
    }

    /// The built-in model's profile: there even when nothing is set up, and the default until
    /// another profile is added.
    pub fn builtin_local() -> Profile {
        Profile {
            name: "local".into(),
            kind: GatewayKind::Local,
            url: None,
            model: None,
            token_env: None,
            token_file: None,
            token_keyring: false,
            is_default: true,
        }
    }

    /// Check a profile before it is stored.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::GatewayInvalid(m));
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return bad(format!("`{}` is not a usable gateway name (letters, digits, - _ . only)", self.name));
        }
        match self.kind {
            GatewayKind::Openai => {
                let Some(url) = &self.url else {
                    return bad("an openai gateway needs --url, e.g. http://127.0.0.1:11434/v1".into());
                };
                OpenAi::new(OpenAiConfig::new(&self.name, url))?;
            }
            GatewayKind::Openclaw => {
                let Some(url) = &self.url else {
                    return bad("an openclaw gateway needs --url, e.g. ws://127.0.0.1:18789".into());
                };
                super::openclaw::OpenClaw::new(super::openclaw::OpenClawConfig {
                    name: self.name.clone(),
                    url: url.clone(),
                    token: None,
                    data_dir: PathBuf::new(),
                })?;
            }
            GatewayKind::Local => {
                if self.url.is_some() || self.token_env.is_some() || self.token_file.is_some() || self.token_keyring {
                    return bad("a local gateway runs a model file in-process: it takes --model, not a URL or a token".into());
                }
            }
        }
        if let Some(var) = &self.token_env {
            if var.is_empty() || var.contains('=') {
                return bad(format!("`{var}` is not an environment variable name"));
            }
        }
        if let Some(file) = &self.token_file {
            check_token_file(file)?;
        }
        if [self.token_env.is_some(), self.token_file.is_some(), self.token_keyring].iter().filter(|s| **s).count() > 1 {
            return bad("a token comes from one place: --token-env, --token-file or --token-keyring".into());
        }
        Ok(())
    }

    /// The token, read now from where the profile says.
    pub(crate) async fn token(&self, data_dir: &Path) -> Result<Option<String>> {
        if self.token_keyring {
            return super::keyring::load(&self.name, data_dir).await.map(Some);
        }
        if let Some(var) = &self.token_env {
            return match std::env::var(var) {
                Ok(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_owned())),
                _ => Err(Error::GatewayInvalid(format!(
                    "gateway `{}` takes its token from ${var}, which is not set",
                    self.name
                ))),
            };
        }
        if let Some(file) = &self.token_file {
            check_token_file(file)?;
            let token = std::fs::read_to_string(file)
                .map_err(|e| Error::GatewayInvalid(format!("cannot read the token file {}: {e}", file.display())))?;
            return Ok(Some(token.trim().to_owned()));
        }
        Ok(None)
    }

    /// What an OpenClaw gateway for this profile needs, the token read now; its device
    /// identity lives under `data_dir`.
    pub(crate) async fn openclaw_config(&self, data_dir: &Path) -> Result<super::openclaw::OpenClawConfig> {
        Ok(super::openclaw::OpenClawConfig {
            name: self.name.clone(),
            url: self.url.clone().unwrap_or_default(),
            token: self.token(data_dir).await?,
            data_dir: data_dir.to_owned(),
        })
    }

    /// A ready-to-use gateway for a network profile (local ones are opened by
    /// [`super::Gateways`], which shares loaded models).
    pub(crate) async fn open(&self, data_dir: &Path) -> Result<Arc<dyn Gateway>> {
        match self.kind {
            GatewayKind::Openai => {
                let mut config = OpenAiConfig::new(&self.name, self.url.clone().unwrap_or_default());
                config.model = self.model.clone();
                config.token = self.token(data_dir).await?;
                Ok(Arc::new(OpenAi::new(config)?))
            }
            other => Err(Error::GatewayInvalid(format!("`{}` gateways are not supported by this build yet", other.as_str()))),
        }
    }
}

/// A token file must exist and be readable by its owner only.
fn check_token_file(file: &Path) -> Result<()> {
    #[cfg_attr(not(unix), allow(unused_variables))]
    let meta = std::fs::metadata(file)
        .map_err(|e| Error::GatewayInvalid(format!("cannot use the token file {}: {e}", file.display())))?;
    // (On Windows a file's readers are its ACL's business: the user's profile is private.)
    #[cfg(unix)]
    if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0 {
        return Err(Error::GatewayInvalid(format!(
            "the token file {} can be read by others; run `chmod 600 {}`",
            file.display(),
            file.display()
        )));
    }
    Ok(())
}

const COLUMNS: &str = "name, kind, url, model, token_env, token_file, is_default, token_keyring";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Profile> {
    let kind: String = r.get(1)?;
    Ok(Profile {
        name: r.get(0)?,
        kind: GatewayKind::parse(&kind).unwrap_or(GatewayKind::Openai),
        url: r.get(2)?,
        model: r.get(3)?,
        token_env: r.get(4)?,
        token_file: r.get::<_, Option<String>>(5)?.map(PathBuf::from),
        is_default: r.get(6)?,
        token_keyring: r.get(7)?,
    })
}

/// Stored profiles, and the built-in `local` one unless a stored profile took its name.
pub(crate) async fn list(store: &Store) -> Result<Vec<Profile>> {
    let mut profiles: Vec<Profile> = store
        .read(|c| c.prepare_cached(&format!("SELECT {COLUMNS} FROM gateways ORDER BY name"))?.query_map([], from_row)?.collect())
        .await?;
    if !profiles.iter().any(|p| p.name == "local") {
        let mut local = Profile::builtin_local();
        local.is_default = !profiles.iter().any(|p| p.is_default);
        profiles.push(local);
        profiles.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(profiles)
}

/// The named profile, or the default one.
pub(crate) async fn find(store: &Store, name: Option<&str>) -> Result<Profile> {
    let wanted = name.map(str::to_owned);
    let found = store
        .read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM gateways WHERE (?1 IS NULL AND is_default = 1) OR name = ?1"
            ))?
            .query_row([&wanted], from_row)
            .optional()
        })
        .await?;
    match (found, name) {
        (Some(p), _) => Ok(p),
        // Nothing set up (or `local` asked for and not redefined): the built-in model.
        (None, None | Some("local")) => Ok(Profile::builtin_local()),
        (None, Some(name)) => Err(Error::GatewayUnknown(name.to_owned())),
    }
}

/// Store a profile (replacing one of the same name). The first profile becomes the default.
pub(crate) struct Add(pub Profile);

impl WriteOp for Add {
    type Output = ();
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<()> {
        let p = &self.0;
        let none_yet: bool = conn
            .query_row("SELECT NOT EXISTS (SELECT 1 FROM gateways WHERE name != ?1)", [&p.name], |r| r.get(0))
            .map_err(db)?;
        conn.execute(
            "INSERT INTO gateways (name, kind, url, model, token_env, token_file, is_default, created_at, token_keyring)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, url = excluded.url,
                 model = excluded.model, token_env = excluded.token_env, token_file = excluded.token_file,
                 token_keyring = excluded.token_keyring",
            params![
                p.name,
                p.kind.as_str(),
                p.url,
                p.model,
                p.token_env,
                p.token_file.as_ref().map(|f| f.to_string_lossy().into_owned()),
                none_yet,
                now,
                p.token_keyring
            ],
        )
        .map_err(db)?;
        Ok(())
    }
}

pub(crate) struct Remove(pub String);

impl WriteOp for Remove {
    type Output = ();
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<()> {
        let n = conn.execute("DELETE FROM gateways WHERE name = ?1", [&self.0]).map_err(db)?;
        if n == 0 && self.0 == "local" {
            return Err(Error::GatewayInvalid(
                "`local` is the built-in model and cannot be removed; make another gateway the default instead".into(),
            ));
        }
        if n == 0 {
            return Err(Error::GatewayUnknown(self.0.clone()));
        }
        Ok(())
    }
}

pub(crate) struct SetDefault(pub String);

impl WriteOp for SetDefault {
    type Output = ();
    fn apply(&mut self, conn: &Connection, _now: Millis) -> Result<()> {
        let exists: bool =
            conn.query_row("SELECT EXISTS (SELECT 1 FROM gateways WHERE name = ?1)", [&self.0], |r| r.get(0)).map_err(db)?;
        // The built-in `local` is the default whenever no stored profile is.
        if !exists && self.0 != "local" {
            return Err(Error::GatewayUnknown(self.0.clone()));
        }
        conn.execute("UPDATE gateways SET is_default = (name = ?1)", [&self.0]).map_err(db)?;
        Ok(())
    }
}
