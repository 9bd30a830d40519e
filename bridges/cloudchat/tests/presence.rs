//! A user who logs out or closes their last socket shows offline to their contacts at once,
//! not when canonical presence times out (minutes later).

mod common;

use std::time::Duration;

use common::{Bridge, PATIENCE, befriend, contact_online, login, payload, register};
use rosetta_testkit::{Backend, TestServer};

/// Polls bob's contact list until alice shows `online`; false if she never does in time.
async fn shows(b: &mut common::Ws, bob: i64, alice: i64, online: bool) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if contact_online(b, bob, alice).await == online {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn offline_after_logout_and_close(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = Bridge::start(server.backend()).await;
    let addr = bridge.addr;
    let (alice, _) = register(addr, "alice", "secret1").await;
    let (bob, _) = register(addr, "bob", "secret2").await;
    let (mut a, _) = login(addr, "alice", "secret1").await;
    let (mut b, _) = login(addr, "bob", "secret2").await;
    befriend(&mut a, alice, &mut b, bob).await;
    assert!(contact_online(&mut b, bob, alice).await);

    // LOGOUT has no reply; the next request shows it was handled.
    a.send(&format!(
        r#"{{"type":"LOGOUT","payload":{{"userId":{alice}}}}}"#
    ))
    .await;
    payload(
        &a.ask(&format!(
            r#"{{"type":"LOAD_CONTACTS","payload":{{"userId":{alice}}}}}"#
        ))
        .await,
        "CONTACTS_LOADED_FAILED",
    );
    assert!(
        !contact_online(&mut b, bob, alice).await,
        "offline after LOGOUT"
    );

    // back online with two sockets: closing one keeps her online, closing the last does not
    let (first, _) = login(addr, "alice", "secret1").await;
    let (second, _) = login(addr, "alice", "secret1").await;
    assert!(
        contact_online(&mut b, bob, alice).await,
        "online after LOGIN"
    );
    drop(first);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        contact_online(&mut b, bob, alice).await,
        "still online on her other socket"
    );
    drop(second);
    assert!(
        shows(&mut b, bob, alice, false).await,
        "offline once her last socket closed"
    );
    // and a new login shows her online again
    let (_again, _) = login(addr, "alice", "secret1").await;
    assert!(contact_online(&mut b, bob, alice).await, "online again");

    bridge.stop().await;
    server.stop().await;
}

rosetta_testkit::both_backends!(logout_and_close, super::offline_after_logout_and_close);
