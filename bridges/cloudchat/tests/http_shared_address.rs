//! Several HarmonyOS users behind one address: ACCEPT / REFUSE_FRIEND_REQUEST (payload only
//! `{"id"}`) act as the user the request is addressed to, never as whoever logged in last; an
//! HTTP accept tells the accepter's HDL_INFO WebSocket about the new contact.

mod common;

use common::{Bridge, Ws, ask_friend, login, payload, post, register};
use rosetta_testkit::{Backend, TestServer};

async fn http_login(addr: std::net::SocketAddr, name: &str, password: &str) {
    let (status, _, body) = post(
        addr,
        "/login",
        &format!(r#"{{"type":"LOGIN","payload":{{"username":"{name}","password":"{password}"}}}}"#),
    )
    .await;
    assert_eq!(status, 200);
    payload(&body, "LOGIN_SUCCESS");
}

async fn answer(addr: std::net::SocketAddr, kind: &str, fr: i64) -> String {
    let (status, _, body) = post(
        addr,
        "/friend/request/accept",
        &format!(r#"{{"type":"{kind}","payload":{{"id":{fr}}}}}"#),
    )
    .await;
    assert_eq!(status, 200);
    body
}

async fn answers_as_the_recipient(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = Bridge::start_http(server.backend()).await;
    let addr = bridge.addr;
    register(addr, "alice", "secret1").await;
    let (bob, _) = register(addr, "bob", "secret2").await;
    register(addr, "carol", "secret3").await;
    register(addr, "dave", "secret4").await;
    let (mut c, carol) = login(addr, "carol", "secret3").await;
    let (mut d, dave) = login(addr, "dave", "secret4").await;

    // bob, then alice, log in over HTTP from 127.0.0.1: alice's is the newest session there
    http_login(addr, "bob", "secret2").await;
    http_login(addr, "alice", "secret1").await;

    let to_bob = ask_friend(&mut c, carol, bob).await;
    let dave_to_bob = ask_friend(&mut d, dave, bob).await;
    let to_neither = ask_friend(&mut c, carol, dave).await;
    payload(&d.recv().await, "ADD_FRIEND_REQUEST");

    // bob, the earlier login, accepts the request addressed to him
    assert_eq!(
        answer(addr, "ACCEPT_FRIEND_REQUEST", to_bob).await,
        format!(r#"{{"type":"FRIEND_REQUEST_ACCEPTED","payload":{{"id":{to_bob}}}}}"#)
    );
    assert_eq!(
        payload(&c.recv().await, "ACCEPT_FRIEND_REQUEST")["id"],
        to_bob
    );
    assert_eq!(payload(&c.recv().await, "CONTACT_ADDED")["userId"], bob);
    // and refuses dave's
    assert_eq!(
        answer(addr, "REFUSE_FRIEND_REQUEST", dave_to_bob).await,
        format!(r#"{{"type":"FRIEND_REQUEST_REFUSED","payload":{{"id":{dave_to_bob}}}}}"#)
    );
    assert_eq!(
        payload(&d.recv().await, "REFUSE_FRIEND_REQUEST")["id"],
        dave_to_bob
    );

    // a request to neither HTTP user is not theirs to answer
    assert_eq!(
        answer(addr, "ACCEPT_FRIEND_REQUEST", to_neither).await,
        r#"{"type":"FRIEND_REQUEST_ACCEPTED_FAILED","payload":{"error":"该条好友请求不存在"}}"#
    );
    assert_eq!(
        answer(addr, "REFUSE_FRIEND_REQUEST", to_neither).await,
        r#"{"type":"FRIEND_REQUEST_REFUSED_FAILED","payload":{"error":"该条好友请求不存在"}}"#
    );
    // it is still pending for dave
    assert_eq!(
        d.ask(&format!(
            r#"{{"type":"ACCEPT_FRIEND_REQUEST","payload":{{"id":{to_neither}}}}}"#
        ))
        .await,
        format!(r#"{{"type":"FRIEND_REQUEST_ACCEPTED","payload":{{"id":{to_neither}}}}}"#)
    );

    bridge.stop().await;
    server.stop().await;
}

rosetta_testkit::both_backends!(accept_refuse, super::answers_as_the_recipient);

/// Note §5: after an accept over HTTP, the accepter's WebSocket gets CONTACT_ADDED (the
/// requester's user info); the HTTP reply is FRIEND_REQUEST_ACCEPTED alone.
async fn http_accept_tells_the_websocket(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = Bridge::start_http(server.backend()).await;
    let addr = bridge.addr;
    let (bob, _) = register(addr, "bob", "secret2").await;
    register(addr, "carol", "secret3").await;
    let (mut c, carol) = login(addr, "carol", "secret3").await;

    http_login(addr, "bob", "secret2").await;
    let mut hos = Ws::connect(addr).await;
    assert_eq!(
        hos.ask(&format!(
            r#"{{"type":"HDL_INFO","payload":{{"userId":{bob}}}}}"#
        ))
        .await,
        format!(r#"{{"type":"HDL_GOT","payload":{{"userId":{bob}}}}}"#)
    );

    let fr = ask_friend(&mut c, carol, bob).await;
    assert_eq!(payload(&hos.recv().await, "ADD_FRIEND_REQUEST")["id"], fr);
    assert_eq!(
        answer(addr, "ACCEPT_FRIEND_REQUEST", fr).await,
        format!(r#"{{"type":"FRIEND_REQUEST_ACCEPTED","payload":{{"id":{fr}}}}}"#)
    );
    assert_eq!(
        hos.recv().await,
        format!(
            r#"{{"type":"CONTACT_ADDED","payload":{{"contactId":{carol},"userId":{carol},"username":"carol","avatar":"default.png","online":true}}}}"#
        )
    );
    // the requester's side is unchanged
    payload(&c.recv().await, "ACCEPT_FRIEND_REQUEST");
    assert_eq!(payload(&c.recv().await, "CONTACT_ADDED")["contactId"], bob);

    bridge.stop().await;
    server.stop().await;
}

rosetta_testkit::both_backends!(http_accept_push, super::http_accept_tells_the_websocket);
