//! The handshake timeout on real sockets: a connection that sends nothing (so never logs in)
//! is closed once the timeout runs out, before the idle close would.

mod common;

use std::time::{Duration, Instant};

use common::{Client, bridge_with};
use rosetta_bridge_kit::settings::{ConnectionLimits, ImpsSettings};
use rosetta_testkit::{Backend, TestServer};

#[tokio::test]
async fn a_connection_not_logged_in_within_the_handshake_timeout_is_closed() {
    let server = TestServer::start(Backend::Sqlite).await;
    let timeout = Duration::from_millis(300);
    let settings = ImpsSettings {
        limits: ConnectionLimits {
            handshake_timeout_ms: timeout.as_millis() as u64,
            ..ImpsSettings::default().limits
        },
        ..ImpsSettings::default()
    };
    let bridge = bridge_with(&server, settings).await;
    let opened = Instant::now();
    let mut silent = Client::connect(&bridge).await;
    silent.expect_closed().await;
    assert!(opened.elapsed() >= timeout, "not before the timeout");
    assert!(silent.buf.is_empty(), "closed without a frame");
}
