//! A history bigger than the WebSocket write buffers is sent whole and the socket stays usable.

mod common;

use common::{Bridge, logged_in_friends, payload};
use rosetta_testkit::{Backend, TestServer};

/// Messages of this many characters (the canonical limit is 16 KiB)…
const LONG: usize = 16_000;
/// …and this many of them: about 1.3 MB of MESSAGES_LOADED, over the old 1 MiB cap.
const COUNT: usize = 80;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_over_one_mebibyte_loads() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = Bridge::start(server.backend()).await;
    let (alice, mut a, bob, b) = logged_in_friends(bridge.addr).await;
    // bob's pushes are not read: his socket is not the one under test.
    drop(b);

    let text = "x".repeat(LONG);
    for n in 0..COUNT {
        payload(
            &a.ask(&format!(
                r#"{{"type":"SEND_MESSAGE","payload":{{"tempId":"t{n}","senderId":{alice},"receiverId":{bob},"content":"{text}","type":"text"}}}}"#
            ))
            .await,
            "MESSAGE_RECEIVED_SELF",
        );
    }

    let loaded = a
        .ask(&format!(
            r#"{{"type":"LOAD_MESSAGES","payload":{{"userId":{alice},"targetId":{bob}}}}}"#
        ))
        .await;
    assert!(loaded.len() > 1 << 20, "{} bytes", loaded.len());
    let messages = payload(&loaded, "MESSAGES_LOADED")["messages"].clone();
    let messages = messages.as_array().expect("messages");
    assert_eq!(messages.len(), COUNT);
    assert!(messages.iter().all(|m| m["content"] == text.as_str()));

    // the connection is still open and serving
    payload(
        &a.ask(&format!(
            r#"{{"type":"LOAD_CONTACTS","payload":{{"userId":{alice}}}}}"#
        ))
        .await,
        "CONTACTS_LOADED",
    );

    bridge.stop().await;
    server.stop().await;
}
