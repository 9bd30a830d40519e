//! The pipe protocol bridge (QtQQ clients, TCP 8263).
//!
//! [`codec`] turns one read of client bytes into a typed [`codec::Request`] and typed replies
//! and pushes back into the exact bytes the real server sent; it does no I/O.

pub mod codec;
