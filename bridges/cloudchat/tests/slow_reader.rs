//! A WebSocket that stops reading while pushes pile up for it is disconnected once a write has
//! waited longer than the write deadline (30 s): its user goes offline, instead of the
//! connection holding its socket, its task and the pushes behind the blocked write for ever.

mod common;

use std::time::Duration;

use common::{Bridge, PATIENCE, logged_in_friends};
use rosetta_proto::{
    messaging::v1::{
        MessageKind, SendMessageRequest, messaging_service_client::MessagingServiceClient,
        send_message_request::To,
    },
    social::v1::PresenceStatus,
};
use rosetta_testkit::{Backend, TestServer, authed};

/// The bridge's write deadline (`session::WRITE_DEADLINE`).
const WRITE_DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_that_does_not_read_is_disconnected() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = Bridge::start(server.backend()).await;
    let (_, a, bob, b) = logged_in_friends(bridge.addr).await;
    drop(a);
    // Alice writes and watches over gRPC; bob's WebSocket never reads again.
    let token = server.login("alice", "secret1").await.access_token;
    server
        .await_presence(&token, bob, PresenceStatus::Online, PATIENCE)
        .await;

    // About 6.4 MB of pushes: far more than the socket buffers of both ends hold.
    let mut messaging = MessagingServiceClient::new(server.channel().await);
    let text = "x".repeat(16_000);
    for n in 0..400 {
        messaging
            .send_message(authed(
                SendMessageRequest {
                    to: Some(To::ToUserId(bob)),
                    kind: MessageKind::Text.into(),
                    text: text.clone(),
                    client_message_id: format!("flood-{n}"),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .expect("alice writes");
    }
    server
        .await_presence(
            &token,
            bob,
            PresenceStatus::Offline,
            WRITE_DEADLINE + PATIENCE,
        )
        .await;
    drop(b);
    bridge.stop().await;
    server.stop().await;
}
