//! What a job is, as stored and as shown.

use std::time::Duration;

use serde::Serialize;

use crate::clock::Millis;
use crate::error::JobError;

/// Where a job is in its life. Succeeded, failed and canceled are final until a person retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum JobState {
    /// Waiting for a worker: new, in a retry's backoff, or put back after its pool died.
    Queued,
    /// A pool holds it and an attempt is under way.
    Running,
    /// Its last attempt ended well.
    Succeeded,
    /// An attempt failed (or timed out) with no attempts left, or it was interrupted for good.
    Failed,
    /// Stopped because a person asked, queued or running.
    Canceled,
}

impl JobState {
    /// Every state, in the order of a job's life; for listing and parsing.
    pub const ALL: [JobState; 5] =
        [JobState::Queued, JobState::Running, JobState::Succeeded, JobState::Failed, JobState::Canceled];

    /// The state's name as stored, serialized and printed (`queued`, `running`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Canceled => "canceled",
        }
    }

    /// The state [`JobState::as_str`] names `s`; `None` for any other text.
    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Succeeded, failed and canceled jobs never change again (unless retried by a person).
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Canceled)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job to submit.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The job kind's name (`exec`, `prompt`, ...); the engine must have a runner for it.
    pub kind: String,
    /// Kind-specific description, validated by the kind at submit time.
    pub spec: serde_json::Value,
    /// Higher runs first; equal priorities run in submission order.
    pub priority: i64,
    /// Attempts in all, including the first. 1 = never retried.
    pub max_attempts: u32,
    /// Per attempt; `None` = no limit.
    pub timeout: Option<Duration>,
}

impl NewJob {
    /// A job of `kind` running `spec`: priority 0, one attempt, no timeout.
    pub fn new(kind: &str, spec: serde_json::Value) -> NewJob {
        NewJob { kind: kind.to_owned(), spec, priority: 0, max_attempts: 1, timeout: None }
    }
}

/// A job as the store has it. Serializes to the CLI/IPC contract: `id, kind, state, priority,
/// attempts, max_attempts, created_at, started_at, finished_at, exit_code, error, title,
/// waiting_approval`, times in
/// RFC 3339 UTC. The other fields are for people (the human views) and are not serialized.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct Job {
    /// The job's id, stable for its life; what `gatehouse jobs show ID` takes.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub id: i64,
    /// The job kind's name (`exec`, `prompt`, ...).
    pub kind: String,
    /// Where the job is in its life now.
    pub state: JobState,
    /// Higher runs first; equal priorities run in submission order.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub priority: i64,
    /// Attempts started so far, a running one included.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub attempts: i64,
    /// Attempts allowed in all; when the last one fails, so does the job.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub max_attempts: i64,
    /// When it was submitted.
    #[serde(serialize_with = "crate::clock::serde_rfc3339::time")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub created_at: Millis,
    /// When its latest attempt started; `None` before the first.
    #[serde(serialize_with = "crate::clock::serde_rfc3339::opt_time")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub started_at: Option<Millis>,
    /// When it reached a final state; `None` while queued or running.
    #[serde(serialize_with = "crate::clock::serde_rfc3339::opt_time")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub finished_at: Option<Millis>,
    /// The exit status of the last attempt's process, for kinds that run one.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub exit_code: Option<i64>,
    /// What ended the last attempt badly (kept while a retry waits); `None` if nothing did.
    pub error: Option<JobError>,
    /// What the job runs, in one line, for lists, the tray and notifications: an exec job's
    /// command line, a prompt's text (and its gateway, if one was named) — control characters
    /// escaped, at most [`TITLE_CHARS`] characters.
    pub title: String,
    /// A running exec job waiting for a person's answer: the approval request it waits on
    /// ([`crate::Engine::approvals`]). Its timeout still runs.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub waiting_approval: Option<i64>,
    /// What it was submitted to do, in its kind's terms (`Null` if the stored text is not JSON).
    #[serde(skip)]
    pub spec: serde_json::Value,
    /// Each attempt's time limit, in milliseconds; `None` = no limit.
    #[serde(skip)]
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub timeout_ms: Option<i64>,
    /// The earliest a queued job may be claimed: its submission, or the end of a retry's backoff.
    #[serde(skip)]
    pub run_after: Millis,
    /// The latest progress the current attempt reported, in percent; `None` if it reported none.
    #[serde(skip)]
    pub progress: Option<f64>,
    /// The pool running it (`host:pid:nonce`), while it runs.
    #[serde(skip)]
    pub lease_owner: Option<String>,
    /// Output lines written in all, dropped ones included; the last line's `seq`.
    #[serde(skip)]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub output_lines: i64,
    /// The oldest lines deleted to keep the output under the pool's cap; `logs` says so.
    #[serde(skip)]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub output_dropped_lines: i64,
    /// How many bytes those dropped lines held.
    #[serde(skip)]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub output_dropped_bytes: i64,
}



/// The longest [`Job::title`], in characters.
pub const TITLE_CHARS: usize = 200;

