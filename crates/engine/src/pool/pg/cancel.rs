//! Cancel a job: a queued one at once; a running one by flagging it and notifying its
//! machine, whose pool kills its process group (its poll of cancel requests is the fallback).

use super::{pg, Shared};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::pool::job::JobState;
use crate::pool::ops::cancel::Canceled;

pub(crate) async fn cancel(shared: &Shared, id: i64, now: Millis) -> Result<Canceled> {
    // One statement: the state it acts on is the state it read.
    let row: Option<(String, bool)> = sqlx::query_as(
        "WITH j AS (SELECT id, state FROM jobs WHERE id = $1 FOR UPDATE),
         queued AS (
            UPDATE jobs SET state = 'canceled', finished_at = $2, error_code = 'job.canceled',
                   error_message = 'canceled by request', feed_seq = nextval('job_feed')
            FROM j WHERE jobs.id = j.id AND j.state = 'queued' RETURNING jobs.id
         ),
         running AS (
            UPDATE jobs SET cancel_requested = true, feed_seq = nextval('job_feed')
            FROM j WHERE jobs.id = j.id AND j.state = 'running'
            RETURNING jobs.id, pg_notify($3, 'cancel ' || jobs.lease_owner || ' ' || jobs.id)::text
         )
         SELECT j.state, EXISTS (SELECT 1 FROM running) FROM j",
    )
    .bind(id)
    .bind(now)
    .bind(super::CHANNEL)
    .fetch_optional(&shared.db)
    .await
    .map_err(pg)?;
    let Some((state, _)) = row else { return Err(Error::JobNotFound(id)) };
    match JobState::parse(&state) {
        Some(JobState::Queued) => Ok(Canceled::Done),
        Some(JobState::Running) => Ok(Canceled::Requested),
        Some(finished) => Err(Error::JobInvalidState { id, state: finished.as_str(), hint: "it has already finished" }),
        None => Err(Error::Store(format!("job {id} has an unknown state {state:?}"))),
    }
}
