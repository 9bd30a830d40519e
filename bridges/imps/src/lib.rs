//! The IMPS protocol bridge (SysOfIMPS Android clients, TCP 1200).
//!
//! [`codec`] reassembles frames from the byte stream (a `tokio_util` codec) and turns them into
//! typed messages and back, byte for byte as the real client reads and writes them.

pub mod codec;
