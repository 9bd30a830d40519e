//! Users of different legacy protocols in one user base, each speaking their own wire format
//! to their own bridge: an IMPS user and a pipe user befriend each other and chat both ways; a
//! CloudChat user and an OurChat user do the same.

mod clients;

use std::time::Duration;

use clients::{
    Fields, Imps, PATIENCE, Pipe, Ws,
    bridges::{self, sha256_hex},
};
use rosetta_bridge_imps::codec::{ClientMessage, cmd};
use rosetta_proto::{
    account::v1::{LoginRequest, LookupUserRequest, PasswordScheme, login_request::Identifier},
    common::v1::{UserRef, user_ref},
    social::v1::{
        RespondFriendRequestRequest, respond_friend_request_request::Request as Respond,
        social_service_client::SocialServiceClient,
    },
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};

/// MD5 hex of "123456", as the pipe client sends its password.
const MD5_123456: &str = "e10adc3949ba59abbe56e057f20f883e";

async fn imps_pipe_chat(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridges = bridges::start(&server).await;

    // Penny registers and logs in on pipe; the bridge answers with her uid.
    let mut penny = Pipe::connect(bridges.pipe).await;
    penny
        .send(&format!("register|penny|{MD5_123456}|Penny|1|hi|1|cat"))
        .await;
    assert_eq!(penny.recv().await, "register_succ|注册成功！");
    let observer = server.user("observer", "pw").await;
    let uid_of = |name: &str| {
        let request = authed(
            LookupUserRequest {
                user: Some(UserRef {
                    r#ref: Some(user_ref::Ref::Username(name.into())),
                }),
            },
            &observer.access_token,
        );
        async {
            let mut account = server.account().await;
            account
                .lookup_user(request)
                .await
                .expect("lookup")
                .into_inner()
                .id
        }
    };
    let penny_uid = format!("{:05}", uid_of("penny").await);
    penny.send(&format!("login|penny|{MD5_123456}")).await;
    let login = penny.recv().await;
    let token = login
        .strip_prefix(&format!("login_succ|登录成功!|{penny_uid}|"))
        .and_then(|rest| rest.split('|').next())
        .unwrap_or_else(|| panic!("pipe login: {login:?}"))
        .to_owned();

    // Ivan registers and logs in on IMPS.
    let mut ivan = Imps::connect(bridges.imps).await;
    ivan.send(ClientMessage::Register {
        user: "ivan".into(),
        password: "pw".into(),
        gender: 1,
        email: "ivan@example.cn".into(),
    })
    .await;
    ivan.recv(cmd::S_REGISTER).await;
    ivan.send(ClientMessage::Login {
        user: "ivan".into(),
        password: "pw".into(),
    })
    .await;
    ivan.recv(cmd::S_LOGIN_RSP).await;
    let ivan_uid = format!("{:05}", uid_of("ivan").await);

    // Ivan asks Penny (by user name); Penny sees the request by uid and accepts it.
    ivan.send(ClientMessage::AddFriend {
        user: "ivan".into(),
        friend: "penny".into(),
    })
    .await;
    let request = penny.recv().await;
    assert!(
        request.starts_with(&format!("friend_request|{ivan_uid}|")),
        "{request:?}"
    );
    penny
        .send(&format!(
            "hand_friend_request|{penny_uid}|{ivan_uid}|0|{token}"
        ))
        .await;
    assert_eq!(
        penny.recv().await,
        "hand_friend_request_succ|成功同意请求！"
    );
    let answer = ivan.recv(cmd::S_ADDFRIEND_RSP).await;
    let mut fields = Fields(&answer.body);
    assert_eq!((fields.string(), fields.i32()), ("penny".to_owned(), 1));

    // IMPS → pipe, with Chinese text (GB2312 on one side, UTF-8 on the other).
    ivan.send(ClientMessage::SendMessage {
        user: "ivan".into(),
        friend: "penny".into(),
        text: "你好 penny".into(),
    })
    .await;
    let pushed = penny.recv().await;
    let parts: Vec<&str> = pushed.split('|').collect();
    assert_eq!(parts.len(), 5, "{pushed:?}");
    assert_eq!(
        (parts[0], parts[1], parts[2]),
        ("message", "0", ivan_uid.as_str())
    );
    assert_eq!(parts[4], "你好 penny");

    // pipe → IMPS.
    penny
        .send(&format!(
            "send_message|0|{penny_uid}|{ivan_uid}|20261122080000|hi_ivan|{token}"
        ))
        .await;
    assert_eq!(penny.recv().await, "send_message_succ|发送成功！");
    let message = ivan.recv(cmd::S_SEND_MSG).await;
    let mut fields = Fields(&message.body);
    assert_eq!(fields.string(), "penny");
    assert_eq!(fields.string(), "hi_ivan");
}

both_backends!(imps_and_pipe, super::imps_pipe_chat);

