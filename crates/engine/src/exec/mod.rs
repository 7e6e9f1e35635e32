//! Running commands.
//!
//! The exec tool's path, for a command a person, a model or an `exec` job asks for
//! (`run_now`): request → the working directory, held open inside a workspace root
//! (`workspace`) → the program, resolved once to an open file (`program`) → policy on that
//! file ([`policy`]) → approval when a rule says ask ([`Approver`]) → an audit row, written
//! before anything starts ([`audit`]) → confinement ([`sandbox`], bubblewrap, with a seccomp
//! filter from `seccomp`, on a process made by the engine's [`Launcher`]) → limits (timeout that kills the whole sandbox, output cap,
//! allowlisted environment) → the audit row completed. Every refusal names the rule or limit.
//!
//! The rule throughout: check the object that will be used (a descriptor, a device and inode,
//! the program's bytes), never a name that is resolved again later (`held`). The threat
//! model is `docs/exec-threat-model.md`.
//!
//! All of this runs on Linux only. Elsewhere (Windows, macOS: no bubblewrap) the same requests
//! are checked and audited, then refused with `exec.unsupported`; nothing is run unconfined.

// Off Linux the path stops at the refusal: what it would have used is compiled but idle.
#![cfg_attr(not(target_os = "linux"), allow(dead_code, unused_imports, unused_variables))]

pub mod approval;
pub mod audit;
pub(crate) mod held;
pub mod launcher;
pub mod policy;
#[cfg(target_os = "linux")]
pub(crate) mod process;
pub(crate) mod program;
pub mod sandbox;
#[cfg(target_os = "linux")]
pub(crate) mod seccomp;
pub(crate) mod workspace;

pub use launcher::{Launcher, StdLauncher};
pub use program::SANDBOX_PATH;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::pool::kind::{BoxFuture, JobKind, JobRun, Outcome};
use std::time::Duration;

/// What an `exec` job runs. Arguments are passed as they are: no shell is involved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    /// The program: a name looked up on the sandbox's PATH, or a path.
    pub program: String,
    #[serde(default)]
    /// Its arguments, passed as they are.
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Where it runs: inside a workspace root (default: the data directory's workspace).
    pub cwd: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    /// Variables to set, beyond the sandbox's allowlisted environment.
    pub env: Vec<(String, String)>,
}

impl ExecSpec {
    /// A command with no working directory or variables set.
    pub fn new(program: impl Into<String>, args: impl IntoIterator<Item = impl Into<String>>) -> ExecSpec {
        ExecSpec {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            cwd: None,
            env: Vec::new(),
        }
    }

    /// The command as a person would type it, for listings.
    pub fn display(&self) -> String {
        std::iter::once(&self.program).chain(&self.args).map(|a| quote(a)).collect::<Vec<_>>().join(" ")
    }
}

