//! Bad input on each server: refused cleanly, only on that connection; the auth server's
//! answers for refused registrations and logins.

mod common;

use std::time::Duration;

use common::*;
use rosetta_testkit::{Backend, TestServer};
use tokio::io::AsyncWriteExt as _;

async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> tokio::net::TcpStream {
    let mut stream = connect(addr).await;
    stream.write_all(bytes).await.expect("write");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_only_their_connection() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = start_bridge(&server).await;
    server.user("alice", "abc123").await;
    server.user("bob", "xyz789").await;
    assert_eq!(
        login(&bridge, "bob", "xyz789").await,
        frame(r#"{"op": 0, "test": 0}"#)
    );
    // Bob's chat window stays connected through everything below.
    let mut bob = connect(bridge.chat).await;

    for addr in [bridge.auth, bridge.chat, bridge.file] {
        // Non-digit header, NUL padding, a huge length, a negative one.
        for header in [
            &b"abc            "[..],
            b"12\0\0\0\0\0\0\0\0\0\0\0\0\0",
            b"999999999999999",
            b"-5             ",
        ] {
            let mut stream = raw(addr, header).await;
            expect_closed(&mut stream).await;
        }
        // Not JSON, not an object, a truncated body (the peer leaves mid-frame).
        let mut stream = raw(addr, &frame("{\"op\": 0, \"args\"")).await;
        expect_closed(&mut stream).await;
        let mut stream = raw(addr, &frame("[0, 1]")).await;
        expect_closed(&mut stream).await;
        let mut stream = raw(addr, b"50             {\"op\": 0").await;
        stream.shutdown().await.expect("half-close");
        expect_closed(&mut stream).await;
        // Connect and leave without a byte (the client does this on a form error).
        drop(connect(addr).await);
    }
    // Missing keys and string ops.
    let mut stream = raw(
        bridge.auth,
        &frame(r#"{"op": 0, "args": {"user_name": "alice"}}"#),
    )
    .await;
    expect_closed(&mut stream).await;
    let mut stream = raw(bridge.auth, &frame(r#"{"op": "0", "args": {}}"#)).await;
    expect_closed(&mut stream).await;
    let mut stream = raw(bridge.auth, &frame(r#"{"op": 9, "args": {}}"#)).await;
    expect_closed(&mut stream).await;

    // Chat: bad credentials send nothing back (never the original's unframed bytes) and keep
    // the connection; an unknown op is ignored; the next good line goes through.
    let mut alice = connect(bridge.chat).await;
    send(
        &mut alice,
        r#"{"op": 0, "args": {"name": "alice", "password": "wrong"}, "news": "forged\n"}"#,
    )
    .await;
    send(
        &mut alice,
        r#"{"op": 3, "args": {"name": "alice", "password": "abc123"}, "news": "other op\n"}"#,
    )
    .await;
    send(
        &mut alice,
        r#"{"op": 0, "args": {"name": "alice", "password": "abc123"}, "news": "real\n"}"#,
    )
    .await;
    assert_eq!(
        read_body(&mut bob).await,
        r#"{"op": 0, "args": {"name": "alice"}, "news": "alice:real\n"}"#
    );
    expect_silence(&mut alice, Duration::from_millis(300)).await;

    // File: bad credentials on a list close without a reply; on a download answer not found;
    // on an upload the bytes are skipped and the next upload on the connection is stored.
    let mut stream = connect(bridge.file).await;
    send(
        &mut stream,
        r#"{"op": 1, "args": {"name": "alice", "password": "nope"}, "look": 0}"#,
    )
    .await;
    expect_closed(&mut stream).await;
    let mut stream = connect(bridge.file).await;
    send(
        &mut stream,
        r#"{"op": 1, "args": {"name": "alice", "password": "nope"}, "look": 1, "file_name": "x"}"#,
    )
    .await;
    assert_eq!(
        read_frame(&mut stream).await,
        frame(r#"{"op": 1, "file_name": 400}"#)
    );
    expect_closed(&mut stream).await;
    upload(
        bridge.file,
        &[
            (r#"{"op": 0, "args": {"name": "alice", "password": "nope"}, "file_name": "f.txt", "file_type": 0, "file_size": "29"}"#, b"15             {\"op\": 1}xxxxx"),
            (r#"{"op": 0, "args": {"name": "alice", "password": "abc123"}, "file_name": "g.txt", "file_type": 0, "file_size": 3}"#, b"ggg"),
        ],
    )
    .await;
    let list = ask(
        bridge.file,
        r#"{"op": 1, "args": {"name": "bob", "password": "xyz789"}, "look": 0}"#,
    )
    .await;
    let list: serde_json::Value = serde_json::from_slice(&list[15..]).unwrap();
    assert_eq!(
        list["exist_file"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );
    assert_eq!(list["exist_file"][0][0], "g.txt");

    // Everything still serves: a login and Bob's chat socket.
    assert_eq!(
        login(&bridge, "alice", "abc123").await,
        frame(r#"{"op": 0, "test": 0}"#)
    );
    send(
        &mut alice,
        r#"{"op": 0, "args": {"name": "alice", "password": "abc123"}, "news": "still here\n"}"#,
    )
    .await;
    assert_eq!(
        read_body(&mut bob).await,
        r#"{"op": 0, "args": {"name": "alice"}, "news": "alice:still here\n"}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_answers_every_outcome() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = start_bridge(&server).await;
    let reply = |op: i64, test: i64| frame(&format!(r#"{{"op": {op}, "test": {test}}}"#));

    let (sms, reg) = register(&server, &bridge, "alice", "abc123", "13800138000").await;
    assert_eq!((sms, reg), (reply(1, 0), reply(2, 0)));
    assert_eq!(login(&bridge, "alice", "abc123").await, reply(0, 0));
    assert_eq!(login(&bridge, "alice", "wrong1").await, reply(0, 1));
    assert_eq!(login(&bridge, "nobody", "abc123").await, reply(0, 1));
    // Phone already registered; not a phone number.
    let sms = |phone: &str| format!(r#"{{"op": 1, "args": {{"user_phone": "{phone}"}}}}"#);
    assert_eq!(ask(bridge.auth, &sms("13800138000")).await, reply(1, 3));
    assert_eq!(ask(bridge.auth, &sms("call me")).await, reply(1, 2));
    let register = |name: &str, phone: &str, code: &str| {
        format!(
            r#"{{"op": 2, "args": {{"user_name": "{name}", "user_pwd": "pw1234", "user_phone": "{phone}", "user_vcode": "{code}", "user_email": "{name}@example.com"}}}}"#
        )
    };
    // Username taken; phone without a code sent to it; wrong code.
    assert_eq!(ask(bridge.auth, &sms("13700137000")).await, reply(1, 0));
    let code = server.codes.last_code("13700137000").expect("code");
    assert_eq!(
        ask(bridge.auth, &register("alice", "13700137000", &code)).await,
        reply(2, 1)
    );
    assert_eq!(
        ask(bridge.auth, &register("carol", "13600136000", &code)).await,
        reply(2, 2)
    );
    let wrong = if code == "0000" { "1111" } else { "0000" };
    assert_eq!(
        ask(bridge.auth, &register("carol", "13700137000", wrong)).await,
        reply(2, 3)
    );
    assert_eq!(
        ask(bridge.auth, &register("carol", "13700137000", &code)).await,
        reply(2, 0)
    );
    // Several requests on one connection, as the original server allows.
    let mut stream = connect(bridge.auth).await;
    for _ in 0..2 {
        send(
            &mut stream,
            r#"{"op": 0, "args": {"user_name": "carol", "user_pwd": "pw1234"}}"#,
        )
        .await;
        assert_eq!(read_frame(&mut stream).await, reply(0, 0));
    }
}
