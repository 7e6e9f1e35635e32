//! `gatehouse exec …`: run a command through the exec tool, and manage its policy.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use gatehouse_engine::exec::policy::Action;
use gatehouse_engine::{Approver, Engine, ExecRequest, ExecSpec, Requester, Stream};

use crate::{print_json, show, Failure, Outcome};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ExecArgs {
    #[command(subcommand)]
    manage: Option<Manage>,
    /// Working directory; must be inside a workspace root [default: the data dir's workspace/]
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// Seconds before the command (and everything it started) is killed
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = crate::args::parse_secs)]
    timeout: Duration,
    /// With no terminal to ask on, wait this long for an approval given from another terminal
    /// (`gatehouse approvals allow ID`) or the app [default: refuse at once]
    #[arg(long, value_name = "SECS", value_parser = crate::args::parse_secs)]
    approval_wait: Option<Duration>,
    /// The program and its arguments (no shell)
    #[arg(last = true, value_name = "PROGRAM [ARG]...")]
    command: Vec<String>,
}

#[derive(clap::Subcommand)]
enum Manage {
    /// Policy rules
    #[command(subcommand)]
    Policy(Policy),
    /// Workspace roots (where commands may write)
    #[command(subcommand)]
    Workspace(Workspace),
    /// What ran, who decided and how it ended
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(clap::Subcommand)]
enum Policy {
    List,
    /// Add a rule; prints its id
    Add {
        #[arg(value_parser = parse_action)]
        action: Action,
        /// A name on PATH or a path (stored resolved to its absolute path)
        program: String,
        /// Pattern for the next argument: a fixed string, or /regex/ matching it whole (repeatable)
        #[arg(long = "arg", value_name = "PATTERN", allow_hyphen_values = true)]
        args: Vec<String>,
        /// Arguments after the patterns are free
        #[arg(long)]
        any_args: bool,
        /// Let the command reach the network (allow rules only)
        #[arg(long)]
        network: bool,
        /// Let the command read this path besides the system directories (allow rules only;
        /// repeatable), e.g. the install directory of a tool under your home
        #[arg(long, value_name = "PATH")]
        see: Vec<PathBuf>,
        /// Let a request set this environment variable (allow rules only; repeatable). Names
        /// that make programs run other code (LD_*, PYTHON*, BASH_ENV, *_OPTIONS, …) are refused
        #[arg(long = "env", value_name = "NAME")]
        env: Vec<String>,
    },
    Remove { id: i64 },
}

#[derive(clap::Subcommand)]
enum Workspace {
    List,
    Add { dir: PathBuf },
    Remove { dir: PathBuf },
}

fn parse_action(s: &str) -> Result<Action, String> {
    Action::parse(s).ok_or_else(|| format!("`{s}` is not allow, ask or deny"))
}

pub async fn run(engine: &Engine, args: ExecArgs, json: bool) -> Outcome {
    match args.manage {
        Some(Manage::Policy(cmd)) => return policy(engine, cmd, json).await,
        Some(Manage::Workspace(cmd)) => return workspace(engine, cmd, json).await,
        Some(Manage::Audit { limit }) => return audit(engine, limit, json).await,
        None => {}
    }
    let Some((program, rest)) = args.command.split_first() else {
        return Err(Failure::new("cli.usage", "give a command after --, e.g. `gatehouse exec -- ls -l`", 2));
    };
    let cwd = match args.cwd {
        Some(dir) => Some(std::path::absolute(&dir).map_err(|e| Failure::new("exec.invalid", e.to_string(), 2))?),
        None => None,
    };
    let mut spec = ExecSpec::new(program, rest);
    spec.cwd = cwd;
    let request = ExecRequest { spec, timeout: Some(args.timeout), requester: Requester::Person };
    let approver: &dyn Approver = &crate::terminal::Terminal { wait: args.approval_wait };
    let mut on_line = |stream: Stream, text: &str| {
        if json {
            return;
        }
        match stream {
            Stream::Stdout => println!("{}", crate::show::safe(text)),
            Stream::Stderr => eprintln!("{}", crate::show::safe(text)),
        }
    };
    // Ctrl-C ends this process, and the sandbox dies with it (die-with-parent).
    let result = engine.exec(request, approver, &mut on_line, &tokio_util::sync::CancellationToken::new()).await?;
    if json {
        let entry = engine.exec_audit(50).await?.into_iter().find(|e| e.host.is_none() && e.id == result.audit_id);
        print_json(&entry);
    }
    if result.truncated && !json {
        eprintln!(
            "[output truncated by the limit: {} of {} shown]",
            show::bytes(gatehouse_engine::exec::OUTPUT_CAP as i64),
            show::bytes(result.output_bytes as i64)
        );
    }
    match (&result.error, result.exit_code) {
        (None, _) => Ok(ExitCode::SUCCESS),
        (Some(e), _) => {
            if !json {
                eprintln!("error: {}", e.message);
            }
            Ok(ExitCode::from(1))
        }
    }
}

