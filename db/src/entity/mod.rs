//! sea-orm entities, one module per table.

pub mod credential;
pub mod legacy_token;
pub mod session;
pub mod throttle;
pub mod user;
pub mod verification_code;
