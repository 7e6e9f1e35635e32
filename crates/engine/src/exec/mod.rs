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
use tokio_util::sync::CancellationToken;

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
    /// A person approved this command when it was submitted (an `exec` job whose rule says
    /// ask): it runs once without asking again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approved: bool,
}

impl ExecSpec {
    pub fn new(program: impl Into<String>, args: impl IntoIterator<Item = impl Into<String>>) -> ExecSpec {
        ExecSpec {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            cwd: None,
            env: Vec::new(),
            approved: false,
        }
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
        // Control characters shown, never sent to the terminal: an argument must not be able
        // to redraw the approval prompt.
        let shown: String = arg.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect();
        format!("'{}'", shown.replace('\'', r"'\''"))
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

/// The `exec` job kind: the command goes through the same policy, sandbox, limits and audit
/// as `gatehouse exec`, on behalf of the job. Nobody is there to approve when it runs: an `ask`
/// rule refuses it unless a person approved it at submit time (`ExecSpec::approved`).
pub(crate) struct ExecJob {
    pub store: crate::store::Store,
    pub data_dir: PathBuf,
    pub kill_grace: Duration,
    pub clock: crate::clock::SharedClock,
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
        if let Some(cwd) = &spec.cwd {
            if !cwd.is_absolute() {
                return Err(Error::JobInvalid(format!("the working directory {} must be an absolute path", cwd.display())));
            }
            if !cwd.is_dir() {
                return Err(Error::JobInvalid(format!("the working directory {} does not exist", cwd.display())));
            }
        }
        if policy::resolve(&spec.program, spec.cwd.as_deref()).is_err() {
            return Err(Error::JobInvalid(format!(
                "the program `{}` was not found or is not executable (looked on PATH)",
                spec.program
            )));
        }
        if let Some((k, _)) = spec.env.iter().find(|(k, _)| k.is_empty() || k.contains('=') || k.contains('\0')) {
            return Err(Error::JobInvalid(format!("`{k}` is not a valid environment variable name")));
        }
        Ok(())
    }

    fn run(&self, run: JobRun) -> BoxFuture<Outcome> {
        let (store, data_dir, grace, now) = (self.store.clone(), self.data_dir.clone(), self.kill_grace, self.clock.now());
        Box::pin(async move {
            let spec = match serde_json::from_value::<ExecSpec>(run.spec.clone()) {
                Ok(spec) => spec,
                Err(e) => {
                    let error = crate::error::JobError::new("job.invalid", format!("not a valid exec job: {e}"));
                    return Outcome::Failed { exit_code: None, error };
                }
            };
            let approver: &dyn Approver = if spec.approved { &Approved } else { &NoApprover };
            let request = ExecRequest { spec, timeout: None, requester: Requester::Job(run.id) };
            let ctx = Context { store: &store, data_dir: &data_dir, kill_grace: grace, now };
            match run_now(ctx, request, approver, Output::Job(&run)).await {
                Ok(result) => result.outcome,
                Err(e) => Outcome::Failed { exit_code: None, error: crate::error::JobError::new(e.code(), e.to_string()) },
            }
        })
    }
}

/// A person said yes before (when the job was submitted).
struct Approved;

impl Approver for Approved {
    fn approve(&self, _: &str, _: &str) -> BoxFuture<Approval> {
        Box::pin(async { Approval::Once })
    }
}

/// Where a command's output goes.
pub(crate) enum Output<'a> {
    /// Lines to a callback, up to [`OUTPUT_CAP`] bytes (a command run now), stopped when the
    /// token fires.
    Lines(&'a mut (dyn FnMut(crate::pool::job::Stream, &str) + Send), CancellationToken),
    /// Into an `exec` job's output (bounded by the pool), with its cancel token and lease.
    Job(&'a JobRun),
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

    /// The kind, for rules scoped to one (timed grants).
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Requester::Person => "person",
            Requester::Model => "model",
            Requester::Job(_) => "job",
        }
    }
}

