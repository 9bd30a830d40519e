//! The life of a pipe login as the services see it: a revoked session ends it, a second login
//! of the same user takes it over (as the real server's online map did), and closing the
//! socket shows the user offline at once. A gRPC friend watches over its event stream.

mod common;

use common::{Bridge, PATIENCE, grpc_friends, live_events};
use rosetta_bridge_kit::settings::PipeSettings;
use rosetta_proto::{
    account::v1::{ChangePasswordRequest, LoginResponse, PasswordScheme},
    messaging::v1::{
        Event, GetPresenceRequest, MessageKind, SendMessageRequest, SubscribeResponse, event::Kind,
        messaging_service_client::MessagingServiceClient, send_message_request::To,
        subscribe_response::Item,
    },
    social::v1::PresenceStatus,
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};
use tokio::io::AsyncReadExt as _;
use tonic::{Streaming, transport::Channel};

/// A gRPC user with a live event stream.
struct Watcher {
    login: LoginResponse,
    messaging: MessagingServiceClient<Channel>,
    events: Streaming<SubscribeResponse>,
}

impl Watcher {
    async fn start(server: &TestServer, login: LoginResponse) -> Self {
        let (messaging, events) = live_events(server, &login.access_token).await;
        Self {
            login,
            messaging,
            events,
        }
    }

