//! `gatehouse jobs ...`
//!
//! Commands that wait on a job (`logs --follow`, `wait`, `cancel`, `watch`) follow the
//! engine's job feed, which sees every process on the database: the job may run in a
//! `gatehouse worker` elsewhere or in the desktop app.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use gatehouse_engine::{
    Canceled, Engine, ExecSpec, JobFeed, JobFilter, JobState, NewJob, OutputLine, PoolConfig, PromptSpec, Stream,
};
use tokio::time::Instant;

use crate::{print_json, show, Failure, Outcome};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Queue a job; prints its id at once
    #[command(subcommand)]
    Submit(Submit),
    /// List jobs, newest first
    List {
        /// Only jobs in this state
        #[arg(long, value_parser = parse_state)]
        state: Option<JobState>,
        /// At most this many
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one job
    Show { id: i64 },
    /// Print a job's output
    Logs {
        id: i64,
        /// Keep printing new output until the job has finished
        #[arg(long, short)]
        follow: bool,
    },
    /// Cancel a queued or running job (a running job's processes are killed)
    Cancel { id: i64 },
    /// Queue a failed or canceled job again
    Retry { id: i64 },
    /// Print what happens to jobs, in every process on this database, until interrupted
    Watch,
    /// Wait for a job to finish; exit 0 if it succeeded, 1 if it failed or was canceled
    Wait {
        id: i64,
        /// Give up after this many seconds (exit 1)
        #[arg(long, value_name = "SECS", value_parser = crate::args::parse_secs)]
        timeout: Option<Duration>,
    },
}

#[derive(clap::Subcommand)]
pub enum Submit {
    /// A command, run without a shell: `gatehouse jobs submit exec -- sleep 5`
    Exec {
        /// Higher runs first
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i64,
        /// Seconds before an attempt is stopped and counted as failed
        #[arg(long, value_name = "SECS", value_parser = crate::args::parse_secs)]
        timeout: Option<Duration>,
        /// Attempts in all, counting the first (retries back off exponentially)
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        max_attempts: u32,
        /// Working directory; must be inside a workspace root [default: the data dir's workspace/]
        #[arg(long, value_name = "DIR")]
        cwd: Option<PathBuf>,
        /// Extra environment variable for the command (repeatable)
        #[arg(long, value_name = "NAME=VALUE", value_parser = crate::args::parse_env)]
        env: Vec<(String, String)>,
        /// The program and its arguments
        #[arg(required = true, last = true, value_name = "PROGRAM [ARG]...")]
        command: Vec<String>,
    },
    /// A prompt to a gateway; the reply streams into the job's output
    Prompt {
        /// Gateway profile [default: the default profile]
        #[arg(long)]
        gateway: Option<String>,
        /// Model [default: the profile's]
        #[arg(long)]
        model: Option<String>,
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i64,
        #[arg(long, value_name = "SECS", value_parser = crate::args::parse_secs)]
        timeout: Option<Duration>,
        /// The prompt (words are joined with spaces)
        #[arg(required = true, last = true, value_name = "TEXT")]
        text: Vec<String>,
    },
}

fn parse_state(s: &str) -> Result<JobState, String> {
    JobState::parse(s).ok_or_else(|| {
        let all: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown state `{s}`; use one of {}", all.join(", "))
    })
}