/// `text` with every control character (and the Unicode controls that reorder text) shown as
/// an escape, so that nothing a command or a model wrote can move the cursor, set a title,
/// write the clipboard (OSC 52) or redraw a prompt when it is printed to a terminal.
pub fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    let bidi = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}');
    if !text.chars().any(|c| c.is_control() || bidi(c)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push('\t'),
            c if c.is_control() || bidi(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A path as [`shown`] text.
pub(crate) fn shown_path(path: &Path) -> String {
    shown(&path.to_string_lossy()).into_owned()
}

/// `arg` as a shell would need it written, control characters escaped.
pub fn quote(arg: &str) -> String {
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

/// Find `program` the way the shell would: a path with a slash as given, else on our `PATH`
/// (for Gatehouse's own tools, such as bubblewrap; commands are resolved by `program`).
#[cfg(target_os = "linux")]
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

/// What the policy says about a command before it runs ([`crate::Engine::check_exec`]).
#[derive(Debug, Clone)]
pub struct ExecCheck {
    /// What the policy decided, and which rule made it.
    pub decision: policy::Decision,
    /// What to ask a person: the command, the file its program resolves to, where it runs and
    /// with which variables, control characters escaped.
    pub prompt: String,
    /// The program file as it was checked (device, inode and, outside the system directories,
    /// content): an approval holds for this file only.
    pub program: String,
}

/// The [`ExecCheck::program`] of a resolved program.
pub(crate) fn fingerprint(program: &program::Program) -> String {
    format!("{}:{}:{}", program.id.dev, program.id.ino, program.sha256().unwrap_or("system"))
}

/// Runs commands for whoever asks — [`crate::Engine::exec`], the `exec` job kind, the model's
/// tool — through the one path above. Cheap to clone: it holds handles.
#[derive(Clone)]
pub(crate) struct Runner {
    pub store: crate::store::Store,
    /// Makes the processes commands run in.
    pub launcher: std::sync::Arc<dyn Launcher>,
    pub feed: crate::pool::feed::Feed,
    pub data_dir: PathBuf,
    pub kill_grace: Duration,
    pub clock: crate::clock::SharedClock,
    /// How long a question to a person stays open.
    pub approval_wait: Duration,
}

impl Runner {
    fn context(&self) -> Context<'_> {
        Context {
            store: &self.store,
            launcher: &*self.launcher,
            feed: &self.feed,
            data_dir: &self.data_dir,
            kill_grace: self.kill_grace,
            now: self.clock.now(),
            approval_wait: self.approval_wait,
        }
    }

    /// Run a command now: policy, approval (put to `approver`), sandbox, limits, audit.
    pub(crate) async fn run(&self, request: ExecRequest, approver: &dyn Approver, output: Output<'_>) -> Result<ExecResult> {
        run_now(self.context(), request, approver, output).await
    }

    /// Where `spec` would run, what it would run, and what the policy says, for `requester`.
    pub(crate) async fn check(&self, spec: &ExecSpec, requester: Requester) -> Result<Checked> {
        check(&self.context(), spec, requester).await
    }

    pub(crate) fn now(&self) -> crate::clock::Millis {
        self.clock.now()
    }
}

/// The `exec` job kind: the command goes through the same policy, sandbox, limits and audit
/// as `gatehouse exec`, on behalf of the job. When a rule says ask, the job waits for an
/// answer from any process (its timeout still running), unless a person allowed it when it
/// was submitted ([`approval`]).
pub(crate) struct ExecJob {
    pub runner: Runner,
}

impl JobKind for ExecJob {
    fn name(&self) -> &'static str {
        "exec"
    }

    fn default_timeout(&self) -> Option<Duration> {
        Some(DEFAULT_JOB_TIMEOUT)
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
        let cwd = spec.cwd.clone().unwrap_or_else(|| workspace::default_root(&self.runner.data_dir));
        if let Err(e) = program::resolve(&spec.program, Some(&cwd)) {
            return Err(Error::JobInvalid(e.to_string()));
        }
        if let Some((k, _)) = spec.env.iter().find(|(k, _)| k.is_empty() || k.contains('=') || k.contains('\0')) {
            return Err(Error::JobInvalid(format!("`{}` is not a valid environment variable name", shown(k))));
        }
        if let Some((k, why)) = spec.env.iter().find_map(|(k, _)| sandbox::never(k).map(|w| (k, w))) {
            return Err(Error::ExecDenied(format!("the variable {} cannot be set ({why})", shown(k))));
        }
        Ok(())
    }

    fn run(&self, run: JobRun) -> BoxFuture<Outcome> {
        let runner = self.runner.clone();
        Box::pin(async move {
            let spec = match serde_json::from_value::<ExecSpec>(run.spec.clone()) {
                Ok(spec) => spec,
                Err(e) => {
                    let error = crate::error::JobError::new("job.invalid", format!("not a valid exec job: {e}"));
                    return Outcome::Failed { exit_code: None, error };
                }
            };
            let request = ExecRequest { spec, timeout: None, requester: Requester::Job(run.id) };
            // The question lasts as long as the job may: its timeout stops the wait.
            let approval_wait = run.timeout.unwrap_or(DEFAULT_JOB_TIMEOUT);
            let ctx = Context { approval_wait, ..runner.context() };
            match run_now(ctx, request, &approval::Elsewhere, Output::Job(&run)).await {
                Ok(result) => result.outcome,
                // Stopped while it waited for an answer (canceled, timed out, the pool stopping).
                Err(_) if run.cancel.is_cancelled() => Outcome::Stopped { exit_code: None },
                Err(e) => Outcome::Failed { exit_code: None, error: crate::error::JobError::new(e.code(), e.to_string()) },
            }
        })
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
    /// A person, at a terminal or in the app.
    Person,
    /// The model, in this conversation (when known).
    Model(Option<i64>),
    /// An `exec` job, by id.
    Job(i64),
}

impl Requester {
    fn label(self) -> String {
        match self {
            Requester::Person => "person".into(),
            Requester::Model(_) => "model".into(),
            Requester::Job(id) => format!("job:{id}"),
        }
    }

    /// The kind, for rules scoped to one (timed grants).
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Requester::Person => "person",
            Requester::Model(_) => "model",
            Requester::Job(_) => "job",
        }
    }

    /// The conversation and the job this requester stands for.
    pub(crate) fn ids(self) -> (Option<i64>, Option<i64>) {
        match self {
            Requester::Person => (None, None),
            Requester::Model(conversation) => (conversation, None),
            Requester::Job(id) => (None, Some(id)),
        }
    }
}

