//! The handshake timeout on real sockets: an auth or file connection that sends no request
//! within it is closed without a byte; a chat socket, which never logs in and may only
//! listen, stays open.

mod common;

use std::time::{Duration, Instant};

use common::{connect, expect_closed, start_bridge_with};
use rosetta_bridge_kit::settings::{ConnectionLimits, DpcSettings};
use rosetta_testkit::{Backend, TestServer};

#[tokio::test]
async fn silent_auth_and_file_connections_are_closed_and_a_chat_socket_stays() {
    let server = TestServer::start(Backend::Sqlite).await;
    let timeout = Duration::from_millis(300);
    let limits = ConnectionLimits {
        handshake_timeout_ms: timeout.as_millis() as u64,
        ..DpcSettings::default().limits
    };
    let bridge = start_bridge_with(&server, limits).await;
    let chat = connect(bridge.chat).await;
    let opened = Instant::now();
    let mut auth = connect(bridge.auth).await;
    let mut file = connect(bridge.file).await;
    expect_closed(&mut auth).await;
    expect_closed(&mut file).await;
    assert!(opened.elapsed() >= timeout, "not before the timeout");
    // The chat socket opened first: had it a handshake timeout, it would be closed by now.
    let mut byte = [0u8; 1];
    assert!(
        matches!(chat.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the chat socket stays open, with nothing to read"
    );
}
