//! Approvals: the engine's own record of what a person allowed.
//!
//! When a rule says ask, the question is written to the database (`exec_approvals`, migration
//! 0012) before anyone is asked, and the command waits (`ask`) for the first answer from
//! anywhere: the front end that asked (an [`Approver`] — the terminal's prompt), or any other
//! process on the database — `gatehouse approvals allow ID` in another terminal, the desktop
//! app's dialog — through [`crate::Engine::answer_approval`]. Waiting ends with the answer,
//! with the request's expiry (a no), or when the asker stops (its turn or job was stopped).
//!
//! No caller can mark a command approved: there is no field of a request or a job spec that
//! says so. What runs after an `ask` is what a row here says was allowed, for that command and
//! that program file ([`ApprovalRequest::prompt`] and the program's fingerprint). An exec job
//! waits for its answer while it holds its worker, with its timeout still running, and says
//! so (`Job::waiting_approval`); when it is submitted by a person at a terminal, the answer
//! can be given then ([`crate::Engine::submit_exec`]), and its first attempt takes it.
//!
//! Every process learns of questions and answers from the database feed ([`ApprovalEvent`],
//! from the same follower as the job feed), so a stale prompt is cleared everywhere.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{Approval, Approver, Context, Requester};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::pool::kind::BoxFuture;
use crate::store::writer::{db, WriteOp};

/// A question put to a person: run this command?
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ApprovalRequest {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    /// Its id: what `gatehouse approvals allow ID` takes.
    pub id: i64,
    #[serde(serialize_with = "crate::clock::serde_rfc3339::time")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    /// When it was asked.
    pub asked_at: Millis,
    /// After this the request is closed, and the command refused.
    #[serde(serialize_with = "crate::clock::serde_rfc3339::time")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub expires_at: Millis,
    /// Who wants it run: `person`, `model` or `job`.
    pub requester: String,
    /// The conversation whose model asked.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub conversation_id: Option<i64>,
    /// The exec job that asked.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub job_id: Option<i64>,
    /// The program as requested (a name or a path).
    pub program: String,
    /// The file the program resolved to: an approval holds for that file, not the name.
    pub program_file: String,
    /// The arguments, as requested.
    pub args: Vec<String>,
    /// Where it would run.
    pub cwd: String,
    /// Names of the environment variables the request sets.
    pub env: Vec<String>,
    /// The whole question in one line: the command, the file it runs, where, with which
    /// variables — control characters escaped.
    pub prompt: String,
    /// Why it is asked: the rule, in words.
    pub reason: String,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    /// The rule that asked, if one did (none covers it: asked by default).
    pub rule_id: Option<i64>,
    /// Where it stands.
    pub state: ApprovalState,
    /// When allowed for a time (a timed grant), how long, in seconds.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub grant_secs: Option<u64>,
    #[serde(serialize_with = "crate::clock::serde_rfc3339::opt_time")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    /// When it was answered (or closed).
    pub answered_at: Option<Millis>,
    #[serde(skip)]
    pub(crate) fingerprint: String,
    #[serde(skip)]
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub(crate) grant_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
/// Where an approval request stands.
pub enum ApprovalState {
    /// Waiting for an answer.
    Pending,
    /// A person said yes (once, or for a time).
    Allowed,
    /// A person said no.
    Denied,
    /// Nobody answered in time.
    Expired,
    /// The asker stopped waiting: its turn or job was stopped, or nobody was there to ask.
    Withdrawn,
}

impl ApprovalState {
    /// The word stored and shown: `pending`, `allowed`, …
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Allowed => "allowed",
            ApprovalState::Denied => "denied",
            ApprovalState::Expired => "expired",
            ApprovalState::Withdrawn => "withdrawn",
        }
    }

    fn parse(s: &str) -> ApprovalState {
        match s {
            "pending" => ApprovalState::Pending,
            "allowed" => ApprovalState::Allowed,
            "denied" => ApprovalState::Denied,
            "expired" => ApprovalState::Expired,
            _ => ApprovalState::Withdrawn,
        }
    }
}

impl ApprovalRequest {
    /// The answer this row holds, as the asker acts on it.
    fn answer(&self) -> Approval {
        match self.state {
            ApprovalState::Allowed => match self.grant_ms {
                Some(ms) => Approval::For(Duration::from_millis(ms.max(0) as u64)),
                None => Approval::Once,
            },
            ApprovalState::Denied => Approval::Denied,
            ApprovalState::Withdrawn => Approval::Unavailable,
            ApprovalState::Expired | ApprovalState::Pending => Approval::Expired,
        }
    }
}

