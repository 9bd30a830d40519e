//! A user name in the bridge's own `#<id>` alias form would capture what IMPS clients send to
//! that user (issue 18, item 8): registering one over the real socket gets the legacy "user
//! already exists" error, on SQLite and PostgreSQL.

use std::time::Duration;

use bytes::BytesMut;
use rosetta_bridge_imps::codec::{ClientMessage, FrameCodec};
use rosetta_bridge_kit::settings::ImpsSettings;
use rosetta_testkit::{Backend, TestServer, both_backends};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};

const PATIENCE: Duration = Duration::from_secs(30);

/// S_ERROR(1, 0): "user already exists", the legacy server's answer to a taken name.
const NAME_TAKEN: [u8; 15] = [0x4f, 0x4b, 0, 0, 0, 9, 0x11, 0, 0, 0, 1, 0, 0, 0, 0];
/// S_REGISTER(1, 1).
const REGISTERED: [u8; 15] = [0x4f, 0x4b, 0, 0, 0, 9, 0x10, 0, 0, 0, 1, 0, 0, 0, 1];

/// Sends C_REGISTER for `user` on a connection of its own and returns the reply frame.
async fn register(addr: std::net::SocketAddr, user: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let frame = ClientMessage::Register {
        user: user.into(),
        password: "pw".into(),
        gender: 1,
        email: String::new(),
    }
    .encode();
    let mut bytes = BytesMut::new();
    tokio_util::codec::Encoder::encode(&mut FrameCodec, frame, &mut bytes).expect("encode");
    stream.write_all(&bytes).await.expect("write");
    let mut reply = vec![0u8; 6];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut reply))
        .await
        .expect("a reply in time")
        .expect("header");
    let len = i32::from_be_bytes([reply[2], reply[3], reply[4], reply[5]]) as usize;
    let mut rest = vec![0u8; len];
    stream.read_exact(&mut rest).await.expect("body");
    reply.extend(rest);
    reply
}

async fn alias_names_cannot_be_registered(backend: Backend) {
    let server = TestServer::start(backend).await;
    let victim = server.user("victim", "pw-victim").await;
    let id = victim.user.expect("user").id;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(rosetta_bridge_imps::serve(
        listener,
        server.backend(),
        ImpsSettings {
            listen: addr,
            ..ImpsSettings::default()
        },
        async move {
            let _ = stopped.await;
        },
    ));

    for name in [format!("#{id}"), "#153".to_owned(), format!("deleted-{id}")] {
        assert_eq!(register(addr, &name).await, NAME_TAKEN, "{name}");
    }
    assert_eq!(register(addr, "hash#tag").await, REGISTERED);
    server.stop().await;
}
both_backends!(
    alias_names_cannot_be_registered,
    super::alias_names_cannot_be_registered
);