/// A command to run now.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub spec: ExecSpec,
    /// Kills the whole sandbox when reached. (`None` for jobs: the pool keeps their time.)
    pub timeout: Option<Duration>,
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
    /// How the command ended, as a job kind reports it.
    pub outcome: Outcome,
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

/// A command checked against the environment rules, the workspaces and the policy.
pub(crate) struct Checked {
    /// Canonical, inside a workspace root.
    pub cwd: PathBuf,
    /// Where the program was found, then where that leads after symlinks.
    pub paths: Vec<PathBuf>,
    pub decision: policy::Decision,
}

pub(crate) async fn check(ctx: &Context<'_>, spec: &ExecSpec, requester: Requester) -> Result<Checked> {
    if let Some((name, why)) = spec.env.iter().find_map(|(k, _)| sandbox::forbidden_override(k).map(|w| (k, w))) {
        return Err(Error::ExecDenied(format!("the variable {name} cannot be set ({why})")));
    }
    let default_root = workspace::default_root(ctx.data_dir);
    std::fs::create_dir_all(&default_root).map_err(|e| {
        Error::ExecWorkspace(format!("cannot create the workspace {}: {e}", default_root.display()))
    })?;
    let roots = workspace::roots(ctx.store, ctx.data_dir).await?;
    let cwd = workspace::check(spec.cwd.as_deref().unwrap_or(&default_root), &roots)?;
    let paths = policy::resolve(&spec.program, Some(&cwd))?;
    let rules = policy::rules(ctx.store, ctx.now).await?;
    let decision = policy::decide(&rules, &paths, &spec.args, policy::Scope { cwd: &cwd, requester: requester.kind() });
    Ok(Checked { cwd, paths, decision })
}