/// News about approvals, from every process on the database ([`crate::Engine::watch_approvals`]).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum ApprovalEvent {
    /// A command waits for a person.
    Requested {
        /// The request, as stored.
        approval: ApprovalRequest,
    },
    /// Answered (allowed or denied), or withdrawn by its asker: close the prompt.
    Resolved {
        /// The request, answered.
        approval: ApprovalRequest,
    },
    /// Nobody answered in time: close the prompt.
    Expired {
        /// The request, closed.
        approval: ApprovalRequest,
    },
    /// Events were missed: reload the pending list ([`crate::Engine::approvals`]).
    Resync,
}

/// A subscription to [`ApprovalEvent`]s.
pub type ApprovalWatch = crate::pool::feed::Watch<ApprovalEvent>;

/// Waits for an answer from any process until the request expires: for front ends that show
/// requests from the feed rather than at the place that asked (the desktop app).
pub struct Elsewhere;

impl Approver for Elsewhere {
    fn approve(&self, _: &ApprovalRequest) -> BoxFuture<Approval> {
        Box::pin(std::future::pending())
    }
}

pub(crate) const COLUMNS: &str = "id, asked_at, expires_at, requester, conversation_id, job_id, program, program_file, \
     args, cwd, env, prompt, reason, rule_id, state, grant_ms, answered_at, fingerprint";

pub(crate) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRequest> {
    from_row_at(r, 0)
}

/// Read [`COLUMNS`] starting at column `at`.
pub(crate) fn from_row_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<ApprovalRequest> {
    let list = |i: usize| -> rusqlite::Result<Vec<String>> {
        let text: String = r.get(at + i)?;
        Ok(serde_json::from_str(&text).unwrap_or_default())
    };
    let state: String = r.get(at + 14)?;
    let grant_ms: Option<i64> = r.get(at + 15)?;
    Ok(ApprovalRequest {
        id: r.get(at)?,
        asked_at: r.get(at + 1)?,
        expires_at: r.get(at + 2)?,
        requester: r.get(at + 3)?,
        conversation_id: r.get(at + 4)?,
        job_id: r.get(at + 5)?,
        program: r.get(at + 6)?,
        program_file: r.get(at + 7)?,
        args: list(8)?,
        cwd: r.get(at + 9)?,
        env: list(10)?,
        prompt: r.get(at + 11)?,
        reason: r.get(at + 12)?,
        rule_id: r.get(at + 13)?,
        state: ApprovalState::parse(&state),
        grant_secs: grant_ms.map(|ms| (ms.max(0) / 1000) as u64),
        answered_at: r.get(at + 16)?,
        fingerprint: r.get(at + 17)?,
        grant_ms,
    })
}

/// Requests still waiting at `now`, oldest first.
pub(crate) fn pending(conn: &Connection, now: Millis) -> rusqlite::Result<Vec<ApprovalRequest>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM exec_approvals WHERE state = 'pending' AND expires_at > ?1 ORDER BY id"
    ))?
    .query_map([now], from_row)?
    .collect()
}

pub(crate) fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<ApprovalRequest>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM exec_approvals WHERE id = ?1"))?.query_row([id], from_row).optional()
}

/// The question, before it is stored.
#[derive(Debug, Clone)]
pub(crate) struct Question {
    pub requester: Requester,
    /// The job's attempt, when a job asks.
    pub attempt: Option<i64>,
    pub program: String,
    pub program_file: String,
    pub args: Vec<String>,
    pub cwd: String,
    pub env: Vec<String>,
    pub prompt: String,
    pub reason: String,
    pub rule_id: Option<i64>,
    pub fingerprint: String,
}

impl Question {
    /// The request a front end is shown before it is stored (an answer given when a job is
    /// submitted): id 0, pending.
    pub(crate) fn preview(&self, now: Millis) -> ApprovalRequest {
        let (conversation_id, job_id) = self.requester.ids();
        ApprovalRequest {
            id: 0,
            asked_at: now,
            expires_at: now,
            requester: self.requester.kind().into(),
            conversation_id,
            job_id,
            program: self.program.clone(),
            program_file: self.program_file.clone(),
            args: self.args.clone(),
            cwd: self.cwd.clone(),
            env: self.env.clone(),
            prompt: self.prompt.clone(),
            reason: self.reason.clone(),
            rule_id: self.rule_id,
            state: ApprovalState::Pending,
            grant_secs: None,
            answered_at: None,
            fingerprint: self.fingerprint.clone(),
            grant_ms: None,
        }
    }

