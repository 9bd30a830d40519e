//! The bridge's limits on real sockets: a WebSocket handshake that never completes is closed
//! at the header timeout, a WebSocket that does not log in at the handshake timeout, and a
//! connection over the per-address cap gets HTTP 503 to its handshake.

mod common;

use std::time::{Duration, Instant};

use common::{Client, PATIENCE, bridge_with};
use rosetta_bridge_kit::settings::{ConnectionLimits, OurChatSettings};
use rosetta_testkit::{Backend, TestServer};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

const UPGRADE: &str = "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

fn settings(limits: ConnectionLimits) -> OurChatSettings {
    OurChatSettings {
        limits,
        ..OurChatSettings::default()
    }
}

async fn until_closed(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut got))
        .await
        .expect("closed in time")
        .expect("read");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn a_half_sent_handshake_and_a_silent_websocket_are_closed() {
    let server = TestServer::start(Backend::Sqlite).await;
    let timeout = Duration::from_millis(300);
    let bridge = bridge_with(
        &server,
        settings(ConnectionLimits {
            header_timeout_ms: timeout.as_millis() as u64,
            handshake_timeout_ms: 2 * timeout.as_millis() as u64,
            ..OurChatSettings::default().limits
        }),
    )
    .await;
    let opened = Instant::now();
    let mut half = TcpStream::connect(bridge.addr).await.expect("connect");
    half.write_all(&UPGRADE.as_bytes()[..30])
        .await
        .expect("write");
    assert_eq!(until_closed(&mut half).await, "", "dropped without a reply");
    assert!(opened.elapsed() >= timeout, "not before the header timeout");

    let opened = Instant::now();
    let mut silent = Client::connect(bridge.addr).await;
    // Ended as at shutdown: a close frame (1001), which the client takes as a clean close.
    silent.closed().await;
    assert!(
        opened.elapsed() >= 2 * timeout,
        "not before the handshake timeout"
    );
}

#[tokio::test]
async fn over_the_address_cap_the_handshake_gets_503() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = bridge_with(
        &server,
        settings(ConnectionLimits {
            max_per_address: 1,
            ..OurChatSettings::default().limits
        }),
    )
    .await;
    let mut first = Client::connect(bridge.addr).await;
    let mut second = TcpStream::connect(bridge.addr).await.expect("connect");
    second.write_all(UPGRADE.as_bytes()).await.expect("write");
    let reply = until_closed(&mut second).await;
    assert!(
        reply.starts_with("HTTP/1.1 503 "),
        "refused with 503: {reply:?}"
    );
    first.assert_nothing_pending().await;
}
