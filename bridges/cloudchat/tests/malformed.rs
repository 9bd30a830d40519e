//! Bad input gets the protocol's error form or a clean close, never an effect on other
//! clients.

mod common;

use common::{Bridge, Ws, payload, post};
use rosetta_testkit::{Backend, TestServer};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_refused_cleanly() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = Bridge::start(server.backend()).await;
    let mut good = Ws::connect(bridge.addr).await;
    let alice = payload(
        &good
            .ask(r#"{"type":"REGISTER","payload":{"username":"alice","password":"secret1","email":"alice@example.com"}}"#)
            .await,
        "REGISTER_SUCCESS",
    )["userId"]
        .as_i64()
        .expect("id");
    let load = format!(r#"{{"type":"LOAD_CONTACTS","payload":{{"userId":{alice}}}}}"#);

    let mut bad = Ws::connect(bridge.addr).await;
    // Not messages of the protocol: no reply, as the real server; the socket keeps serving.
    for junk in [
        "{",
        "not json",
        "[]",
        r#"{"type":"NOPE","payload":{}}"#,
        r#"{"type":7,"payload":{}}"#,
        r#"{"type":"LOGIN","payload":[1]}"#,
        "\u{0}\u{1}",
    ] {
        bad.send(junk).await;
    }
    bad.send_raw(Message::Binary(vec![0xff, 0xfe].into())).await;
    // Missing or mistyped fields: the type's failure reply.
    assert_eq!(
        bad.ask(r#"{"type":"LOGIN","payload":{"username":"a"}}"#)
            .await,
        r#"{"type":"LOGIN_FAILURE","payload":{"error":"消息格式错误"}}"#
    );
    assert_eq!(
        bad.ask(r#"{"type":"SEND_MESSAGE","payload":{"tempId":"x","senderId":"one"}}"#)
            .await,
        r#"{"type":"MESSAGE_SEND_FAILED","payload":{"tempId":"x","error":"消息格式错误"}}"#
    );
    // Commands before login.
    assert_eq!(
        bad.ask(r#"{"type":"LOAD_FRIEND_REQUEST","payload":{"userId":"1"}}"#)
            .await,
        r#"{"type":"FRIEND_REQUEST_LOADED_FAILED","payload":{"error":"请先登录"}}"#
    );
    assert_eq!(
        bad.ask(r#"{"type":"SEARCH_FOR_USER_BY_NAME","payload":{"username":"alice"}}"#)
            .await,
        r#"{"type":"SEARCH_FOR_USER_RESULT","payload":{"users":[]}}"#
    );
    // A logged-in user cannot act as another (ids as strings are accepted, as the original).
    payload(
        &good
            .ask(&format!(
                r#"{{"type":"LOAD_CONTACTS","payload":{{"userId":"{alice}"}}}}"#
            ))
            .await,
        "CONTACTS_LOADED",
    );
    assert_eq!(
        good.ask(&format!(
            r#"{{"type":"LOAD_CONTACTS","payload":{{"userId":{}}}}}"#,
            alice + 1
        ))
        .await,
        r#"{"type":"CONTACTS_LOADED_FAILED","payload":{"error":"用户身份不符"}}"#
    );
    // HDL_INFO for a user this address never logged in over HTTP binds nothing.
    bad.send(&format!(
        r#"{{"type":"HDL_INFO","payload":{{"userId":{alice}}}}}"#
    ))
    .await;
    assert_eq!(
        bad.ask(r#"{"type":"LOAD_CONTACTS","payload":{"userId":1}}"#)
            .await,
        r#"{"type":"CONTACTS_LOADED_FAILED","payload":{"error":"请先登录"}}"#
    );

    // An oversized frame closes only that connection.
    bad.send(&format!(
        r#"{{"type":"LOGIN","payload":{{"username":"{}","password":"x"}}}}"#,
        "a".repeat(300 * 1024)
    ))
    .await;
    assert_eq!(bad.next().await, None);

    // HTTP: not JSON, unknown, too large: 400 with the original's text.
    for body in ["{", r#"{"type":"NOPE","payload":{}}"#, ""] {
        let (status, _, text) = post(bridge.addr, "/", body).await;
        assert_eq!(
            (status, text.as_str()),
            (400, "Illegal message received."),
            "{body:?}"
        );
    }
    let (status, _, _) = post(bridge.addr, "/", &"x".repeat(300 * 1024)).await;
    assert_eq!(status, 400);

    // The other client never noticed.
    payload(&good.ask(&load).await, "CONTACTS_LOADED");
    let mut fresh = Ws::connect(bridge.addr).await;
    payload(
        &fresh
            .ask(r#"{"type":"LOGIN","payload":{"username":"alice","password":"secret1"}}"#)
            .await,
        "LOGIN_SUCCESS",
    );

    bridge.stop().await;
    server.stop().await;
}

/// A send with a bad field still names its tempId, which the client matches the failure by:
/// over WebSocket and HTTP, a string or a number, SEND_IMAGE's `messageId` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_send_echoes_temp_id() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = Bridge::start(server.backend()).await;
    let mut ws = Ws::connect(bridge.addr).await;
    let cases = [
        (
            r#"{"type":"SEND_MESSAGE","payload":{"tempId":"ae8ca08a-a6de-493a-b18c-20781f5930fd","senderId":1,"receiverId":"two","content":"hi","type":"text"}}"#,
            r#"{"type":"MESSAGE_SEND_FAILED","payload":{"tempId":"ae8ca08a-a6de-493a-b18c-20781f5930fd","error":"消息格式错误"}}"#,
        ),
        (
            r#"{"type":"SEND_MESSAGE","payload":{"tempId":17,"senderId":1,"receiverId":2,"content":"hi"}}"#,
            r#"{"type":"MESSAGE_SEND_FAILED","payload":{"tempId":"17","error":"消息格式错误"}}"#,
        ),
        (
            r#"{"type":"SEND_IMAGE","payload":{"messageId":"m-9","senderId":1,"receiverId":2}}"#,
            r#"{"type":"MESSAGE_SEND_FAILED","payload":{"tempId":"m-9","error":"消息格式错误"}}"#,
        ),
        (
            r#"{"type":"SEND_MESSAGE","payload":{"senderId":1}}"#,
            r#"{"type":"MESSAGE_SEND_FAILED","payload":{"tempId":"","error":"消息格式错误"}}"#,
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(ws.ask(request).await, expected, "{request}");
        let (status, _, body) = post(bridge.addr, "/send/message", request).await;
        assert_eq!((status, body.as_str()), (200, expected), "{request}");
    }

    bridge.stop().await;
    server.stop().await;
}
