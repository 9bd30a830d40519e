//! sea-orm entities, one module per table (grouped by owning service past the accounts).

pub mod admin;
pub mod announcement;
pub mod announcement_cursor;
pub mod audit_log;
pub mod credential;
pub mod disabled_account;
pub mod legacy_token;
pub mod maintenance;
pub mod node_status;
pub mod policy_epoch;
pub mod session;
pub mod throttle;
pub mod user;
pub mod verification_code;

pub mod social;

pub mod files;
pub mod messaging;
