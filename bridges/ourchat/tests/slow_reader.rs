//! A client that stops reading while pushes pile up is disconnected once a write has waited
//! for it longer than the write deadline (its login ends: a friend sees it go offline), instead
//! of holding its connection and the bridge's memory for ever.

mod common;

use common::{Client, PATIENCE, befriend, bridge, grpc_login};
use rosetta_proto::{
    messaging::v1::{
        Event, MessageKind, SendMessageRequest, SubscribeRequest, SubscribeResponse, event::Kind,
        messaging_service_client::MessagingServiceClient, send_message_request::To,
        subscribe_response::Item,
    },
    social::v1::PresenceStatus,
};
use rosetta_testkit::{Backend, TestServer, authed};
use tonic::Streaming;

/// Waits on `events` for `user`'s presence to change to `status` (other events are skipped).
async fn presence(events: &mut Streaming<SubscribeResponse>, user: i64, status: PresenceStatus) {
    loop {
        let item = tokio::time::timeout(PATIENCE, events.message())
            .await
            .unwrap_or_else(|_| panic!("user {user} not seen {status:?} in time"))
            .expect("stream")
            .expect("item");
        if let Some(Item::Event(Event {
            kind: Some(Kind::PresenceChanged(presence)),
            ..
        })) = item.item
            && presence.user_id == user
            && presence.status == status as i32
        {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_disconnected() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = bridge(&server).await;
    let grace = server.user("grace", "grace-pw").await;
    let mut messaging = MessagingServiceClient::new(server.channel().await);
    let mut events = messaging
        .subscribe(authed(SubscribeRequest::default(), &grace.access_token))
        .await
        .expect("subscribe")
        .into_inner();

    let mut olga = Client::connect(bridge.addr).await;
    let ocid = olga
        .register_doc("olga@example.com", "olga-pw", "Olga")
        .await;
    let olga_login = grpc_login(&server, &ocid, "olga-pw").await;
    befriend(&server, &grace, &olga_login).await;
    let olga_id = olga_login.user.expect("user").id;
    olga.login_doc(&ocid, "olga-pw").await;
    presence(&mut events, olga_id, PresenceStatus::Online).await;

    // Far more than the socket buffers of both ends hold; olga never reads again.
    let text = "x".repeat(16_000);
    for n in 0..400 {
        messaging
            .send_message(authed(
                SendMessageRequest {
                    to: Some(To::ToUserId(olga_id)),
                    kind: MessageKind::Text.into(),
                    text: text.clone(),
                    client_message_id: format!("flood-{n}"),
                    ..Default::default()
                },
                &grace.access_token,
            ))
            .await
            .expect("grace writes");
    }
    presence(&mut events, olga_id, PresenceStatus::Offline).await;
    drop(olga);
}
