//! Show, on the shared row, that a running exec job waits for a person's answer. The question
//! itself lives where the job runs (that machine's approvals, asked there); every machine's jobs
//! view shows the job as waiting.

use super::{pg, Shared};
use crate::error::Result;

/// Mark attempt `epoch` of job `id` waiting on request `request` (`None`: answered or gone).
pub(crate) async fn set_waiting(shared: &Shared, id: i64, epoch: i64, request: Option<i64>) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET waiting_approval = $3, feed_seq = nextval('job_feed')
         WHERE id = $1 AND lease_epoch = $2 AND state = 'running' AND waiting_approval IS DISTINCT FROM $3",
    )
    .bind(id)
    .bind(epoch)
    .bind(request)
    .execute(&shared.db)
    .await
    .map_err(pg)?;
    Ok(())
}