async fn policy(engine: &Engine, cmd: Policy, json: bool) -> Outcome {
    match cmd {
        Policy::List => {
            let rules = engine.exec_rules().await?;
            if json {
                print_json(&rules);
            } else {
                for r in rules {
                    println!("{:>4}  {}{}", r.id, r.display(), if r.builtin { "  (default)" } else { "" });
                }
            }
        }
        Policy::Add { action, program, args, any_args, network, see, env } => {
            let rule = gatehouse_engine::NewRule { action, program, args, any_args, network, see, env };
            let id = engine.add_rule(rule).await?;
            if json {
                print_json(&serde_json::json!({ "id": id }));
            } else {
                println!("{id}");
            }
        }
        Policy::Remove { id } => {
            engine.remove_exec_rule(id).await?;
            if !json {
                println!("rule {id} removed");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn workspace(engine: &Engine, cmd: Workspace, json: bool) -> Outcome {
    match cmd {
        Workspace::List => {
            let roots = engine.workspaces().await?;
            if json {
                let list: Vec<_> = roots
                    .iter()
                    .enumerate()
                    .map(|(i, p)| serde_json::json!({ "id": p, "path": p, "default": i == 0 }))
                    .collect();
                print_json(&list);
            } else {
                for (i, p) in roots.iter().enumerate() {
                    println!("{}{}", p.display(), if i == 0 { "  (default)" } else { "" });
                }
            }
        }
        Workspace::Add { dir } => {
            let real = engine.add_workspace(&dir).await?;
            if !json {
                println!("{} is a workspace root", real.display());
            }
        }
        Workspace::Remove { dir } => {
            engine.remove_workspace(&dir).await?;
            if !json {
                println!("{} is no longer a workspace root", dir.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn audit(engine: &Engine, limit: i64, json: bool) -> Outcome {
    let entries = engine.exec_audit(limit.max(0)).await?;
    if json {
        print_json(&entries);
        return Ok(ExitCode::SUCCESS);
    }
    for e in entries {
        let how = match (&e.error_code, e.exit_code, e.ended_at) {
            (Some(code), _, _) => code.clone(),
            (None, Some(c), _) => format!("exit {c}"),
            // Written before it started, never completed: still running, or its runner died.
            (None, None, None) => "no end".into(),
            (None, None, Some(_)) => "-".into(),
        };
        let safe = |s: &str| crate::show::safe(s).into_owned();
        let args: Vec<String> = e.args.iter().map(|a| if crate::show::is_raw() { a.clone() } else { gatehouse_engine::exec::quote(a) }).collect();
        let env = if e.env.is_empty() { String::new() } else { format!(" [env {}]", safe(&e.env.join(" "))) };
        // A row of the shared database (an exec job on a shared queue): the machine that ran it.
        let who = match &e.host {
            Some(host) => format!("{} on {}", e.requester, safe(host)),
            None => e.requester.clone(),
        };
        println!(
            "{:>5}  {}  {:<6}  {:<5}  {:<10}  {} {}{env}{}  — {}{}",
            e.id,
            show::short_time(e.at),
            who,
            e.decision,
            how,
            safe(&e.program),
            args.join(" "),
            e.cwd.as_deref().map(|c| format!(" (in {})", safe(c))).unwrap_or_default(),
            safe(&e.reason),
            e.approval.map(|a| format!(" (approval: {})", safe(&a))).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
