// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Started as `gatehouse` (the packages' /usr/bin/gatehouse runs this binary under that
    // name): the CLI, with no window and no GTK. One binary instead of two halves the package
    // (the engine and llama.cpp are most of each).
    let name = std::env::args_os().next();
    if name.as_deref().and_then(|n| Path::new(n).file_stem()).is_some_and(|n| n == "gatehouse") {
        return gatehouse_cli::main();
    }
    gatehouse_desktop::run();
    ExitCode::SUCCESS
}
