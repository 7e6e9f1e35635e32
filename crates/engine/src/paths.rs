//! Where Gatehouse keeps its data. Every front end resolves the directory the same way, so the
//! CLI and the desktop app see the same jobs and chats.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The environment variable that names the data directory when `--data-dir` is not given.
pub const DATA_DIR_ENV: &str = "GATEHOUSE_DATA_DIR";

/// `explicit` (a `--data-dir` flag) wins, then `$GATEHOUSE_DATA_DIR`, then the platform's data
/// directory + `/gatehouse` (`~/.local/share/gatehouse` on Linux).
pub fn resolve_data_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return Ok(dir.to_owned());
    }
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    directories::BaseDirs::new()
        .map(|b| b.data_dir().join("gatehouse"))
        .ok_or_else(|| Error::DataDir {
            path: PathBuf::from("~"),
            reason: format!("no home directory was found; pass --data-dir or set {DATA_DIR_ENV}"),
        })
}

/// Create the directory (owner-only: it will hold keys and tokens) or check the one that is
/// there, and say clearly what is wrong with it.
pub fn prepare_data_dir(dir: &Path) -> Result<()> {
    let bad = |reason: String| Error::DataDir { path: dir.to_owned(), reason };
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => return Err(bad("it is a file, not a directory".into())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir).map_err(|e| bad(format!("it could not be created ({e})")))?;
        }
        Err(e) => return Err(bad(e.to_string())),
    }
    // Probe writability now: SQLite would otherwise fail later with a vaguer message.
    let probe = dir.join(".gatehouse-write-probe");
    std::fs::write(&probe, b"").map_err(|e| match e.raw_os_error() {
        Some(libc::ENOSPC) => Error::DiskFull,
        _ => bad(format!("it is not writable ({e})")),
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