/// A command to run now.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// What to run.
    pub spec: ExecSpec,
    /// Kills the whole sandbox when reached. (`None` for jobs: the pool keeps their time.)
    pub timeout: Option<Duration>,
    /// Who asked: said in the audit log, the approval question and rules scoped to one kind.
    pub requester: Requester,
}

/// The default for [`ExecRequest::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The timeout of an `exec` job submitted without one: jobs are the long tasks, but none runs
/// forever unasked.
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(3600);
/// The longest timed grant a person can give.
pub const MAX_GRANT: Duration = Duration::from_secs(24 * 3600);
/// Output kept (passed on) per command; the rest is counted and reported as truncated.
pub const OUTPUT_CAP: u64 = 1024 * 1024;

/// Someone who can answer, where a command was asked for, when a rule says `ask`. The request
/// is already stored: an answer from another process may come first, and then this one's
/// future is dropped. A future that never ends leaves the answer to others.
pub trait Approver: Send + Sync {
    /// Ask about `request`; the answer decides whether it runs.
    fn approve(&self, request: &approval::ApprovalRequest) -> BoxFuture<Approval>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// A person's answer to an approval request.
pub enum Approval {
    /// Run it, this once.
    Once,
    /// Run it, and the same command (same program, same arguments) without asking for this
    /// long: a timed grant, an allow rule that expires.
    For(Duration),
    /// Do not run it.
    Denied,
    /// No one can answer (no terminal, nobody watching).
    Unavailable,
    /// Nobody answered in time.
    Expired,
}

/// Nobody can approve anything: `ask` becomes a refusal.
pub struct NoApprover;

impl Approver for NoApprover {
    fn approve(&self, _: &approval::ApprovalRequest) -> BoxFuture<Approval> {
        Box::pin(async { Approval::Unavailable })
    }
}

#[derive(Debug, Clone)]
/// How a command run now ended ([`crate::Engine::exec`]).
pub struct ExecResult {
    /// How the command ended, as a job kind reports it.
    pub outcome: Outcome,
    /// Its exit code, when it exited by itself.
    pub exit_code: Option<i32>,
    /// Set when the command did not exit by itself, with why.
    pub error: Option<crate::error::JobError>,
    /// It was killed at its timeout.
    pub timed_out: bool,
    /// Bytes of output it wrote (counted past the cap too).
    pub output_bytes: u64,
    /// Output past [`OUTPUT_CAP`] was not kept.
    pub truncated: bool,
    /// From start to end, as measured here.
    pub duration: Duration,
    /// Its row in the audit log ([`crate::Engine::exec_audit`]).
    pub audit_id: i64,
}

/// Whether bubblewrap works here, checked once per process.
#[cfg(target_os = "linux")]
fn sandbox_ready() -> Result<()> {
    static PROBE: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    PROBE
        .get_or_init(|| {
            sandbox::become_reaper();
            sandbox::probe().map_err(|e| e.to_string())
        })
        .clone()
        .map_err(Error::SandboxUnavailable)
}

/// What one run or check needs, borrowed from a [`Runner`].
pub(crate) struct Context<'a> {
    pub store: &'a crate::store::Store,
    pub launcher: &'a dyn Launcher,
    pub feed: &'a crate::pool::feed::Feed,
    pub data_dir: &'a Path,
    pub kill_grace: Duration,
    pub now: crate::clock::Millis,
    /// How long a question to a person stays open.
    pub approval_wait: Duration,
}


