//! Gateway tokens kept in the operating system's keyring — the Secret Service on Linux
//! (GNOME Keyring, KWallet), the Keychain on macOS, the Credential Manager on Windows — for
//! people who would rather not keep them in an environment variable or a file. One entry per
//! profile; the database only records that the token is there, never the token.

use crate::error::{Error, Result};

const SERVICE: &str = "gatehouse";

fn entry(profile: &str) -> Result<keyring::Entry> {
    keyring::Entry::new(SERVICE, &format!("gateway:{profile}")).map_err(|e| unavailable(profile, e))
}

/// Keep `token` for `profile`, replacing any earlier one. An empty `token` keeps the one
/// already there (a profile re-added with a new URL), and is refused when there is none.
pub(crate) fn store(profile: &str, token: &str) -> Result<()> {
    if token.trim().is_empty() {
        return load(profile).map(drop).map_err(|e| match e {
            Error::GatewayInvalid(_) => Error::GatewayInvalid(format!(
                "no token was given, and the keyring has none for gateway `{profile}`"
            )),
            other => other,
        });
    }
    entry(profile)?.set_password(token.trim()).map_err(|e| unavailable(profile, e))
}

pub(crate) fn load(profile: &str) -> Result<String> {
    match entry(profile)?.get_password() {
        Ok(token) => Ok(token),
        Err(keyring::Error::NoEntry) => Err(Error::GatewayInvalid(format!(
            "gateway `{profile}` takes its token from the keyring, which has none for it; add it again with \
             `gatehouse gateways add {profile} … --token-keyring`"
        ))),
        Err(e) => Err(unavailable(profile, e)),
    }
}

/// Forget the token of a removed profile (nothing to forget is fine).
pub(crate) fn forget(profile: &str) -> Result<()> {
    match entry(profile)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(unavailable(profile, e)),
    }
}

fn unavailable(profile: &str, e: keyring::Error) -> Error {
    Error::KeyringUnavailable { profile: profile.to_owned(), reason: e.to_string() }
}
