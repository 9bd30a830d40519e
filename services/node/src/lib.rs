//! One process's share of Rosetta: configuration, telemetry and the assembly of service roles
//! into a running node, shared by the `rosetta` binary and the end-to-end test harness.

pub mod config;
pub mod heartbeat;
pub mod node;
mod pool_metrics;
pub mod telemetry;
pub mod web;

pub use config::Config;
pub use node::{Node, Role};
