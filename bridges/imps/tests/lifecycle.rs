//! How an IMPS login ends, over real sockets against a real node: a revoked session, a kick
//! by a newer login, and the socket closing.

use bytes::BytesMut;
use rosetta_bridge_imps::codec::{ClientMessage, cmd};
use rosetta_proto::{
    account::v1::{ChangePasswordRequest, LoginRequest, PasswordScheme, login_request::Identifier},
    messaging::v1::{
        MessageKind, SendMessageRequest, event::Kind,
        messaging_service_client::MessagingServiceClient, send_message_request::To,
    },
    social::v1::PresenceStatus,
};
use rosetta_testkit::{Backend, TestServer, authed};
use tokio::net::TcpSocket;

mod common;

use common::*;

/// Far longer than any test: a user shown offline was shown so by the bridge, not by the
/// presence timeout.
const NO_PRESENCE_TIMEOUT_MS: u64 = 600_000;

async fn server() -> TestServer {
    TestServer::start_with(Backend::Sqlite, |cfg| {
        cfg.messaging.presence_timeout_ms = NO_PRESENCE_TIMEOUT_MS;
    })
    .await
}

/// A password change elsewhere revokes the IMPS login's session: the client is told it is
/// logged in elsewhere (error 7, the only words it has for it) and the connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_ends_the_login_with_error_7() {
    let server = server().await;
    let bridge = bridge(&server, 300_000).await;
    register_user(&bridge, "alice").await;
    let mut alice = login(&bridge, "alice", "pw").await;

    let mut account = server.account().await;
    let grpc = account
        .login(LoginRequest {
            identifier: Some(Identifier::Username("alice".into())),
            password: "pw".into(),
            password_scheme: PasswordScheme::Plain.into(),
            client: "test".into(),
        })
        .await
        .expect("login over gRPC")
        .into_inner();
    account
        .change_password(authed(
            ChangePasswordRequest {
                current_password: "pw".into(),
                current_scheme: PasswordScheme::Plain.into(),
                new_password: "new".into(),
                new_scheme: PasswordScheme::Plain.into(),
            },
            &grpc.access_token,
        ))
        .await
        .expect("change password");

    assert_eq!(
        alice.recv_cmd(cmd::S_ERROR).await,
        hex("4f 4b 00 00 00 05 11 00 00 00 07")
    );
    alice.expect_closed().await;
    login(&bridge, "alice", "new").await;
}

/// The socket closing ends the login at once: a friend is told the user went offline, long
/// before any presence timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_friend_sees_offline_as_soon_as_the_socket_closes() {
    let server = server().await;
    let bridge = bridge(&server, 300_000).await;
    register_user(&bridge, "alice").await;
    register_user(&bridge, "bob").await;
    let mut alice = login(&bridge, "alice", "pw").await;
    let mut bob = login(&bridge, "bob", "pw").await;
    befriend(&mut alice, "alice", &mut bob, "bob").await;
    drop(bob);
    alice.recv_status("bob", 2).await;
}

/// A second login of a user kicks the first (error 7, then closed); the new one serves, and
/// a second login on its own connection is refused (error 4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_login_kicks_the_first_with_error_7() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = bridge(&server, 300_000).await;
    register_user(&bridge, "alice").await;
    let mut first = login(&bridge, "alice", "pw").await;
    let mut second = login(&bridge, "alice", "pw").await;
    assert_eq!(
        first.recv_cmd(cmd::S_ERROR).await,
        hex("4f 4b 00 00 00 05 11 00 00 00 07")
    );
    first.expect_closed().await;
    // The new session is unharmed, and a second login on it is refused with error 4.
    second.friend_list("alice").await;
    second
        .send(ClientMessage::Login {
            user: "alice".into(),
            password: "pw".into(),
        })
        .await;
    assert_eq!(
        second.recv_cmd(cmd::S_ERROR).await,
        hex("4f 4b 00 00 00 05 11 00 00 00 04")
    );
}

/// A kicked login is told (error 7) and closed, but its user stays online to friends: the
/// newer login is theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kicked_login_does_not_show_its_user_offline() {
    let server = server().await;
    let bridge = bridge(&server, 300_000).await;
    register_user(&bridge, "alice").await;
    register_user(&bridge, "bob").await;
    let mut alice = login(&bridge, "alice", "pw").await;
    let mut bob = login(&bridge, "bob", "pw").await;
    befriend(&mut alice, "alice", &mut bob, "bob").await;

    let mut again = login(&bridge, "bob", "pw").await;
    assert_eq!(
        bob.recv_cmd(cmd::S_ERROR).await,
        hex("4f 4b 00 00 00 05 11 00 00 00 07")
    );
    // Closed once its login has ended (the services told whatever they are told).
    bob.expect_closed().await;
    let list = alice.friend_list("alice").await;
    let mut f = Fields::of(&list);
    assert_eq!(f.i64(), 1, "one friend");
    assert_eq!((f.string(), f.u8()), ("bob".to_owned(), 1), "bob is online");
    again.friend_list("bob").await;
}

/// A client that stops reading is disconnected once a push cannot be written in time, and its
/// friends see it go offline; without the write deadline the bridge would wait on it forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_disconnected() {
    let server = server().await;
    let bridge = bridge(&server, 300_000).await;
    register_user(&bridge, "alice").await;
    // A small receive window, so that the unread pushes fill the socket soon.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("receive buffer");
    let mut alice = Client {
        stream: socket.connect(bridge.addr).await.expect("connect"),
        buf: BytesMut::new(),
    };
    alice
        .send(ClientMessage::Login {
            user: "alice".into(),
            password: "pw".into(),
        })
        .await;
    assert_eq!(alice.recv_raw().await[6], cmd::S_LOGIN_RSP);

    // carol, over gRPC, befriends alice.
    let carol = server.user("carol", "pw").await;
    let token = carol.access_token.clone();
    let mut stream = events(&server, &token).await;
    let alice_id =
        befriend_over_grpc(&server, &mut alice, "alice", "carol", &token, &mut stream).await;

    // alice reads nothing more; carol writes far more than the sockets hold.
    let mut messaging = MessagingServiceClient::new(server.channel().await);
    let text = "x".repeat(8000);
    for i in 0..400 {
        messaging
            .send_message(authed(
                SendMessageRequest {
                    to: Some(To::ToUserId(alice_id)),
                    kind: MessageKind::Text.into(),
                    text: text.clone(),
                    client_message_id: format!("flood {i}"),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .expect("send");
    }
    next_event(
        &mut stream,
        |k| matches!(k, Kind::PresenceChanged(p) if p.status == PresenceStatus::Offline as i32),
    )
    .await;
    drop(alice);
}
