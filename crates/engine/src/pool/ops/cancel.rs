//! Cancel a job: a queued one at once; a running one by flagging it for its pool, which kills
//! its processes (a pool in this process is told directly, others see the flag within a poll).

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::pool::job::JobState;
use crate::store::writer::{db, WriteOp};

pub(crate) struct Cancel(pub i64);

/// What a cancel did: a queued job ends at once, a running one when its pool has stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canceled {
    /// It was queued and is now canceled.
    Done,
    /// It is running; its pool has been asked to stop it.
    Requested,
}

/// The state of job `id`, or `job.not_found`.
pub(crate) fn state_of(conn: &Connection, id: i64) -> Result<JobState> {
    let state: Option<String> = conn
        .query_row("SELECT state FROM jobs WHERE id = ?1", [id], |r| r.get(0))
        .optional()
        .map_err(db)?;
    state.and_then(|s| JobState::parse(&s)).ok_or(Error::JobNotFound(id))
}

impl WriteOp for Cancel {
    type Output = Canceled;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<Canceled> {
        let id = self.0;
        match state_of(conn, id)? {
            JobState::Queued => {
                conn.execute(
                    "UPDATE jobs SET feed_seq = (SELECT n FROM job_feed_counter), state = 'canceled', finished_at = ?2,
                            error_code = 'job.canceled', error_message = 'canceled by request'
                     WHERE id = ?1",
                    params![id, now],
                )
                .map_err(db)?;
                Ok(Canceled::Done)
            }
            JobState::Running => {
                conn.execute("UPDATE jobs SET feed_seq = (SELECT n FROM job_feed_counter), cancel_requested = 1 WHERE id = ?1", [id]).map_err(db)?;
                Ok(Canceled::Requested)
            }
            finished => Err(Error::JobInvalidState { id, state: finished.as_str(), hint: "it has already finished" }),
        }
    }
}