pub async fn run(engine: &Engine, cmd: Command, json: bool) -> Outcome {
    match cmd {
        Command::Submit(Submit::Exec { priority, timeout, max_attempts, cwd, env, command }) => {
            let cwd = match cwd {
                Some(dir) => Some(
                    std::path::absolute(&dir)
                        .map_err(|e| Failure::new("job.invalid", format!("bad working directory {}: {e}", dir.display()), 2))?,
                ),
                None => None,
            };
            let mut spec = ExecSpec::new(&command[0], &command[1..]);
            spec.cwd = cwd;
            spec.env = env;
            let spec = serde_json::to_value(spec).map_err(|e| Failure::new("job.invalid", e.to_string(), 2))?;
            let job = NewJob { kind: "exec".into(), spec, priority, max_attempts, timeout };
            // Asked now, while a person is here; else the job asks when it runs.
            let id = engine.submit_exec(job, &crate::terminal::AtSubmit).await?;
            submitted(engine, id, json).await
        }
        Command::Submit(Submit::Prompt { gateway, model, priority, timeout, text }) => {
            // Fail now on a profile that does not exist, not when a worker picks the job up.
            engine.gateway_profile(gateway.as_deref()).await?;
            let spec = PromptSpec { text: text.join(" "), gateway, model };
            let spec = serde_json::to_value(spec).map_err(|e| Failure::new("job.invalid", e.to_string(), 2))?;
            let id = engine.submit(NewJob { kind: "prompt".into(), spec, priority, max_attempts: 1, timeout }).await?;
            submitted(engine, id, json).await
        }
        Command::List { state, limit } => {
            let jobs = engine.jobs(&JobFilter { state, limit: Some(limit.max(0)) }).await?;
            if json {
                print_json(&jobs);
            } else {
                show::table(&jobs);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { id } => {
            let job = engine.job(id).await?;
            if json {
                print_json(&job);
            } else {
                show::details(&job);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Logs { id, follow } => logs(engine, id, follow, json).await,
        Command::Cancel { id } => cancel(engine, id, json).await,
        Command::Retry { id } => {
            engine.retry(id).await?;
            if json {
                print_json(&engine.job(id).await?);
            } else {
                println!("job {id} queued again");
                warn_if_no_worker(engine).await;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Wait { id, timeout } => wait(engine, id, timeout, json).await,
        Command::Watch => watch(engine, json).await,
    }
}

async fn submitted(engine: &Engine, id: i64, json: bool) -> Outcome {
    if json {
        print_json(&serde_json::json!({ "id": id, "state": JobState::Queued }));
    } else {
        println!("{id}");
        warn_if_no_worker(engine).await;
    }
    Ok(ExitCode::SUCCESS)
}

async fn warn_if_no_worker(engine: &Engine) {
    if let Ok(0) = engine.live_pools(PoolConfig::default().lease_ttl).await {
        eprintln!("note: no worker is running; start one with `gatehouse worker` (or the desktop app)");
    }
}

async fn logs(engine: &Engine, id: i64, follow: bool, json: bool) -> Outcome {
    let job = engine.job(id).await?;
    if job.output_dropped_lines > 0 && !json {
        eprintln!(
            "[{} earlier line(s), {}, were dropped: a job keeps the newest {} of output]",
            job.output_dropped_lines,
            show::bytes(job.output_dropped_bytes),
            show::bytes(PoolConfig::default().output_cap),
        );
    }
    if follow {
        return follow_output(engine, id, json).await;
    }
    let mut after = 0;
    let mut all = Vec::new();
    loop {
        let page = engine.output(id, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        if json {
            all.extend(page);
        } else {
            page.iter().for_each(|line| print_line(line, false));
        }
    }
    if json {
        print_json(&all);
    }
    Ok(ExitCode::SUCCESS)
}

/// `logs --follow`: the stored lines, then live ones until the job ends.
async fn follow_output(engine: &Engine, id: i64, json: bool) -> Outcome {
    let mut lines = engine.follow_output(id, 0).await?;
    while let Some(page) = lines.next().await? {
        page.iter().for_each(|line| print_line(line, json));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_line(line: &OutputLine, json: bool) {
    if json {
        print_json(line);
    } else if line.stream == Stream::Stderr {
        eprintln!("{}", crate::show::safe(&line.text));
    } else {
        println!("{}", crate::show::safe(&line.text));
    }
}

async fn cancel(engine: &Engine, id: i64, json: bool) -> Outcome {
    let result = engine.cancel(id).await?;
    let job = if result == Canceled::Requested {
        // The pool that runs it may be in another process: it notices within a poll, then
        // stops the command (SIGTERM, then SIGKILL after a grace period).
        engine.wait(id, Some(Instant::now() + Duration::from_secs(5))).await?
    } else {
        engine.job(id).await?
    };
    if json {
        print_json(&job);
    } else if job.state == JobState::Running {
        println!("job {id}: cancel requested; its worker has not stopped it yet");
    } else {
        println!("job {id} {}", job.state);
    }
    Ok(ExitCode::SUCCESS)
}

async fn wait(engine: &Engine, id: i64, timeout: Option<Duration>, json: bool) -> Outcome {
    let job = engine.wait(id, timeout.map(|t| Instant::now() + t)).await?;
    if !job.state.is_finished() {
        return Err(Failure::new(
            "job.wait_timeout",
            format!("job {id} is still {} after {} s", job.state, timeout.unwrap_or_default().as_secs_f64()),
            1,
        ));
    }
    if json {
        print_json(&job);
    } else {
        match &job.error {
            Some(e) if job.state != JobState::Succeeded => println!("job {id} {}: {}", job.state, e.message),
            _ => println!("job {id} {}", job.state),
        }
    }
    Ok(if job.state == JobState::Succeeded { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `jobs watch`: the feed, one line per event (a JSON object per line with `--json`).
async fn watch(engine: &Engine, json: bool) -> Outcome {
    let mut feed = engine.watch_jobs().await?;
    // On stderr, so `--json` output stays one event per line; said once the feed is followed,
    // so a script can wait for it before it makes changes.
    eprintln!("watching jobs in {} (Ctrl-C to stop)", show::safe(&engine.data_dir().display().to_string()));
    while let Some(event) = feed.next().await {
        if json {
            print_json(&event);
            continue;
        }
        let line = match &event {
            JobFeed::Submitted { job } => format!("job {} submitted ({})", job.id, job.kind),
            JobFeed::Claimed { job } => format!("job {} running (attempt {})", job.id, job.attempts),
            JobFeed::Requeued { job } => format!("job {} queued again", job.id),
            JobFeed::Finished { job } => match &job.error {
                Some(e) if job.state != JobState::Succeeded => format!("job {} {}: {}", job.id, job.state, show::safe(&e.message)),
                _ => format!("job {} {}", job.id, job.state),
            },
            JobFeed::Changed { job } => format!("job {} changed ({})", job.id, job.state),
            JobFeed::Progress { id, percent } => format!("job {id} {percent:.0}%"),
            JobFeed::Output { id, line } => format!("job {id} | {}", show::safe(&line.text)),
            JobFeed::Paused { paused: true } => "the pool is paused".into(),
            JobFeed::Paused { paused: false } => "the pool is resumed".into(),
            JobFeed::Pruned { ids } => format!("{} finished job(s) pruned", ids.len()),
            JobFeed::Resync => "(events were missed; `gatehouse jobs list` shows where things stand)".into(),
        };
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
