//! The CloudChat protocol bridge (Angular and HarmonyOS clients, WebSocket + HTTP 14514).
//!
//! [`codec`] turns one message (a WebSocket text frame or an HTTP body) into a typed request
//! and builds every reply and push with the key names the clients read.

pub mod codec;
