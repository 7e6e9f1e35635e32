//! Tools the model may call in an `openai` chat. One for now: `exec`, which runs a command
//! through the exec tool's whole path — policy, approval, sandbox, limits, audit — on behalf
//! of the model. A refusal is not an error of the chat: it is the tool's answer, so the model
//! learns why and can say so.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::exec::{Approver, ExecRequest, ExecSpec, Output, Requester, Runner};
use crate::gateway::ToolCall;
use crate::pool::kind::BoxFuture;

/// Output sent back to the model per call; a model's context is small.
const RESULT_CAP: usize = 16 * 1024;
const TIMEOUT: Duration = Duration::from_secs(120);

/// What a tool did, for the model and for the person watching.
#[derive(Debug, Clone)]
pub struct ToolOutcome {
    /// One line for the person: what ran and how it ended.
    pub summary: String,
    /// The tool message content for the model.
    pub result: String,
    /// How it ended, for the stored record: `completed` (ran, whatever its exit code),
    /// `failed` (ran and the runner reported an error) or `refused` (never ran).
    pub status: String,
}

pub(crate) trait ToolRunner: Send + Sync {
    fn definitions(&self) -> Vec<serde_json::Value>;
    /// Run one call; `stop` (the turn's cancel) kills what it started.
    fn run(&self, call: ToolCall, stop: CancellationToken) -> BoxFuture<ToolOutcome>;
}

pub(crate) struct ExecTool {
    pub runner: Runner,
    pub approver: Arc<dyn Approver>,
    /// The conversation whose model calls the tool (said in approval requests).
    pub conversation: i64,
}

#[derive(Deserialize)]
struct ExecArgs {
    program: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    cwd: Option<std::path::PathBuf>,
}

/// What a call will run, in one line, for the chat to show while it waits for approval or runs.
pub(crate) fn announce(call: &ToolCall) -> String {
    match serde_json::from_str::<ExecArgs>(&call.function.arguments) {
        Ok(a) => format!("running `{}`", ExecSpec::new(a.program, a.args).display()),
        Err(_) => format!("the model called `{}`", call.function.name),
    }
}

impl ToolRunner for ExecTool {
    fn definitions(&self) -> Vec<serde_json::Value> {
        vec![json!({
            "type": "function",
            "function": {
                "name": "exec",
                "description": "Run a command on the user's machine, without a shell, in a sandbox \
                    (read-only files except the workspace, no network unless allowed). The user's \
                    policy may refuse it or ask the user first. Returns the exit code and output.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "program": { "type": "string", "description": "program name or path" },
                        "args": { "type": "array", "items": { "type": "string" } },
                        "cwd": { "type": "string", "description": "working directory inside the workspace" }
                    },
                    "required": ["program"]
                }
            }
        })]
    }

    fn run(&self, call: ToolCall, stop: CancellationToken) -> BoxFuture<ToolOutcome> {
        let (runner, approver, conversation) = (self.runner.clone(), self.approver.clone(), self.conversation);
        Box::pin(async move {
            if call.function.name != "exec" {
                let result = format!("there is no tool named `{}`; the only tool is `exec`", call.function.name);
                return ToolOutcome {
                    summary: format!("the model asked for an unknown tool `{}`", call.function.name),
                    result,
                    status: "refused".into(),
                };
            }
            let args: ExecArgs = match serde_json::from_str(&call.function.arguments) {
                Ok(a) => a,
                Err(e) => {
                    let result = format!("the arguments were not valid: {e}; expected {{\"program\": …, \"args\": […]}}");
                    return ToolOutcome { summary: "the model's tool call was malformed".into(), result, status: "refused".into() };
                }
            };
            let mut spec = ExecSpec::new(args.program, args.args);
            spec.cwd = args.cwd;
            let command = spec.display();
            let mut output = String::new();
            let mut on_line = |_: crate::pool::job::Stream, text: &str| {
                if output.len() < RESULT_CAP {
                    output.push_str(text);
                    output.push('\n');
                }
            };
            let request = ExecRequest { spec, timeout: Some(TIMEOUT), requester: Requester::Model(Some(conversation)) };
            match runner.run(request, approver.as_ref(), Output::Lines(&mut on_line, stop.clone())).await {
                Ok(r) => {
                    let ended = match (&r.error, r.exit_code) {
                        (Some(e), _) => e.message.clone(),
                        (None, Some(code)) => format!("exit code {code}"),
                        (None, None) => "finished".into(),
                    };
                    let cut = if r.truncated || output.len() >= RESULT_CAP { "\n[output truncated]" } else { "" };
                    let status = if r.error.is_some() { "failed" } else { "completed" }.to_owned();
                    ToolOutcome { summary: format!("ran `{command}`: {ended}"), result: format!("{ended}\n{output}{cut}"), status }
                }
                Err(e) => ToolOutcome {
                    summary: format!("`{command}` was not run: {e}"),
                    result: format!("not run: {e}"),
                    status: "refused".into(),
                },
            }
        })
    }
}
