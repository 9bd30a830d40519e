//! What an idle connection holds at rest is mostly its task's future, allocated whole when the
//! connection is accepted and kept until it closes: an await kept inline in a rarely taken
//! path (the handshake, a close, the end of a login) would size every idle connection. This
//! size is a budget, so that such a path is boxed instead.

use rosetta_bridge_kit::{
    Backend, Connections, Counters, Handshake, LiveLogins, settings::OurChatSettings,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Bytes of a connection's task future, at most (2,000 measured in a debug build; about
/// 12 KB in a release build with the handshake's state and the close and revocation paths
/// inline, 2 KB after).
const TASK_BUDGET: usize = 2304;

#[tokio::test]
async fn an_idle_connection_task_stays_small() {
    let backend = Backend::connect_lazy("http://127.0.0.1:1").expect("lazy backend");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let _client = TcpStream::connect(listener.local_addr().expect("addr"))
        .await
        .expect("connect");
    let (stream, peer) = listener.accept().await.expect("accept");
    let conns = Connections {
        closing: CancellationToken::new(),
        counters: Counters::new("ourchat"),
        handshake: Handshake::default(),
    };
    let live = LiveLogins::reported("ourchat", backend.board());
    let task = super::run(
        stream,
        peer,
        backend.clone(),
        OurChatSettings::default(),
        conns,
        live,
    );
    let size = std::mem::size_of_val(&task);
    println!("connection task: {size} bytes");
    assert!(size <= TASK_BUDGET, "the connection task is {size} bytes");
}
