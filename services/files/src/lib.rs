//! The files service: streamed uploads and downloads over an object store, with folders,
//! visibility (owner, conversation, everyone) and per-user quotas.
//!
//! [`Files`] holds the domain logic; [`FilesGrpc`] is the thin gRPC face over it. Blobs live
//! under server-generated names; a file's row is written only once its blob is complete, so an
//! interrupted or mis-sized upload leaves nothing behind.

mod access;
mod download;
mod files;
mod grpc;
mod info;
mod listing;
mod names;
mod quota;
mod settings;
mod store;
mod upload;

pub use files::Files;
pub use grpc::FilesGrpc;
pub use settings::{
    DEFAULT_MAX_FILE_BYTES, DEFAULT_QUOTA_BYTES, FilesSettings, StoreKind, StoreSettings,
};
pub use store::{StoreError, object_key, open as open_store};
