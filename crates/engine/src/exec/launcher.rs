//! What makes the process the exec path starts.
//!
//! The engine keeps every decision about a command — the policy, the approval, the sandbox's
//! command line, the descriptors it hands over, the limits, the process group, the output cap
//! and the audit row. A [`Launcher`] only says which process API builds the command those are
//! applied to: the standard library's in the CLI ([`StdLauncher`]); in the desktop app, the
//! shell plugin's (`src-tauri`), so that the processes an app starts come from the API the app
//! is allowed to start them with. Whatever the launcher, the engine sets the program's
//! arguments, environment, working directory, standard streams and every step between fork
//! and exec itself: a launcher cannot loosen the sandbox.

use std::path::Path;

/// Makes the bare command for `program` (bubblewrap), before the engine sets anything on it.
pub trait Launcher: Send + Sync + 'static {
    /// A command that would run `program`; an error if the launcher cannot make one now (the
    /// command is then refused, and audited as refused).
    fn command(&self, program: &Path) -> std::io::Result<std::process::Command>;
}

/// The standard library's `Command::new`: the CLI's, and the default.
pub struct StdLauncher;

impl Launcher for StdLauncher {
    fn command(&self, program: &Path) -> std::io::Result<std::process::Command> {
        Ok(std::process::Command::new(program))
    }
}
