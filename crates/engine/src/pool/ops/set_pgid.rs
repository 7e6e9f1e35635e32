//! Record the process group of a running attempt, for whoever has to clean up after it.

use std::sync::Arc;

use sqlx::SqliteConnection;

use crate::clock::Millis;
use crate::error::Result;
use crate::store::writer::{db, BoxFuture, WriteOp};

pub(crate) struct SetPgid {
    pub id: i64,
    pub attempt: i64,
    pub owner: Arc<str>,
    pub pgid: i32,
}

impl WriteOp for SetPgid {
    type Output = ();
    fn apply<'c>(&'c mut self, conn: &'c mut SqliteConnection, _now: Millis) -> BoxFuture<'c, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE jobs SET pgid = ?1
                 WHERE id = ?2 AND state = 'running' AND lease_owner = ?3 AND attempts = ?4",
            )
            .bind(self.pgid)
            .bind(self.id)
            .bind(&*self.owner)
            .bind(self.attempt)
            .execute(conn)
            .await
            .map_err(db)?;
            Ok(())
        })
    }
}
