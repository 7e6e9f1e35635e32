//! Gateway tokens kept in the operating system's keyring — the Secret Service on Linux
//! (GNOME Keyring, KWallet), the Keychain on macOS, the Credential Manager on Windows — for
//! people who would rather not keep them in an environment variable or a file. One entry per
//! profile and data directory (`gateway:<profile>@<data dir>`: two installations with a profile
//! of the same name keep two tokens); the database only records that the token is there.
//!
//! Every call is a D-Bus round trip (or its macOS/Windows equivalent) that may wait on an
//! unlock dialog, so the public functions run on the blocking pool, never on async threads.

use std::path::Path;

use crate::error::{Error, Result};

const SERVICE: &str = "gatehouse";

fn entry(profile: &str, data_dir: &Path) -> Result<keyring::Entry> {
    let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    keyring::Entry::new(SERVICE, &format!("gateway:{profile}@{}", dir.display())).map_err(|e| unavailable(profile, e))
}

/// Keep `token` for `profile`, replacing any earlier one. An empty `token` keeps the one
/// already there (a profile re-added with a new URL), and is refused when there is none.
pub(crate) async fn store(profile: &str, data_dir: &Path, token: String) -> Result<()> {
    off_thread(profile, data_dir, move |p, d| store_now(p, d, &token)).await
}

pub(crate) async fn load(profile: &str, data_dir: &Path) -> Result<String> {
    off_thread(profile, data_dir, load_now).await
}

/// Forget the token of a removed profile (nothing to forget is fine).
pub(crate) async fn forget(profile: &str, data_dir: &Path) -> Result<()> {
    off_thread(profile, data_dir, forget_now).await
}

async fn off_thread<T: Send + 'static>(
    profile: &str,
    data_dir: &Path,
    f: impl FnOnce(&str, &Path) -> Result<T> + Send + 'static,
) -> Result<T> {
    let (name, dir) = (profile.to_owned(), data_dir.to_owned());
    tokio::task::spawn_blocking(move || f(&name, &dir))
        .await
        .map_err(|e| Error::KeyringUnavailable { profile: profile.to_owned(), reason: e.to_string() })?
}

fn store_now(profile: &str, data_dir: &Path, token: &str) -> Result<()> {
    if token.trim().is_empty() {
        return load_now(profile, data_dir).map(drop).map_err(|e| match e {
            Error::GatewayInvalid(_) => Error::GatewayInvalid(format!(
                "no token was given, and the keyring has none for gateway `{profile}`"
            )),
            other => other,
        });
    }
    entry(profile, data_dir)?.set_password(token.trim()).map_err(|e| unavailable(profile, e))
}

fn load_now(profile: &str, data_dir: &Path) -> Result<String> {
    match entry(profile, data_dir)?.get_password() {
        Ok(token) => Ok(token),
        Err(keyring::Error::NoEntry) => Err(Error::GatewayInvalid(format!(
            "gateway `{profile}` takes its token from the keyring, which has none for it; add the profile again, \
             giving its token to the keyring"
        ))),
        Err(e) => Err(unavailable(profile, e)),
    }
}

fn forget_now(profile: &str, data_dir: &Path) -> Result<()> {
    match entry(profile, data_dir)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(unavailable(profile, e)),
    }
}

fn unavailable(profile: &str, e: keyring::Error) -> Error {
    Error::KeyringUnavailable { profile: profile.to_owned(), reason: e.to_string() }
}