    /// Waits for `user`'s presence to change to `status` (other events are skipped).
    async fn presence(&mut self, user: i64, status: PresenceStatus) {
        loop {
            let item = tokio::time::timeout(PATIENCE, self.events.message())
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

    async fn status_of(&mut self, user: i64) -> i32 {
        self.messaging
            .get_presence(authed(
                GetPresenceRequest {
                    user_ids: vec![user],
                },
                &self.login.access_token,
            ))
            .await
            .expect("presence")
            .into_inner()
            .presences
            .first()
            .map_or(-1, |p| p.status)
    }
}

/// Expects the bridge to close `client`'s connection (end of stream, nothing before it).
async fn expect_closed(client: &mut common::Client) {
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(PATIENCE, client.stream.read(&mut buf))
        .await
        .expect("the bridge closes the connection in time")
        .unwrap_or(0);
    assert_eq!(
        n,
        0,
        "expected the close, got {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
}

/// A password change elsewhere revokes the pipe login's session: its event stream ends for
/// good, and the bridge ends the login and closes the connection (the protocol has no
/// message for it; the client must log in again, as after any reconnect). Before, the
/// bridge resubscribed with the dead session every second, for ever.
async fn revoked_session_ends_the_login(backend: Backend) {
    let bridge = Bridge::start(backend, None).await;
    let alice = bridge.server.user("alice", "alice-pw").await;
    let mut pipe = bridge.client().await;
    let (uid, token, _) = pipe.login("alice", "alice-pw").await;
    bridge
        .server
        .account()
        .await
        .change_password(authed(
            ChangePasswordRequest {
                current_password: "alice-pw".into(),
                current_scheme: PasswordScheme::Plain.into(),
                new_password: "changed-pw".into(),
                new_scheme: PasswordScheme::Plain.into(),
            },
            &alice.access_token,
        ))
        .await
        .expect("password changed over gRPC");
    expect_closed(&mut pipe).await;
    // The token of the ended login is refused everywhere.
    let mut other = bridge.client().await;
    other.send(&format!("get_user_friend|{uid}|{token}")).await;
    other.expect("get_user_friend|您无权进行此操作！").await;
    other.login("alice", "changed-pw").await;
    bridge.stop().await;
}
both_backends!(revoked_session, super::revoked_session_ends_the_login);

/// A second login of the same user takes the user over, as on the real server: pushes go to
/// the newer connection, the older one stays open but its token is refused, and the user
/// stays online throughout.
async fn second_login_takes_the_user_over(backend: Backend) {
    let bridge = Bridge::start(backend, None).await;
    let (_, bob) = grpc_friends(&bridge.server, "alice", "bob").await;
    let mut watcher = Watcher::start(&bridge.server, bob).await;
    let mut first = bridge.client().await;
    let (uid, old, _) = first.login("alice", "alice-pw").await;
    let alice_id: i64 = uid.parse().expect("uid");
    watcher.presence(alice_id, PresenceStatus::Online).await;
    let mut second = bridge.client().await;
    let (_, new, _) = second.login("alice", "alice-pw").await;
    // The older connection is still open and answers in protocol terms.
    first.send(&format!("get_user_friend|{uid}|{old}")).await;
    first.expect("get_user_friend|您无权进行此操作！").await;
    assert_eq!(
        watcher.status_of(alice_id).await,
        PresenceStatus::Online as i32,
        "the user moved, they did not leave"
    );
    watcher
        .messaging
        .send_message(authed(
            SendMessageRequest {
                to: Some(To::ToUserId(alice_id)),
                kind: MessageKind::Text.into(),
                text: "to_the_new_one".into(),
                client_message_id: "lifecycle-1".into(),
                ..Default::default()
            },
            &watcher.login.access_token,
        ))
        .await
        .expect("bob writes");
    let pushed = second.recv_until_prefix("message|0|").await;
    assert!(pushed.ends_with("|to_the_new_one"), "{pushed:?}");
    // Nothing went to the older connection: its next reply is the reply itself.
    first.send(&format!("get_user_friend|{uid}|{new}")).await;
    first.expect("friendinfo|1|").await;
    bridge.stop().await;
}
both_backends!(kick, super::second_login_takes_the_user_over);

/// Closing the pipe socket shows the user offline to a friend at once (not after the
/// presence timeout of several minutes).
async fn offline_right_after_close(backend: Backend) {
    let bridge = Bridge::start(backend, None).await;
    let (_, bob) = grpc_friends(&bridge.server, "alice", "bob").await;
    let mut watcher = Watcher::start(&bridge.server, bob).await;
    let mut pipe = bridge.client().await;
    let (uid, _, _) = pipe.login("alice", "alice-pw").await;
    let alice_id: i64 = uid.parse().expect("uid");
    watcher.presence(alice_id, PresenceStatus::Online).await;
    drop(pipe);
    watcher.presence(alice_id, PresenceStatus::Offline).await;
    bridge.stop().await;
}
both_backends!(offline_on_close, super::offline_right_after_close);

/// A client that stops reading while pushes pile up is disconnected once a write has waited
/// for it longer than the write deadline (its login ends: a friend sees it offline), instead
/// of holding its connection and queue for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_disconnected() {
    let settings = PipeSettings {
        write_gap_ms: 0,
        ..PipeSettings::default()
    };
    let bridge = Bridge::start_with(Backend::Sqlite, None, settings).await;
    let (_, bob) = grpc_friends(&bridge.server, "alice", "bob").await;
    let mut watcher = Watcher::start(&bridge.server, bob).await;
    let mut pipe = bridge.client().await;
    let (uid, _, _) = pipe.login("alice", "alice-pw").await;
    let alice_id: i64 = uid.parse().expect("uid");
    watcher.presence(alice_id, PresenceStatus::Online).await;
    // Far more than the socket buffers of both ends hold; alice never reads.
    let text = "x".repeat(16_000);
    for n in 0..400 {
        watcher
            .messaging
            .send_message(authed(
                SendMessageRequest {
                    to: Some(To::ToUserId(alice_id)),
                    kind: MessageKind::Text.into(),
                    text: text.clone(),
                    client_message_id: format!("flood-{n}"),
                    ..Default::default()
                },
                &watcher.login.access_token,
            ))
            .await
            .expect("bob writes");
    }
    watcher.presence(alice_id, PresenceStatus::Offline).await;
    drop(pipe);
    bridge.stop().await;
}
