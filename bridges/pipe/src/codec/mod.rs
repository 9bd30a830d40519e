//! Bytes ⇄ typed frames for the pipe protocol, byte-exact with the notes (pipe.md §3, §7).
//!
//! The protocol has no framing: one read is one command ([`commands`] cuts the one safe
//! exception). Fields are separated by `|` with no escaping; where a client puts `|` into free
//! text (a request note, a message), the surplus fields are joined back into that free-text
//! field, since the token is always last.
//!
//! - [`frame`]: one read into the commands it holds, in one linear pass;
//! - [`command`]: the typed [`Request`]s; [`parse`]: one command into one of them;
//! - [`reply`]: typed replies and pushes into the real server's exact bytes.

mod command;
mod frame;
mod parse;
mod reply;

pub use command::{Auth, Command, Id, ParseError, Request};
pub use frame::{Piece, Split, commands, incomplete, split, starts_with_command};
pub use parse::parse;
pub use reply::{PendingFriend, PendingJoin, Reply, padded_gid, padded_uid};
