//! `gatehouse gateways …`: the gateway profiles.

use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_engine::{Engine, GatewayKind, Profile};

use crate::{print_json, Failure, Outcome};

#[derive(clap::Subcommand)]
pub enum Gateways {
    /// Add (or replace) a gateway profile; the first one becomes the default
    Add {
        name: String,
        #[arg(long, value_parser = parse_kind)]
        kind: GatewayKind,
        /// Base URL of the API, up to /v1 (e.g. http://127.0.0.1:11434/v1)
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        model: Option<String>,
        /// Environment variable that holds the token
        #[arg(long, value_name = "VAR", conflicts_with = "token_file")]
        token_env: Option<String>,
        /// File (mode 600) that holds the token
        #[arg(long, value_name = "PATH", conflicts_with = "token_keyring")]
        token_file: Option<PathBuf>,
        /// Keep the token in the OS keyring (Secret Service, Keychain, Credential Manager); it is
        /// read from standard input (asked for, not echoed, on a terminal)
        #[arg(long, conflicts_with = "token_env")]
        token_keyring: bool,
    },
    /// Gateway profiles
    List,
    /// Remove a profile
    Remove { name: String },
    /// Check that a gateway answers and accepts its token
    Test { name: Option<String> },
    /// Make a profile the default
    Default { name: String },
}

fn parse_kind(s: &str) -> Result<GatewayKind, String> {
    GatewayKind::parse(s).ok_or_else(|| format!("unknown kind `{s}`; use openai, openclaw or local"))
}

pub async fn run(engine: &Engine, cmd: Gateways, json: bool) -> Outcome {
    match cmd {
        Gateways::Add { name, kind, url, model, token_env, token_file, token_keyring } => {
            let token_file = match token_file {
                Some(f) => Some(std::path::absolute(&f).map_err(|e| Failure::new("gateway.invalid", e.to_string(), 2))?),
                None => None,
            };
            let profile = Profile { name: name.clone(), kind, url, model, token_env, token_file, token_keyring, is_default: false };
            // Checked before the token is asked for; kept before the profile is saved.
            profile.validate()?;
            if token_keyring {
                let token = crate::terminal::read_secret(&format!("token for gateway {name} (not shown): "))
                    .map_err(|e| Failure::new("gateway.invalid", format!("could not read the token: {e}"), 2))?;
                engine.keep_gateway_token(&name, token).await?;
            }
            engine.add_gateway(profile).await?;
            if !json {
                println!("gateway {name} saved; check it with `gatehouse gateways test {name}`");
            }
        }
        Gateways::List => {
            let list = engine.gateways().await?;
            if json {
                print_json(&list);
            } else if list.is_empty() {
                println!("no gateways; add one with `gatehouse gateways add NAME --kind openai --url URL`");
            } else {
                for p in list {
                    let token = match (&p.token_env, &p.token_file) {
                        _ if p.token_keyring => "token in the keyring".into(),
                        (Some(var), _) => {
                            let set = if std::env::var_os(var).is_some() { "set" } else { "NOT set" };
                            format!("token from ${var} ({set})")
                        }
                        (_, Some(file)) => format!("token from {}", file.display()),
                        _ => "no token".into(),
                    };
                    println!(
                        "{}{}  {}  {}  model: {}  {token}",
                        p.name,
                        if p.is_default { " (default)" } else { "" },
                        p.kind.as_str(),
                        p.url.as_deref().unwrap_or("-"),
                        p.model.as_deref().unwrap_or(match p.kind {
                            GatewayKind::Local => "the default local model",
                            _ => "server default",
                        }),
                    );
                }
            }
        }
        Gateways::Remove { name } => {
            engine.remove_gateway(&name).await?;
            if !json {
                println!("gateway {name} removed");
            }
        }
        Gateways::Default { name } => {
            engine.set_default_gateway(&name).await?;
            if !json {
                println!("gateway {name} is now the default");
            }
        }
        Gateways::Test { name } => {
            let sentence = engine.check_gateway(name.as_deref()).await?;
            if json {
                print_json(&serde_json::json!({ "ok": true, "message": sentence }));
            } else {
                println!("{sentence}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
