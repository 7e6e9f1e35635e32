//! The job feed: what happens to jobs, in every process that writes the database.
//!
//! The pool of this process, a `gatehouse worker` in another terminal and the CLI submitting
//! from a script all write the same SQLite file. Every write transaction takes the next number
//! of a counter and stamps the job rows it writes with it (`jobs.feed_seq`, migration 0011;
//! deleted jobs leave a tombstone). One follower thread per engine asks SQLite every `TICK`
//! (100 ms) whether any other connection committed (`PRAGMA data_version`, a counter read, no
//! I/O); only then does it read the feed after the last seq it saw — one range query on an
//! index — and the changed jobs' new output lines, and turns the difference from what it knew
//! into [`JobFeed`] events.
//!
//! Events go out on a bounded broadcast channel: the follower never waits for a subscriber,
//! and a subscriber that falls `BUFFER` events behind gets [`JobFeed::Resync`] (reload what
//! you show) instead of an unbounded queue. Output lines carry their `seq`, so a front end
//! that reads a stored page ([`crate::Engine::output`]) after subscribing merges it with the
//! live lines without gaps or repeats: keep lines with `seq` above the page's last.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use tokio::sync::broadcast;

use super::job::{Job, JobState, OutputLine, JOB_COLUMNS};
use crate::chat::feed::{self as chat_feed, ConversationEvent, ConversationWatch};
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::exec::approval::{self, ApprovalEvent, ApprovalRequest, ApprovalState, ApprovalWatch};
use crate::store::Store;

/// How often the follower asks whether anything changed. Events reach subscribers within a
/// tick plus a query (the budget is 250 ms); an idle tick costs one pragma read.
const TICK: Duration = Duration::from_millis(100);

/// Events held per subscriber before it is told to resync: a few seconds of a busy pool.
const BUFFER: usize = 4096;

/// Approval events held per subscriber: questions come at a person's pace.
const APPROVAL_BUFFER: usize = 256;

/// Output lines read per job per tick; the rest come on the next tick, so one chatty job
/// cannot make a tick (and every subscriber's buffer) arbitrarily large.
pub(crate) const LINES_PER_TICK: i64 = 500;

/// What happened to a job, from any process on the database.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum JobFeed {
    /// A new job is queued.
    Submitted {
        /// The job as it was queued.
        job: Job,
    },
    /// A worker (in any process) started an attempt.
    Claimed {
        /// The job as it now runs, its attempt counted.
        job: Job,
    },
    /// Back in the queue: retried by a person, rescued from a dead pool, or waiting out a
    /// retry's backoff.
    Requeued {
        /// The job as it waits again.
        job: Job,
    },
    /// Succeeded, failed or canceled.
    Finished {
        /// The job in its final state, with its error and exit code.
        job: Job,
    },
    /// Anything else about the job changed (a cancel was requested, say).
    Changed {
        /// The job as it is now.
        job: Job,
    },
    /// The job reported progress, in percent.
    Progress {
        /// The job that reported it.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        id: i64,
        /// How far along it is, 0 to 100.
        percent: f64,
    },
    /// A stored line of output.
    Output {
        /// The job that wrote it.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        id: i64,
        /// The line, with the `seq` that merges it with a stored page.
        line: OutputLine,
    },
    /// The pool was paused or resumed (by any process): a view of its status reads it again.
    Paused {
        /// Whether pools may not start jobs now.
        paused: bool,
    },
    /// These jobs were deleted (finished jobs past the retention period).
    Pruned {
        /// The deleted jobs' ids: drop them from what you show.
        #[cfg_attr(feature = "ts", ts(type = "Array<number>"))]
        ids: Vec<i64>,
    },
    /// Events were missed (this subscriber fell behind): reload what you show.
    Resync,
}

impl JobFeed {
    /// The job the event is about, if it is about one.
    pub fn job_id(&self) -> Option<i64> {
        match self {
            JobFeed::Submitted { job }
            | JobFeed::Claimed { job }
            | JobFeed::Requeued { job }
            | JobFeed::Finished { job }
            | JobFeed::Changed { job } => Some(job.id),
            JobFeed::Progress { id, .. } | JobFeed::Output { id, .. } => Some(*id),
            JobFeed::Paused { .. } | JobFeed::Pruned { .. } | JobFeed::Resync => None,
        }
    }
}

