//! Renew a pool's lease — one row, however many jobs it runs.

use std::sync::Arc;

use sqlx::SqliteConnection;

use crate::clock::Millis;
use crate::error::Result;
use crate::store::writer::{db, BoxFuture, WriteOp};

pub(crate) struct Heartbeat(pub Arc<str>);

impl WriteOp for Heartbeat {
    /// False when the registration is gone: the pool was presumed dead and its jobs rescued.
    type Output = bool;
    fn apply<'c>(&'c mut self, conn: &'c mut SqliteConnection, now: Millis) -> BoxFuture<'c, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query("UPDATE pools SET heartbeat_at = ?2 WHERE owner = ?1")
                .bind(&*self.0)
                .bind(now)
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(done.rows_affected() == 1)
        })
    }
}
