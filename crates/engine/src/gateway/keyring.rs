//! Gateway tokens kept in the operating system's keyring — the Secret Service on Linux
//! (GNOME Keyring, KWallet), the Keychain on macOS, the Credential Manager on Windows — for
//! people who would rather not keep them in an environment variable or a file. One entry per
//! profile and data directory (`gateway:<profile>@<data dir>`: two installations with a profile
//! of the same name keep two tokens); the database only records that the token is there.

use std::path::Path;

use crate::error::{Error, Result};

const SERVICE: &str = "gatehouse";

fn entry(profile: &str, data_dir: &Path) -> Result<keyring::Entry> {
    let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    keyring::Entry::new(SERVICE, &format!("gateway:{profile}@{}", dir.display())).map_err(|e| unavailable(profile, e))
}

/// Keep `token` for `profile`, replacing any earlier one. An empty `token` keeps the one
/// already there (a profile re-added with a new URL), and is refused when there is none.
pub(crate) fn store(profile: &str, data_dir: &Path, token: &str) -> Result<()> {
    if token.trim().is_empty() {
        return load(profile, data_dir).map(drop).map_err(|e| match e {
            Error::GatewayInvalid(_) => Error::GatewayInvalid(format!(
                "no token was given, and the keyring has none for gateway `{profile}`"
            )),
            other => other,
        });
    }
    entry(profile, data_dir)?.set_password(token.trim()).map_err(|e| unavailable(profile, e))
}

pub(crate) fn load(profile: &str, data_dir: &Path) -> Result<String> {
    match entry(profile, data_dir)?.get_password() {
        Ok(token) => Ok(token),
        Err(keyring::Error::NoEntry) => Err(Error::GatewayInvalid(format!(
            "gateway `{profile}` takes its token from the keyring, which has none for it; add it again with \
             `gatehouse gateways add {profile} … --token-keyring`"
        ))),
        Err(e) => Err(unavailable(profile, e)),
    }
}

/// Forget the token of a removed profile (nothing to forget is fine).
pub(crate) fn forget(profile: &str, data_dir: &Path) -> Result<()> {
    match entry(profile, data_dir)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(unavailable(profile, e)),
    }
}

fn unavailable(profile: &str, e: keyring::Error) -> Error {
    Error::KeyringUnavailable { profile: profile.to_owned(), reason: e.to_string() }
}
