//! The account service: who users are and how they prove it.
//!
//! [`Accounts`] holds the domain logic and is tested without a network; [`AccountGrpc`] is the
//! thin gRPC face over it.

mod accounts;
pub mod admin;
mod codes;
mod config;
mod grpc;
mod hash_pool;
mod names;
mod password;
mod profile;
mod session;
mod sources;
mod throttle;

pub use accounts::Accounts;
pub use admin::{AdminGrpc, NODE_PUBLIC_METHODS, NodeGrpc};
pub use codes::{CodeSender, LogSender, MemorySender};
pub use config::AccountConfig;
pub use grpc::{AccountGrpc, PUBLIC_METHODS};
pub use hash_pool::{HashPool, describe_metrics};
pub use password::{Scheme, argon2_params};
pub use sources::{Action, SourceLimit, Sources};