async fn cloudchat_ourchat_chat(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridges = bridges::start(&server).await;

    // Olga uses an OurChat client written from the document (`time` in the login turns on
    // pushes); she registers with an e-mail and the SHA-256 hex of her password.
    let mut olga = Ws::connect(bridges.ourchat).await;
    let password = sha256_hex("olga-pw");
    let registered = olga
        .call(&format!(
            r#"{{"code": 4, "time": 1722441600, "email": "olga@example.com", "password": "{password}", "name": "Olga"}}"#
        ))
        .await;
    assert_eq!(registered["state"], 0, "{registered}");
    let olga_ocid = registered["ocid"].as_str().expect("ocid").to_owned();
    let login = olga
        .call(&format!(
            r#"{{"code": 6, "time": 1722441600, "login_type": 1, "account": "{olga_ocid}", "password": "{password}"}}"#
        ))
        .await;
    assert_eq!(login["state"], 0, "{login}");

    // Carl uses the CloudChat web client.
    let mut carl = Ws::connect(bridges.cloudchat).await;
    let carl_reg = carl
        .call(r#"{"type":"REGISTER","payload":{"username":"carl","password":"carl-pw","email":"carl@example.com"}}"#)
        .await;
    assert_eq!(carl_reg["type"], "REGISTER_SUCCESS", "{carl_reg}");
    let carl_id = carl_reg["payload"]["userId"].as_i64().expect("userId");

    // The OurChat protocol has no friend requests: Olga answers Carl's from another client
    // of hers (gRPC), with the password form her OurChat client registered.
    let olga_grpc = server
        .account()
        .await
        .login(LoginRequest {
            identifier: Some(Identifier::Ocid(olga_ocid.clone())),
            password: password.clone(),
            password_scheme: PasswordScheme::Sha256Hex.into(),
            client: "test".into(),
        })
        .await
        .expect("Olga logs in over gRPC")
        .into_inner();
    let olga_id = olga_grpc.user.as_ref().expect("user").id;
    carl.send(&format!(
        r#"{{"type":"ADD_FRIEND_REQUEST","payload":{{"id":-1,"requesterId":{carl_id},"requesterUsername":"carl","requesterAvatar":"default.png","targetId":{olga_id},"targetUsername":"","targetAvatar":"default.png","status":"pending"}}}}"#
    ))
    .await;
    let mut social = SocialServiceClient::new(server.channel().await);
    // The request is stored once the bridge has handled the frame: retry until it is there.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let answer = social
            .respond_friend_request(authed(
                RespondFriendRequestRequest {
                    request: Some(Respond::FromUserId(carl_id)),
                    accept: true,
                },
                &olga_grpc.access_token,
            ))
            .await;
        match answer {
            Ok(_) => break,
            Err(status) if tokio::time::Instant::now() < deadline => {
                pause_before_retry(&status).await;
            }
            Err(status) => panic!("Olga cannot accept Carl's request: {status:?}"),
        }
    }
    carl.recv_where(|f| f["type"] == "CONTACT_ADDED" || f["type"] == "FRIEND_REQUEST_ACCEPTED")
        .await;

    // CloudChat → OurChat.
    let ack = carl
        .call(&format!(
            r#"{{"type":"SEND_MESSAGE","payload":{{"tempId":"t-1","senderId":{carl_id},"receiverId":{olga_id},"content":"hello olga","type":"text"}}}}"#
        ))
        .await;
    let ack = if ack["type"] == "MESSAGE_RECEIVED_SELF" {
        ack
    } else {
        carl.recv_where(|f| f["type"] == "MESSAGE_RECEIVED_SELF")
            .await
    };
    assert_eq!(ack["payload"]["tempId"], "t-1", "{ack}");
    let pushed = olga
        .recv_where(|f| f["code"] == 0 && f["msg"] == "hello olga")
        .await;
    assert_eq!(pushed["sender"]["private_id"], olga_ocid, "{pushed}");
    let carl_ocid = pushed["sender"]["ocid"]
        .as_str()
        .expect("sender ocid")
        .to_owned();

    // OurChat → CloudChat, addressed by Carl's ocid.
    olga.send(&format!(
        r#"{{"code": 0, "time": 1722441600, "sender": {{"ocid": "{olga_ocid}", "private_id": "{carl_ocid}"}}, "msg": "hi carl"}}"#
    ))
    .await;
    let received = carl
        .recv_where(|f| f["type"] == "MESSAGE_RECEIVED_OTHER")
        .await;
    assert_eq!(received["payload"]["content"], "hi carl", "{received}");
    assert_eq!(received["payload"]["senderId"], olga_id);
    assert_eq!(received["payload"]["receiverId"], carl_id);
}

/// Waits a little before retrying a call that failed with `status`.
async fn pause_before_retry(status: &tonic::Status) {
    assert!(
        matches!(
            status.code(),
            tonic::Code::NotFound | tonic::Code::FailedPrecondition
        ),
        "unexpected failure: {status:?}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
}

both_backends!(cloudchat_and_ourchat, super::cloudchat_ourchat_chat);
