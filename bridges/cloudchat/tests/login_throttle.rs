//! The attack that found the hole: 45 password guesses for one account sent at once over the
//! bridge's WebSocket. The account service reserves each attempt before checking it, so at
//! most the lock-out threshold (5) are checked and the rest are refused unchecked.

mod common;

use common::{Bridge, Ws, payload, register};
use futures::future::join_all;
use rosetta_testkit::{Backend, TestServer};

const GUESSES: usize = 45;
/// The account service's default lock-out threshold.
const THRESHOLD: usize = 5;

async fn concurrent_guesses(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = Bridge::start(server.backend()).await;
    let addr = bridge.addr;
    register(addr, "victim", "right-password").await;

    let mut sockets = Vec::new();
    for _ in 0..GUESSES {
        sockets.push(Ws::connect(addr).await);
    }
    let replies = join_all(sockets.iter_mut().enumerate().map(|(i, ws)| async move {
        ws.ask(&format!(
            r#"{{"type":"LOGIN","payload":{{"username":"victim","password":"guess-{i}"}}}}"#
        ))
        .await
    }))
    .await;
    let errors: Vec<String> = replies
        .iter()
        .map(|r| {
            payload(r, "LOGIN_FAILURE")["error"]
                .as_str()
                .expect("error text")
                .to_owned()
        })
        .collect();
    let checked = errors.iter().filter(|e| *e == "密码错误").count();
    let refused = errors
        .iter()
        .filter(|e| *e == "尝试次数过多，请稍后再试")
        .count();
    assert!(
        (1..=THRESHOLD).contains(&checked),
        "at most {THRESHOLD} guesses checked, {checked} were: {errors:?}"
    );
    assert_eq!(checked + refused, GUESSES, "{errors:?}");

    // The right password is refused while the lock lasts.
    let mut ws = Ws::connect(addr).await;
    let reply = ws
        .ask(r#"{"type":"LOGIN","payload":{"username":"victim","password":"right-password"}}"#)
        .await;
    assert_eq!(
        payload(&reply, "LOGIN_FAILURE")["error"],
        "尝试次数过多，请稍后再试"
    );
    bridge.stop().await;
    server.stop().await;
}
rosetta_testkit::both_backends!(login_throttle, super::concurrent_guesses);
