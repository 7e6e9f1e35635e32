//! Running commands.
//!
//! The exec tool's path, for a command a person or a model asks for ([`run_now`]):
//! request → policy ([`policy`]) → approval when a rule says ask ([`Approver`]) → confinement
//! ([`sandbox`], bubblewrap) → limits (timeout that kills the whole sandbox, output cap,
//! scrubbed environment) → audit ([`audit`]). Every refusal names the rule or limit.
//!
//! `exec` jobs still run as plain child processes in their own process group ([`process`]);
//! moving them onto the same path is the next step.

pub mod approval;
pub mod audit;
pub mod policy;
pub(crate) mod process;
pub mod sandbox;
pub(crate) mod workspace;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pool::kind::{BoxFuture, JobKind, JobRun, Outcome};
use std::time::Duration;

/// What an `exec` job runs. Arguments are passed as they are: no shell is involved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
}

impl ExecSpec {
    pub fn new(program: impl Into<String>, args: impl IntoIterator<Item = impl Into<String>>) -> ExecSpec {
        ExecSpec { program: program.into(), args: args.into_iter().map(Into::into).collect(), cwd: None, env: Vec::new() }
    }

    /// The command as a person would type it, for listings.
    pub fn display(&self) -> String {
        std::iter::once(&self.program).chain(&self.args).map(|a| quote(a)).collect::<Vec<_>>().join(" ")
    }
}

fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Find `program` the way the shell would: a path with a slash as given, else on `PATH`.
pub fn resolve_program(program: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| executable(p))
}

/// The `exec` job kind.
pub struct ExecJob {
    /// Between SIGTERM and SIGKILL when a job is stopped.
    pub kill_grace: Duration,
}

impl JobKind for ExecJob {
    fn name(&self) -> &'static str {
        "exec"
    }

    fn validate(&self, spec: &serde_json::Value) -> Result<()> {
        let spec: ExecSpec = serde_json::from_value(spec.clone())
            .map_err(|e| Error::JobInvalid(format!("not a valid exec job: {e}")))?;
        if spec.program.is_empty() {
            return Err(Error::JobInvalid("no program was given".into()));
        }
        if resolve_program(&spec.program).is_none() {
            return Err(Error::JobInvalid(format!(
                "the program `{}` was not found or is not executable (looked on PATH)",
                spec.program
            )));
        }
        if let Some(cwd) = &spec.cwd {
            if !cwd.is_absolute() {
                return Err(Error::JobInvalid(format!("the working directory {} must be an absolute path", cwd.display())));
            }
            if !cwd.is_dir() {
                return Err(Error::JobInvalid(format!("the working directory {} does not exist", cwd.display())));
            }
        }
        if let Some((k, _)) = spec.env.iter().find(|(k, _)| k.is_empty() || k.contains('=') || k.contains('\0')) {
            return Err(Error::JobInvalid(format!("`{k}` is not a valid environment variable name")));
        }
        Ok(())
    }

    fn run(&self, run: JobRun) -> BoxFuture<Outcome> {
        let grace = self.kill_grace;
        Box::pin(async move {
            match serde_json::from_value::<ExecSpec>(run.spec.clone()) {
                Ok(spec) => process::run(&spec, &run, grace).await,
                Err(e) => Outcome::Failed {
                    exit_code: None,
                    error: crate::error::JobError::new("job.invalid", format!("not a valid exec job: {e}")),
                },
            }
        })
    }
}

/// Who asked for a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    Person,
    Model,
    Job(i64),
}

impl Requester {
    fn label(self) -> String {
        match self {
            Requester::Person => "person".into(),
            Requester::Model => "model".into(),
            Requester::Job(id) => format!("job:{id}"),
        }
    }
}

/// A command to run now.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub spec: ExecSpec,
    /// Kills the whole sandbox when reached.
    pub timeout: Duration,
    pub requester: Requester,
}

/// The default for [`ExecRequest::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Output kept (passed on) per command; the rest is counted and reported as truncated.
pub const OUTPUT_CAP: u64 = 1024 * 1024;

/// Someone who can answer when a rule says `ask`.
pub trait Approver: Send + Sync {
    fn approve(&self, command: &str, reason: &str) -> BoxFuture<Approval>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// Run it, this once.
    Once,
    /// Run it, and the same command (same program, same arguments) without asking for this
    /// long: a timed grant, an allow rule that expires.
    For(Duration),
    Denied,
    /// No one can answer (no terminal, nobody watching).
    Unavailable,
    /// Nobody answered in time.
    Expired,
}

