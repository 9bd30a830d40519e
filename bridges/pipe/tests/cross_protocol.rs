//! A pipe client and gRPC clients in one user base: friend requests both ways, private chat
//! both ways, and groups with members from both sides. Uids above 999 show how the bridge
//! renders ids the real server never had (`00` + id in `friendinfo`, five-digit padding
//! elsewhere).

mod common;

use common::{Bridge, MD5_123456, PATIENCE};
use rosetta_proto::{
    account::v1::LoginResponse,
    common::v1::{UserRef, user_ref},
    messaging::v1::{
        Event, MessageKind, SendMessageRequest, SubscribeResponse, event::Kind, message,
        messaging_service_client::MessagingServiceClient, send_message_request::To,
        subscribe_response::Item,
    },
    social::v1::{
        Applicant, CreateGroupRequest, RequestJoinGroupRequest, RequestState,
        RespondFriendRequestRequest, RespondJoinRequestRequest, SendFriendRequestRequest,
        respond_friend_request_request, respond_join_request_request,
        social_service_client::SocialServiceClient,
    },
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};
use tonic::{Streaming, transport::Channel};

struct GrpcUser {
    id: i64,
    token: String,
    social: SocialServiceClient<Channel>,
    messaging: MessagingServiceClient<Channel>,
    events: Streaming<SubscribeResponse>,
}

async fn grpc_user(server: &TestServer, name: &str) -> GrpcUser {
    let login: LoginResponse = server.user(name, "pw").await;
    let (messaging, events) = common::live_events(server, &login.access_token).await;
    let channel = server.channel().await;
    GrpcUser {
        id: login.user.expect("user").id,
        token: login.access_token,
        social: SocialServiceClient::new(channel),
        messaging,
        events,
    }
}

impl GrpcUser {
    /// The next event matching `pick`, skipping others.
    async fn event<T>(&mut self, mut pick: impl FnMut(Kind) -> Option<T>) -> T {
        loop {
            let item = tokio::time::timeout(PATIENCE, self.events.message())
                .await
                .expect("event in time")
                .expect("stream")
                .expect("item");
            if let Some(Item::Event(Event {
                kind: Some(kind), ..
            })) = item.item
                && let Some(found) = pick(kind)
            {
                return found;
            }
        }
    }
}

