//! HarmonyOS loads history over HTTP: its own sent messages show `read` once the peer has
//! read them (the peer's canonical read mark), not only when a socket saw the receipt.

mod common;

use std::time::Duration;

use common::{Bridge, PATIENCE, befriend, login, payload, post, register};
use rosetta_testkit::{Backend, TestServer};

async fn sent_messages_show_read(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = Bridge::start_http(server.backend()).await;
    let addr = bridge.addr;
    let (alice, _) = register(addr, "alice", "secret1").await;
    let (bob, _) = register(addr, "bob", "secret2").await;
    let (mut a, _) = login(addr, "alice", "secret1").await;
    {
        let (mut b, _) = login(addr, "bob", "secret2").await;
        befriend(&mut a, alice, &mut b, bob).await;
    }
    let (status, _, body) = post(
        addr,
        "/login",
        r#"{"type":"LOGIN","payload":{"username":"bob","password":"secret2"}}"#,
    )
    .await;
    assert_eq!(status, 200);
    payload(&body, "LOGIN_SUCCESS");

    let (_, _, body) = post(
        addr,
        "/send",
        &format!(
            r#"{{"type":"SEND_MESSAGE","payload":{{"tempId":"h1","senderId":{bob},"receiverId":{alice},"content":"hello","type":"text"}}}}"#
        ),
    )
    .await;
    payload(&body, "MESSAGE_RECEIVED_SELF");
    payload(&a.recv().await, "MESSAGE_RECEIVED_OTHER");
    let load =
        format!(r#"{{"type":"LOAD_MESSAGES","payload":{{"userId":{bob},"targetId":{alice}}}}}"#);
    let status_of = |body: &str| payload(body, "MESSAGES_LOADED")["messages"][0]["status"].clone();
    let (_, _, body) = post(addr, "/load/messages", &load).await;
    assert_eq!(status_of(&body), "sent", "{body}");

    // alice reads it; bob's next HTTP load shows it read
    a.send(&format!(
        r#"{{"type":"MARK_READ","payload":{{"userId":{alice},"targetId":{bob}}}}}"#
    ))
    .await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, _, body) = post(addr, "/load/messages", &load).await;
        if status_of(&body) == "read" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    bridge.stop().await;
    server.stop().await;
}

rosetta_testkit::both_backends!(http_read_marks, super::sent_messages_show_read);