/// A command checked: where it runs, what it runs, and what the policy says.
pub(crate) struct Checked {
    pub place: workspace::Place,
    pub program: program::Program,
    pub decision: policy::Decision,
}

/// Gateway token files: never inside a workspace root, never visible to a command.
async fn token_files(store: &crate::store::Store) -> Vec<PathBuf> {
    crate::gateway::profile::list(store).await.map(|ps| ps.into_iter().filter_map(|p| p.token_file).collect()).unwrap_or_default()
}

pub(crate) async fn check(ctx: &Context<'_>, spec: &ExecSpec, requester: Requester) -> Result<Checked> {
    if let Some((name, why)) = spec.env.iter().find_map(|(k, _)| sandbox::never(k).map(|w| (k, w))) {
        return Err(Error::ExecDenied(format!("the variable {} cannot be set ({why})", shown(name))));
    }
    let default_root = workspace::default_root(ctx.data_dir);
    std::fs::create_dir_all(&default_root).map_err(|e| {
        Error::ExecWorkspace(format!("cannot create the workspace {}: {e}", shown_path(&default_root)))
    })?;
    let roots = workspace::roots(ctx.store, ctx.data_dir).await?;
    let token_files = token_files(ctx.store).await;
    let secrets = workspace::Secrets { data_dir: ctx.data_dir, token_files: &token_files };
    let cwd = spec.cwd.clone().unwrap_or(default_root);
    let place = workspace::check(&cwd, &roots, &secrets)?;
    if let Some((path, id)) = &place.record {
        ctx.store.writer.apply(workspace::Identify(path.clone(), *id)).await?;
    }
    let program = program::resolve(&spec.program, Some(&place.cwd))?;
    let rules = policy::rules(ctx.store, ctx.now).await?;
    let scope = policy::Scope { cwd: &place.cwd, requester: requester.kind() };
    let decision = policy::decide(&rules, &policy::Candidate::of(&program), &spec.args, scope, program::rule_target);
    // A path a rule shows must not be one a command can swap (bubblewrap binds it by name).
    let see = decision.rule.as_ref().map(|r| r.spec.see.as_slice()).unwrap_or_default();
    if let Some(path) = see.iter().find(|p| roots.iter().any(|r| Path::new(p).starts_with(&r.path))) {
        return Err(Error::ExecDenied(format!(
            "{}: it lets commands see {}, which is inside a workspace root where a command could replace it; change the rule",
            decision.reason,
            shown(path)
        )));
    }
    let permitted = decision.rule.as_ref().map(|r| r.spec.env.as_slice()).unwrap_or_default();
    if let Some((name, _)) = spec.env.iter().find(|(k, _)| !sandbox::settable(k) && !permitted.contains(k)) {
        return Err(Error::ExecDenied(format!(
            "the variable {} cannot be set: a command may be given LANG, LANGUAGE, LC_*, TZ, TERM, COLORTERM, NO_COLOR, \
             COLUMNS and LINES, and the names the allow rule that covers it permits",
            shown(name)
        )));
    }
    Ok(Checked { place, program, decision })
}

