//! The admin service (`rosetta.admin.v1.AdminService`): operators manage users and sessions,
//! and send announcements to every user, every call checked against the admin role and
//! written to the audit log.
//!
//! The role is granted only by [`grant`] (the `rosetta admin grant` command, with database
//! access), never over the API.

mod actions;
mod announce;
pub mod audit;
mod grpc;
pub(crate) mod maintenance;
mod node;
mod roles;
pub mod status;
mod view;

pub use audit::Actor;
pub use grpc::AdminGrpc;
pub use node::{NODE_PUBLIC_METHODS, NodeGrpc};
pub use roles::{grant, revoke};
