//! After the lock-out threshold, an existing account and a missing one get the same reply on
//! the pipe socket (once `登录失败！` for the one and `用户名或密码错误！` for the other told an
//! attacker which accounts exist).

mod common;

use common::Bridge;
use rosetta_testkit::{Backend, both_backends};

/// The account service's default lock-out threshold.
const THRESHOLD: usize = 5;

async fn locked_and_missing_alike(backend: Backend) {
    let bridge = Bridge::start(backend, None).await;
    bridge.server.user("exists", "right-password").await;
    let mut c = bridge.client().await;
    for name in ["exists", "missing"] {
        for i in 0..THRESHOLD {
            c.send(&format!("login|{name}|guess-{i}")).await;
            c.expect("login_error|用户名或密码错误！").await;
        }
    }
    let mut replies = Vec::new();
    for name in ["exists", "missing"] {
        c.send(&format!("login|{name}|guess-again")).await;
        replies.push(c.recv().await);
    }
    assert_eq!(replies[0], replies[1], "the same reply for both");
    assert_eq!(replies[0], "login_error|登录失败！");
    bridge.stop().await;
}
both_backends!(locked_and_missing, super::locked_and_missing_alike);
