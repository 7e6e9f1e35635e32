//! Running commands.
//!
//! For now an `exec` job is a plain child process in its own process group, with its cwd,
//! timeout and output capture (see [`process`]). The exec tool's policy, approvals and sandbox
//! slot in here, between the spec and the spawn, without the pool knowing.

pub(crate) mod process;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pool::kind::{BoxFuture, JobKind, JobRun, Outcome};

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