    fn insert(&self, conn: &Connection, now: Millis, expires_at: Millis, state: &str, grant_ms: Option<i64>) -> Result<ApprovalRequest> {
        let (conversation_id, job_id) = self.requester.ids();
        let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let answered = (state != "pending").then_some(now);
        conn.prepare_cached(&format!(
            "INSERT INTO exec_approvals (asked_at, expires_at, requester, conversation_id, job_id, attempt, program,
                 program_file, args, cwd, env, prompt, reason, rule_id, fingerprint, state, grant_ms, answered_at, feed_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                 (SELECT n FROM job_feed_counter))
             RETURNING {COLUMNS}"
        ))
        .and_then(|mut st| {
            st.query_row(
                params![
                    now,
                    expires_at,
                    self.requester.kind(),
                    conversation_id,
                    job_id,
                    self.attempt,
                    self.program,
                    self.program_file,
                    json(&self.args),
                    self.cwd,
                    json(&self.env),
                    self.prompt,
                    self.reason,
                    self.rule_id,
                    self.fingerprint,
                    state,
                    grant_ms,
                    answered
                ],
                from_row,
            )
        })
        .map_err(db)
    }
}

/// Store a question (or take the answer given in advance to a job's).
pub(crate) struct Ask {
    pub question: Question,
    pub wait: Duration,
}

pub(crate) enum Asked {
    /// A person allowed it when the job was submitted, for this very command and file.
    Given(ApprovalRequest),
    Pending(ApprovalRequest),
}

impl WriteOp for Ask {
    type Output = Asked;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<Asked> {
        let q = &self.question;
        if let (Requester::Job(job), Some(attempt)) = (q.requester, q.attempt) {
            let given = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM exec_approvals WHERE job_id = ?1 AND attempt IS NULL AND state = 'allowed'"
                ))
                .and_then(|mut st| st.query_row([job], from_row).optional())
                .map_err(db)?;
            if let Some(given) = given {
                // Taken by this attempt, whether it still fits or not: a retry asks again.
                let fits = given.prompt == q.prompt && given.fingerprint == q.fingerprint;
                conn.prepare_cached(
                    "UPDATE exec_approvals SET attempt = ?2, feed_seq = (SELECT n FROM job_feed_counter),
                         state = CASE WHEN ?3 THEN state ELSE 'withdrawn' END
                     WHERE id = ?1",
                )
                .and_then(|mut st| st.execute(params![given.id, attempt, fits]))
                .map_err(db)?;
                if fits {
                    return Ok(Asked::Given(given));
                }
            }
            // An earlier attempt's question nobody waits on any more (its pool died).
            conn.prepare_cached(
                "UPDATE exec_approvals SET state = 'withdrawn', answered_at = ?2, feed_seq = (SELECT n FROM job_feed_counter)
                 WHERE job_id = ?1 AND state = 'pending'",
            )
            .and_then(|mut st| st.execute(params![job, now]))
            .map_err(db)?;
        }
        let request = q.insert(conn, now, now + self.wait.as_millis() as i64, "pending", None)?;
        if let (Requester::Job(job), Some(attempt)) = (q.requester, q.attempt) {
            conn.prepare_cached(
                "UPDATE jobs SET waiting_approval = ?2, feed_seq = (SELECT n FROM job_feed_counter)
                 WHERE id = ?1 AND state = 'running' AND attempts = ?3",
            )
            .and_then(|mut st| st.execute(params![job, request.id, attempt]))
            .map_err(db)?;
        }
        Ok(Asked::Pending(request))
    }
}

/// Record an answer given in advance to the job a person is submitting, in the same
/// transaction as the job.
pub(crate) struct SubmitApproved {
    pub submit: crate::pool::ops::submit::Submit,
    pub question: Question,
    pub grant_ms: Option<i64>,
}

impl WriteOp for SubmitApproved {
    type Output = i64;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<i64> {
        let id = self.submit.apply(conn, now)?;
        self.question.requester = Requester::Job(id);
        self.question.attempt = None;
        self.question.insert(conn, now, now, "allowed", self.grant_ms)?;
        Ok(id)
    }
}

/// How a request is closed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Close {
    /// A person's answer; refused unless the request is still open.
    Answer { allow: bool, grant_ms: Option<i64> },
    /// Its time ran out.
    Expire,
    /// Its asker stopped waiting.
    Withdraw,
}

/// Close request `id`. An answer to a closed request is an error; an expiry or a withdrawal
/// of one that was answered meanwhile leaves the answer, and returns the row as it is.
pub(crate) struct Settle {
    pub id: i64,
    pub how: Close,
}

