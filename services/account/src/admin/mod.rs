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
mod roles;
mod view;

pub use audit::Actor;
pub use grpc::AdminGrpc;
pub use roles::{grant, revoke};
