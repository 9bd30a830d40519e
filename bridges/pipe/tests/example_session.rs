//! The note's example session (pipe.md §8), byte for byte over real sockets, then the offline
//! message the real server lost, on SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use common::{Bridge, MD5_123456, MD5_654321, PATIENCE};
use rosetta_proto::{
    account::v1::{LoginRequest, PasswordScheme, login_request::Identifier},
    messaging::v1::{GetPresenceRequest, messaging_service_client::MessagingServiceClient},
    social::v1::PresenceStatus,
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};

/// Waits until `watcher` (username, MD5 password) sees `uid` offline.
async fn wait_offline(server: &TestServer, watcher: &str, md5: &str, uid: i64) {
    let login = server
        .account()
        .await
        .login(LoginRequest {
            identifier: Some(Identifier::Username(watcher.into())),
            password: md5.into(),
            password_scheme: PasswordScheme::Md5Hex.into(),
            client: "test".into(),
        })
        .await
        .expect("gRPC login with the pipe password")
        .into_inner();
    let mut messaging = MessagingServiceClient::new(server.channel().await);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let presences = messaging
            .get_presence(authed(
                GetPresenceRequest {
                    user_ids: vec![uid],
                },
                &login.access_token,
            ))
            .await
            .expect("presence")
            .into_inner()
            .presences;
        if presences
            .first()
            .is_some_and(|p| p.status == PresenceStatus::Offline as i32)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{uid} never went offline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn example_session(backend: Backend) {
    // The real server's dump leaves its counter at 123: alice is 124, bob 125.
    let bridge = Bridge::start(backend, Some(123)).await;
    let mut a = bridge.client().await;
    let mut b = bridge.client().await;

    a.send(&format!("register|alice|{MD5_123456}|Alice|3|hello|1|cat"))
        .await;
    a.expect("register_succ|注册成功！").await;
    b.send(&format!("register|bob|{MD5_654321}|Bob|5|hi|2|dog"))
        .await;
    b.expect("register_succ|注册成功！").await;

    let (uid, ta, unread) = a.login("alice", MD5_123456).await;
    assert_eq!((uid.as_str(), unread), ("00124", 0));
    let (uid, tb, unread) = b.login("bob", MD5_654321).await;
    assert_eq!((uid.as_str(), unread), ("00125", 0));

    a.send(&format!("get_user_info|00124|00124|{ta}")).await;
    a.expect("userinfo|Alice|3|hello").await;
    a.send(&format!("get_user_friend|00124|{ta}")).await;
    a.expect("friendinfo|0").await;

    a.send(&format!("add_friend|00124|00125|letsbefriends|{ta}"))
        .await;
    b.expect("friend_request|00124|letsbefriends").await;
    a.expect("add_friend_succ|已发送请求！").await;

    b.send(&format!("get_unread_friend_request|00125|{tb}"))
        .await;
    b.expect("unread_friend_request|1|124|letsbefriends").await;
    b.send(&format!("hand_friend_request|00125|00124|0|{tb}"))
        .await;
    b.expect("hand_friend_request_succ|成功同意请求！").await;

    a.send(&format!("get_user_friend|00124|{ta}")).await;
    a.expect("friendinfo|1|00125").await;
    a.send(&format!("get_user_info|00124|00125|{ta}")).await;
    a.expect("friend_detail_info|Bob|5|hi").await;

    a.send(&format!(
        "send_message|0|00124|00125|20190905103000|hello_bob|{ta}"
    ))
    .await;
    b.expect("message|0|00124|20190905103000|hello_bob").await;
    a.expect("send_message_succ|发送成功！").await;

    a.send(&format!("create_group|00124|team|4001|{ta}")).await;
    a.expect("create_group_succ|4001|群组创建成功").await;
    b.send(&format!("join_group|00125|4001|pleaseletmein|{tb}"))
        .await;
    a.expect("group_request|00125|4001|pleaseletmein").await;
    b.expect("join_group_succ|已发送请求！").await;
    a.send(&format!("hand_group_request|00124|00125|4001|0|{ta}"))
        .await;
    a.expect("hand_group_request_succ|成功同意请求！").await;
    a.send(&format!("get_group_info|00124|4001|{ta}")).await;
    a.expect("group_detail_info|4001|team2|124|125").await;
    a.send(&format!(
        "send_message|1|00124|4001|20190905103100|hi_all|{ta}"
    ))
    .await;
    b.expect("message|1|4001|00124|20190905103100|hi_all").await;
    a.expect("send_message_succ|发送成功！").await;

    // Messages delivered live are not unread.
    b.send(&format!("get_unread_message|00125|{tb}")).await;
    b.expect("no_unread_message|0").await;

    // A closes its socket: A is offline and its token is gone (the bridge refuses the token
    // before anyone can see A offline).
    drop(a);
    wait_offline(&bridge.server, "bob", MD5_654321, 124).await;
    b.send(&format!(
        "send_message|0|00125|00124|20190905103200|are_you_there|{tb}"
    ))
    .await;
    b.expect("send_message_succ|对方离线！").await;
    b.send(&format!("get_user_friend|00124|{ta}")).await;
    b.expect("get_user_friend|您无权进行此操作！").await;

    // Unlike the real server, the bridge kept the message for A's next login.
    let mut a = bridge.client().await;
    let (uid, ta2, unread) = a.login("alice", MD5_123456).await;
    assert_eq!((uid.as_str(), unread), ("00124", 1));
    assert_ne!(ta, ta2, "every login issues a new token");
    // A message pushed live before the client fetched the announced one does not swallow it
    // (a read mark covers the conversation up to a seq), and is not listed a second time.
    b.send(&format!(
        "send_message|0|00125|00124|20190905103300|still_there|{tb}"
    ))
    .await;
    a.expect("message|0|00125|20190905103300|still_there").await;
    b.expect("send_message_succ|发送成功！").await;
    a.send(&format!("get_unread_message|00124|{ta2}")).await;
    a.expect("unread_message|0|00125|20190905103200|are_you_there")
        .await;
    a.expect("no_unread_message|0").await;
    // Delivered once.
    a.send(&format!("get_unread_message|00124|{ta2}")).await;
    a.expect("no_unread_message|0").await;

    bridge.stop().await;
}

both_backends!(example, super::example_session);
