//! The `rosetta` binary's library half: configuration, telemetry and the assembly of roles
//! into running nodes, shared by `main.rs` and the end-to-end tests.

pub mod config;
pub mod node;
pub mod telemetry;

pub use config::Config;
pub use node::{Node, Role};