/// Nobody can approve anything: `ask` becomes a refusal.
pub struct NoApprover;

impl Approver for NoApprover {
    fn approve(&self, _: &str, _: &str) -> BoxFuture<Approval> {
        Box::pin(async { Approval::Unavailable })
    }
}

#[derive(Debug, Clone)]
pub struct ExecResult {
    pub exit_code: Option<i32>,
    /// Set when the command did not exit by itself, with why.
    pub error: Option<crate::error::JobError>,
    pub timed_out: bool,
    pub output_bytes: u64,
    pub truncated: bool,
    pub duration: Duration,
    pub audit_id: i64,
}

/// Whether bubblewrap works here, checked once per process.
fn sandbox_ready() -> Result<()> {
    static PROBE: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    PROBE.get_or_init(|| sandbox::probe().map_err(|e| e.to_string())).clone().map_err(Error::SandboxUnavailable)
}

pub(crate) struct Context<'a> {
    pub store: &'a crate::store::Store,
    pub data_dir: &'a Path,
    pub kill_grace: Duration,
    pub now: crate::clock::Millis,
}

/// Run a command through policy, approval, sandbox and limits, and audit it. Lines of output
/// go to `on_line` as they come, up to [`OUTPUT_CAP`] bytes.
pub(crate) async fn run_now(
    ctx: Context<'_>,
    request: ExecRequest,
    approver: &dyn Approver,
    on_line: &mut (dyn FnMut(crate::pool::job::Stream, &str) + Send),
) -> Result<ExecResult> {
    use audit::{AuditEntry, Record};
    let started = std::time::Instant::now();
    let spec = &request.spec;
    let mut entry = AuditEntry {
        id: 0,
        at: 0,
        requester: request.requester.label(),
        program: spec.program.clone(),
        args: spec.args.clone(),
        cwd: spec.cwd.as_ref().map(|c| c.to_string_lossy().into_owned()),
        decision: "deny".into(),
        rule_id: None,
        reason: String::new(),
        approval: None,
        exit_code: None,
        signal: None,
        duration_ms: None,
        output_bytes: None,
        truncated: false,
        error_code: None,
    };
    let writer = &ctx.store.writer;
    // Refuse, audited: the entry says why.
    macro_rules! refuse {
        ($err:expr) => {{
            let err: Error = $err;
            entry.reason = if entry.reason.is_empty() { err.to_string() } else { entry.reason.clone() };
            entry.error_code = Some(err.code().to_owned());
            writer.apply(Record(entry)).await?;
            return Err(err);
        }};
    }

    if let Some((name, why)) = spec.env.iter().find_map(|(k, _)| sandbox::forbidden_override(k).map(|w| (k, w))) {
        refuse!(Error::ExecDenied(format!("the variable {name} cannot be set ({why})")));
    }
    let default_root = workspace::default_root(ctx.data_dir);
    if let Err(e) = std::fs::create_dir_all(&default_root) {
        refuse!(Error::ExecWorkspace(format!("cannot create the workspace {}: {e}", default_root.display())));
    }
    let roots = workspace::roots(ctx.store, ctx.data_dir).await?;
    let cwd = spec.cwd.clone().unwrap_or_else(|| default_root.clone());
    let cwd = match workspace::check(&cwd, &roots) {
        Ok(cwd) => cwd,
        Err(e) => refuse!(e),
    };
    entry.cwd = Some(cwd.to_string_lossy().into_owned());
    let paths = match policy::resolve(&spec.program, Some(&cwd)) {
        Ok(paths) => paths,
        Err(e) => refuse!(e),
    };
    entry.program = paths[0].to_string_lossy().into_owned();

    let rules = policy::rules(ctx.store, ctx.now).await?;
    let decision = policy::decide(&rules, &paths, &spec.args);
    entry.decision = decision.action.as_str().into();
    entry.rule_id = decision.rule.as_ref().map(|r| r.id);
    entry.reason = decision.reason.clone();
    match decision.action {
        policy::Action::Deny => refuse!(Error::ExecDenied(decision.reason.clone())),
        policy::Action::Ask => match approver.approve(&spec.display(), &decision.reason).await {
            Approval::Once => entry.approval = Some("once".into()),
            Approval::For(lasts) => {
                let grant = policy::AddRule {
                    action: policy::Action::Allow,
                    program: entry.program.clone(),
                    args: spec.args.iter().map(|a| policy::exact(a)).collect(),
                    any_args: false,
                    network: false,
                    builtin: false,
                    lasts_ms: Some(lasts.as_millis() as i64),
                };
                let id = writer.apply(grant).await?;
                entry.approval = Some(format!("for {} s (rule {id})", lasts.as_secs()));
            }
            Approval::Denied => {
                entry.approval = Some("denied".into());
                refuse!(Error::ExecDenied(format!("you declined it ({})", decision.reason)));
            }
            Approval::Unavailable => {
                entry.approval = Some("unavailable".into());
                refuse!(Error::ExecNeedsApproval(decision.reason.clone()));
            }
            Approval::Expired => {
                entry.approval = Some("expired".into());
                refuse!(Error::ExecNeedsApproval(format!("{}; nobody answered in time", decision.reason)));
            }
        },
        policy::Action::Allow => {}
    }
    if let Err(e) = sandbox_ready() {
        refuse!(e);
    }
    let network = decision.rule.as_ref().is_some_and(|r| r.action == policy::Action::Allow && r.network);
    let confinement = sandbox::Confinement::new(cwd, ctx.data_dir, network);
    let marker = format!("exec/{}/{:016x}", crate::pool::lease::process_tag(), fastrand::u64(..));
    let mut command = match sandbox::command(spec, &paths[0], &confinement, &marker) {
        Ok(c) => c,
        Err(e) => refuse!(e),
    };
    // Held until the command is over; dropping it removes the cgroup.
    let pids = sandbox::PidsLimit::create(&format!("{:016x}", fastrand::u64(..)));
    match &pids {
        Some(limit) => limit.apply(&mut command),
        None => tracing::debug!("no cgroup for a process limit here; relying on the PID namespace and the timeout"),
    }

    let cancel = tokio_util::sync::CancellationToken::new();
    let (sink, mut lines) = crate::pool::output::OutputSink::channel();
    let launch = process::Launch { command, program: &spec.program, marker: &marker, cancel: &cancel, output: sink, grace: ctx.kill_grace };
    let supervised = process::supervise(launch, |_| async { true });
    tokio::pin!(supervised);
    let timer = tokio::time::sleep(request.timeout);
    tokio::pin!(timer);
    let (mut shown, mut timed_out) = (0u64, false);
    let mut take = |item: crate::pool::output::Item, shown: &mut u64| {
        if let crate::pool::output::Item::Line(stream, text) = item {
            let size = text.len() as u64 + 1;
            if *shown + size <= OUTPUT_CAP {
                on_line(stream, &text);
                *shown += size;
            } else {
                *shown = OUTPUT_CAP;
            }
        }
    };
    let (outcome, bytes) = loop {
        tokio::select! {
            outcome = &mut supervised => break outcome,
            Some(item) = lines.recv() => take(item, &mut shown),
            _ = &mut timer, if !timed_out => {
                timed_out = true;
                cancel.cancel();
            }
        }
    };
    while let Ok(item) = lines.try_recv() {
        take(item, &mut shown);
    }
    let (exit_code, error) = match outcome {
        Outcome::Succeeded { exit_code } => (exit_code, None),
        Outcome::Failed { exit_code, error } => (exit_code, Some(error)),
        Outcome::Stopped { exit_code } => (
            exit_code,
            Some(crate::error::JobError::new(
                "exec.timeout",
                format!("stopped by the limit: it ran past its timeout of {} s", request.timeout.as_secs_f64()),
            )),
        ),
    };
    drop(pids);
    let duration = started.elapsed();
    entry.exit_code = exit_code.map(i64::from);
    entry.duration_ms = Some(duration.as_millis() as i64);
    entry.output_bytes = Some(bytes as i64);
    entry.truncated = bytes > OUTPUT_CAP;
    entry.error_code = error.as_ref().map(|e| e.code.clone());
    let truncated = entry.truncated;
    let audit_id = writer.apply(Record(entry)).await?;
    Ok(ExecResult { exit_code, error, timed_out, output_bytes: bytes, truncated, duration, audit_id })
}
