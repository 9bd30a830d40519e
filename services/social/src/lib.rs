//! The social service: who is whose friend, who blocks whom, and who belongs to which group.
//!
//! [`Social`] holds the domain logic (one module per concept: friends, blocks, groups,
//! membership changes, join requests) and is tested without a network; [`SocialGrpc`] is the
//! thin gRPC face over it. Events go out through [`rosetta_events::EventSink`] after each
//! committed change; presence is read through [`rosetta_events::PresenceView`].

mod blocks;
mod consent;
mod create;
mod cursor;
mod friends;
mod groups;
mod grpc;
mod invitations;
mod join_requests;
pub mod limits;
mod members;
mod social;
mod users;

#[cfg(test)]
mod tests;

pub use grpc::{PUBLIC_METHODS, SocialGrpc};
pub use limits::SocialConfig;
pub use social::Social;
