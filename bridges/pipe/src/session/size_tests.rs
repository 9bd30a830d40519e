//! What an idle connection holds at rest is mostly its task's future, allocated whole when the
//! connection is accepted and kept until it closes: a large future in a rarely taken branch
//! (a call, a resubscription) would size every idle connection's task. These sizes are a
//! budget, so that such a branch is boxed instead of kept inline.

use std::sync::Arc;

use rosetta_bridge_kit::{Backend, settings::PipeSettings};
use rosetta_testkit::accepted;

use super::{LoginState, Shared, login_wake, run};

/// Bytes of a connection's task future, at most (976 measured in a debug build; 1,528 with a
/// whole backend in the connection record and the event stream's fallback paths and the
/// held-start timer inline).
const TASK_BUDGET: usize = 1024;
/// Bytes of the future that waits for a login's next event or its end, at most (296
/// measured; 488 before).
const WAKE_BUDGET: usize = 320;

#[tokio::test]
async fn an_idle_connection_task_stays_small() {
    let backend = Backend::connect_lazy("http://127.0.0.1:1").expect("lazy backend");
    let shared = Arc::new(Shared::new(backend, &PipeSettings::default()));
    let conn = accepted("pipe").await;
    let mut state = LoginState::Anonymous;
    let wake = login_wake(&mut state);
    let size = std::mem::size_of_val(&wake);
    println!("login wake: {size} bytes");
    assert!(size <= WAKE_BUDGET, "waiting for an event is {size} bytes");
    drop(wake);

    let task = run(shared, conn.stream, conn.peer, conn.conns);
    let size = std::mem::size_of_val(&task);
    println!("connection task: {size} bytes");
    assert!(size <= TASK_BUDGET, "the connection task is {size} bytes");
}
