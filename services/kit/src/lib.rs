//! Shared plumbing of the Rosetta gRPC services: the one place domain errors become
//! `tonic::Status`, list paging, and the server (health, reflection, graceful shutdown) every
//! role runs with its time and concurrency limits, the continuation of callers' traces, per-RPC metrics, and
//! the groups of background tasks a shutdown stops and waits for.

pub mod error;
pub mod grpc_web;
pub mod guard;
pub mod page;
pub mod rpc_metrics;
pub mod server;
pub mod tasks;
pub mod text;
pub mod trace;

pub use error::{ApiError, ApiResult, ERROR_DOMAIN, Reason};
