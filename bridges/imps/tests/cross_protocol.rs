//! IMPS users and gRPC users exchanging messages over real sockets, live and while away.

use rosetta_bridge_imps::codec::{ClientMessage, cmd};
use rosetta_proto::{
    messaging::v1::{
        MessageKind, SendMessageRequest, event::Kind,
        messaging_service_client::MessagingServiceClient, send_message_request::To,
    },
    social::v1::{
        PresenceStatus, RespondFriendRequestRequest,
        respond_friend_request_request::Request as Respond,
        social_service_client::SocialServiceClient,
    },
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};

mod common;

use common::*;

/// An IMPS user and gRPC users befriend and chat both ways; a name GB2312 cannot hold is shown
/// and addressed as `#<id>`, and text it cannot hold arrives with `?`.
async fn cross_protocol(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = bridge(&server, 300_000).await;
    register_user(&bridge, "alice").await;
    let mut alice = login(&bridge, "alice", "pw").await;
    let mut social = SocialServiceClient::new(server.channel().await);
    let mut messaging = MessagingServiceClient::new(server.channel().await);

    for (name, shown) in [("carol", None), ("dave😀", Some(()))] {
        let login = server.user(name, "pw").await;
        let me = login.user.clone().expect("user");
        let token = login.access_token.clone();
        let imps_name = match shown {
            None => name.to_owned(),
            Some(()) => format!("#{}", me.id),
        };
        let mut stream = events(&server, &token).await;

        // alice asks over IMPS; the gRPC user sees the request and accepts.
        alice
            .send(ClientMessage::AddFriend {
                user: "alice".into(),
                friend: imps_name.clone(),
            })
            .await;
        let Kind::FriendRequestReceived(request) =
            next_event(&mut stream, |k| matches!(k, Kind::FriendRequestReceived(_))).await
        else {
            unreachable!()
        };
        let alice_id = request.from.expect("from").id;
        social
            .respond_friend_request(authed(
                RespondFriendRequestRequest {
                    request: Some(Respond::FromUserId(alice_id)),
                    accept: true,
                },
                &token,
            ))
            .await
            .expect("accept");
        let answer = alice.recv_cmd(cmd::S_ADDFRIEND_RSP).await;
        let mut f = Fields::of(&answer);
        assert_eq!((f.string(), f.i32()), (imps_name.clone(), 1));

        // The friend list names them the same way.
        let list = alice.friend_list("alice").await;
        let mut f = Fields::of(&list);
        let count = f.i64();
        let mut names = Vec::new();
        for _ in 0..count {
            names.push(f.string());
            f.u8();
            f.string();
            f.string();
            f.f64();
            f.f64();
        }
        assert!(names.contains(&imps_name), "{names:?}");

        // gRPC → IMPS, with characters GB2312 lacks.
        messaging
            .send_message(authed(
                SendMessageRequest {
                    to: Some(To::ToUserId(alice_id)),
                    kind: MessageKind::Text.into(),
                    text: "smile😀 你好".into(),
                    client_message_id: format!("m-{name}"),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .expect("send");
        let pushed = alice.recv_cmd(cmd::S_SEND_MSG).await;
        let mut f = Fields::of(&pushed);
        assert_eq!(f.string(), imps_name);
        assert_eq!(f.bytes(), b"smile? \xc4\xe3\xba\xc3");
        assert!(is_wall_time(&f.string()));

        // IMPS → gRPC, addressed by the IMPS name.
        alice
            .send(ClientMessage::SendMessage {
                user: "alice".into(),
                friend: imps_name.clone(),
                text: "你好 from IMPS".into(),
            })
            .await;
        let Kind::Message(message) = next_event(
            &mut stream,
            |k| matches!(k, Kind::Message(m) if m.text.ends_with("from IMPS")),
        )
        .await
        else {
            unreachable!()
        };
        assert_eq!(message.text, "你好 from IMPS");
        assert_eq!(message.sender_id, alice_id);
    }
}

both_backends!(cross, super::cross_protocol);

/// Messages sent to an IMPS user while away arrive right after `S_LOGIN_RSP`, oldest first,
/// once: the next login gets none of them again.
async fn offline_messages(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = bridge(&server, 300_000).await;
    let (alice, alice_id, token, mut stream) = alice_and_carol(&server, &bridge).await;

    // alice leaves; carol sees her go offline, then writes twice.
    drop(alice);
    next_event(
        &mut stream,
        |k| matches!(k, Kind::PresenceChanged(p) if p.status == PresenceStatus::Offline as i32),
    )
    .await;
    let mut messaging = MessagingServiceClient::new(server.channel().await);
    for text in ["first while away", "second while away"] {
        let sent = messaging
            .send_message(authed(
                SendMessageRequest {
                    to: Some(To::ToUserId(alice_id)),
                    kind: MessageKind::Text.into(),
                    text: text.into(),
                    client_message_id: text.into(),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .expect("send")
            .into_inner();
        assert!(!sent.recipient_online, "alice is away");
    }

    // Right after S_LOGIN_RSP, both, in order.
    let mut alice = login(&bridge, "alice", "pw").await;
    for text in ["first while away", "second while away"] {
        let frame = alice.recv_raw().await;
        assert_eq!(frame[6], cmd::S_SEND_MSG, "{frame:02x?}");
        let mut f = Fields::of(&frame);
        assert_eq!(f.string(), "carol");
        assert_eq!(f.string(), text);
        assert!(is_wall_time(&f.string()));
    }
    // The login (and the read marks it sets) is done once the next frame is served.
    alice.friend_list("alice").await;
    drop(alice);

    // A second login: nothing is delivered again before the reply to the next request.
    nothing_delivered_again(&bridge, "alice").await;
}

both_backends!(offline, super::offline_messages);

/// A message pushed live counts as read: its mark is written off the push path, and at the
/// latest when the login ends, so the next login does not deliver it again.
async fn live_messages_are_not_delivered_again(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = bridge(&server, 300_000).await;
    let (mut alice, alice_id, token, mut stream) = alice_and_carol(&server, &bridge).await;

    let mut messaging = MessagingServiceClient::new(server.channel().await);
    let sent = messaging
        .send_message(authed(
            SendMessageRequest {
                to: Some(To::ToUserId(alice_id)),
                kind: MessageKind::Text.into(),
                text: "live".into(),
                client_message_id: "live".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("send")
        .into_inner();
    assert!(sent.recipient_online);
    let frame = alice.recv_cmd(cmd::S_SEND_MSG).await;
    assert_eq!(Fields::of(&frame).string(), "carol");

    // alice leaves at once; her login's end writes the mark before the session goes.
    drop(alice);
    next_event(
        &mut stream,
        |k| matches!(k, Kind::PresenceChanged(p) if p.status == PresenceStatus::Offline as i32),
    )
    .await;
    nothing_delivered_again(&bridge, "alice").await;
}

both_backends!(live_read, super::live_messages_are_not_delivered_again);

/// A new login of `user` is delivered no message before the reply to its next request.
async fn nothing_delivered_again(bridge: &Bridge, user: &str) {
    let mut again = login(bridge, user, "pw").await;
    again
        .send(ClientMessage::FriendList { user: user.into() })
        .await;
    loop {
        let frame = again.recv_raw().await;
        assert_ne!(frame[6], cmd::S_SEND_MSG, "delivered twice: {frame:02x?}");
        if frame[6] == cmd::S_FRIENDLIST_REFURBISH_RSP {
            break;
        }
    }
}

/// alice logged in over IMPS and befriended over gRPC by carol: alice's connection and id,
/// carol's access token and her event stream.
async fn alice_and_carol(
    server: &TestServer,
    bridge: &Bridge,
) -> (
    Client,
    i64,
    String,
    tonic::Streaming<rosetta_proto::messaging::v1::SubscribeResponse>,
) {
    register_user(bridge, "alice").await;
    let mut alice = login(bridge, "alice", "pw").await;
    let carol = server.user("carol", "pw").await;
    let token = carol.access_token.clone();
    let mut stream = events(server, &token).await;
    let alice_id =
        befriend_over_grpc(server, &mut alice, "alice", "carol", &token, &mut stream).await;
    alice.recv_cmd(cmd::S_ADDFRIEND_RSP).await;
    (alice, alice_id, token, stream)
}