/// An event of a feed a subscriber can fall behind on.
pub trait FeedEvent: Clone + Send + 'static {
    /// The event that says "events were missed: reload what you show".
    fn resync() -> Self;
}

impl FeedEvent for JobFeed {
    fn resync() -> Self {
        JobFeed::Resync
    }
}

impl FeedEvent for ApprovalEvent {
    fn resync() -> Self {
        ApprovalEvent::Resync
    }
}

impl FeedEvent for ConversationEvent {
    fn resync() -> Self {
        ConversationEvent::Resync
    }
}

/// A subscription to one of the database feeds: jobs ([`crate::Engine::watch_jobs`]),
/// approvals, conversations. Bounded: one that falls behind gets the feed's `Resync` event.
pub struct Watch<E> {
    rx: broadcast::Receiver<E>,
}

impl<E: FeedEvent> Watch<E> {
    /// The next event; `None` once the engine is closed.
    pub async fn next(&mut self) -> Option<E> {
        match self.rx.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(E::resync()),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// A subscription to the job feed, as [`crate::Engine::watch_jobs`] gives it.
pub type JobWatch = Watch<JobFeed>;

/// The engine's database feed: jobs and approvals, from every process. Its follower thread
/// starts with the first subscriber (an engine nobody watches pays nothing).
#[derive(Clone)]
pub(crate) struct Feed {
    store: Store,
    clock: SharedClock,
    /// Where the jobs live when not in `store`: their events come from there.
    #[cfg(feature = "postgres")]
    shared: Option<super::pg::Shared>,
    follower: Arc<tokio::sync::Mutex<Option<Follower>>>,
}

impl Feed {
    pub(crate) fn new(store: Store, clock: SharedClock, queue: &super::queue::Queue) -> Feed {
        #[cfg(feature = "postgres")]
        return Feed { store, clock, shared: queue.shared().cloned(), follower: Default::default() };
        #[cfg(not(feature = "postgres"))]
        {
            let _ = queue;
            Feed { store, clock, follower: Default::default() }
        }
    }

    async fn with<T>(&self, f: impl FnOnce(&Follower) -> T) -> Result<T> {
        let mut follower = self.follower.lock().await;
        if follower.is_none() {
            #[cfg(feature = "postgres")]
            let started = Follower::start(&self.store, self.clock.clone(), self.shared.clone()).await?;
            #[cfg(not(feature = "postgres"))]
            let started = Follower::start(&self.store, self.clock.clone()).await?;
            *follower = Some(started);
        }
        Ok(f(follower.as_ref().expect("started above")))
    }

    pub(crate) async fn jobs(&self) -> Result<JobWatch> {
        self.with(|f| Watch { rx: f.jobs.subscribe() }).await
    }

    pub(crate) async fn approvals(&self) -> Result<ApprovalWatch> {
        self.with(|f| Watch { rx: f.approvals.subscribe() }).await
    }

    pub(crate) async fn conversations(&self) -> Result<ConversationWatch> {
        self.with(|f| Watch { rx: f.conversations.subscribe() }).await
    }

    /// Replies some process asked to stop (message ids).
    pub(crate) async fn stops(&self) -> Result<broadcast::Receiver<i64>> {
        self.with(|f| f.stops.subscribe()).await
    }

    /// Bumped after every look that found the database changed: followers of a reply another
    /// process writes read its new text then.
    pub(crate) async fn changes(&self) -> Result<tokio::sync::watch::Receiver<u64>> {
        self.with(|f| f.changes.subscribe()).await
    }

    /// Stop the follower and wait for its thread (it holds a database connection).
    pub(crate) async fn stop(&self) {
        if let Some(mut follower) = self.follower.lock().await.take() {
            let _ = tokio::task::spawn_blocking(move || follower.stop()).await;
        }
    }
}

/// The follower of one engine: started by the first subscriber, stopped when the engine goes.
pub(crate) struct Follower {
    jobs: broadcast::Sender<JobFeed>,
    approvals: broadcast::Sender<ApprovalEvent>,
    conversations: broadcast::Sender<ConversationEvent>,
    stops: broadcast::Sender<i64>,
    changes: tokio::sync::watch::Sender<u64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Follows the jobs on a shared database (the thread follows the rest, here).
    #[cfg(feature = "postgres")]
    shared: Option<tokio::task::JoinHandle<()>>,
}

impl Follower {
    /// Start following `store`. Returns once what is there now is known, so a change made
    /// after this returns is an event.
    async fn start(store: &Store, clock: SharedClock, #[cfg(feature = "postgres")] shared: Option<super::pg::Shared>) -> Result<Follower> {
        let path = store.path().to_owned();
        let now = clock.now();
        let (state, conn) = tokio::task::spawn_blocking(move || -> Result<(Seen, Connection)> {
            let conn = crate::store::reader(&path)?;
            let state = Seen::load(&conn, now).map_err(|e| Error::from_sqlite(e, &path))?;
            Ok((state, conn))
        })
        .await
        .map_err(|e| Error::Store(e.to_string()))??;
        let (jobs, _) = broadcast::channel(BUFFER);
        let (approvals, _) = broadcast::channel(APPROVAL_BUFFER);
        let (conversations, _) = broadcast::channel(BUFFER);
        let (stops, _) = broadcast::channel(APPROVAL_BUFFER);
        let changes = tokio::sync::watch::Sender::new(0);
        let stop = Arc::new(AtomicBool::new(false));
        let senders = Senders {
            jobs: jobs.clone(),
            approvals: approvals.clone(),
            conversations: conversations.clone(),
            stops: stops.clone(),
            changes: changes.clone(),
        };
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("gatehouse-feed".into())
            .spawn(move || follow(conn, state, senders, clock, flag))
            .map_err(|e| Error::Store(format!("cannot start the job feed: {e}")))?;
        #[cfg(feature = "postgres")]
        let shared = match shared {
            Some(db) => {
                let mut seen = super::pg::feed::Seen::load(&db).await?;
                let (tx, changes, stop) = (jobs.clone(), changes.clone(), stop.clone());
                Some(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        tokio::time::sleep(TICK).await;
                        match seen.step(&db).await {
                            Ok(events) if events.is_empty() => {}
                            Ok(events) => {
                                for event in events {
                                    let _ = tx.send(event);
                                }
                                changes.send_modify(|n| *n += 1);
                            }
                            Err(e) => tracing::warn!(error = %e, "job feed: cannot read what changed on the shared database"),
                        }
                    }
                }))
            }
            None => None,
        };
        Ok(Follower {
            jobs,
            approvals,
            conversations,
            stops,
            changes,
            stop,
            thread: Some(thread),
            #[cfg(feature = "postgres")]
            shared,
        })
    }

    /// Stop the thread and wait for it (it holds a database connection).
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        #[cfg(feature = "postgres")]
        if let Some(task) = self.shared.take() {
            task.abort();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the follower knows of a job, to tell what changed.
#[derive(Clone, Copy)]
pub(crate) struct Known {
    state: JobState,
    attempts: i64,
    progress: Option<f64>,
    /// Output lines read so far (the next line's seq is this + 1).
    pub(crate) lines: i64,
}

impl Known {
    pub(crate) fn of(job: &Job) -> Known {
        Known { state: job.state, attempts: job.attempts, progress: job.progress, lines: job.output_lines }
    }
}

/// The follower's memory: the last feed seq read, every job's last known shape, and the
/// approval requests still open (to tell when one expires). Bounded by the jobs table
/// (retention prunes it; pruned jobs are forgotten here too).
struct Seen {
    cursor: i64,
    version: i64,
    /// Whether the pool is paused (a setting: it has no feed seq of its own).
    paused: bool,
    jobs: HashMap<i64, Known>,
    open: HashMap<i64, ApprovalRequest>,
    chat: chat_feed::Seen,
}

impl Seen {
    /// Everything as it is now, in one read transaction.
    fn load(conn: &Connection, now: crate::clock::Millis) -> rusqlite::Result<Seen> {
        conn.execute_batch("BEGIN")?;
        let seen = data_version(conn).and_then(|version| Seen::load_in(conn, version, now));
        conn.execute_batch("COMMIT")?;
        seen
    }

    /// What the follower knows, read inside a transaction already open.
    fn load_in(conn: &Connection, version: i64, now: crate::clock::Millis) -> rusqlite::Result<Seen> {
        let open = approval::pending(conn, now)?.into_iter().map(|r| (r.id, r)).collect();
        let cursor = conn.query_row("SELECT n FROM job_feed_counter", [], |r| r.get(0))?;
        let mut jobs = HashMap::new();
        let mut st = conn.prepare_cached("SELECT id, state, attempts, progress, output_lines FROM jobs")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let state: String = r.get(1)?;
            let known = Known {
                state: JobState::parse(&state).unwrap_or(JobState::Queued),
                attempts: r.get(2)?,
                progress: r.get(3)?,
                lines: r.get(4)?,
            };
            jobs.insert(r.get(0)?, known);
        }
        Ok(Seen { cursor, version, paused: paused(conn)?, jobs, open, chat: chat_feed::Seen::load(conn)? })
    }
}

