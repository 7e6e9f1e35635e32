//! This installation's OpenClaw device identity: an Ed25519 key pair made once and kept in the
//! data directory (owner-only), and the device tokens gateways hand out in `hello-ok`.
//!
//! The gateway pairs a device, not a connection: losing the key would mean pairing again, so it
//! is written once and never rotated behind the person's back.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub(crate) struct Device {
    key: SigningKey,
    /// hex(sha256(raw public key)), as the gateway computes it.
    pub id: String,
    dir: PathBuf,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::DataDir { path: path.to_owned(), reason: format!("cannot {what} the OpenClaw device identity: {e}") }
}

/// Write `bytes` to `path` readable by the owner only, atomically.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).map_err(|e| io("write", &tmp, e))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("write", path, e))
}

impl Device {
    /// The identity under `data_dir/openclaw/`, made on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<Device> {
        let dir = data_dir.join("openclaw");
        std::fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
        let file = dir.join("device.key");
        let seed: [u8; 32] = match std::fs::read_to_string(&file) {
            Ok(text) => URL_SAFE_NO_PAD
                .decode(text.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| Error::DataDir {
                    path: file.clone(),
                    reason: "the OpenClaw device key is damaged; move it aside to make a new one (the gateway will ask to pair this device again)".into(),
                })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::getrandom(&mut seed).map_err(|e| Error::DataDir { path: file.clone(), reason: format!("no randomness for a key: {e}") })?;
                write_private(&file, URL_SAFE_NO_PAD.encode(seed).as_bytes())?;
                seed
            }
            Err(e) => return Err(io("read", &file, e)),
        };
        let key = SigningKey::from_bytes(&seed);
        let id = Sha256::digest(key.verifying_key().as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        Ok(Device { key, id, dir })
    }

    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes())
    }

    /// Sign the connect payload (protocol v3 signature string).
    pub fn sign(&self, payload: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.key.sign(payload.as_bytes()).to_bytes())
    }

    fn tokens_file(&self) -> PathBuf {
        self.dir.join("device-tokens.json")
    }

    fn tokens(&self) -> BTreeMap<String, String> {
        std::fs::read(self.tokens_file()).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// The device token gateway `url` gave this device, if any.
    pub fn token_for(&self, url: &str) -> Option<String> {
        self.tokens().remove(url)
    }

    /// Keep (or with `None`, forget) the device token for `url`.
    pub fn keep_token(&self, url: &str, token: Option<&str>) -> Result<()> {
        let mut all = self.tokens();
        match token {
            Some(t) if all.get(url).map(String::as_str) == Some(t) => return Ok(()),
            Some(t) => all.insert(url.to_owned(), t.to_owned()),
            None => all.remove(url),
        };
        write_private(&self.tokens_file(), &serde_json::to_vec(&all).unwrap_or_default())
    }
}
