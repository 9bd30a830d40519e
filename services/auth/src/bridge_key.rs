//! The bridge credential: a 32-byte secret shared by the services and the bridges. A bridge
//! sends it (hex, in [`metadata::BRIDGE_KEY`]) with every call it makes for a legacy client;
//! a service that sees it valid trusts what only a bridge may assert, such as the client's
//! address ([`metadata::CLIENT_ADDR`]). Generated into the data directory on first start,
//! like the token keys; split deployments mount the same file everywhere as a secret.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use rand::RngCore;
use rosetta_proto::metadata;
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;

const LEN: usize = 32;

#[derive(Clone)]
pub struct BridgeKey([u8; LEN]);

impl std::fmt::Debug for BridgeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BridgeKey(..)")
    }
}

impl BridgeKey {
    /// The default file inside a data directory.
    pub fn default_path(data_dir: &Path) -> PathBuf {
        data_dir.join("bridge.key")
    }

    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut key = [0u8; LEN];
        rand::rng().fill_bytes(&mut key);
        Self(key)
    }

    /// A key from its text form: 64 hex digits (surrounding white space ignored, so
    /// `openssl rand -hex 32 > file` makes one).
    pub fn parse(text: &str) -> io::Result<Self> {
        let bytes = hex::decode(text.trim()).ok().filter(|b| b.len() == LEN);
        let bytes = bytes.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "a bridge key is 64 hex digits (32 bytes)",
            )
        })?;
        let mut key = [0u8; LEN];
        key.copy_from_slice(&bytes);
        Ok(Self(key))
    }

    /// Reads the key at `path`.
    pub fn read(path: &Path) -> io::Result<Self> {
        Self::parse(&fs::read_to_string(path)?)
            .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", path.display())))
    }

    /// Reads the key at `path`, generating and writing it (mode 0600) first if it is missing.
    pub fn load_or_generate(path: &Path) -> io::Result<Self> {
        if path.exists() {
            return Self::read(path);
        }
        let key = Self::generate();
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        crate::keys::write_private(path, &format!("{}\n", key.to_hex()))?;
        tracing::info!(path = %path.display(), "generated a new bridge key");
        Ok(key)
    }

    /// The text form: what the file holds and what bridges send.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Whether `presented` (the text a caller sent) is this key, in time independent of where
    /// they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let Some(bytes) = std::str::from_utf8(presented)
            .ok()
            .and_then(|text| hex::decode(text).ok())
        else {
            return false;
        };
        bytes.len() == LEN && bool::from(bytes.ct_eq(&self.0))
    }

    /// Whether the request's metadata carries this key: the caller is a bridge.
    pub fn verifies(&self, metadata: &MetadataMap) -> bool {
        metadata
            .get(metadata::BRIDGE_KEY)
            .is_some_and(|value| self.matches(value.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_keys() {
        let key = BridgeKey::generate();
        let hex = key.to_hex();
        assert!(key.matches(hex.as_bytes()));
        assert!(
            BridgeKey::parse(&format!(" {hex}\n"))
                .unwrap()
                .matches(hex.as_bytes())
        );
        assert!(!key.matches(BridgeKey::generate().to_hex().as_bytes()));
        assert!(!key.matches(&hex.as_bytes()[..62]));
        assert!(!key.matches(b""));
        assert!(BridgeKey::parse("abcd").is_err());
    }

    #[test]
    fn generated_once_then_read() {
        let dir = std::env::temp_dir().join(format!("bridge-key-{}", std::process::id()));
        let path = BridgeKey::default_path(&dir);
        let _ = fs::remove_file(&path);
        let first = BridgeKey::load_or_generate(&path).unwrap();
        let again = BridgeKey::load_or_generate(&path).unwrap();
        assert_eq!(first.to_hex(), again.to_hex());
        let _ = fs::remove_dir_all(&dir);
    }
}
