//! Socket helpers shared by the DPC bridge tests: a bridge on ephemeral loopback ports, and
//! frames read and written exactly as the tkinter client does.

#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use rosetta_bridge_dpc::{Listeners, serve};
use rosetta_bridge_kit::settings::{ConnectionLimits, DpcSettings};
use rosetta_proto::social::v1::{
    Group, JoinPublicGroupRequest, social_service_client::SocialServiceClient,
};
use rosetta_testkit::{TestServer, authed};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};

/// Generous: the machine is slow and busy.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct Bridge {
    pub auth: SocketAddr,
    pub chat: SocketAddr,
    pub file: SocketAddr,
    _stop: oneshot::Sender<()>,
}

pub async fn start_bridge(server: &TestServer) -> Bridge {
    start_bridge_with(server, DpcSettings::default().limits).await
}

/// The bridge with the given connection limits.
pub async fn start_bridge_with(server: &TestServer, limits: ConnectionLimits) -> Bridge {
    let bind = || TcpListener::bind("127.0.0.1:0");
    let listeners = Listeners {
        auth: bind().await.expect("bind"),
        chat: bind().await.expect("bind"),
        file: bind().await.expect("bind"),
    };
    let settings = DpcSettings {
        enabled: true,
        auth_listen: listeners.auth.local_addr().expect("addr"),
        chat_listen: listeners.chat.local_addr().expect("addr"),
        file_listen: listeners.file.local_addr().expect("addr"),
        limits,
    };
    let (tx, rx) = oneshot::channel::<()>();
    let bridge = Bridge {
        auth: settings.auth_listen,
        chat: settings.chat_listen,
        file: settings.file_listen,
        _stop: tx,
    };
    tokio::spawn(serve(listeners, server.backend(), settings, async {
        let _ = rx.await;
    }));
    bridge
}

/// The 15-byte space-padded header and the body, as the client builds them.
pub fn frame(json: &str) -> Vec<u8> {
    let mut out = format!("{:<15}", json.len()).into_bytes();
    out.extend_from_slice(json.as_bytes());
    out
}

pub async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

/// Header and body in two writes, as the client sends them.
pub async fn send(stream: &mut TcpStream, json: &str) {
    let bytes = frame(json);
    stream.write_all(&bytes[..15]).await.expect("write header");
    stream.write_all(&bytes[15..]).await.expect("write body");
}

pub async fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut buf))
        .await
        .expect("bytes in time")
        .expect("bytes before close");
    buf
}

/// One whole frame, header included.
pub async fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = read_exactly(stream, 15).await;
    let len: usize = std::str::from_utf8(&out)
        .expect("ascii header")
        .trim_end()
        .parse()
        .expect("numeric header");
    out.extend(read_exactly(stream, len).await);
    out
}

/// The body of the next frame.
pub async fn read_body(stream: &mut TcpStream) -> String {
    String::from_utf8(read_frame(stream).await[15..].to_vec()).expect("utf-8 body")
}

/// Asserts the bridge closes the connection without sending anything more.
pub async fn expect_closed(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    match tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest)).await {
        Ok(Ok(_)) | Ok(Err(_)) => assert!(rest.is_empty(), "unexpected bytes {rest:?}"),
        Err(_) => panic!("connection not closed in time"),
    }
}

/// Asserts nothing arrives within a short while (for "no reply" cases).
pub async fn expect_silence(stream: &mut TcpStream, wait: Duration) {
    let mut byte = [0u8; 1];
    if let Ok(read) = tokio::time::timeout(wait, stream.read(&mut byte)).await {
        panic!("expected silence, got {read:?} / {byte:?}");
    }
}

/// A new connection, one request, one reply.
pub async fn ask(addr: SocketAddr, json: &str) -> Vec<u8> {
    let mut stream = connect(addr).await;
    send(&mut stream, json).await;
    read_frame(&mut stream).await
}

/// Sends frames then half-closes and waits for the bridge to close: everything was handled.
pub async fn upload(addr: SocketAddr, parts: &[(&str, &[u8])]) {
    let mut stream = connect(addr).await;
    for (json, bytes) in parts {
        send(&mut stream, json).await;
        stream.write_all(bytes).await.expect("write bytes");
    }
    stream.shutdown().await.expect("half-close");
    expect_closed(&mut stream).await;
}

/// SMS code (op 1), then register (op 2) with that code; returns both replies.
pub async fn register(
    server: &TestServer,
    bridge: &Bridge,
    name: &str,
    password: &str,
    phone: &str,
) -> (Vec<u8>, Vec<u8>) {
    let sms = ask(
        bridge.auth,
        &format!(r#"{{"op": 1, "args": {{"user_phone": "{phone}"}}}}"#),
    )
    .await;
    let code = server.codes.last_code(phone).expect("a code was sent");
    let reg = ask(
        bridge.auth,
        &format!(
            r#"{{"op": 2, "args": {{"user_name": "{name}", "user_pwd": "{password}", "user_phone": "{phone}", "user_vcode": "{code}", "user_email": "{name}@example.com"}}}}"#
        ),
    )
    .await;
    (sms, reg)
}

pub async fn login(bridge: &Bridge, name: &str, password: &str) -> Vec<u8> {
    ask(
        bridge.auth,
        &format!(r#"{{"op": 0, "args": {{"user_name": "{name}", "user_pwd": "{password}"}}}}"#),
    )
    .await
}

/// The holder of `access_token` joins the DPC lobby over gRPC; the lobby as the answer gives it.
pub async fn join_lobby(server: &TestServer, access_token: &str) -> Group {
    SocialServiceClient::new(server.channel().await)
        .join_public_group(authed(
            JoinPublicGroupRequest {
                slug: "dpc-lobby".into(),
                name: String::new(),
            },
            access_token,
        ))
        .await
        .expect("join the lobby")
        .into_inner()
}
