//! Renew a pool's lease — one row, however many jobs it runs — and learn in the same round
//! trip which of its jobs someone asked to cancel (from any machine).

use super::{pg, Shared};
use crate::clock::Millis;
use crate::error::Result;

/// What a heartbeat learnt.
#[derive(Debug, Default)]
pub(crate) struct Beat {
    /// False when the registration is gone: the pool was presumed dead and its jobs rescued.
    pub alive: bool,
    /// This pool's running jobs with a cancel request.
    pub cancel: Vec<i64>,
}

pub(crate) async fn heartbeat(shared: &Shared, owner: &str, now: Millis) -> Result<Beat> {
    let (alive, cancel): (bool, Vec<i64>) = sqlx::query_as(
        "WITH beat AS (UPDATE pools SET heartbeat_at = $2 WHERE owner = $1 RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM beat),
                coalesce((SELECT array_agg(id) FROM jobs
                          WHERE state = 'running' AND lease_owner = $1 AND cancel_requested), '{}')",
    )
    .bind(owner)
    .bind(now)
    .fetch_one(&shared.db)
    .await
    .map_err(pg)?;
    Ok(Beat { alive, cancel })
}
