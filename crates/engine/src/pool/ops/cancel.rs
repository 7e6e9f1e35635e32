//! Cancel a job: a queued one at once; a running one by flagging it for its pool, which kills
//! its processes (a pool in this process is told directly, others see the flag within a poll).

use sqlx::SqliteConnection;

use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::pool::job::JobState;
use crate::store::writer::{db, BoxFuture, WriteOp};

pub(crate) struct Cancel(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canceled {
    /// It was queued and is now canceled.
    Done,
    /// It is running; its pool has been asked to stop it.
    Requested,
}

impl WriteOp for Cancel {
    type Output = Canceled;
    fn apply<'c>(&'c mut self, conn: &'c mut SqliteConnection, now: Millis) -> BoxFuture<'c, Result<Canceled>> {
        Box::pin(async move {
            let id = self.0;
            let state: Option<String> = sqlx::query_scalar("SELECT state FROM jobs WHERE id = ?1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
            let state = state.and_then(|s| JobState::parse(&s)).ok_or(Error::JobNotFound(id))?;
            match state {
                JobState::Queued => {
                    sqlx::query(
                        "UPDATE jobs SET state = 'canceled', finished_at = ?2,
                                error_code = 'job.canceled', error_message = 'canceled by request'
                         WHERE id = ?1",
                    )
                    .bind(id)
                    .bind(now)
                    .execute(&mut *conn)
                    .await
                    .map_err(db)?;
                    Ok(Canceled::Done)
                }
                JobState::Running => {
                    sqlx::query("UPDATE jobs SET cancel_requested = 1 WHERE id = ?1")
                        .bind(id)
                        .execute(&mut *conn)
                        .await
                        .map_err(db)?;
                    Ok(Canceled::Requested)
                }
                finished => Err(Error::JobInvalidState {
                    id,
                    state: finished.as_str(),
                    hint: "it has already finished",
                }),
            }
        })
    }
}
