//! A chat window that stops reading while the room's lines pile up for it is disconnected once
//! a write has waited longer than the write deadline (30 s): its user goes offline, instead of
//! the socket and its task being held for ever. (The lines waiting for it are bounded anyway:
//! a socket further behind than the lobby's backlog skips lines.)

mod common;

use std::time::Duration;

use common::*;
use rosetta_proto::{
    messaging::v1::{
        MessageKind, SendMessageRequest, messaging_service_client::MessagingServiceClient,
        send_message_request::To,
    },
    social::v1::PresenceStatus,
};
use rosetta_testkit::{Backend, TestServer, authed};

/// The bridge's write deadline (`wire::WRITE_TIMEOUT`).
const WRITE_DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_window_that_does_not_read_is_disconnected() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = start_bridge(&server).await;
    let bob = server.user("bob", "xyz789").await;
    let alice = server.user("alice", "abc123").await;
    let alice_id = alice.user.as_ref().expect("user").id;
    let lobby = join_lobby(&server, &bob.access_token).await.id;

    // Alice's window speaks once, which makes it hers (she is online), and never reads again.
    let mut alice_chat = connect(bridge.chat).await;
    send(
        &mut alice_chat,
        r#"{"op": 0, "args": {"name": "alice", "password": "abc123"}, "news": "hello\n"}"#,
    )
    .await;
    server
        .await_presence(
            &bob.access_token,
            alice_id,
            PresenceStatus::Online,
            PATIENCE,
        )
        .await;

    // About 9.6 MB of lines: far more than the socket buffers of both ends hold.
    let mut messaging = MessagingServiceClient::new(server.channel().await);
    let text = "x".repeat(16_000);
    for n in 0..600 {
        messaging
            .send_message(authed(
                SendMessageRequest {
                    to: Some(To::ToGroupId(lobby)),
                    kind: MessageKind::Text.into(),
                    text: text.clone(),
                    client_message_id: format!("flood-{n}"),
                    ..Default::default()
                },
                &bob.access_token,
            ))
            .await
            .expect("bob writes to the lobby");
    }
    server
        .await_presence(
            &bob.access_token,
            alice_id,
            PresenceStatus::Offline,
            WRITE_DEADLINE + PATIENCE,
        )
        .await;
    drop(alice_chat);
}