impl WriteOp for Settle {
    type Output = ApprovalRequest;
    fn apply(&mut self, conn: &Connection, now: Millis) -> Result<ApprovalRequest> {
        let (state, grant_ms, must_be_open) = match self.how {
            Close::Answer { allow, grant_ms } => (if allow { "allowed" } else { "denied" }, grant_ms, true),
            Close::Expire => ("expired", None, false),
            Close::Withdraw => ("withdrawn", None, false),
        };
        let changed = conn
            .prepare_cached(
                "UPDATE exec_approvals SET state = ?2, grant_ms = ?3, answered_at = ?4,
                     feed_seq = (SELECT n FROM job_feed_counter)
                 WHERE id = ?1 AND state = 'pending' AND (expires_at > ?4 OR NOT ?5)",
            )
            .and_then(|mut st| st.execute(params![self.id, state, grant_ms, now, must_be_open]))
            .map_err(db)?;
        let row = get(conn, self.id).map_err(db)?.ok_or(Error::ApprovalNotFound(self.id))?;
        if changed == 0 && must_be_open {
            let state = match row.state {
                ApprovalState::Pending => "it expired".to_owned(),
                other => format!("it was {} already", other.as_str()),
            };
            return Err(Error::ApprovalClosed { id: self.id, state });
        }
        if changed == 1 {
            conn.prepare_cached(
                "UPDATE jobs SET waiting_approval = NULL, feed_seq = (SELECT n FROM job_feed_counter)
                 WHERE waiting_approval = ?1",
            )
            .and_then(|mut st| st.execute([self.id]))
            .map_err(db)?;
        }
        Ok(row)
    }
}

/// Ask `question`, and wait for the first answer from anywhere: `approver` (where the request
/// came from), another process, the request's expiry after `wait`, or `stop`. Returns the
/// answer and the request it answered.
pub(crate) async fn ask(
    ctx: &Context<'_>,
    question: Question,
    wait: Duration,
    approver: &dyn Approver,
    stop: &CancellationToken,
    job: Option<&crate::pool::kind::JobRun>,
) -> Result<(Approval, ApprovalRequest)> {
    // Subscribed before the question is stored, so no answer can come before we listen.
    let mut watch = ctx.feed.approvals().await?;
    let writer = &ctx.store.writer;
    let request = match writer.apply(Ask { question, wait }).await? {
        Asked::Given(given) => return Ok((given.answer(), given)),
        Asked::Pending(request) => request,
    };
    let id = request.id;
    if let Some(job) = job {
        job.waiting(Some(id)).await;
    }
    // However the wait ends — or if this future is dropped — the request is closed.
    let mut guard = WithdrawOnDrop { writer: Some(writer.clone()), id };
    let settle = |how| async move {
        match writer.apply(Settle { id, how }).await {
            Ok(row) => Ok(row),
            // Someone answered first (or it expired): theirs stands.
            Err(Error::ApprovalClosed { .. }) => ctx.store.read(move |c| get(c, id)).await?.ok_or(Error::ApprovalNotFound(id)),
            Err(e) => Err(e),
        }
    };
    let local = approver.approve(&request);
    tokio::pin!(local);
    let expiry = tokio::time::sleep(wait);
    tokio::pin!(expiry);
    // The loop's errors are held until the job's waiting mark is cleared, however it ended.
    let ended: Result<ApprovalRequest> = async { Ok(loop {
        tokio::select! {
            answer = &mut local => {
                let how = match answer {
                    Approval::Once => Close::Answer { allow: true, grant_ms: None },
                    Approval::For(d) => Close::Answer { allow: true, grant_ms: Some(d.as_millis() as i64) },
                    Approval::Denied => Close::Answer { allow: false, grant_ms: None },
                    Approval::Unavailable => Close::Withdraw,
                    Approval::Expired => Close::Expire,
                };
                break settle(how).await?;
            }
            event = watch.next() => match event {
                Some(ApprovalEvent::Resolved { approval }) if approval.id == id => break approval,
                Some(ApprovalEvent::Expired { approval }) if approval.id == id => break settle(Close::Expire).await.unwrap_or(approval),
                Some(ApprovalEvent::Resync) => {
                    let row = ctx.store.read(move |c| get(c, id)).await?;
                    if let Some(row) = row.filter(|r| r.state != ApprovalState::Pending) {
                        break row;
                    }
                }
                Some(_) => {}
                None => break settle(Close::Withdraw).await?,
            },
            _ = &mut expiry => break settle(Close::Expire).await?,
            _ = stop.cancelled() => break settle(Close::Withdraw).await?,
        }
    }) }
    .await;
    if let Some(job) = job {
        job.waiting(None).await;
    }
    let row = ended?;
    guard.writer = None;
    Ok((row.answer(), row))
}

struct WithdrawOnDrop {
    writer: Option<crate::store::writer::Writer>,
    id: i64,
}

impl Drop for WithdrawOnDrop {
    fn drop(&mut self) {
        let (Some(writer), Ok(runtime)) = (self.writer.take(), tokio::runtime::Handle::try_current()) else { return };
        let id = self.id;
        runtime.spawn(async move {
            let _ = writer.apply(Settle { id, how: Close::Withdraw }).await;
        });
    }
}