/// What a person is asked: the command, what its program resolves to, where it runs and
/// with which variables — all of it as [`shown`] text.
pub(crate) fn prompt(spec: &ExecSpec, program: &program::Program, place: &workspace::Place) -> String {
    let mut text = spec.display();
    if Path::new(&spec.program) != program.real {
        text.push_str(&format!(" [runs {}]", shown(&program.real.to_string_lossy())));
    }
    text.push_str(&format!(" (in {})", shown_path(&place.cwd)));
    if !spec.env.is_empty() {
        let vars: Vec<String> = spec.env.iter().map(|(k, v)| format!("{}={}", shown(k), quote(v))).collect();
        text.push_str(&format!(" (with {})", vars.join(" ")));
    }
    text
}

/// The question an `ask` decision puts to a person.
pub(crate) fn question(spec: &ExecSpec, checked: &Checked, requester: Requester, attempt: Option<i64>) -> approval::Question {
    approval::Question {
        requester,
        attempt,
        program: spec.program.clone(),
        program_file: shown_path(&checked.program.real),
        args: spec.args.clone(),
        cwd: checked.place.cwd.to_string_lossy().into_owned(),
        env: spec.env.iter().map(|(k, _)| k.clone()).collect(),
        prompt: prompt(spec, &checked.program, &checked.place),
        reason: checked.decision.reason.clone(),
        rule_id: checked.decision.rule.as_ref().map(|r| r.id),
        fingerprint: fingerprint(&checked.program),
    }
}

/// Run a command through policy, approval, sandbox and limits, and audit it. Lines of output
/// go to `on_line` as they come, up to [`OUTPUT_CAP`] bytes.
pub(crate) async fn run_now(
    ctx: Context<'_>,
    request: ExecRequest,
    approver: &dyn Approver,
    output: Output<'_>,
) -> Result<ExecResult> {
    use audit::AuditEntry;
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
        env: spec.env.iter().map(|(k, _)| k.clone()).collect(),
        ended_at: None,
        host: None,
    };
    let writer = &ctx.store.writer;
    let log = audit_log(&ctx.store.writer, &output);
    macro_rules! refuse {
        ($err:expr) => {
            refuse_audited!(log, entry, $err)
        };
    }

    let checked = match check(&ctx, spec, request.requester).await {
        Ok(checked) => checked,
        Err(e) => refuse!(e),
    };
    let Checked { place, program, decision } = &checked;
    entry.cwd = Some(place.cwd.to_string_lossy().into_owned());
    entry.program = program.describe();
    entry.decision = decision.action.as_str().into();
    entry.rule_id = decision.rule.as_ref().map(|r| r.id);
    entry.reason = decision.reason.clone();
    let (stop, attempt, job) = match &output {
        Output::Job(run) => (run.cancel.clone(), Some(run.attempt), Some(*run)),
        Output::Lines(_, stop) => (stop.clone(), None, None),
    };
    match decision.action {
        policy::Action::Deny => refuse!(Error::ExecDenied(decision.reason.clone())),
        policy::Action::Ask => match approval::ask(&ctx, question(spec, &checked, request.requester, attempt), ctx.approval_wait, approver, &stop, job)
            .await
            .map(|(answer, row)| (answer, row.id))
        {
            Err(e) => refuse!(e),
            Ok((Approval::Once, id)) => entry.approval = Some(format!("once (request {id})")),
            Ok((Approval::For(lasts), id)) => {
                // On the file that was checked (by the name that leads to it in a system
                // directory, else by its own path and bytes), never on a name in a workspace;
                // where and for whom it was approved, not everywhere for anyone.
                let path = match program.source {
                    program::Source::System => &program.found,
                    program::Source::Copy { .. } => &program.real,
                };
                let mut rule = policy::RuleSpec::new(
                    policy::Action::Allow,
                    path.to_string_lossy().into_owned(),
                    spec.args.iter().map(|a| policy::exact(a)).collect(),
                    false,
                    false,
                );
                rule.sha256 = program.sha256().map(str::to_owned);
                rule.only_cwd = Some(place.cwd.to_string_lossy().into_owned());
                rule.only_requester = Some(request.requester.kind().to_owned());
                rule.env = spec.env.iter().map(|(k, _)| k.clone()).filter(|k| !sandbox::settable(k)).collect();
                let grant = policy::AddRule {
                    spec: rule,
                    builtin: false,
                    lasts_ms: Some(lasts.min(MAX_GRANT).as_millis() as i64),
                };
                let rule = writer.apply(grant).await?;
                entry.approval = Some(format!("for {} s (request {id}, rule {rule})", lasts.as_secs()));
            }
            Ok((Approval::Denied, id)) => {
                entry.approval = Some(format!("denied (request {id})"));
                refuse!(Error::ExecDenied(format!("a person declined it ({})", decision.reason)));
            }
            Ok((Approval::Unavailable, id)) => {
                entry.approval = Some(format!("unavailable (request {id})"));
                refuse!(Error::ExecNeedsApproval(decision.reason.clone()));
            }
            Ok((Approval::Expired, id)) => {
                entry.approval = Some(format!("expired (request {id})"));
                refuse!(Error::ExecNeedsApproval(format!("{}; nobody answered in time", decision.reason)));
            }
        },
        policy::Action::Allow => {}
    }
    // Elsewhere `check` has refused already; this says so again rather than run anything.
    #[cfg(not(target_os = "linux"))]
    refuse!(unsupported());
    #[cfg(target_os = "linux")]
    return confined(ctx, &request, &checked, entry, log, output, started).await;
}

