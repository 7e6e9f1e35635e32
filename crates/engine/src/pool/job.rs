//! What a job is, as stored and as shown.

use std::time::Duration;

use serde::Serialize;

use crate::clock::Millis;
use crate::error::JobError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl JobState {
    pub const ALL: [JobState; 5] =
        [JobState::Queued, JobState::Running, JobState::Succeeded, JobState::Failed, JobState::Canceled];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Canceled => "canceled",
        }
    }

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
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub id: i64,
    pub kind: String,
    pub state: JobState,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub priority: i64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub attempts: i64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub max_attempts: i64,
    #[serde(serialize_with = "crate::clock::serde_rfc3339::time")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub created_at: Millis,
    #[serde(serialize_with = "crate::clock::serde_rfc3339::opt_time")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub started_at: Option<Millis>,
    #[serde(serialize_with = "crate::clock::serde_rfc3339::opt_time")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub finished_at: Option<Millis>,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub exit_code: Option<i64>,
    pub error: Option<JobError>,
    /// What the job runs, in one line, for lists, the tray and notifications: an exec job's
    /// command line, a prompt's gateway and text — control characters escaped, at most
    /// [`TITLE_CHARS`] characters.
    pub title: String,
    /// A running exec job waiting for a person's answer: the approval request it waits on
    /// ([`crate::Engine::approvals`]). Its timeout still runs.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub waiting_approval: Option<i64>,
    #[serde(skip)]
    pub spec: serde_json::Value,
    #[serde(skip)]
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub timeout_ms: Option<i64>,
    #[serde(skip)]
    pub run_after: Millis,
    #[serde(skip)]
    pub progress: Option<f64>,
    #[serde(skip)]
    pub lease_owner: Option<String>,
    #[serde(skip)]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub output_lines: i64,
    #[serde(skip)]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub output_dropped_lines: i64,
    #[serde(skip)]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub output_dropped_bytes: i64,
}



/// The longest [`Job::title`], in characters.
pub const TITLE_CHARS: usize = 200;

/// The title of a job of `kind` with `spec` (see [`Job::title`]).
fn title(kind: &str, spec: &serde_json::Value) -> String {
    let text = match kind {
        "exec" => serde_json::from_value::<crate::exec::ExecSpec>(spec.clone())
            .map(|spec| spec.display())
            .unwrap_or_else(|_| spec.to_string()),
        "prompt" => {
            let text = spec.get("text").and_then(|t| t.as_str()).unwrap_or("");
            let gateway = spec.get("gateway").and_then(|g| g.as_str()).unwrap_or("default gateway");
            format!("[{gateway}] {}", text.replace('\n', " "))
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
    Stdout,
    Stderr,
}

impl Stream {
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
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub attempt: i64,
    pub stream: Stream,
    #[serde(serialize_with = "crate::clock::serde_rfc3339::time")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub at: Millis,
    pub text: String,
}

/// What happened to a job, for subscribers. Sent on a bounded broadcast channel: a subscriber
/// that falls behind gets `Lagged` from tokio and should re-read the store.
#[derive(Debug, Clone)]
pub enum JobEvent {
    /// The job was submitted or changed state.
    State { id: i64, state: JobState },
    /// A line of output, as it is produced (before it is stored).
    Output { id: i64, attempt: i64, stream: Stream, text: String },
    /// The job reported progress, in percent.
    Progress { id: i64, percent: f64 },
    /// Finished jobs past the retention period were deleted.
    Pruned { count: u64 },
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
        assert_eq!(title("prompt", &prompt), "[claw] line one line two");
        let long = serde_json::json!({ "text": "x".repeat(500) });
        let t = title("prompt", &long);
        assert_eq!((t.chars().count(), t.ends_with('…')), (TITLE_CHARS, true));
    }
}
