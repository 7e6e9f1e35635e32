//! `gatehouse worker`: a pool in the foreground.
//!
//! SIGINT or SIGTERM: stop claiming, give running jobs `--grace` seconds to finish, then stop
//! them and put them back in the queue (their attempt does not count). A second signal ends
//! the grace period at once.

use std::process::ExitCode;
use std::time::Duration;

use gatehouse_engine::{Engine, JobEvent, JobState, PoolConfig, SettingsChange};

use crate::{Failure, Outcome};

#[derive(clap::Args)]
pub struct Args {
    /// Jobs run at once from this data directory (on SQLite: all its pools together; on a
    /// shared --database: this machine's); kept as the setting (`gatehouse settings set workers
    /// N`) [default: that setting, 3 until changed]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: Option<u32>,
    /// Seconds without a heartbeat after which a worker counts as dead and its jobs are run
    /// again elsewhere; it beats every sixth of that. Give every worker on a database the same
    /// lease: the one that notices a death judges by its own
    #[arg(long, default_value = "30", value_name = "SECS", value_parser = parse_lease)]
    lease: Duration,
    /// Seconds running jobs get to finish after Ctrl-C before they are stopped and re-queued
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = crate::args::parse_secs)]
    grace: Duration,
}

pub async fn run(engine: &Engine, args: Args, json: bool) -> Outcome {
    let mut stop = Stop::watch().map_err(|e| Failure::new("cli.signal", format!("cannot watch signals: {e}"), 1))?;
    let mut events = engine.subscribe();
    let workers = match args.workers {
        Some(n) => engine.change_settings(SettingsChange { workers: Some(n), ..Default::default() }).await?.workers,
        None => engine.settings().await?.workers,
    };
    let config = PoolConfig {
        workers: workers as usize,
        lease_ttl: args.lease,
        heartbeat: args.lease / 6,
        rescue_every: args.lease / 3,
        ..PoolConfig::default()
    };
    let pool = engine.start_pool(config).await?;
    if !json {
        eprintln!("gatehouse worker: {workers} workers on {} (Ctrl-C to stop)", engine.data_dir().display());
    }
    loop {
        tokio::select! {
            _ = stop.recv() => break,
            event = events.recv() => match event {
                Ok(JobEvent::State { id, state }) => log_state(engine, id, state, json).await,
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "worker log fell behind");
                }
                Err(_) => break,
            },
        }
    }
    if !json {
        eprintln!("stopping: waiting up to {} s for running jobs (Ctrl-C again to stop them now)", args.grace.as_secs_f64());
    }
    let grace = args.grace;
    let shutdown = pool.shutdown(grace);
    tokio::pin!(shutdown);
    // A second signal cuts the grace short; `shutdown` then stops and re-queues what runs.
    let requeued = tokio::select! {
        n = &mut shutdown => n,
        _ = stop.recv() => {
            engine.stop_running_jobs();
            shutdown.await
        }
    };
    if !json {
        eprintln!("stopped; {requeued} job(s) put back in the queue");
    }
    Ok(ExitCode::SUCCESS)
}

/// A lease shorter than 3 s would have the heartbeat (a sixth of it) compete with the jobs
/// for the database; one longer than an hour leaves a dead machine's jobs waiting too long.
fn parse_lease(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if (3.0..=3600.0).contains(&secs) => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!("`{s}` is not a lease from 3 to 3600 seconds")),
    }
}

async fn log_state(engine: &Engine, id: i64, state: JobState, json: bool) {
    if json {
        crate::print_json(&serde_json::json!({ "event": "state", "id": id, "state": state }));
        return;
    }
    let line = match engine.job(id).await {
        Ok(job) => {
            let what = job.title.clone();
            match (state, &job.error) {
                (JobState::Failed, Some(e)) | (JobState::Queued, Some(e)) if job.attempts > 0 => {
                    format!("job {id} {state}: {what} — {}", e.message)
                }
                _ => format!("job {id} {state}: {what}"),
            }
        }
        Err(_) => format!("job {id} {state}"),
    };
    eprintln!("{line}");
}

/// What asks a worker to stop: Ctrl-C, and on Unix SIGTERM too (a service manager's stop).
struct Stop {
    #[cfg(unix)]
    signals: [tokio::signal::unix::Signal; 2],
}

impl Stop {
    fn watch() -> std::io::Result<Stop> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Stop { signals: [signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?] })
        }
        #[cfg(not(unix))]
        Ok(Stop {})
    }

    /// The next request to stop.
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            let [int, term] = &mut self.signals;
            tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
