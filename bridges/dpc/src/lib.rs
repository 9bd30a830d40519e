//! The DPC protocol bridge (tkinter clients; auth 9999, chat 9998, file 9988).
//!
//! [`codec`] holds the framing, the Python-exact JSON writer and the typed requests and
//! replies of all three servers; it does no I/O.

pub mod codec;
