//! One accepted loopback connection with the context the bridges' accept loop gives it, for
//! running a single bridge handler on its own (e.g. to measure its future).

use std::net::SocketAddr;

use rosetta_bridge_kit::{Connections, Counters, Handshake};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A connection as a bridge's handler receives it: not closing, not logged in.
pub struct Accepted {
    /// The client's end, kept open for as long as the test needs the connection.
    pub client: TcpStream,
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub conns: Connections,
}

/// Accepts one loopback connection for `bridge`.
pub async fn accepted(bridge: &'static str) -> Accepted {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr"))
        .await
        .expect("connect");
    let (stream, peer) = listener.accept().await.expect("accept");
    let conns = Connections {
        closing: CancellationToken::new(),
        counters: Counters::new(bridge),
        handshake: Handshake::default(),
    };
    Accepted {
        client,
        stream,
        peer,
        conns,
    }
}
