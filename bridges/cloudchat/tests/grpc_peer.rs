//! A CloudChat user and a gRPC user are friends and chat; history, read marks and cleared
//! history agree between the two views.

mod common;

use common::{Bridge, Ws, payload, register};
use rosetta_proto::{
    common::v1::{ConversationRef, UserRef, conversation_ref, user_ref},
    messaging::v1::{
        GetUnreadCountsRequest, ListMessagesRequest, MarkReadRequest, MessageKind,
        SendMessageRequest, messaging_service_client::MessagingServiceClient,
        send_message_request::To,
    },
    social::v1::{SendFriendRequestRequest, social_service_client::SocialServiceClient},
};
use rosetta_testkit::{Backend, TestServer, authed};

fn private(user: i64) -> Option<ConversationRef> {
    Some(ConversationRef {
        r#ref: Some(conversation_ref::Ref::UserId(user)),
    })
}

async fn chat_with_grpc_user(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = Bridge::start(server.backend()).await;
    let carol_login = server.user("carol", "pw").await;
    let carol = carol_login.user.as_ref().expect("user").id;
    let carol_token = carol_login.access_token.clone();
    let mut social = SocialServiceClient::new(server.channel().await);
    let mut messaging = MessagingServiceClient::new(server.channel().await);

    let mut a = Ws::connect(bridge.addr).await;
    let p = payload(
        &a.ask(r#"{"type":"REGISTER","payload":{"username":"alice","password":"secret1","email":"alice@example.com"}}"#)
            .await,
        "REGISTER_SUCCESS",
    );
    let alice = p["userId"].as_i64().expect("id");
    let (bob, _) = register(bridge.addr, "bob", "secret2").await;

    // carol (gRPC) asks alice (CloudChat) by user name
    let fr = social
        .send_friend_request(authed(
            SendFriendRequestRequest {
                to: Some(UserRef {
                    r#ref: Some(user_ref::Ref::Username("alice".into())),
                }),
                note: String::new(),
            },
            &carol_token,
        ))
        .await
        .expect("friend request")
        .into_inner();
    assert_eq!(
        a.recv().await,
        format!(
            r#"{{"type":"ADD_FRIEND_REQUEST","payload":{{"id":{},"requesterId":{carol},"targetId":{alice},"requesterUsername":"carol","targetUsername":"alice","requesterAvatar":"default.png","targetAvatar":"default.png","status":"pending"}}}}"#,
            fr.id
        )
    );
    a.send(&format!(
        r#"{{"type":"ACCEPT_FRIEND_REQUEST","payload":{{"id":{}}}}}"#,
        fr.id
    ))
    .await;
    payload(&a.recv().await, "FRIEND_REQUEST_ACCEPTED");
    let added = payload(&a.recv().await, "CONTACT_ADDED");
    assert_eq!(
        (added["contactId"].as_i64(), added["userId"].as_i64()),
        (Some(carol), Some(carol))
    );
    assert_eq!(added["username"], "carol");

    // gRPC → CloudChat
    let sent = messaging
        .send_message(authed(
            SendMessageRequest {
                to: Some(To::ToUserId(alice)),
                kind: MessageKind::Text.into(),
                text: "hello alice".into(),
                client_message_id: "c1".into(),
                ..Default::default()
            },
            &carol_token,
        ))
        .await
        .expect("send")
        .into_inner()
        .message
        .expect("message");
    let pushed = payload(&a.recv().await, "MESSAGE_RECEIVED_OTHER");
    assert_eq!(pushed["id"], sent.id);
    assert_eq!(
        (pushed["senderId"].as_i64(), pushed["receiverId"].as_i64()),
        (Some(carol), Some(alice))
    );
    assert_eq!(pushed["content"], "hello alice");

    // history as CloudChat shows it; alice has not read carol's message yet
    let load =
        format!(r#"{{"type":"LOAD_MESSAGES","payload":{{"userId":{alice},"targetId":{carol}}}}}"#);
    let loaded = payload(&a.ask(&load).await, "MESSAGES_LOADED");
    assert_eq!(loaded["targetId"], carol);
    let messages = loaded["messages"].as_array().expect("messages").clone();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["id"], sent.id);
    assert_eq!(messages[0]["status"], "sent");

    // alice's own canonical view (a second session of hers) agrees on unread counts
    let alice_token = server.login("alice", "secret1").await.access_token;
    let unread = |token: String| {
        let mut messaging = messaging.clone();
        async move {
            messaging
                .get_unread_counts(authed(GetUnreadCountsRequest {}, &token))
                .await
                .expect("unread")
                .into_inner()
                .total
        }
    };
    assert_eq!(unread(alice_token.clone()).await, 1);
    a.send(&format!(
        r#"{{"type":"MARK_READ","payload":{{"userId":{alice},"targetId":{carol}}}}}"#
    ))
    .await;
    let loaded = payload(&a.ask(&load).await, "MESSAGES_LOADED");
    assert_eq!(loaded["messages"][0]["status"], "read");
    assert_eq!(unread(alice_token.clone()).await, 0);

    // CloudChat → gRPC
    let ack = payload(
        &a.ask(&format!(
            r#"{{"type":"SEND_MESSAGE","payload":{{"tempId":"t-1","senderId":{alice},"receiverId":{carol},"content":"hi carol","type":"text"}}}}"#
        ))
        .await,
        "MESSAGE_RECEIVED_SELF",
    );
    assert_eq!(ack["tempId"], "t-1");
    let carol_view = messaging
        .list_messages(authed(
            ListMessagesRequest {
                conversation: private(alice),
                ..Default::default()
            },
            &carol_token,
        ))
        .await
        .expect("history")
        .into_inner()
        .messages;
    assert_eq!(carol_view.len(), 2);
    assert_eq!(carol_view[1].id, ack["id"].as_i64().expect("id"));
    assert_eq!(
        (carol_view[1].sender_id, carol_view[1].text.as_str()),
        (alice, "hi carol")
    );

    let loaded = payload(&a.ask(&load).await, "MESSAGES_LOADED");
    assert_eq!(loaded["messages"][1]["content"], "hi carol");
    assert_eq!(loaded["messages"][1]["status"], "sent");

    // carol reads alice's message over gRPC; alice's history shows it read
    messaging
        .mark_read(authed(
            MarkReadRequest {
                conversation: private(alice),
                ..Default::default()
            },
            &carol_token,
        ))
        .await
        .expect("mark read");
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    loop {
        let loaded = payload(&a.ask(&load).await, "MESSAGES_LOADED");
        if loaded["messages"][1]["status"] == "read" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "read receipt never arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // clearing hides the history from alice only
    assert_eq!(
        a.ask(&format!(
            r#"{{"type":"CLEAR_MESSAGES","payload":{{"userId":{alice},"targetId":{carol}}}}}"#
        ))
        .await,
        format!(
            r#"{{"type":"MESSAGES_CLEARD","payload":{{"userId":{alice},"targetId":{carol}}}}}"#
        )
    );
    assert_eq!(
        a.ask(&load).await,
        format!(r#"{{"type":"MESSAGES_LOADED","payload":{{"targetId":{carol},"messages":[]}}}}"#)
    );
    let count = |token: String, peer: i64| {
        let mut messaging = messaging.clone();
        async move {
            messaging
                .list_messages(authed(
                    ListMessagesRequest {
                        conversation: private(peer),
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .expect("history")
                .into_inner()
                .messages
                .len()
        }
    };
    assert_eq!(count(alice_token.clone(), carol).await, 0);
    assert_eq!(count(carol_token.clone(), alice).await, 2);

    // contacts and search show carol by id and name
    assert_eq!(
        payload(
            &a.ask(&format!(
                r#"{{"type":"LOAD_CONTACTS","payload":{{"userId":{alice}}}}}"#
            ))
            .await,
            "CONTACTS_LOADED"
        )["contacts"][0]["contactId"],
        carol
    );
    let found = payload(
        &a.ask(&format!(
            r#"{{"type":"SEARCH_FOR_USER_BY_ID","payload":{{"userId":{carol}}}}}"#
        ))
        .await,
        "SEARCH_FOR_USER_RESULT",
    );
    assert_eq!(found["users"][0]["username"], "carol");

    // sending to a non-friend, or as somebody else, fails with the client's tempId
    assert_eq!(
        a.ask(&format!(
            r#"{{"type":"SEND_MESSAGE","payload":{{"tempId":"t-2","senderId":{alice},"receiverId":{bob},"content":"x","type":"text"}}}}"#
        ))
        .await,
        r#"{"type":"MESSAGE_SEND_FAILED","payload":{"tempId":"t-2","error":"messages 数据表更新失败"}}"#
    );
    assert_eq!(
        payload(
            &a.ask(&format!(
                r#"{{"type":"SEND_MESSAGE","payload":{{"tempId":"t-3","senderId":{carol},"receiverId":{alice},"content":"x","type":"text"}}}}"#
            ))
            .await,
            "MESSAGE_SEND_FAILED"
        )["tempId"],
        "t-3"
    );

    // a file for carol arrives as a file message
    let ack = payload(
        &a.ask(&format!(
            r#"{{"type":"SEND_FILE","payload":{{"tempId":"f-1","senderId":{alice},"receiverId":{carol},"fileName":"notes.txt","fileContent":"aGVsbG8="}}}}"#
        ))
        .await,
        "MESSAGE_RECEIVED_SELF",
    );
    let last = messaging
        .list_messages(authed(
            ListMessagesRequest {
                conversation: private(alice),
                ..Default::default()
            },
            &carol_token,
        ))
        .await
        .expect("history")
        .into_inner()
        .messages
        .pop()
        .expect("file message");
    assert_eq!(last.id, ack["id"].as_i64().expect("id"));
    assert_eq!(last.kind, MessageKind::File as i32);
    assert!(!last.file_id.is_empty());

    bridge.stop().await;
    server.stop().await;
}

rosetta_testkit::both_backends!(grpc_peer, super::chat_with_grpc_user);
