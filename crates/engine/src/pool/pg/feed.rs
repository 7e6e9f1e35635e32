//! The job feed on a shared database: every machine's job changes, for the front ends of this
//! one (the jobs window, the tray, `jobs watch`), turned into the same events as the SQLite
//! store's feed ([`job_events`]).
//!
//! Each write stamps the job's row with the next number of the `job_feed` sequence (deletes
//! leave a tombstone in `job_feed_gone`). A sequence number is taken when a statement runs and
//! seen when it commits, so a row can appear with a number below one already read. Each look
//! therefore reads a window reaching [`LAG`] numbers back and keeps only rows whose number is
//! new for that job: a statement here lasts milliseconds, far less than the time the pool
//! takes to use up `LAG` numbers.

use std::collections::HashMap;

use sqlx::Row;

use super::{pg, Shared};
use crate::error::Result;
use crate::pool::feed::{job_events, JobFeed, Known, LINES_PER_TICK};
use crate::pool::job::{Job, OutputLine};

/// How far back each look reads (see the module doc).
const LAG: i64 = 1000;

/// What the follower knows: every job's shape and the last feed number read for it.
pub(crate) struct Seen {
    cursor: i64,
    jobs: HashMap<i64, Known>,
    seqs: HashMap<i64, i64>,
    /// Tombstones already told, while they are inside the window a look reads.
    gone: HashMap<i64, i64>,
    paused: bool,
    behind: Vec<i64>,
}

impl Seen {
    /// Everything as it is now.
    pub(crate) async fn load(db: &Shared) -> Result<Seen> {
        let mut tx = db.db.begin().await.map_err(pg)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT feed_seq, {} FROM jobs", crate::pool::job::JOB_COLUMNS)))
            .fetch_all(&mut *tx)
            .await
            .map_err(pg)?;
        let cursor: i64 = sqlx::query_scalar("SELECT greatest((SELECT max(feed_seq) FROM jobs), (SELECT max(seq) FROM job_feed_gone),
                    (SELECT value::bigint FROM pool_flags WHERE key = 'job_feed.horizon'), 0)")
            .fetch_one(&mut *tx)
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        let (mut jobs, mut seqs) = (HashMap::new(), HashMap::new());
        for r in &rows {
            let job = super::query::job_of(r).map_err(pg)?;
            seqs.insert(job.id, r.try_get::<i64, _>(0).map_err(pg)?);
            jobs.insert(job.id, Known::of(&job));
        }
        Ok(Seen { cursor, jobs, seqs, gone: HashMap::new(), paused: super::query::paused(db).await?, behind: Vec::new() })
    }

    /// One look: the events since the last.
    pub(crate) async fn step(&mut self, db: &Shared) -> Result<Vec<JobFeed>> {
        let from = self.cursor - LAG;
        // Tombstones up to the horizon were forgotten (`pg::prune`, which keeps far more than
        // `LAG`): this far behind, a deletion may have been missed, so everything is loaded again.
        let horizon: Option<String> =
            sqlx::query_scalar("SELECT value FROM pool_flags WHERE key = 'job_feed.horizon'").fetch_optional(&db.db).await.map_err(pg)?;
        if horizon.and_then(|h| h.parse::<i64>().ok()).is_some_and(|h| h > self.cursor) {
            *self = Seen::load(db).await?;
            return Ok(vec![JobFeed::Resync]);
        }
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT feed_seq, {} FROM jobs WHERE feed_seq > $1 ORDER BY feed_seq",
            crate::pool::job::JOB_COLUMNS
        )))
        .bind(from)
        .fetch_all(&db.db)
        .await
        .map_err(pg)?;
        let gone: Vec<(i64, i64)> = sqlx::query_as("SELECT job_id, seq FROM job_feed_gone WHERE seq > $1 ORDER BY seq")
            .bind(from)
            .fetch_all(&db.db)
            .await
            .map_err(pg)?;
        let mut changed: Vec<Job> = Vec::new();
        for r in &rows {
            let seq: i64 = r.try_get(0).map_err(pg)?;
            let job = super::query::job_of(r).map_err(pg)?;
            self.cursor = self.cursor.max(seq);
            if self.seqs.get(&job.id).is_some_and(|&s| s >= seq) {
                continue; // read already
            }
            self.seqs.insert(job.id, seq);
            changed.push(job);
        }
        let mut ids = Vec::new();
        for (id, seq) in gone {
            self.cursor = self.cursor.max(seq);
            // Told even if it came and went between two looks: "job N is gone" is never wrong.
            if self.gone.insert(id, seq) != Some(seq) {
                self.seqs.remove(&id);
                ids.push(id);
            }
        }
        let window = self.cursor - LAG;
        self.gone.retain(|_, seq| *seq > window);
        // The output the events will need, read now (the diff itself does not wait): each
        // changed or behind job's lines after those known, all of them for a finished job.
        let mut pages: HashMap<i64, (Vec<OutputLine>, Option<i64>)> = HashMap::new();
        let wanted = changed.iter().map(|j| (j.id, j.output_lines, j.state.is_finished())).chain(self.behind.iter().map(|&id| (id, i64::MAX, false)));
        for (id, total, finished) in wanted.collect::<Vec<_>>() {
            let after = self.jobs.get(&id).map_or(0, |k| k.lines);
            if total <= after || pages.contains_key(&id) {
                continue;
            }
            let limit = if finished { i64::MAX } else { LINES_PER_TICK };
            let lines = super::query::output(db, id, after, limit).await?;
            let total: Option<i64> =
                sqlx::query_scalar("SELECT output_lines FROM jobs WHERE id = $1").bind(id).fetch_optional(&db.db).await.map_err(pg)?;
            pages.insert(id, (lines, total));
        }
        let behind = std::mem::take(&mut self.behind);
        let (mut events, left) = job_events(&mut self.jobs, ids, changed, behind, |id, after| {
            let (lines, total) = pages.get(&id).cloned().unwrap_or_default();
            let page: Vec<OutputLine> = lines.into_iter().filter(|l| l.seq > after).take(LINES_PER_TICK as usize).collect();
            Ok::<_, crate::Error>((page, total))
        })?;
        self.behind = left;
        let paused = super::query::paused(db).await?;
        if paused != self.paused {
            self.paused = paused;
            events.push(JobFeed::Paused { paused });
        }
        Ok(events)
    }
}
