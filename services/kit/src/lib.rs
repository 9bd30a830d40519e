//! Shared plumbing of the Rosetta gRPC services: the one place domain errors become
//! `tonic::Status`, list paging, and the server (health, reflection, graceful shutdown) every
//! role runs.

pub mod error;
pub mod page;
pub mod server;

pub use error::{ApiError, ApiResult};