fn paused(conn: &Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM settings WHERE key = ?1")?.exists([super::ops::claim::PAUSED])
}

fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}

struct Senders {
    jobs: broadcast::Sender<JobFeed>,
    approvals: broadcast::Sender<ApprovalEvent>,
    conversations: broadcast::Sender<ConversationEvent>,
    stops: broadcast::Sender<i64>,
    changes: tokio::sync::watch::Sender<u64>,
}

/// What one look found.
#[derive(Default)]
struct Changes {
    jobs: Vec<JobFeed>,
    approvals: Vec<ApprovalEvent>,
    conversations: Vec<ConversationEvent>,
    stops: Vec<i64>,
    /// Jobs whose output is still behind.
    behind: Vec<i64>,
}

fn follow(conn: Connection, mut seen: Seen, tx: Senders, clock: SharedClock, stop: Arc<AtomicBool>) {
    // Jobs with output left to read from an earlier tick (more than LINES_PER_TICK came).
    let mut behind: Vec<i64> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(TICK);
        // Questions whose time ran out, whether or not their asker is alive to say so.
        let now = clock.now();
        let expired: Vec<i64> = seen.open.values().filter(|r| r.expires_at <= now).map(|r| r.id).collect();
        for id in expired {
            if let Some(mut approval) = seen.open.remove(&id) {
                approval.state = ApprovalState::Expired;
                let _ = tx.approvals.send(ApprovalEvent::Expired { approval });
            }
        }
        match data_version(&conn) {
            Ok(v) if v == seen.version && behind.is_empty() => continue,
            Ok(v) => seen.version = v,
            Err(e) => {
                tracing::warn!(error = %e, "job feed: cannot read the database's version");
                continue;
            }
        }
        match step(&conn, &mut seen, std::mem::take(&mut behind), now) {
            Ok(changes) => {
                behind = changes.behind;
                // No subscriber is fine.
                for event in changes.jobs {
                    let _ = tx.jobs.send(event);
                }
                for event in changes.approvals {
                    let _ = tx.approvals.send(event);
                }
                for event in changes.conversations {
                    let _ = tx.conversations.send(event);
                }
                for id in changes.stops {
                    let _ = tx.stops.send(id);
                }
                tx.changes.send_modify(|n| *n += 1);
            }
            Err(e) => tracing::warn!(error = %e, "job feed: cannot read what changed"),
        }
    }
}

