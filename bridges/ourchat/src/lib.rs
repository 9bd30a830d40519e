//! The OurChat protocol bridge (PyQt clients, WebSocket 7777).
//!
//! [`codec`] turns one text frame into a typed request, accepting both the real client's form
//! and the seed document's, and builds the replies the client reads.

pub mod codec;
