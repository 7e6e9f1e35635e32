//! Retry a failed or canceled job by hand: back to the queue, now, with one more attempt
//! allowed. Its output so far is kept; new lines carry the new attempt number. An approval given
//! at submit time is not carried over: the first attempt took it (`exec::approval`), so an
//! exec job asks again.

use rusqlite::{params, Connection};

use super::cancel::state_of;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::pool::job::JobState;
use crate::store::writer::{db, WriteOp};

pub(crate) struct Retry(pub i64);

impl WriteOp for Retry {
    type Output = ();
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<()> {
        let id = self.0;
        let state = state_of(conn, id)?;
        let hint = match state {
            JobState::Failed | JobState::Canceled => None,
            JobState::Succeeded => Some("only failed or canceled jobs can be retried"),
            JobState::Queued | JobState::Running => Some("it has not finished yet"),
        };
        if let Some(hint) = hint {
            return Err(Error::JobInvalidState { id, state: state.as_str(), hint });
        }
        conn.execute(
            "UPDATE jobs SET feed_seq = (SELECT n FROM job_feed_counter), state = 'queued', run_after = ?2, finished_at = NULL, exit_code = NULL,
                    error_code = NULL, error_message = NULL, cancel_requested = 0,
                    max_attempts = max(max_attempts, attempts + 1)
             WHERE id = ?1",
            params![id, now],
        )
        .map_err(db)?;
        Ok(())
    }
}
