//! The blob store behind the service: a directory on the local filesystem, or an S3-compatible
//! bucket. Object names are generated here, never taken from clients.

use std::{path::Path as FsPath, sync::Arc};

use object_store::{ObjectStore, aws::AmazonS3Builder, local::LocalFileSystem, path::Path};

use crate::settings::{StoreKind, StoreSettings};

/// Prefix of every stored file's object name.
const FILES_PREFIX: &str = "files";

/// Opens the configured store; `data_dir` hosts the default local one (`<data_dir>/blobs`).
pub fn open(
    settings: &StoreSettings,
    data_dir: &FsPath,
) -> Result<Arc<dyn ObjectStore>, StoreError> {
    match settings.kind {
        StoreKind::Local => {
            let dir = settings
                .dir
                .clone()
                .unwrap_or_else(|| data_dir.join("blobs"));
            std::fs::create_dir_all(&dir)
                .map_err(|e| StoreError(format!("creating blob dir {}: {e}", dir.display())))?;
            // Cleanup removes the per-object directories emptied by deletes.
            let store = LocalFileSystem::new_with_prefix(&dir)
                .map_err(|e| StoreError(format!("opening blob dir {}: {e}", dir.display())))?
                .with_automatic_cleanup(true);
            Ok(Arc::new(store))
        }
        StoreKind::S3 => {
            if settings.bucket.is_empty() {
                return Err(StoreError(
                    "files.store.bucket is required for the s3 store".into(),
                ));
            }
            // reqwest is built without a bundled TLS provider: use ring, as sqlx does.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(&settings.bucket)
                .with_region(if settings.region.is_empty() {
                    "us-east-1"
                } else {
                    &settings.region
                })
                .with_allow_http(settings.allow_http);
            if !settings.endpoint.is_empty() {
                builder = builder.with_endpoint(&settings.endpoint);
            }
            if !settings.access_key_id.is_empty() {
                builder = builder
                    .with_access_key_id(&settings.access_key_id)
                    .with_secret_access_key(&settings.secret_access_key);
            }
            let store = builder
                .build()
                .map_err(|e| StoreError(format!("configuring the s3 store: {e}")))?;
            Ok(Arc::new(store))
        }
    }
}

/// The object name of a file id: `files/<id>`.
pub fn object_key(file_id: &str) -> Path {
    Path::from(FILES_PREFIX).join(file_id)
}

/// Why the configured store cannot be opened.
#[derive(Debug)]
pub struct StoreError(String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}