/// One look at the feed: the events since `seen`.
fn step(conn: &Connection, seen: &mut Seen, behind: Vec<i64>, now: crate::clock::Millis) -> rusqlite::Result<Changes> {
    conn.execute_batch("BEGIN")?;
    let result = read_changes(conn, seen, behind, now);
    conn.execute_batch("COMMIT")?;
    result
}

/// Questions asked and answered since `from`.
fn read_approvals(conn: &Connection, seen: &mut Seen, from: i64) -> rusqlite::Result<Vec<ApprovalEvent>> {
    let rows: Vec<(i64, ApprovalRequest)> = conn
        .prepare_cached(&format!(
            "SELECT feed_seq, {} FROM exec_approvals INDEXED BY exec_approvals_feed WHERE feed_seq > ?1 ORDER BY feed_seq",
            approval::COLUMNS
        ))?
        .query_map([from], |r| Ok((r.get(0)?, approval::from_row_at(r, 1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut events = Vec::new();
    for (seq, approval) in rows {
        seen.cursor = seen.cursor.max(seq);
        let was_open = seen.open.remove(&approval.id).is_some();
        match approval.state {
            ApprovalState::Pending => {
                if !was_open {
                    events.push(ApprovalEvent::Requested { approval: approval.clone() });
                }
                seen.open.insert(approval.id, approval);
            }
            // Told already when its time ran out (or it never was open here).
            ApprovalState::Expired if !was_open => {}
            ApprovalState::Expired => events.push(ApprovalEvent::Expired { approval }),
            _ => events.push(ApprovalEvent::Resolved { approval }),
        }
    }
    Ok(events)
}

fn read_changes(conn: &Connection, seen: &mut Seen, behind: Vec<i64>, now: crate::clock::Millis) -> rusqlite::Result<Changes> {
    let from = seen.cursor;
    // Tombstones this far back were forgotten: deletions before it may have been missed.
    let horizon: Option<String> = conn
        .prepare_cached("SELECT value FROM settings WHERE key = 'job_feed.horizon'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    if horizon.and_then(|h| h.parse::<i64>().ok()).is_some_and(|h| h > seen.cursor) {
        *seen = Seen::load_in(conn, seen.version, now)?;
        return Ok(Changes {
            jobs: vec![JobFeed::Resync],
            approvals: vec![ApprovalEvent::Resync],
            conversations: vec![ConversationEvent::Resync],
            ..Default::default()
        });
    }
    let approvals = read_approvals(conn, seen, from)?;
    let chat = chat_feed::read_changes(conn, &mut seen.chat, from)?;
    seen.cursor = seen.cursor.max(chat.cursor);
    // Deleted jobs first: a deleted id never comes back (ids are never reused).
    let gone: Vec<(i64, i64)> = conn
        .prepare_cached("SELECT job_id, seq FROM job_feed_gone WHERE seq > ?1 ORDER BY seq")?
        .query_map([from], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let changed: Vec<(i64, Job)> = conn
        .prepare_cached(&format!(
            "SELECT feed_seq, {JOB_COLUMNS} FROM jobs INDEXED BY jobs_feed WHERE feed_seq > ?1 ORDER BY feed_seq"
        ))?
        .query_map([from], |r| Ok((r.get(0)?, Job::from_row(r)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (seq, _) in &gone {
        seen.cursor = seen.cursor.max(*seq);
    }
    for (seq, _) in &changed {
        seen.cursor = seen.cursor.max(*seq);
    }
    let gone = gone.into_iter().map(|(id, _)| id).collect();
    let changed = changed.into_iter().map(|(_, job)| job).collect();
    let (mut events, left) = job_events(&mut seen.jobs, gone, changed, behind, |id, after| {
        let total: Option<i64> =
            conn.prepare_cached("SELECT output_lines FROM jobs WHERE id = ?1")?.query_row([id], |r| r.get(0)).optional()?;
        Ok::<_, rusqlite::Error>((super::query::output_page(conn, id, after, LINES_PER_TICK)?, total))
    })?;
    // One indexed row, read only when some process committed something.
    let paused = paused(conn)?;
    if paused != seen.paused {
        seen.paused = paused;
        events.push(JobFeed::Paused { paused });
    }
    Ok(Changes { jobs: events, approvals, conversations: chat.events, stops: chat.stops, behind: left })
}

/// The events that turn what the follower knew of the jobs (`known`) into what a look found:
/// jobs deleted (`gone`), jobs whose rows changed (`changed`, as they are now), and their new
/// output, read a page at a time through `page(id, after)` → (up to [`LINES_PER_TICK`] lines
/// after `after`, the job's line count if it still exists). `behind`: jobs whose output was
/// left unread by an earlier look. Returns the events and the jobs still behind. Both stores'
/// followers use it, so a front end sees the same events from either.
pub(crate) fn job_events<E>(
    known: &mut HashMap<i64, Known>,
    gone: Vec<i64>,
    changed: Vec<Job>,
    behind: Vec<i64>,
    mut page: impl FnMut(i64, i64) -> std::result::Result<(Vec<OutputLine>, Option<i64>), E>,
) -> std::result::Result<(Vec<JobFeed>, Vec<i64>), E> {
    let mut events = Vec::new();
    let mut pruned = Vec::new();
    // Deleted jobs first: a deleted id never comes back (ids are never reused).
    for id in gone {
        // Told even if it came and went between two looks: "job N is gone" is never wrong.
        known.remove(&id);
        pruned.push(id);
    }
    let mut output_of: Vec<i64> = behind;
    for job in changed {
        let id = job.id;
        let before = known.get(&id).copied();
        let now = Known::of(&job);
        let read_from = before.map_or(0, |b| b.lines);
        known.insert(id, Known { lines: read_from, ..now });
        // The row is read as it is now; what happened since the last look is told in the order
        // it must have happened in, so a follower always sees submitted → claimed → output →
        // finished, however quick the job was.
        let was = before.map_or((JobState::Queued, 0), |b| (b.state, b.attempts));
        let mut told = false;
        if before.is_none() {
            events.push(JobFeed::Submitted { job: job.clone() });
            told = true;
        }
        // A finished job changes only by being retried: back in the queue first.
        let retried = before.is_some() && was.0.is_finished() && (now.attempts > was.1 || now.state != was.0);
        if retried {
            events.push(JobFeed::Requeued { job: job.clone() });
            told = true;
        }
        if now.attempts > was.1 {
            events.push(JobFeed::Claimed { job: job.clone() });
            told = true;
        }
        let moved = told || now.state != was.0;
        if job.state.is_finished() {
            // A job's last lines come before the news that it finished.
            while read_output(known, id, &mut page, &mut events)? {}
            output_of.retain(|&j| j != id);
            if moved {
                events.push(JobFeed::Finished { job: job.clone() });
                continue;
            }
        } else if now.lines > read_from && !output_of.contains(&id) {
            output_of.push(id);
        }
        if job.state == JobState::Queued && before.is_some() && moved && !retried {
            events.push(JobFeed::Requeued { job: job.clone() });
        } else if before.is_some_and(|b| b.progress != now.progress) {
            events.push(match now.progress {
                Some(percent) => JobFeed::Progress { id, percent },
                None => JobFeed::Changed { job: job.clone() },
            });
        } else if !told && before.is_some_and(|b| b.lines == now.lines) {
            events.push(JobFeed::Changed { job: job.clone() });
        }
    }
    let mut left = Vec::new();
    for id in output_of {
        if read_output(known, id, &mut page, &mut events)? {
            left.push(id);
        }
    }
    if !pruned.is_empty() {
        events.push(JobFeed::Pruned { ids: pruned });
    }
    Ok((events, left))
}

/// Read up to [`LINES_PER_TICK`] new lines of job `id`; true if more are left.
fn read_output<E>(
    known: &mut HashMap<i64, Known>,
    id: i64,
    page: &mut impl FnMut(i64, i64) -> std::result::Result<(Vec<OutputLine>, Option<i64>), E>,
    events: &mut Vec<JobFeed>,
) -> std::result::Result<bool, E> {
    let Some(known) = known.get_mut(&id) else { return Ok(false) };
    let (lines, total) = page(id, known.lines)?;
    let total = total.unwrap_or(known.lines);
    let read = lines.len() as i64;
    for line in lines {
        known.lines = line.seq;
        events.push(JobFeed::Output { id, line });
    }
    if read < LINES_PER_TICK {
        // Lines the output cap dropped before they were read are skipped, not waited for.
        known.lines = total;
    }
    Ok(known.lines < total)
}
