//! One OurChat session with a gRPC member and a pipe (QtQQ) member: messages go all ways.

mod common;

use std::net::SocketAddr;

use common::{Client, PATIENCE, befriend, bridge, sha256_hex};
use rosetta_bridge_kit::settings::PipeSettings;
use rosetta_proto::{
    account::v1::{
        LoginRequest, LoginResponse, LookupUserRequest, PasswordScheme,
        account_service_client::AccountServiceClient, login_request::Identifier,
    },
    common::v1::{UserRef, user_ref},
    messaging::v1::{
        MessageKind, SendMessageRequest, SubscribeRequest, event::Kind, message,
        messaging_service_client::MessagingServiceClient, send_message_request::To,
        subscribe_response::Item,
    },
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};

/// MD5 hex of "123456", as the pipe client sends it.
const MD5_123456: &str = "e10adc3949ba59abbe56e057f20f883e";

/// A pipe (QtQQ) client: unframed `cmd|field|…` text.
struct Pipe {
    stream: TcpStream,
    seen: String,
}

impl Pipe {
    async fn send(&mut self, line: &str) {
        self.stream
            .write_all(line.as_bytes())
            .await
            .expect("pipe write");
    }

    /// Reads until `needle` arrived; returns everything read up to and including it.
    async fn until(&mut self, needle: &str) -> String {
        let mut buf = vec![0u8; 16 * 1024];
        while !self.seen.contains(needle) {
            let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut buf))
                .await
                .expect("pipe reply in time")
                .expect("pipe read");
            assert!(n > 0, "pipe bridge closed; had {:?}", self.seen);
            self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let end = self.seen.find(needle).unwrap_or_default() + needle.len();
        self.seen.drain(..end).collect()
    }
}

async fn pipe_bridge(server: &TestServer) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(rosetta_bridge_pipe::serve(
        listener,
        server.backend(),
        PipeSettings::default(),
        async {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

async fn grpc_login(
    server: &TestServer,
    identifier: Identifier,
    password: &str,
    scheme: PasswordScheme,
) -> LoginResponse {
    AccountServiceClient::new(server.channel().await)
        .login(LoginRequest {
            identifier: Some(identifier),
            password: password.into(),
            password_scheme: scheme.into(),
            client: "test".into(),
        })
        .await
        .expect("login over gRPC")
        .into_inner()
}

async fn three_protocols(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = bridge(&server).await;
    let (pipe_addr, _pipe_stop) = pipe_bridge(&server).await;

    // gRPC member, listening.
    let grpc = server.user("gus", "pw").await;
    let gus = grpc.user.clone().expect("user");
    let mut messaging = MessagingServiceClient::new(server.channel().await);
    let mut events = messaging
        .subscribe(authed(
            SubscribeRequest {
                after_seq: None,
                ..Default::default()
            },
            &grpc.access_token,
        ))
        .await
        .expect("subscribe")
        .into_inner();
    while !matches!(
        events.message().await.expect("stream").expect("item").item,
        Some(Item::CaughtUp(_))
    ) {}

    // Pipe member: register and log in as the QtQQ client does.
    let mut pipe = Pipe {
        stream: TcpStream::connect(pipe_addr).await.expect("pipe connect"),
        seen: String::new(),
    };
    pipe.send(&format!("register|pete|{MD5_123456}|Pete|3|hello|1|cat"))
        .await;
    pipe.until("register_succ|").await;
    pipe.send(&format!("login|pete|{MD5_123456}")).await;
    pipe.until("login_succ|").await;
    // 登录成功!|uid|token|unread count follow, unterminated.
    let mut reply = String::new();
    for _ in 0..3 {
        reply += &pipe.until("|").await;
    }
    let fields: Vec<&str> = reply.split('|').collect();
    let (pipe_uid, pipe_token) = (fields[1].to_owned(), fields[2].to_owned());
    assert_eq!(pipe_token.len(), 16, "{reply:?}");
    let pete = AccountServiceClient::new(server.channel().await)
        .lookup_user(authed(
            LookupUserRequest {
                user: Some(UserRef {
                    r#ref: Some(user_ref::Ref::Username("pete".into())),
                }),
            },
            &grpc.access_token,
        ))
        .await
        .expect("pete has an ocid")
        .into_inner();

    // OurChat member opens a session with both.
    let mut oc = Client::connect(bridge.addr).await;
    let oc_ocid = oc.register_doc("owen@example.com", "pw", "Owen").await;
    oc.login_doc("owen@example.com", "pw").await;
    // A session takes the creator's friends only: Owen befriends both over gRPC.
    let owen = grpc_login(
        &server,
        Identifier::Ocid(oc_ocid.clone()),
        &sha256_hex("pw"),
        PasswordScheme::Sha256Hex,
    )
    .await;
    let pete_login = grpc_login(
        &server,
        Identifier::Username("pete".into()),
        MD5_123456,
        PasswordScheme::Md5Hex,
    )
    .await;
    befriend(&server, &owen, &grpc).await;
    befriend(&server, &owen, &pete_login).await;
    let created = oc
        .call(&format!(
            r#"{{"code": 8, "members": ["{oc_ocid}", "{}", "{}"]}}"#,
            gus.ocid, pete.ocid
        ))
        .await;
    assert_eq!(created["status"], 0, "{created}");
    let group = created["session_id"].as_i64().expect("session id");

    // OurChat → gRPC and pipe.
    oc.send(&format!(
        r#"{{"code": 0, "sender": {{"ocid": "{oc_ocid}", "session_id": {group}}}, "msg": "hello all"}}"#
    ))
    .await;
    let got = tokio::time::timeout(PATIENCE, async {
        loop {
            let item = events.message().await.expect("stream").expect("item");
            if let Some(Item::Event(event)) = item.item
                && let Some(Kind::Message(m)) = event.kind
                && m.text == "hello all"
            {
                return m;
            }
        }
    })
    .await
    .expect("gRPC member got it");
    assert_eq!(got.to, Some(message::To::ToGroupId(group)));
    let seen = pipe.until("hello all").await;
    assert!(seen.contains(&format!("message|1|{group}|")), "{seen:?}");

    // gRPC → OurChat.
    messaging
        .send_message(authed(
            SendMessageRequest {
                to: Some(To::ToGroupId(group)),
                kind: MessageKind::Text.into(),
                text: "from gus".into(),
                client_message_id: "gus-1".into(),
                ..Default::default()
            },
            &grpc.access_token,
        ))
        .await
        .expect("gus writes");
    let push = next_text(&mut oc).await;
    assert_eq!(
        (push["msg"].as_str(), push["sender"]["ocid"].as_str()),
        (Some("from gus"), Some(gus.ocid.as_str()))
    );

    // Pipe → OurChat.
    pipe.send(&format!(
        "send_message|1|{pipe_uid}|{group}|20260101120000|from pete|{pipe_token}"
    ))
    .await;
    pipe.until("send_message_succ|").await;
    let push = next_text(&mut oc).await;
    assert_eq!(push["msg"], "from pete");
    assert_eq!(push["sender"]["ocid"], pete.ocid);
    assert_eq!(push["sender"]["group_id"], group);
}
both_backends!(three, super::three_protocols);

/// The next text message (0) pushed to `client`, skipping other pushes.
async fn next_text(client: &mut Client) -> serde_json::Value {
    loop {
        let frame = client.recv().await;
        if frame["code"] == 0 {
            return frame;
        }
    }
}
