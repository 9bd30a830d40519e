//! The files service's tunables, in plain units for config files and environment variables
//! (`[files]` in TOML, `ROSETTA_FILES__…` in the environment).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// 1 GiB: the default largest single upload.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1 << 30;
/// 10 GiB: the default storage each user may fill.
pub const DEFAULT_QUOTA_BYTES: u64 = 10 << 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesSettings {
    /// Largest single file, in bytes (TOO_LARGE beyond).
    pub max_file_bytes: u64,
    /// Bytes each user may store in total (QUOTA_EXCEEDED beyond).
    pub quota_bytes: u64,
    /// Where blobs are kept.
    pub store: StoreSettings,
}

impl Default for FilesSettings {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            quota_bytes: DEFAULT_QUOTA_BYTES,
            store: StoreSettings::default(),
        }
    }
}

/// Blob storage backend: `kind = "local"` (default) or `kind = "s3"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    pub kind: StoreKind,
    /// Local store directory; defaults to `<data_dir>/blobs`.
    pub dir: Option<PathBuf>,
    /// S3 bucket (required for `s3`).
    pub bucket: String,
    /// S3 region; `us-east-1` when empty.
    pub region: String,
    /// S3-compatible endpoint (MinIO, Ceph, moto…); AWS when empty.
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Allow a plain `http://` endpoint (local S3 stand-ins).
    pub allow_http: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    #[default]
    Local,
    S3,
}
