//! The bridge's limits on real sockets: a half-sent HTTP header is closed at the header
//! timeout, a WebSocket that does not log in at the handshake timeout (without a close frame,
//! so the web client reconnects), and a connection over the per-address cap gets HTTP 503
//! and the address gets in again once its connection has closed.

mod common;

use std::time::{Duration, Instant};

use common::{Bridge, PATIENCE, Ws};
use rosetta_bridge_kit::settings::{CloudChatSettings, ConnectionLimits};
use rosetta_testkit::{Backend, TestServer};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

fn settings(limits: ConnectionLimits) -> CloudChatSettings {
    CloudChatSettings {
        limits,
        ..CloudChatSettings::default()
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

/// One HTTP request on a new connection; the response's status line.
async fn status_of_a_request(bridge: &Bridge) -> String {
    let mut stream = TcpStream::connect(bridge.addr).await.expect("connect");
    let body = r#"{"type":"PING","payload":{}}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let response = until_closed(&mut stream).await;
    response.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_half_sent_header_and_a_silent_websocket_are_closed() {
    let server = TestServer::start(Backend::Sqlite).await;
    let timeout = Duration::from_millis(300);
    let bridge = Bridge::start_with(
        server.backend(),
        settings(ConnectionLimits {
            header_timeout_ms: timeout.as_millis() as u64,
            handshake_timeout_ms: 2 * timeout.as_millis() as u64,
            ..CloudChatSettings::default().limits
        }),
    )
    .await;
    let opened = Instant::now();
    let mut half = TcpStream::connect(bridge.addr).await.expect("connect");
    half.write_all(b"POST / HTTP/1.1\r\nHost: cloudchat\r\nContent-Le")
        .await
        .expect("write");
    until_closed(&mut half).await;
    assert!(opened.elapsed() >= timeout, "not before the header timeout");

    let opened = Instant::now();
    let mut silent = Ws::connect(bridge.addr).await;
    assert_eq!(silent.closed().await, None, "dropped without a close frame");
    assert!(
        opened.elapsed() >= 2 * timeout,
        "not before the handshake timeout"
    );
    bridge.stop().await;
}

#[tokio::test]
async fn over_the_address_cap_a_request_gets_503_until_a_connection_closes() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = Bridge::start_with(
        server.backend(),
        settings(ConnectionLimits {
            max_per_address: 1,
            ..CloudChatSettings::default().limits
        }),
    )
    .await;
    let held = Ws::connect(bridge.addr).await;
    assert!(
        status_of_a_request(&bridge)
            .await
            .starts_with("HTTP/1.1 503 "),
        "refused with 503"
    );
    drop(held);
    // No event tells the client when the bridge has seen the close: retry until admitted.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = status_of_a_request(&bridge).await;
        if !status.contains(" 503 ") {
            assert!(
                status.starts_with("HTTP/1.1 "),
                "an HTTP answer: {status:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never admitted again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bridge.stop().await;
}
