//! The accept loop's limits on real sockets: the caps refuse in the configured form and admit
//! again once a connection has ended; the handshake timeout ends connections that have not
//! logged in and only those.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpSocket, TcpStream},
    sync::mpsc,
};

use super::*;

const PATIENCE: Duration = Duration::from_secs(10);
const FULL: &[u8] = b"full\n";

/// What the test connection handler reports.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Started(SocketAddr),
    Ended(SocketAddr),
}

/// Serves `limits` with a handler that reports its start and end, echoes what it reads, and
/// marks the handshake done when it reads `login`; ends on EOF or `closing`.
async fn serve(limits: ConnectionLimits) -> (SocketAddr, mpsc::UnboundedReceiver<Step>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (steps, seen) = mpsc::unbounded_channel();
    tokio::spawn(serve_tcp(
        Listening::new("test", listener, limits, Refusal::Reply(FULL)),
        std::future::pending(),
        move |mut stream, peer, conns| {
            let steps = steps.clone();
            async move {
                let _ = steps.send(Step::Started(peer));
                let mut buf = [0u8; 64];
                loop {
                    tokio::select! {
                        biased;
                        () = conns.closing.cancelled() => break,
                        read = stream.read(&mut buf) => match read {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if &buf[..n] == b"login" {
                                    conns.handshake.done();
                                }
                                if stream.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        },
                    }
                }
                let _ = steps.send(Step::Ended(peer));
            }
        },
    ));
    (addr, seen)
}

async fn connect_from(ip: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind((ip, 0).into()).expect("bind source");
    socket.connect(addr).await.expect("connect")
}

async fn next(seen: &mut mpsc::UnboundedReceiver<Step>) -> Step {
    tokio::time::timeout(PATIENCE, seen.recv())
        .await
        .expect("the handler moves on in time")
        .expect("handler")
}

/// Reads until EOF: what the server sent before it closed.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut got))
        .await
        .expect("the server closes in time")
        .expect("read");
    got
}

/// Sends one byte and reads it back: the connection is admitted and served.
async fn echoes(stream: &mut TcpStream) -> bool {
    if stream.write_all(b"x").await.is_err() {
        return false;
    }
    let mut back = [0u8; 1];
    matches!(
        tokio::time::timeout(PATIENCE, stream.read(&mut back)).await,
        Ok(Ok(1))
    )
}

#[tokio::test]
async fn the_address_cap_refuses_in_the_protocols_form_and_admits_after_a_close() {
    let limits = ConnectionLimits {
        max_per_address: 2,
        ..ConnectionLimits::default()
    };
    let (addr, mut seen) = serve(limits).await;
    let mut first = connect_from([127, 0, 0, 1], addr).await;
    let mut second = connect_from([127, 0, 0, 1], addr).await;
    assert!(echoes(&mut first).await && echoes(&mut second).await);
    let mut third = connect_from([127, 0, 0, 1], addr).await;
    assert_eq!(
        until_closed(&mut third).await,
        FULL,
        "refused in the given form"
    );
    let mut other = connect_from([127, 0, 0, 2], addr).await;
    assert!(echoes(&mut other).await, "another address still gets in");

    let first_peer = first.local_addr().expect("addr");
    drop(first);
    while next(&mut seen).await != Step::Ended(first_peer) {}
    let mut again = connect_from([127, 0, 0, 1], addr).await;
    assert!(
        echoes(&mut again).await,
        "admitted once a connection has ended"
    );
}

#[tokio::test]
async fn the_listener_cap_refuses_whatever_the_address() {
    let limits = ConnectionLimits {
        max_connections: 2,
        ..ConnectionLimits::default()
    };
    let (addr, mut seen) = serve(limits).await;
    let mut first = connect_from([127, 0, 0, 1], addr).await;
    let mut second = connect_from([127, 0, 0, 2], addr).await;
    assert!(echoes(&mut first).await && echoes(&mut second).await);
    let mut third = connect_from([127, 0, 0, 3], addr).await;
    assert_eq!(until_closed(&mut third).await, FULL);

    let second_peer = second.local_addr().expect("addr");
    drop(second);
    while next(&mut seen).await != Step::Ended(second_peer) {}
    let mut again = connect_from([127, 0, 0, 3], addr).await;
    assert!(
        echoes(&mut again).await,
        "admitted once a connection has ended"
    );
}

/// A short timeout, waited for on the socket's close.
#[tokio::test]
async fn the_handshake_timeout_closes_only_connections_not_logged_in() {
    let limits = ConnectionLimits {
        handshake_timeout_ms: 300,
        ..ConnectionLimits::default()
    };
    let (addr, _seen) = serve(limits).await;
    let mut logged_in = connect_from([127, 0, 0, 1], addr).await;
    logged_in.write_all(b"login").await.expect("write");
    let mut back = [0u8; 5];
    logged_in.read_exact(&mut back).await.expect("echo");
    let started = tokio::time::Instant::now();
    let mut silent = connect_from([127, 0, 0, 1], addr).await;
    assert_eq!(
        until_closed(&mut silent).await,
        b"",
        "closed without a byte"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "not before the timeout"
    );
    assert!(echoes(&mut logged_in).await, "a logged-in connection stays");
}