/// Run a command through policy, approval, sandbox and limits, and audit it. Lines of output
/// go to `on_line` as they come, up to [`OUTPUT_CAP`] bytes.
pub(crate) async fn run_now(
    ctx: Context<'_>,
    request: ExecRequest,
    approver: &dyn Approver,
    output: Output<'_>,
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

    let Checked { cwd, paths, decision } = match check(&ctx, spec, request.requester).await {
        Ok(checked) => checked,
        Err(e) => refuse!(e),
    };
    entry.cwd = Some(cwd.to_string_lossy().into_owned());
    entry.program = paths[0].to_string_lossy().into_owned();
    entry.decision = decision.action.as_str().into();
    entry.rule_id = decision.rule.as_ref().map(|r| r.id);
    entry.reason = decision.reason.clone();
    match decision.action {
        policy::Action::Deny => refuse!(Error::ExecDenied(decision.reason.clone())),
        policy::Action::Ask => match approver.approve(&format!("{} (in {})", spec.display(), cwd.display()), &decision.reason).await {
            Approval::Once => entry.approval = Some("once".into()),
            Approval::For(lasts) => {
                let grant = policy::AddRule {
                    spec: policy::RuleSpec {
                        action: policy::Action::Allow,
                        program: entry.program.clone(),
                        args: spec.args.iter().map(|a| policy::exact(a)).collect(),
                        any_args: false,
                        network: false,
                        // Where and for whom it was approved, not everywhere for anyone.
                        only_cwd: Some(cwd.to_string_lossy().into_owned()),
                        only_requester: Some(request.requester.kind().to_owned()),
                    },
                    builtin: false,
                    lasts_ms: Some(lasts.min(Duration::from_secs(24 * 3600)).as_millis() as i64),
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
    let network = decision.rule.as_ref().is_some_and(|r| r.spec.action == policy::Action::Allow && r.spec.network);
    let mut confinement = sandbox::Confinement::new(cwd, ctx.data_dir, network);
    // Gateway tokens kept in files (anywhere) are not for commands either.
    if let Ok(profiles) = crate::gateway::profile::list(ctx.store).await {
        confinement.hidden.extend(profiles.into_iter().filter_map(|p| p.token_file));
    }
    let marker = match &output {
        Output::Job(run) => run.marker.clone(),
        Output::Lines(..) => format!("exec/{}/{:016x}", crate::pool::lease::process_tag(), fastrand::u64(..)),
    };
    // `cap` is held until the command is over (dropping a cgroup cap removes the cgroup).
    let sandbox::Sandboxed { command, mut cap } = match sandbox::command(spec, &paths[0], &confinement, &marker) {
        Ok(c) => c,
        Err(e) => refuse!(e),
    };
    let uncapped = std::sync::OnceLock::<String>::new();

    let (cancel, job) = match &output {
        Output::Job(run) => (run.cancel.clone(), Some(*run)),
        // A child: our timeout cancels it without touching the caller's token.
        Output::Lines(_, stop) => (stop.child_token(), None),
    };
    let (sink, mut lines) = match job {
        Some(run) => (run.output().clone(), None),
        None => {
            let (sink, lines) = crate::pool::output::OutputSink::channel();
            (sink, Some(lines))
        }
    };
    let launch = process::Launch { command, program: &spec.program, marker: &marker, cancel: &cancel, output: sink, grace: ctx.kill_grace };
    let (gate, uncapped_ref) = (cap.take_gate(), &uncapped);
    let supervised = process::supervise(launch, |pgid| async move {
        if let Some(Err(why)) = futures::future::OptionFuture::from(gate.map(|g| g.open(pgid))).await {
            let _ = uncapped_ref.set(why);
            return false;
        }
        match job {
            Some(run) => run.spawned(pgid).await,
            None => true,
        }
    });
    tokio::pin!(supervised);
    // No timeout: a far deadline that never fires.
    let timer = tokio::time::sleep(request.timeout.unwrap_or(Duration::from_secs(100 * 365 * 24 * 3600)));
    tokio::pin!(timer);
    let mut on_line = match output {
        Output::Lines(f, _) => Some(f),
        Output::Job(_) => None,
    };
    let (mut shown, mut timed_out) = (0u64, false);
    let mut take = |item: crate::pool::output::Item, shown: &mut u64| {
        if let (crate::pool::output::Item::Line(stream, text), Some(on_line)) = (item, on_line.as_mut()) {
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
            Some(item) = async { match lines.as_mut() { Some(l) => l.recv().await, None => std::future::pending().await } } => {
                take(item, &mut shown)
            }
            _ = &mut timer, if !timed_out => {
                timed_out = true;
                cancel.cancel();
            }
        }
    };
    if let Some(lines) = lines.as_mut() {
        while let Ok(item) = lines.try_recv() {
            take(item, &mut shown);
        }
    }
    let (exit_code, error) = match &outcome {
        _ if uncapped.get().is_some() => (
            None,
            Some(crate::error::JobError::new(
                "exec.limit",
                format!("refused: its process limit could not be set ({})", uncapped.get().map_or("", |w| w.as_str())),
            )),
        ),
        Outcome::Succeeded { exit_code } => (*exit_code, None),
        Outcome::Failed { exit_code, error } => (*exit_code, Some(error.clone())),
        Outcome::Stopped { exit_code } if timed_out => (
            *exit_code,
            Some(crate::error::JobError::new(
                "exec.timeout",
                format!(
                    "stopped by the limit: it ran past its timeout of {} s",
                    request.timeout.unwrap_or_default().as_secs_f64()
                ),
            )),
        ),
        Outcome::Stopped { exit_code } => (*exit_code, Some(crate::error::JobError::new("exec.stopped", "stopped"))),
    };
    drop(cap);
    let duration = started.elapsed();
    entry.exit_code = exit_code.map(i64::from);
    entry.duration_ms = Some(duration.as_millis() as i64);
    entry.output_bytes = Some(bytes as i64);
    entry.truncated = bytes > OUTPUT_CAP;
    entry.error_code = error.as_ref().map(|e| e.code.clone());
    let truncated = entry.truncated;
    let audit_id = writer.apply(Record(entry)).await?;
    Ok(ExecResult { outcome, exit_code, error, timed_out, output_bytes: bytes, truncated, duration, audit_id })
}
