//! The exec tool's processes, made by the shell plugin.
//!
//! The engine decides and confines every command (policy, approval, bubblewrap's command line,
//! limits, audit) and takes the thing that makes the process as a parameter
//! ([`gatehouse_engine::Launcher`]). In the app that is tauri-plugin-shell's Rust API: its
//! `Command` becomes the `std::process::Command` the engine finishes (`From<Command>`), so the
//! engine keeps its descriptor hand-over, process group and output cap and reads the output
//! itself (the plugin's line reader would buffer an endless line without bound). The webview
//! has no shell permission at all (capabilities/main.json).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use gatehouse_engine::Launcher;
use tauri::{AppHandle, Runtime};
use tauri_plugin_shell::ShellExt;

/// The app's [`Launcher`]. The engine opens before the app is built (see `run`), so the app is
/// given to it in setup; a command asked for before then is refused, not run another way.
pub struct ShellLauncher<R: Runtime> {
    app: Arc<OnceLock<AppHandle<R>>>,
}

impl<R: Runtime> Clone for ShellLauncher<R> {
    fn clone(&self) -> Self {
        ShellLauncher { app: self.app.clone() }
    }
}

impl<R: Runtime> Default for ShellLauncher<R> {
    fn default() -> Self {
        ShellLauncher { app: Arc::new(OnceLock::new()) }
    }
}

impl<R: Runtime> ShellLauncher<R> {
    /// From now on, processes come from `app`'s shell plugin (which `app` must have).
    pub fn attach(&self, app: AppHandle<R>) {
        let _ = self.app.set(app);
    }
}

impl<R: Runtime> Launcher for ShellLauncher<R> {
    fn command(&self, program: &Path) -> std::io::Result<std::process::Command> {
        let app = self.app.get().ok_or_else(|| std::io::Error::other("the app is still starting"))?;
        Ok(app.shell().command(program).into())
    }
}
