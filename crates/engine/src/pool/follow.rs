//! Following one job's output: the stored lines, then live ones from the feed, each once and in
//! order (by `seq`), until the job has finished. What `gatehouse jobs logs --follow` prints and
//! the desktop app's output pane shows.

use crate::engine::Engine;
use crate::error::Result;
use crate::pool::feed::{JobFeed, JobWatch};
use crate::pool::job::OutputLine;

/// Stored lines read per page.
const PAGE: i64 = 1000;

/// Job output being followed; [`OutputFollow::next`] gives the next lines.
pub struct OutputFollow {
    engine: Engine,
    id: i64,
    /// The last `seq` given out.
    after: i64,
    feed: JobWatch,
    /// Read the store before listening again (at first, and after missed events).
    from_store: bool,
    /// The job had finished when the store was last read from: once it is read out, that's all.
    ends: bool,
}

impl OutputFollow {
    /// Subscribed before the store is read, and the job's state read before its lines: a line
    /// stored meanwhile is in a page or in the feed, and one at or below the last `seq` given
    /// out is dropped.
    pub(crate) async fn start(engine: &Engine, id: i64, after: i64) -> Result<OutputFollow> {
        let feed = engine.watch_jobs().await?;
        let ends = engine.job(id).await?.state.is_finished();
        Ok(OutputFollow { engine: engine.clone(), id, after, feed, from_store: true, ends })
    }

    /// The next lines (a stored page, or one live line); `None` once the job has finished and
    /// everything it wrote was given out (or the job was deleted).
    pub async fn next(&mut self) -> Result<Option<Vec<OutputLine>>> {
        loop {
            if self.from_store {
                let page = self.engine.output(self.id, self.after, PAGE).await?;
                if let Some(last) = page.last() {
                    self.after = last.seq;
                    return Ok(Some(page));
                }
                self.from_store = false;
                if self.ends {
                    return Ok(None);
                }
            }
            match self.feed.next().await {
                None => return Ok(None),
                Some(JobFeed::Output { id, line }) if id == self.id && line.seq > self.after => {
                    self.after = line.seq;
                    return Ok(Some(vec![line]));
                }
                Some(JobFeed::Finished { job }) if job.id == self.id => (self.ends, self.from_store) = (true, true),
                Some(JobFeed::Pruned { ids }) if ids.contains(&self.id) => return Ok(None),
                // Events were missed: the store has the lines.
                Some(JobFeed::Resync) => {
                    self.ends = self.engine.job(self.id).await?.state.is_finished();
                    self.from_store = true;
                }
                _ => {}
            }
        }
    }
}
