//! What the app manages: the engine, and the pool it hosts. Nothing else — a command that
//! needs a map of its own (tokens, jobs, streams) means the engine is missing a method.

use std::sync::Mutex;
use std::time::Duration;

use gatehouse_engine::{Engine, Pool};

/// The managed state.
pub struct Core {
    /// The engine on the data directory the CLI uses too.
    pub engine: Engine,
    /// The worker pool this process runs; taken when the app quits.
    pool: Mutex<Option<Pool>>,
}

impl Core {
    /// The app's state: `engine`, and `pool` if this process runs one.
    pub fn new(engine: Engine, pool: Option<Pool>) -> Core {
        Core { engine, pool: Mutex::new(pool) }
    }

    /// Stop claiming; running jobs get `grace` to finish and then go back to the queue
    /// (their attempt not counted). Returns the jobs re-queued; later calls do nothing.
    pub async fn stop_pool(&self, grace: Duration) -> usize {
        let pool = self.pool.lock().unwrap_or_else(|e| e.into_inner()).take();
        match pool {
            Some(pool) => pool.shutdown(grace).await,
            None => 0,
        }
    }

    /// [`Core::stop_pool`], then close the engine (the database is checkpointed). Returns the
    /// jobs re-queued.
    pub async fn shut_down(&self, grace: Duration) -> usize {
        let requeued = self.stop_pool(grace).await;
        self.engine.clone().close().await;
        requeued
    }
}
