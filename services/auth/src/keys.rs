//! The Ed25519 key pair that signs access tokens, generated into the data directory on first
//! start unless files are configured (split deployments mount the same pair as secrets).

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use ed25519_dalek::{
    SigningKey,
    pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding},
};
use rand::RngCore;

/// Where the PEM files of the key pair live.
#[derive(Debug, Clone)]
pub struct KeyFiles {
    pub private: PathBuf,
    pub public: PathBuf,
}

impl KeyFiles {
    /// The default file names inside a data directory.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            private: dir.join("jwt-ed25519.pem"),
            public: dir.join("jwt-ed25519.pub.pem"),
        }
    }
}

/// PEM text of the pair (PKCS#8 private key, SPKI public key).
#[derive(Clone)]
pub struct KeyPair {
    pub private_pem: String,
    pub public_pem: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_pem", &self.public_pem)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A fresh pair from the operating system's CSPRNG.
    pub fn generate() -> io::Result<Self> {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let key = SigningKey::from_bytes(&seed);
        let private_pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(io::Error::other)?
            .to_string();
        let public_pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(io::Error::other)?;
        Ok(Self {
            private_pem,
            public_pem,
        })
    }

    /// Reads the pair from `files`, generating and writing it first if neither file exists.
    pub fn load_or_generate(files: &KeyFiles) -> io::Result<Self> {
        if !files.private.exists() && !files.public.exists() {
            let pair = Self::generate()?;
            if let Some(dir) = files.private.parent() {
                fs::create_dir_all(dir)?;
            }
            write_private(&files.private, &pair.private_pem)?;
            fs::write(&files.public, &pair.public_pem)?;
            tracing::info!(path = %files.private.display(), "generated a new token signing key");
            return Ok(pair);
        }
        Ok(Self {
            private_pem: fs::read_to_string(&files.private)?,
            public_pem: fs::read_to_string(&files.public)?,
        })
    }
}

pub(crate) fn write_private(path: &Path, pem: &str) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::{io::Write, os::unix::fs::OpenOptionsExt};
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(pem.as_bytes())
    }
    #[cfg(not(unix))]
    fs::write(path, pem)
}
