//! What the exec test suites share: an engine whose policy lets tests drive commands through
//! `sh`, and one command run with its output collected.
#![allow(dead_code)] // each suite uses its own part

use std::path::Path;
use std::time::Duration;

use gatehouse_engine::exec::policy::Action;
use gatehouse_engine::{Approver, Engine, EngineOptions, ExecRequest, ExecResult, ExecSpec, Requester, Stream};
use tokio_util::sync::CancellationToken;

pub struct Ran {
    pub result: gatehouse_engine::Result<ExecResult>,
    pub stdout: String,
    pub stderr: String,
}

/// The options the suites open engines with: the standard library's processes (the CLI's), or
/// the desktop app's shell plugin's when a suite is compiled into the app's tests
/// (`src-tauri/tests/exec_escapes.rs` sets `cfg(app_launcher)` and gives `app_launcher`).
pub fn options(dir: &Path) -> EngineOptions {
    #[allow(unused_mut)]
    let mut options = EngineOptions::new(dir);
    #[cfg(app_launcher)]
    {
        options.launcher = crate::app_launcher();
    }
    options
}

/// An engine on `dir` where `sh` is allowed (the default policy asks about it).
pub async fn engine(dir: &Path) -> Engine {
    let engine = Engine::open(options(dir)).await.unwrap();
    engine.add_exec_rule(Action::Allow, "sh", vec![], true, false).await.unwrap();
    engine
}

/// Run `spec` for the model, with `approver` answering any question.
pub async fn run(engine: &Engine, spec: ExecSpec, approver: &dyn Approver, timeout: Duration) -> Ran {
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let mut on_line = |stream: Stream, text: &str| {
        let out = if stream == Stream::Stdout { &mut stdout } else { &mut stderr };
        out.push_str(text);
        out.push('\n');
    };
    let request = ExecRequest { spec, timeout: Some(timeout), requester: Requester::Model(None) };
    let result = engine.exec(request, approver, &mut on_line, &CancellationToken::new()).await;
    Ran { result, stdout, stderr }
}

/// The person at the terminal when a job is submitted: says yes.
pub struct Yes;

impl Approver for Yes {
    fn approve(&self, _: &gatehouse_engine::ApprovalRequest) -> gatehouse_engine::pool::kind::BoxFuture<gatehouse_engine::Approval> {
        Box::pin(async { gatehouse_engine::Approval::Once })
    }
}
