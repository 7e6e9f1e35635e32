//! `gatehouse settings`: the settings every front end shares (the app shows the same ones).

use std::process::ExitCode;

use gatehouse_engine::{Engine, Settings, SettingsChange};

use crate::{print_json, Failure, Outcome};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Every setting and its value
    Show,
    /// Change one: workers N (1-64, every pool, running ones too), retention-days N,
    /// notify-finished | notify-failed | notify-approvals | chat-tools | check-updates on|off
    Set { key: String, value: String },
}

pub async fn run(engine: &Engine, cmd: Command, json: bool) -> Outcome {
    let settings = match cmd {
        Command::Show => engine.settings().await?,
        Command::Set { key, value } => engine.change_settings(change(&key, &value)?).await?,
    };
    if json {
        print_json(&settings);
    } else {
        print(&settings);
    }
    Ok(ExitCode::SUCCESS)
}

fn change(key: &str, value: &str) -> Result<SettingsChange, Failure> {
    let bad = |what: &str| Failure::new("settings.invalid", format!("`{value}` is not {what}"), 2);
    let number = || value.parse::<u32>().map_err(|_| bad("a whole number"));
    let flag = || match value {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(bad("on or off")),
    };
    let mut change = SettingsChange::default();
    match key {
        "workers" => change.workers = Some(number()?),
        "retention-days" => change.retention_days = Some(number()?),
        "notify-finished" => change.notify_finished = Some(flag()?),
        "notify-failed" => change.notify_failed = Some(flag()?),
        "notify-approvals" => change.notify_approvals = Some(flag()?),
        "chat-tools" => change.chat_tools = Some(flag()?),
        "check-updates" => change.check_updates = Some(flag()?),
        _ => {
            return Err(Failure::new("settings.invalid", format!("there is no setting `{key}`"), 2)
                .hint("the settings: workers, retention-days, notify-finished, notify-failed, notify-approvals, chat-tools, check-updates"))
        }
    }
    Ok(change)
}

fn print(s: &Settings) {
    let on = |b: bool| if b { "on" } else { "off" };
    println!("workers           {}  (jobs run at once, every pool on this data directory)", s.workers);
    println!("retention-days    {}  (finished jobs are deleted after this)", s.retention_days);
    println!("notify-finished   {}", on(s.notify_finished));
    println!("notify-failed     {}", on(s.notify_failed));
    println!("notify-approvals  {}", on(s.notify_approvals));
    println!("chat-tools        {}  (the app's chat offers the model the exec tool)", on(s.chat_tools));
    println!("check-updates     {}  (the app looks for a newer release when it starts)", on(s.check_updates));
}
