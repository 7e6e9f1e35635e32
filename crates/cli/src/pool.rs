//! `gatehouse pool ...`: hold and release every worker pool on the database.

use std::process::ExitCode;

use gatehouse_engine::Engine;

use crate::{print_json, Outcome};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Stop every worker pool on this database (any process) from starting jobs; running
    /// jobs go on
    Pause,
    /// Let worker pools start jobs again
    Resume,
    /// Whether pools may start jobs, how many are running, and jobs by state
    Status,
}

pub async fn run(engine: &Engine, cmd: Command, json: bool) -> Outcome {
    match cmd {
        Command::Pause => engine.pause_pool().await?,
        Command::Resume => engine.resume_pool().await?,
        Command::Status => {}
    }
    let status = engine.pool_status().await?;
    if json {
        print_json(&status);
        return Ok(ExitCode::SUCCESS);
    }
    let jobs: Vec<String> = status.jobs.iter().map(|(state, n)| format!("{n} {state}")).collect();
    println!(
        "pools {}; {} running, {} jobs at once; jobs: {}",
        if status.paused { "paused (nothing new starts)" } else { "running" },
        status.live_pools,
        status.workers,
        if jobs.is_empty() { "none".to_owned() } else { jobs.join(", ") }
    );
    if let Some(at) = &status.shared {
        println!("the queue is shared: {}", crate::show::safe(at));
    }
    Ok(ExitCode::SUCCESS)
}
