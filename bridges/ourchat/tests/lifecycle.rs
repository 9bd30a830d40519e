//! Issue 19, over real WebSocket connections: the seed document's flow (NEW_SESSION 8 → 9
//! among friends, then text 0 by `group_id` and by `private_id`) delivers the text push to
//! the other member, and a session revoked elsewhere (a password change) ends the login.

mod common;

use common::{Client, befriend, bridge, grpc_login, sha256_hex};
use rosetta_proto::account::v1::{ChangePasswordRequest, PasswordScheme};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};
use serde_json::Value;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The next frame with `code`, skipping others (e.g. the new-session notice).
async fn next_with_code(client: &mut Client, code: i64) -> Value {
    loop {
        let frame = client.recv().await;
        if frame["code"] == code {
            return frame;
        }
    }
}

async fn seed_flow(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = bridge(&server).await;
    let mut ann = Client::connect(bridge.addr).await;
    let ann_ocid = ann.register_doc("ann@example.com", "ann-pw", "Ann").await;
    let mut ben = Client::connect(bridge.addr).await;
    let ben_ocid = ben.register_doc("ben@example.com", "ben-pw", "Ben").await;
    // Users who may message each other.
    befriend(
        &server,
        &grpc_login(&server, &ann_ocid, "ann-pw").await,
        &grpc_login(&server, &ben_ocid, "ben-pw").await,
    )
    .await;
    ann.login_doc("ann@example.com", "ann-pw").await;
    ben.login_doc(&ben_ocid, "ben-pw").await;

    // NEW_SESSION (8) in the seed's form → 9.
    let created = ann
        .call(&format!(
            r#"{{"code": 8, "time": 1722441600, "members": ["{ann_ocid}", "{ben_ocid}"]}}"#
        ))
        .await;
    assert_eq!(created["code"], 9, "{created}");
    assert_eq!(created["success"], true, "{created}");
    let group = created["session_id"].as_i64().expect("session id");

    // Text (0) to the session by `group_id`: Ben gets the push, by Ann's ocid, with an id.
    ann.send(&format!(
        r#"{{"code": 0, "time": 1722441600, "sender": {{"ocid": "{ann_ocid}", "group_id": {group}}}, "msg": "hello group"}}"#
    ))
    .await;
    let push = next_with_code(&mut ben, 0).await;
    assert_eq!(push["msg"], "hello group", "{push}");
    assert_eq!(push["sender"]["ocid"], ann_ocid, "{push}");
    assert_eq!(push["sender"]["group_id"], group, "{push}");
    let cid = push["cid"].as_i64().expect("message id");
    assert!(cid > 0, "{push}");
    assert_eq!(push["msg_id"], cid, "{push}");

    // Text (0) by `private_id`: Ann gets Ben's private message.
    ben.send(&format!(
        r#"{{"code": 0, "time": 1722441600, "sender": {{"ocid": "{ben_ocid}", "private_id": "{ann_ocid}"}}, "msg": "just you"}}"#
    ))
    .await;
    let push = next_with_code(&mut ann, 0).await;
    assert_eq!(push["msg"], "just you", "{push}");
    assert_eq!(push["sender"]["ocid"], ben_ocid, "{push}");
    assert_eq!(push["sender"]["private_id"], ann_ocid, "{push}");
    assert!(push["cid"].as_i64().is_some_and(|id| id > cid), "{push}");
    // Nobody gets their own text back.
    ann.assert_nothing_pending().await;
    ben.assert_nothing_pending().await;
}
both_backends!(seed_flow, super::seed_flow);

/// A password change elsewhere revokes the bridge's sessions of the user: a connection that
/// reads pushes is told (18) and closed, one of the real client is closed without a frame it
/// could not read; the new password logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_session_ends_the_login() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = bridge(&server).await;
    let mut doc = Client::connect(bridge.addr).await;
    let ocid = doc.register_doc("rey@example.com", "old-pw", "Rey").await;
    doc.login_doc(&ocid, "old-pw").await;
    let mut real = Client::connect(bridge.addr).await;
    assert_eq!(real.login_real(&ocid, "old-pw").await["status"], 0);

    let grpc = grpc_login(&server, &ocid, "old-pw").await;
    server
        .account()
        .await
        .change_password(authed(
            ChangePasswordRequest {
                current_password: sha256_hex("old-pw"),
                current_scheme: PasswordScheme::Sha256Hex.into(),
                new_password: sha256_hex("new-pw"),
                new_scheme: PasswordScheme::Sha256Hex.into(),
            },
            &grpc.access_token,
        ))
        .await
        .expect("change password");

    let told = doc.recv().await;
    assert_eq!(told["code"], 18, "{told}");
    assert!(
        told["details"]
            .as_str()
            .is_some_and(|d| d.contains("session ended")),
        "{told}"
    );
    assert_eq!(doc.closed().await, Some(CloseCode::Policy));
    assert_eq!(real.closed().await, Some(CloseCode::Policy));

    let mut again = Client::connect(bridge.addr).await;
    assert_eq!(again.login_real(&ocid, "old-pw").await["status"], 1);
    assert_eq!(again.login_real(&ocid, "new-pw").await["status"], 0);
}
