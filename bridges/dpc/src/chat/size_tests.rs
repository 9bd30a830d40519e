//! A chat window mostly listens, for hours: its task's future is allocated whole when the
//! socket is accepted and kept until it closes, so an await kept inline in a rarely taken path
//! (a line sent, a revocation, the close) would size every window. This size is a budget, so
//! that such a path is boxed instead.

use std::sync::Arc;

use rosetta_bridge_kit::{Backend, LiveLogins};
use rosetta_testkit::accepted;

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
    let conn = accepted("dpc").await;
    let task = super::serve(conn.stream, conn.peer, conn.conns, shared);
    let size = std::mem::size_of_val(&task);
    println!("chat socket task: {size} bytes");
    assert!(size <= TASK_BUDGET, "the chat socket task is {size} bytes");
}
