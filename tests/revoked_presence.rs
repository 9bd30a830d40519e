//! A revoked session cannot sign its user out (its token no longer works), so the bridge that
//! held it cannot either. The messaging service does it: when the stream of a revoked session
//! was the user's last one, their friends see them OFFLINE at once, not when presence times
//! out. Over real gRPC, on SQLite and on PostgreSQL.

use std::time::Duration;

use rosetta_db::entity::social::friendship;
use rosetta_proto::{
    Reason,
    account::v1::{ChangePasswordRequest, LoginRequest, PasswordScheme, login_request::Identifier},
    messaging::v1::{
        SubscribeRequest, SubscribeResponse, event::Kind,
        messaging_service_client::MessagingServiceClient, subscribe_response::Item,
    },
    social::v1::PresenceStatus,
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};
use sea_orm::{ActiveModelTrait, Set};
use tonic::Streaming;

/// Longer than the test: an OFFLINE seen within it cannot come from the presence timeout.
const PRESENCE_TIMEOUT_MS: u64 = 600_000;
const PATIENCE: Duration = Duration::from_secs(10);

async fn subscribe(server: &TestServer, token: &str) -> Streaming<SubscribeResponse> {
    MessagingServiceClient::new(server.channel().await)
        .subscribe(authed(
            SubscribeRequest {
                after_seq: None,
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("subscribed")
        .into_inner()
}

/// Reads `stream` until it shows `user` with `status`.
async fn sees(stream: &mut Streaming<SubscribeResponse>, user: i64, status: PresenceStatus) {
    loop {
        let item = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .unwrap_or_else(|_| panic!("{status:?} of {user} not seen in time"))
            .expect("the stream is healthy")
            .expect("the stream is open")
            .item;
        if let Some(Item::Event(event)) = item
            && let Some(Kind::PresenceChanged(presence)) = event.kind
            && presence.user_id == user
            && presence.status() == status
        {
            return;
        }
    }
}

async fn revoked_user_goes_offline(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.messaging.presence_timeout_ms = PRESENCE_TIMEOUT_MS;
    })
    .await;
    let alice = server.user("alice", "old-password").await;
    let bob = server.user("bob", "bob-password").await;
    let (alice_id, bob_id) = (alice.user.unwrap().id, bob.user.unwrap().id);
    let db = rosetta_db::connect(&server.config.database_url())
        .await
        .expect("test connects to the node's database");
    for (user_id, friend_id) in [(alice_id, bob_id), (bob_id, alice_id)] {
        friendship::ActiveModel {
            user_id: Set(user_id),
            friend_id: Set(friend_id),
            since_ms: Set(rosetta_db::now_ms()),
        }
        .insert(&db)
        .await
        .expect("friendship row");
    }

    let mut watching = subscribe(&server, &bob.access_token).await;
    // Alice's device holds a stream with the session about to be revoked.
    let mut device = subscribe(&server, &alice.access_token).await;
    sees(&mut watching, alice_id, PresenceStatus::Online).await;

    // From another session, Alice changes her password: the device's session ends.
    let mut account = server.account().await;
    let other = account
        .login(LoginRequest {
            identifier: Some(Identifier::Username("alice".into())),
            password: "old-password".into(),
            password_scheme: PasswordScheme::Plain.into(),
            client: "test".into(),
        })
        .await
        .expect("second login")
        .into_inner();
    account
        .change_password(authed(
            ChangePasswordRequest {
                current_password: "old-password".into(),
                new_password: "new-password".into(),
                ..Default::default()
            },
            &other.access_token,
        ))
        .await
        .expect("password changed");

    let ended = loop {
        match tokio::time::timeout(PATIENCE, device.message())
            .await
            .expect("the revoked stream ends in time")
        {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without saying why"),
            Err(status) => break status,
        }
    };
    assert_eq!(Reason::of(&ended), Some(Reason::SessionRevoked));
    sees(&mut watching, alice_id, PresenceStatus::Offline).await;
}
both_backends!(revoked_session_signs_out, super::revoked_user_goes_offline);
