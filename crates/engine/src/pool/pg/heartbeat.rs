//! Renew a pool's lease — one row, however many jobs it runs.

use super::{pg, Shared};
use crate::clock::Millis;
use crate::error::Result;

/// False when the registration is gone: the pool was presumed dead and its jobs rescued.
pub(crate) async fn heartbeat(shared: &Shared, owner: &str, now: Millis) -> Result<bool> {
    let n = sqlx::query("UPDATE pools SET heartbeat_at = $2 WHERE owner = $1")
        .bind(owner)
        .bind(now)
        .execute(&shared.db)
        .await
        .map_err(pg)?
        .rows_affected();
    Ok(n == 1)
}
