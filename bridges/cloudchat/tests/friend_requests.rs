//! Friend requests as the original server stored them: one between two users. A request sent
//! again after an earlier one was refused or accepted (and the friendship ended) takes its
//! place in LOAD_FRIEND_REQUEST, for both users, whichever of them asks again.

mod common;

use common::{Bridge, Ws, ask_friend, befriend, login, payload, register};
use rosetta_testkit::{Backend, TestServer, both_backends};
use serde_json::Value;

/// The requests `ws` (user `me`) is shown, as (id, requester, target, status).
async fn listed(ws: &mut Ws, me: i64) -> Vec<(i64, i64, i64, String)> {
    let reply = ws
        .ask(&format!(
            r#"{{"type":"LOAD_FRIEND_REQUEST","payload":{{"userId":{me}}}}}"#
        ))
        .await;
    payload(&reply, "FRIEND_REQUEST_LOADED")["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|fr: &Value| {
            (
                fr["id"].as_i64().expect("id"),
                fr["requesterId"].as_i64().expect("requesterId"),
                fr["targetId"].as_i64().expect("targetId"),
                fr["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

/// The user on `t` refuses request `id` of the user on `r`, who is told.
async fn refuse(t: &mut Ws, r: &mut Ws, id: i64) {
    let reply = t
        .ask(&format!(
            r#"{{"type":"REFUSE_FRIEND_REQUEST","payload":{{"id":{id}}}}}"#
        ))
        .await;
    payload(&reply, "FRIEND_REQUEST_REFUSED");
    payload(&r.recv().await, "REFUSE_FRIEND_REQUEST");
}

async fn a_new_request_replaces_the_answered_one(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = Bridge::start(server.backend()).await;
    let addr = bridge.addr;
    let (alice, _) = register(addr, "alice", "secret1").await;
    let (bob, _) = register(addr, "bob", "secret2").await;
    let (carol, _) = register(addr, "carol", "secret3").await;
    let (mut a, _) = login(addr, "alice", "secret1").await;
    let (mut b, _) = login(addr, "bob", "secret2").await;
    let (mut c, _) = login(addr, "carol", "secret3").await;

    // alice asks bob, bob refuses, alice asks again: one request, the new one.
    let first = ask_friend(&mut a, alice, bob).await;
    payload(&b.recv().await, "ADD_FRIEND_REQUEST");
    refuse(&mut b, &mut a, first).await;
    let second = ask_friend(&mut a, alice, bob).await;
    payload(&b.recv().await, "ADD_FRIEND_REQUEST");
    assert_ne!(first, second);
    let expected = vec![(second, alice, bob, "pending".to_owned())];
    assert_eq!(listed(&mut a, alice).await, expected);
    assert_eq!(listed(&mut b, bob).await, expected);

    // bob refuses that too; now bob asks alice: the pair still has one request, bob's.
    refuse(&mut b, &mut a, second).await;
    let third = ask_friend(&mut b, bob, alice).await;
    payload(&a.recv().await, "ADD_FRIEND_REQUEST");
    let expected = vec![(third, bob, alice, "pending".to_owned())];
    assert_eq!(listed(&mut a, alice).await, expected);
    assert_eq!(listed(&mut b, bob).await, expected);

    // An accepted request, the friendship ended, and asked again: the new one only.
    befriend(&mut a, alice, &mut c, carol).await;
    payload(
        &a.ask(&format!(
            r#"{{"type":"DELETE_CONTACT","payload":{{"userId":{alice},"targetId":{carol}}}}}"#
        ))
        .await,
        "CONTACT_DELETED",
    );
    payload(&c.recv().await, "DELETED_BY_CONTACT");
    let again = ask_friend(&mut c, carol, alice).await;
    payload(&a.recv().await, "ADD_FRIEND_REQUEST");
    assert_eq!(
        listed(&mut c, carol).await,
        vec![(again, carol, alice, "pending".to_owned())]
    );
    // alice sees one request per other user: bob's and carol's newest.
    assert_eq!(
        listed(&mut a, alice).await,
        vec![
            (third, bob, alice, "pending".to_owned()),
            (again, carol, alice, "pending".to_owned())
        ]
    );
    bridge.stop().await;
    server.stop().await;
}
both_backends!(
    a_new_request_replaces_the_answered_one,
    super::a_new_request_replaces_the_answered_one
);
