//! What an idle connection holds at rest is mostly its task's future, allocated whole when the
//! connection is accepted and kept until it closes: an await kept inline in a rarely taken
//! path (the handshake, a close, the end of a login) would size every idle connection. This
//! size is a budget, so that such a path is boxed instead.

use rosetta_bridge_kit::{Backend, LiveLogins, settings::OurChatSettings};
use rosetta_testkit::accepted;

/// Bytes of a connection's task future, at most (2,000 measured in a debug build; about
/// 12 KB in a release build with the handshake's state and the close and revocation paths
/// inline, 2 KB after).
const TASK_BUDGET: usize = 2304;

#[tokio::test]
async fn an_idle_connection_task_stays_small() {
    let backend = Backend::connect_lazy("http://127.0.0.1:1").expect("lazy backend");
    let conn = accepted("ourchat").await;
    let live = LiveLogins::reported("ourchat", backend.board());
    let task = super::run(
        conn.stream,
        conn.peer,
        backend.clone(),
        OurChatSettings::default(),
        conn.conns,
        live,
    );
    let size = std::mem::size_of_val(&task);
    println!("connection task: {size} bytes");
    assert!(size <= TASK_BUDGET, "the connection task is {size} bytes");
}
