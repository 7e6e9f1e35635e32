//! `gatehouse backup PATH` and `gatehouse restore PATH`.

use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_engine::{Copied, Engine};

use crate::{print_json, Outcome};

fn holds(c: &Copied) -> String {
    format!(
        "{} conversation{}, {} job{}, schema {}, {:.1} MB",
        c.conversations,
        if c.conversations == 1 { "" } else { "s" },
        c.jobs,
        if c.jobs == 1 { "" } else { "s" },
        c.schema,
        c.bytes as f64 / 1e6
    )
}

pub async fn backup(engine: &Engine, path: PathBuf, json: bool) -> Outcome {
    let copied = engine.backup(path).await?;
    if json {
        print_json(&copied);
    } else {
        println!("backed up to {} ({}); restore it with `gatehouse restore {}`", copied.path.display(), holds(&copied), copied.path.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn restore(data_dir: PathBuf, path: PathBuf, json: bool) -> Outcome {
    let now = gatehouse_engine::Clock::now(&gatehouse_engine::SystemClock);
    let restored = tokio::task::spawn_blocking(move || gatehouse_engine::restore(&data_dir, &path, now))
        .await
        .map_err(|e| crate::Failure::new("store.backup_failed", format!("the restore stopped: {e}"), 1))??;
    if json {
        print_json(&restored);
    } else {
        println!("restored {} ({})", restored.restored.path.display(), holds(&restored.restored));
        if let Some(previous) = &restored.previous {
            println!("the data it replaced is kept at {}", previous.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
