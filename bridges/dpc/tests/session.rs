//! The note's example session (dpc.md §9) replayed byte for byte over real sockets, on SQLite
//! and PostgreSQL; the cross-protocol exchange with a gRPC member of the lobby.

mod common;

use std::time::Duration;

use common::*;
use rosetta_proto::messaging::v1::{
    MessageKind, SendMessageRequest, SubscribeRequest, event,
    messaging_service_client::MessagingServiceClient, send_message_request, subscribe_response,
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};
use serde_json::Value;

fn exact(json: &str) -> Vec<u8> {
    frame(json)
}

async fn example_session(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = start_bridge(&server).await;

    // 1. SMS code: the request bytes of the note, the 20-byte reply.
    let request_1a = b"48             {\"op\": 1, \"args\": {\"user_phone\": \"13800138000\"}}";
    assert_eq!(
        frame(r#"{"op": 1, "args": {"user_phone": "13800138000"}}"#),
        request_1a
    );
    let mut stream = connect(bridge.auth).await;
    send(
        &mut stream,
        r#"{"op": 1, "args": {"user_phone": "13800138000"}}"#,
    )
    .await;
    assert_eq!(
        read_frame(&mut stream).await,
        b"20             {\"op\": 1, \"test\": 0}"
    );
    drop(stream);
    let code = server.codes.last_code("13800138000").expect("code sent");

    // 2. Register with that code (the note's 4821 is whatever the sender delivered).
    let register = format!(
        r#"{{"op": 2, "args": {{"user_name": "alice", "user_pwd": "abc123", "user_phone": "13800138000", "user_vcode": "{code}", "user_email": "alice@example.com"}}}}"#
    );
    assert_eq!(
        ask(bridge.auth, &register).await,
        b"20             {\"op\": 2, \"test\": 0}"
    );
    let (sms, reg) = register_bob(&server, &bridge).await;
    assert_eq!(sms, exact(r#"{"op": 1, "test": 0}"#));
    assert_eq!(reg, exact(r#"{"op": 2, "test": 0}"#));

    // 3. Login (frame 3a, whose first bytes the note gives in hex).
    let login_3a = frame(r#"{"op": 0, "args": {"user_name": "alice", "user_pwd": "abc123"}}"#);
    assert_eq!(&login_3a[..16], b"63             {");
    assert_eq!(
        login(&bridge, "alice", "abc123").await,
        b"20             {\"op\": 0, \"test\": 0}"
    );
    assert_eq!(
        login(&bridge, "bob", "xyz789").await,
        exact(r#"{"op": 0, "test": 0}"#)
    );

    // 4–5. Both windows connect to the chat server and send nothing; Alice's lines reach Bob.
    let mut bob = connect(bridge.chat).await;
    let mut alice = connect(bridge.chat).await;
    send(
        &mut alice,
        r#"{"op": 0, "args": {"name": "alice", "password": "abc123"}, "news": "hi bob\n"}"#,
    )
    .await;
    assert_eq!(
        read_frame(&mut bob).await,
        b"62             {\"op\": 0, \"args\": {\"name\": \"alice\"}, \"news\": \"alice:hi bob\\n\"}"
    );
    let line_5c =
        r#"{"op": 0, "args": {"name": "alice", "password": "abc123"}, "news": "\u4f60\u597d\n"}"#;
    assert_eq!(&frame(line_5c)[..15], b"84             ");
    send(&mut alice, line_5c).await;
    assert_eq!(
        read_frame(&mut bob).await,
        b"68             {\"op\": 0, \"args\": {\"name\": \"alice\"}, \"news\": \"alice:\\u4f60\\u597d\\n\"}"
    );
    // No echo to the sender: the first thing Alice receives is Bob's answer.
    send(
        &mut bob,
        r#"{"op": 0, "args": {"name": "bob", "password": "xyz789"}, "news": "hi alice\n"}"#,
    )
    .await;
    assert_eq!(
        read_body(&mut alice).await,
        r#"{"op": 0, "args": {"name": "bob"}, "news": "bob:hi alice\n"}"#
    );

    // 6. Upload a file; 7. upload a folder. No reply; the client closes.
    let upload_6a = r#"{"op": 0, "args": {"name": "alice", "password": "abc123"}, "file_name": "notes.txt", "file_type": 0, "file_size": "5"}"#;
    assert_eq!(&frame(upload_6a)[..15], b"118            ");
    upload(bridge.file, &[(upload_6a, b"hello")]).await;
    let upload_7a = r#"{"op": 0, "args": {"name": "alice", "password": "abc123"}, "file_name": "pics/a.txt", "file_type": 1, "file_size": "3", "file_dirname": "pics"}"#;
    let upload_7c = r#"{"op": 0, "args": {"name": "alice", "password": "abc123"}, "file_name": "pics/sub/b.txt", "file_type": 1, "file_size": "2", "file_dirname": "pics"}"#;
    assert_eq!(&frame(upload_7a)[..15], b"143            ");
    assert_eq!(&frame(upload_7c)[..15], b"147            ");
    upload(bridge.file, &[(upload_7a, b"abc"), (upload_7c, b"xy")]).await;

    // 8. The listing, in the real reply form; the times are the upload times.
    let list_8a = r#"{"op": 1, "args": {"name": "bob", "password": "xyz789"}, "look": 0}"#;
    assert_eq!(&frame(list_8a)[..15], b"67             ");
    let listing = ask(bridge.file, list_8a).await;
    let body: Value = serde_json::from_slice(&listing[15..]).expect("json");
    let rows = body["exist_file"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{body}");
    let time = |i: usize| rows[i][2].as_str().expect("time").to_owned();
    for i in 0..2 {
        let t = time(i);
        assert!(
            t.len() == 19
                && t.as_bytes()[4] == b'-'
                && t.as_bytes()[10] == b' '
                && t.as_bytes()[13] == b':',
            "time {t}"
        );
    }
    let expected_8b = format!(
        r#"{{"op": 0, "exist_file": [["notes.txt", "alice", "{}", "\u6587\u4ef6"], ["pics", "alice", "{}", "\u6587\u4ef6\u5939"]]}}"#,
        time(0),
        time(1)
    );
    assert_eq!(listing, frame(&expected_8b));
    assert_eq!(&listing[..15], b"152            ");

    // 9. Download the file: header, raw bytes, then the bridge closes.
    let mut stream = connect(bridge.file).await;
    let download_9a = r#"{"op": 1, "args": {"name": "bob", "password": "xyz789"}, "look": 1, "file_name": "notes.txt"}"#;
    assert_eq!(&frame(download_9a)[..15], b"93             ");
    send(&mut stream, download_9a).await;
    assert_eq!(
        read_frame(&mut stream).await,
        b"69             {\"op\": 1, \"file_name\": \"notes.txt\", \"file_type\": 0, \"file_size\": \"5\"}"
    );
    assert_eq!(read_exactly(&mut stream, 5).await, b"hello");
    expect_closed(&mut stream).await;

    // 10. Download the folder.
    let mut stream = connect(bridge.file).await;
    send(
        &mut stream,
        r#"{"op": 1, "args": {"name": "bob", "password": "xyz789"}, "look": 1, "file_name": "pics"}"#,
    )
    .await;
    assert_eq!(
        read_frame(&mut stream).await,
        b"70             {\"op\": 1, \"file_name\": \"pics/a.txt\", \"file_type\": 1, \"file_size\": \"3\"}"
    );
    assert_eq!(read_exactly(&mut stream, 3).await, b"abc");
    assert_eq!(
        read_frame(&mut stream).await,
        b"74             {\"op\": 1, \"file_name\": \"pics/sub/b.txt\", \"file_type\": 1, \"file_size\": \"2\"}"
    );
    assert_eq!(read_exactly(&mut stream, 2).await, b"xy");
    expect_closed(&mut stream).await;

    // 11. Not found.
    let mut stream = connect(bridge.file).await;
    send(
        &mut stream,
        r#"{"op": 1, "args": {"name": "bob", "password": "xyz789"}, "look": 1, "file_name": "nothing.txt"}"#,
    )
    .await;
    assert_eq!(
        read_frame(&mut stream).await,
        b"27             {\"op\": 1, \"file_name\": 400}"
    );
    expect_closed(&mut stream).await;
}

async fn register_bob(server: &TestServer, bridge: &Bridge) -> (Vec<u8>, Vec<u8>) {
    register(server, bridge, "bob", "xyz789", "13900139000").await
}

both_backends!(example_session_byte_for_byte, super::example_session);

/// A DPC lobby line reaches a gRPC member of the group, and a gRPC member's line reaches the
/// DPC chat socket in the original push form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lobby_with_a_grpc_member() {
    lobby_with_a_grpc_member_when(TestServer::start(Backend::Sqlite).await).await;
}

/// The same in a lobby fanned out on read (as one of more members than
/// `group_fanout_max_members`, 200 by default, is): its messages are in no member's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_lobby_with_a_grpc_member() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.messaging.group_fanout_max_members = 1;
    })
    .await;
    lobby_with_a_grpc_member_when(server).await;
}

async fn lobby_with_a_grpc_member_when(server: TestServer) {
    let bridge = start_bridge(&server).await;
    server.user("alice", "abc123").await;
    let carol = server.user("carol", "carol-pw").await;
    let carol_id = carol.user.as_ref().expect("user").id;
    let channel = server.channel().await;
    let lobby = join_lobby(&server, &carol.access_token).await;
    let mut messaging = MessagingServiceClient::new(channel);
    let mut events = messaging
        .subscribe(authed(
            SubscribeRequest {
                after_seq: None,
                ..Default::default()
            },
            &carol.access_token,
        ))
        .await
        .expect("subscribe")
        .into_inner();

    assert_eq!(
        login(&bridge, "alice", "abc123").await,
        frame(r#"{"op": 0, "test": 0}"#)
    );
    let mut alice = connect(bridge.chat).await;
    send(
        &mut alice,
        r#"{"op": 0, "args": {"name": "alice", "password": "abc123"}, "news": "hi carol\n"}"#,
    )
    .await;
    let message = loop {
        let item = tokio::time::timeout(PATIENCE, events.message())
            .await
            .expect("event in time")
            .expect("stream healthy")
            .expect("stream open");
        if let Some(subscribe_response::Item::Event(e)) = item.item
            && let Some(event::Kind::Message(m)) = e.kind
        {
            break m;
        }
    };
    assert_eq!(message.text, "hi carol");
    assert_ne!(message.sender_id, carol_id);

    messaging
        .send_message(authed(
            SendMessageRequest {
                to: Some(send_message_request::To::ToGroupId(lobby.id)),
                kind: MessageKind::Text.into(),
                text: "hello dpc".into(),
                client_message_id: "carol-1".into(),
                ..Default::default()
            },
            &carol.access_token,
        ))
        .await
        .expect("send to lobby");
    assert_eq!(
        read_frame(&mut alice).await,
        frame(r#"{"op": 0, "args": {"name": "carol"}, "news": "carol:hello dpc\n"}"#)
    );
    expect_silence(&mut alice, Duration::from_millis(300)).await;
}

/// SMS code for `phone`, then op 2 with that code and `email`; the register reply.
async fn register_with_email(
    server: &TestServer,
    bridge: &Bridge,
    name: &str,
    phone: &str,
    email: &str,
) -> Vec<u8> {
    let sms = ask(
        bridge.auth,
        &format!(r#"{{"op": 1, "args": {{"user_phone": "{phone}"}}}}"#),
    )
    .await;
    assert_eq!(sms, exact(r#"{"op": 1, "test": 0}"#), "code for {phone}");
    let code = server.codes.last_code(phone).expect("a code was sent");
    ask(
        bridge.auth,
        &format!(
            r#"{{"op": 2, "args": {{"user_name": "{name}", "user_pwd": "abc123", "user_phone": "{phone}", "user_vcode": "{code}", "user_email": "{email}"}}}}"#
        ),
    )
    .await
}

/// The original server refused a taken user name only (dpc.md §3.2): an e-mail already used,
/// or text that is not an address, still registers (without the e-mail), and logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_refuses_only_a_taken_user_name() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = start_bridge(&server).await;
    let registered = exact(r#"{"op": 2, "test": 0}"#);
    let name_taken = exact(r#"{"op": 2, "test": 1}"#);
    for (name, phone, email, reply) in [
        ("alice", "13800138001", "same@example.com", &registered),
        ("bob", "13800138002", "same@example.com", &registered),
        ("carol", "13800138003", "carol", &registered),
        ("bob", "13800138004", "other@example.com", &name_taken),
    ] {
        assert_eq!(
            &register_with_email(&server, &bridge, name, phone, email).await,
            reply,
            "{name} {email}"
        );
    }
    for name in ["alice", "bob", "carol"] {
        assert_eq!(
            login(&bridge, name, "abc123").await,
            exact(r#"{"op": 0, "test": 0}"#),
            "{name}"
        );
    }
}
