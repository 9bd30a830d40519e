//! A chat window mostly listens, for hours: its task's future is allocated whole when the
//! socket is accepted and kept until it closes, so an await kept inline in a rarely taken path
//! (a line sent, a revocation, the close) would size every window. This size is a budget, so
//! that such a path is boxed instead.

use std::sync::Arc;

use rosetta_bridge_kit::{Backend, Connections, Counters, Handshake, LiveLogins};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::{Shared, lobby::Lobby, logins::Logins};

/// Bytes of a chat socket's task future, at most (2,096 measured in a debug build; about
/// 12 KB in a release build with a line's send and the owner's changes inline, 2 KB after).
const TASK_BUDGET: usize = 2304;

#[tokio::test]
async fn an_idle_chat_window_task_stays_small() {
    let backend = Backend::connect_lazy("http://127.0.0.1:1").expect("lazy backend");
    let lobby = Lobby::new();
    let shared = Arc::new(Shared {
        logins: Logins::new(backend.clone(), lobby.clone()),
        live: LiveLogins::reported("dpc", backend.board()),
        backend,
        lobby,
        uploads: Arc::default(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let _client = TcpStream::connect(listener.local_addr().expect("addr"))
        .await
        .expect("connect");
    let (stream, peer) = listener.accept().await.expect("accept");
    let conns = Connections {
        closing: CancellationToken::new(),
        counters: Counters::new("dpc"),
        handshake: Handshake::default(),
    };
    let task = super::serve(stream, peer, conns, shared);
    let size = std::mem::size_of_val(&task);
    println!("chat socket task: {size} bytes");
    assert!(size <= TASK_BUDGET, "the chat socket task is {size} bytes");
}