/// Refuse, audited: `entry` says why, and is written ended to `log`.
macro_rules! refuse_audited {
    ($log:expr, $entry:ident, $err:expr) => {{
        let err: Error = $err;
        $entry.reason = if $entry.reason.is_empty() { err.to_string() } else { $entry.reason.clone() };
        $entry.error_code = Some(err.code().to_owned());
        $log.record($entry, true).await?;
        return Err(err);
    }};
}
use refuse_audited;

/// Where the audit row of a command goes: the shared database for an exec job on a shared
/// queue (every machine's log shows it), else this machine's log.
fn audit_log<'a, 'o: 'a>(writer: &'a crate::store::writer::Writer, output: &Output<'o>) -> audit::Log<'a> {
    #[cfg(feature = "postgres")]
    if let Output::Job(run) = output {
        let run: &'a JobRun = run;
        if let crate::pool::queue::Queue::Shared { db, clock } = &run.queue {
            return audit::Log::Shared(db, clock, &run.cancel);
        }
    }
    #[cfg(not(feature = "postgres"))]
    let _ = output;
    audit::Log::Local(writer)
}

/// The refusal of a build for a system without bubblewrap: commands are never run unconfined.
#[cfg_attr(target_os = "linux", allow(dead_code))]
pub(crate) fn unsupported() -> Error {
    Error::ExecUnsupported(std::env::consts::OS)
}