async fn pipe_and_grpc(backend: Backend) {
    // Uids above the real server's three digits: alice 1234, carol 1235, dave 1236.
    let bridge = Bridge::start(backend, Some(1233)).await;
    let mut a = bridge.client().await;
    a.send(&format!("register|alice|{MD5_123456}|Alice|3|hello|1|cat"))
        .await;
    a.expect("register_succ|注册成功！").await;
    let mut carol = grpc_user(&bridge.server, "carol").await;
    let mut dave = grpc_user(&bridge.server, "dave").await;
    let (uid, ta, _) = a.login("alice", MD5_123456).await;
    assert_eq!(uid, "01234");
    assert_eq!((carol.id, dave.id), (1235, 1236));

    // Pipe → gRPC friend request, accepted on the gRPC side.
    a.send(&format!("add_friend|01234|01235|hi carol|{ta}"))
        .await;
    a.expect("add_friend_succ|已发送请求！").await;
    let request = carol
        .event(|k| match k {
            Kind::FriendRequestReceived(r) => Some(r),
            _ => None,
        })
        .await;
    assert_eq!(
        (request.from.as_ref().map(|u| u.id), request.note.as_str()),
        (Some(1234), "hi carol")
    );
    carol
        .social
        .respond_friend_request(authed(
            RespondFriendRequestRequest {
                request: Some(respond_friend_request_request::Request::FromUserId(1234)),
                accept: true,
            },
            &carol.token,
        ))
        .await
        .expect("carol accepts");
    a.send(&format!("get_user_friend|01234|{ta}")).await;
    a.expect("friendinfo|1|001235").await;
    a.send(&format!("get_user_info|01234|1235|{ta}")).await;
    a.expect("friend_detail_info|CAROL||").await;

    // gRPC → pipe friend request, accepted on the pipe side.
    dave.social
        .send_friend_request(authed(
            SendFriendRequestRequest {
                to: Some(UserRef {
                    r#ref: Some(user_ref::Ref::Id(1234)),
                }),
                note: "from_dave".into(),
            },
            &dave.token,
        ))
        .await
        .expect("dave asks alice");
    a.expect("friend_request|01236|from_dave").await;
    a.send(&format!("get_unread_friend_request|01234|{ta}"))
        .await;
    a.expect("unread_friend_request|1|1236|from_dave").await;
    a.send(&format!("hand_friend_request|01234|01236|0|{ta}"))
        .await;
    a.expect("hand_friend_request_succ|成功同意请求！").await;
    let answered = dave
        .event(|k| match k {
            Kind::FriendRequestAnswered(r) => Some(r),
            _ => None,
        })
        .await;
    assert_eq!(answered.state, RequestState::Accepted as i32);

    // Private chat both ways.
    a.send(&format!(
        "send_message|0|01234|01235|20260101120000|hello carol|{ta}"
    ))
    .await;
    a.expect("send_message_succ|发送成功！").await;
    let got = carol
        .event(|k| match k {
            Kind::Message(m) if m.sender_id == 1234 => Some(m),
            _ => None,
        })
        .await;
    assert_eq!(
        (got.text.as_str(), got.client_time.as_str(), got.to),
        (
            "hello carol",
            "20260101120000",
            Some(message::To::ToUserId(1235))
        )
    );
    carol
        .messaging
        .send_message(authed(
            SendMessageRequest {
                to: Some(To::ToUserId(1234)),
                kind: MessageKind::Text.into(),
                text: "hi alice".into(),
                client_message_id: "c1".into(),
                client_time: "20260101120100".into(),
                ..Default::default()
            },
            &carol.token,
        ))
        .await
        .expect("carol writes");
    a.expect("message|0|01235|20260101120100|hi alice").await;

    // A pipe group with a gRPC member.
    a.send(&format!("create_group|01234|mixed|5001|{ta}")).await;
    a.expect("create_group_succ|5001|群组创建成功").await;
    carol
        .social
        .request_join_group(authed(
            RequestJoinGroupRequest {
                group_id: 5001,
                note: "let_me_in".into(),
            },
            &carol.token,
        ))
        .await
        .expect("carol asks to join");
    a.expect("group_request|01235|5001|let_me_in").await;
    a.send(&format!("get_unread_group_request|01234|{ta}"))
        .await;
    a.expect("unread_group_request|1|1235|5001|let_me_in").await;
    a.send(&format!("hand_group_request|01234|01235|5001|0|{ta}"))
        .await;
    a.expect("hand_group_request_succ|成功同意请求！").await;
    a.send(&format!("get_group_info|01234|5001|{ta}")).await;
    a.expect("group_detail_info|5001|mixed2|1234|1235").await;
    a.send(&format!("send_message|1|01234|5001|t1|hi group|{ta}"))
        .await;
    a.expect("send_message_succ|发送成功！").await;
    let got = carol
        .event(|k| match k {
            Kind::Message(m) if m.sender_id == 1234 => Some(m),
            _ => None,
        })
        .await;
    assert_eq!(
        (got.text.as_str(), got.to),
        ("hi group", Some(message::To::ToGroupId(5001)))
    );
    carol
        .messaging
        .send_message(authed(
            SendMessageRequest {
                to: Some(To::ToGroupId(5001)),
                kind: MessageKind::Text.into(),
                text: "hi all".into(),
                client_message_id: "c2".into(),
                client_time: "t2".into(),
                ..Default::default()
            },
            &carol.token,
        ))
        .await
        .expect("carol writes to the group");
    a.expect("message|1|5001|01235|t2|hi all").await;

    // A gRPC group (server-chosen id) with a pipe member.
    let group = dave
        .social
        .create_group(authed(
            CreateGroupRequest {
                name: "daves".into(),
                ..Default::default()
            },
            &dave.token,
        ))
        .await
        .expect("dave creates a group")
        .into_inner();
    a.send(&format!("join_group|01234|{}|me too|{ta}", group.id))
        .await;
    a.expect("join_group_succ|已发送请求！").await;
    dave.event(|k| match k {
        Kind::JoinRequestReceived(r) if r.group_id == group.id => Some(()),
        _ => None,
    })
    .await;
    dave.social
        .respond_join_request(authed(
            RespondJoinRequestRequest {
                request: Some(respond_join_request_request::Request::Applicant(
                    Applicant {
                        group_id: group.id,
                        user_id: 1234,
                    },
                )),
                accept: true,
            },
            &dave.token,
        ))
        .await
        .expect("dave admits alice");
    a.send(&format!("get_user_group|01234|{ta}")).await;
    a.expect(&format!("groupinfo|2|5001|{}", group.id)).await;
    a.send(&format!("get_group_info|01234|{}|{ta}", group.id))
        .await;
    a.expect(&format!("group_detail_info|{}|daves2|1236|1234", group.id))
        .await;

    bridge.stop().await;
}

both_backends!(cross_protocol, super::pipe_and_grpc);
