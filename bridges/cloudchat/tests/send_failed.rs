//! MESSAGE_SEND_FAILED names the send it answers: the request's `tempId` (SEND_FILE /
//! SEND_IMAGE: or `messageId`) is echoed however the send fails — before any login, as
//! somebody else, with a bad field, refused by the services — on the WebSocket and over HTTP.

mod common;

use common::{Bridge, Ws, login, post, register};
use rosetta_testkit::{Backend, TestServer};

fn send(temp_id: &str, sender: i64, receiver: i64) -> String {
    format!(
        r#"{{"type":"SEND_MESSAGE","payload":{{"tempId":"{temp_id}","senderId":{sender},"receiverId":{receiver},"content":"hi","type":"text"}}}}"#
    )
}

fn failed(temp_id: &str, error: &str) -> String {
    format!(
        r#"{{"type":"MESSAGE_SEND_FAILED","payload":{{"tempId":"{temp_id}","error":"{error}"}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failed_send_echoes_its_temp_id() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = Bridge::start(server.backend()).await;
    let (alice, _) = register(bridge.addr, "alice", "secret1").await;
    let (bob, _) = register(bridge.addr, "bob", "secret2").await;

    // Not logged in, on a WebSocket.
    let mut anonymous = Ws::connect(bridge.addr).await;
    assert_eq!(
        anonymous.ask(&send("t-1", alice, bob)).await,
        failed("t-1", "请先登录")
    );
    assert_eq!(
        anonymous
            .ask(&format!(
                r#"{{"type":"SEND_IMAGE","payload":{{"messageId":"m-2","senderId":{alice},"receiverId":{bob},"imageName":"a.png","imageContent":"AAAA"}}}}"#
            ))
            .await,
        failed("m-2", "请先登录")
    );
    // Not logged in, over HTTP (the HarmonyOS client).
    let (status, _, body) = post(bridge.addr, "/send/message", &send("t-3", alice, bob)).await;
    assert_eq!((status, body), (200, failed("t-3", "请先登录")));

    let (mut a, _) = login(bridge.addr, "alice", "secret1").await;
    // As somebody else.
    assert_eq!(
        a.ask(&send("t-4", bob, alice)).await,
        failed("t-4", "用户身份不符")
    );
    // A field that does not decode.
    assert_eq!(
        a.ask(&format!(
            r#"{{"type":"SEND_MESSAGE","payload":{{"tempId":"t-5","senderId":{alice},"receiverId":"bob","content":"hi"}}}}"#
        ))
        .await,
        failed("t-5", "消息格式错误")
    );
    // Refused by the services: bob is not alice's contact.
    assert_eq!(
        a.ask(&send("t-6", alice, bob)).await,
        failed("t-6", "messages 数据表更新失败")
    );
    bridge.stop().await;
    server.stop().await;
}