/// The part of [`run_now`] after the decision: bubblewrap, limits, and the audit row completed.
#[cfg(target_os = "linux")]
async fn confined(
    ctx: Context<'_>,
    request: &ExecRequest,
    checked: &Checked,
    mut entry: audit::AuditEntry,
    log: audit::Log<'_>,
    output: Output<'_>,
    started: std::time::Instant,
) -> Result<ExecResult> {
    use audit::Finish;
    let spec = &request.spec;
    let Checked { place, program, decision } = checked;
    macro_rules! refuse {
        ($err:expr) => {
            refuse_audited!(log, entry, $err)
        };
    }
    if let Err(e) = sandbox_ready() {
        refuse!(e);
    }
    let rule = decision.rule.as_ref().filter(|r| r.spec.action == policy::Action::Allow);
    let mut confinement = sandbox::Confinement::new(place, ctx.data_dir, rule.is_some_and(|r| r.spec.network));
    confinement.hidden.extend(token_files(ctx.store).await);
    confinement.see = rule.map(|r| r.spec.see.iter().map(PathBuf::from).collect()).unwrap_or_default();
    let marker = match &output {
        Output::Job(run) => run.marker.clone(),
        Output::Lines(..) => format!("exec/{}/{:016x}", crate::pool::lease::process_tag(), fastrand::u64(..)),
    };
    // `cap` is held until the command is over (dropping a cgroup cap removes the cgroup);
    // `fds` until it has been spawned.
    let sandbox::Sandboxed { command, mut cap, fds } = match sandbox::command(spec, program, &confinement, &marker, ctx.launcher) {
        Ok(c) => c,
        Err(e) => refuse!(e),
    };
    // Written down before it starts; if that cannot be done, it does not start.
    entry.id = log.record(entry.clone(), false).await.map_err(|e| {
        Error::ExecDenied(format!("the command was not run: its audit row could not be written ({e})"))
    })?;
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
    let fds = std::sync::Mutex::new(Some(fds));
    let fds_ref = &fds;
    let supervised = process::supervise(launch, |pgid| async move {
        // Spawned: bubblewrap has its own copies now.
        drop(fds_ref.lock().map(|mut f| f.take()));
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
    let (mut shown_bytes, mut timed_out) = (0u64, false);
    let mut take = |item: crate::pool::output::Item, shown_bytes: &mut u64| {
        if let (crate::pool::output::Item::Line(stream, text), Some(on_line)) = (item, on_line.as_mut()) {
            let size = text.len() as u64 + 1;
            if *shown_bytes + size <= OUTPUT_CAP {
                on_line(stream, &text);
                *shown_bytes += size;
            } else {
                *shown_bytes = OUTPUT_CAP;
            }
        }
    };
    let process::Ended { outcome, bytes, signal } = loop {
        tokio::select! {
            ended = &mut supervised => break ended,
            Some(item) = async { match lines.as_mut() { Some(l) => l.recv().await, None => std::future::pending().await } } => {
                take(item, &mut shown_bytes)
            }
            _ = &mut timer, if !timed_out => {
                timed_out = true;
                cancel.cancel();
            }
        }
    };
    if let Some(lines) = lines.as_mut() {
        while let Ok(item) = lines.try_recv() {
            take(item, &mut shown_bytes);
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
    // bubblewrap is gone; its init came back to us (we are the reaper) and is reaped here.
    let _ = tokio::task::spawn_blocking(sandbox::reap_sandbox_inits).await;
    let duration = started.elapsed();
    let truncated = bytes > OUTPUT_CAP;
    let finish = Finish {
        id: entry.id,
        exit_code: exit_code.map(i64::from),
        signal: signal.map(i64::from),
        duration_ms: duration.as_millis() as i64,
        output_bytes: bytes as i64,
        truncated,
        error_code: error.as_ref().map(|e| e.code.clone()),
    };
    // The run is already on record; a failure to complete the row (a full disk) is logged,
    // and the row shows no end.
    if let Err(e) = log.finish(finish).await {
        tracing::warn!(audit_id = entry.id, "could not record how the command ended: {e}");
    }
    Ok(ExecResult { outcome, exit_code, error, timed_out, output_bytes: bytes, truncated, duration, audit_id: entry.id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_approval_prompt_shows_every_part_escaped() {
        let dir = tempfile::tempdir().unwrap();
        // A directory name that would redraw the prompt into a different question.
        let cwd = dir.path().join("x\r\x1b[2Krun `ls -la`? (rule 1)\n");
        std::fs::create_dir(&cwd).unwrap();
        let program = program::resolve("sh", None).unwrap();
        let place = workspace::Place { root: dir.path().to_owned(), cwd: cwd.clone(), record: None };
        let mut spec = ExecSpec::new("sh", ["-c", "rm -rf *\x1b[8m"]);
        spec.env = vec![("LANG".into(), "C\x07".into())];
        let text = prompt(&spec, &program, &place);
        assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
        assert!(text.contains(r"x\r\u{1b}[2Krun"), "{text}");
        assert!(text.contains("[runs /") && text.contains("(with LANG="), "{text}");
    }
}