/// The title of a job of `kind` with `spec` (see [`Job::title`]).
pub(crate) fn title(kind: &str, spec: &serde_json::Value) -> String {
    let text = match kind {
        "exec" => serde_json::from_value::<crate::exec::ExecSpec>(spec.clone())
            .map(|spec| spec.display())
            .unwrap_or_else(|_| spec.to_string()),
        "prompt" => {
            // The prompt first: a title cut to fit a column keeps what a person recognises.
            let text = spec.get("text").and_then(|t| t.as_str()).unwrap_or("").replace('\n', " ");
            match spec.get("gateway").and_then(|g| g.as_str()) {
                Some(gateway) => format!("{text} (to {gateway})"),
                None => text,
            }
        }
        _ => spec.to_string(),
    };
    let text = crate::exec::shown(&text);
    match text.char_indices().nth(TITLE_CHARS - 1) {
        Some((at, _)) if text.chars().count() > TITLE_CHARS => format!("{}…", &text[..at]),
        _ => text.into_owned(),
    }
}

/// The columns [`Job`] is read from; every query that returns jobs selects these.
pub(crate) const JOB_COLUMNS: &str = "id, kind, spec, state, priority, attempts, max_attempts, \
     timeout_ms, created_at, run_after, started_at, finished_at, exit_code, error_code, \
     error_message, lease_owner, progress, output_lines, output_dropped_lines, output_dropped_bytes, waiting_approval";

impl Job {
    /// Read a row selected with [`JOB_COLUMNS`].
    pub(crate) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
        let state: String = row.get("state")?;
        let spec: String = row.get("spec")?;
        let spec = serde_json::from_str(&spec).unwrap_or(serde_json::Value::Null);
        let kind: String = row.get("kind")?;
        let error_code: Option<String> = row.get("error_code")?;
        let error_message: Option<String> = row.get("error_message")?;
        Ok(Job {
            id: row.get("id")?,
            kind: kind.clone(),
            state: JobState::parse(&state).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, format!("unknown job state {state:?}").into())
            })?,
            priority: row.get("priority")?,
            attempts: row.get("attempts")?,
            max_attempts: row.get("max_attempts")?,
            created_at: row.get("created_at")?,
            started_at: row.get("started_at")?,
            finished_at: row.get("finished_at")?,
            exit_code: row.get("exit_code")?,
            error: error_code.map(|code| JobError { code, message: error_message.unwrap_or_default() }),
            title: title(&kind, &spec),
            // Only a running attempt waits; a question left by a pool that died is not news.
            waiting_approval: if state == "running" { row.get("waiting_approval")? } else { None },
            spec,
            timeout_ms: row.get("timeout_ms")?,
            run_after: row.get("run_after")?,
            progress: row.get("progress")?,
            lease_owner: row.get("lease_owner")?,
            output_lines: row.get("output_lines")?,
            output_dropped_lines: row.get("output_dropped_lines")?,
            output_dropped_bytes: row.get("output_dropped_bytes")?,
        })
    }
}

/// Which stream a line of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum Stream {
    /// The command's standard output, or a kind's ordinary text (a prompt's reply).
    Stdout,
    /// The command's standard error, or a kind's side notes (a prompt's tool calls).
    Stderr,
}

impl Stream {
    /// The stream's name as stored and shown: `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One stored line of a job's output.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct OutputLine {
    /// The line's place in the job's output, across attempts; `output` pages resume after it.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
    /// The attempt that wrote it, 1 for the first.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub attempt: i64,
    /// Which stream it came from.
    pub stream: Stream,
    /// When the line was produced.
    #[serde(serialize_with = "crate::clock::serde_rfc3339::time")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub at: Millis,
    /// The line's text, without its line break.
    pub text: String,
}

/// What happened to a job, for subscribers. Sent on a bounded broadcast channel: a subscriber
/// that falls behind gets `Lagged` from tokio and should re-read the store.
#[derive(Debug, Clone)]
pub enum JobEvent {
    /// The job was submitted or changed state.
    State {
        /// The job that changed.
        id: i64,
        /// The state it is in now.
        state: JobState,
    },
    /// A line of output, as it is produced (before it is stored).
    Output {
        /// The job that wrote it.
        id: i64,
        /// The attempt that wrote it, 1 for the first.
        attempt: i64,
        /// Which stream it came from.
        stream: Stream,
        /// The line's text, without its line break.
        text: String,
    },
    /// The job reported progress, in percent.
    Progress {
        /// The job that reported it.
        id: i64,
        /// How far along it is, 0 to 100.
        percent: f64,
    },
    /// Finished jobs past the retention period were deleted.
    Pruned {
        /// How many jobs were deleted.
        count: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_is_one_safe_line_of_bounded_length() {
        let exec = serde_json::json!({ "program": "sh", "args": ["-c", "echo hi\n\u{1b}]52;c;x\u{7}"] });
        let t = title("exec", &exec);
        assert!(t.starts_with("sh -c ") && !t.chars().any(|c| c.is_control()), "{t}");
        let prompt = serde_json::json!({ "gateway": "claw", "text": "line one\nline two" });
        assert_eq!(title("prompt", &prompt), "line one line two (to claw)");
        assert_eq!(title("prompt", &serde_json::json!({ "text": "hi" })), "hi");
        let long = serde_json::json!({ "text": "x".repeat(500) });
        let t = title("prompt", &long);
        assert_eq!((t.chars().count(), t.ends_with('…')), (TITLE_CHARS, true));
    }
}
