//! Event streams are woken by the bus, never polled: over real gRPC, a stream whose queue
//! overflows still gets every event once and in order (SQLite and PostgreSQL); across two
//! processes on PostgreSQL + NATS a message arrives live, and one whose wake-up NATS lost
//! while the connection was down arrives after the reconnection; a split role without NATS is
//! refused.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use rosetta_db::{
    entity::social::friendship,
    sea_orm::{ActiveModelTrait as _, ActiveValue::Set},
};
use rosetta_node::{Config, Node, Role, node::Plugins};
use rosetta_proto::messaging::v1::{
    MessageKind, SendMessageRequest, SubscribeRequest, SubscribeResponse, event::Kind,
    messaging_service_client::MessagingServiceClient, send_message_request::To,
    subscribe_response::Item,
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends, relay::Relay};
use tonic::{Streaming, transport::Channel};

/// Longest wait for something the test expects.
const PATIENCE: Duration = Duration::from_secs(10);

struct User {
    id: i64,
    token: String,
}

async fn user(server: &TestServer, name: &str) -> User {
    let login = server.user(name, "pw").await;
    User {
        id: login.user.expect("user").id,
        token: login.access_token,
    }
}

async fn befriend(server: &TestServer, a: i64, b: i64) {
    let db = rosetta_db::connect(&server.config.database_url())
        .await
        .expect("test connects to the node's database");
    for (user_id, friend_id) in [(a, b), (b, a)] {
        friendship::ActiveModel {
            user_id: Set(user_id),
            friend_id: Set(friend_id),
            since_ms: Set(rosetta_db::now_ms()),
        }
        .insert(&db)
        .await
        .expect("friendship row");
    }
}

async fn send(channel: &Channel, from: &User, to: i64, text: &str) {
    MessagingServiceClient::new(channel.clone())
        .send_message(authed(
            SendMessageRequest {
                to: Some(To::ToUserId(to)),
                kind: MessageKind::Text.into(),
                text: text.into(),
                client_message_id: uuid::Uuid::new_v4().to_string(),
                ..Default::default()
            },
            &from.token,
        ))
        .await
        .expect("sent");
}

/// Bob's stream from the head, once it has caught up.
async fn stream(channel: Channel, who: &User) -> Streaming<SubscribeResponse> {
    let mut stream = MessagingServiceClient::new(channel)
        .subscribe(authed(
            SubscribeRequest {
                after_seq: None,
                ..Default::default()
            },
            &who.token,
        ))
        .await
        .expect("subscribed")
        .into_inner();
    match next_item(&mut stream).await {
        Item::CaughtUp(_) => stream,
        other => panic!("expected CaughtUp first, got {other:?}"),
    }
}

async fn next_item(stream: &mut Streaming<SubscribeResponse>) -> Item {
    tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("an item within the patience")
        .expect("the stream is healthy")
        .expect("the stream is open")
        .item
        .expect("an item")
}

/// The next message's (seq, text), skipping live-only events (presence).
async fn next_message(stream: &mut Streaming<SubscribeResponse>) -> (u64, String) {
    loop {
        if let Item::Event(event) = next_item(stream).await
            && let Some(Kind::Message(message)) = event.kind
        {
            return (event.seq, message.text);
        }
    }
}

/// Bob's client reads nothing while alice sends 16 KiB messages (four at a time): more than
/// the server's outbox, HTTP/2 buffers and bob's two-event queue hold, so his queue overflows
/// and the stream re-reads its log. Then he reads: every message once, in log order.
async fn overflowing_stream_loses_nothing(backend: Backend) {
    const SENDERS: usize = 4;
    const EACH: usize = 100;
    let server = TestServer::start_with(backend, |config| {
        config.messaging.stream_queue = 2;
    })
    .await;
    let (alice, bob) = (user(&server, "alice").await, user(&server, "bob").await);
    befriend(&server, alice.id, bob.id).await;
    let mut bobs = stream(server.channel().await, &bob).await;
    let channel = server.channel().await;
    let alice = Arc::new(alice);
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (channel, alice, to) = (channel.clone(), alice.clone(), bob.id);
            tokio::spawn(async move {
                for i in 0..EACH {
                    let text = format!("{:05}{}", s * EACH + i, "x".repeat(16 * 1024 - 5));
                    send(&channel, &alice, to, &text).await;
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("sender");
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut last_seq = None;
    for _ in 0..SENDERS * EACH {
        let (seq, text) = next_message(&mut bobs).await;
        if let Some(last) = last_seq {
            assert_eq!(seq, last + 1, "no gap, no repeat");
        }
        last_seq = Some(seq);
        assert!(seen.insert(text[..5].to_owned()), "{} twice", &text[..5]);
    }
    assert_eq!(seen.len(), SENDERS * EACH);
}
both_backends!(overflowing_stream, super::overflowing_stream_loses_nothing);

/// A split role that would leave its streams silent (no shared bus) does not start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_roles_without_nats_are_refused() {
    for role in [Role::Messaging, Role::Social] {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let err = match Node::build(&config, role, Plugins::default()).await {
            Ok(_) => panic!("{role:?} without nats_url started"),
            Err(err) => format!("{err:#}"),
        };
        assert!(err.contains("nats_url"), "{role:?}: {err}");
    }
}

fn nats_url() -> String {
    std::env::var("ROSETTA_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Two processes on one PostgreSQL database and NATS, the first one's NATS connection
/// through a relay: bob streams from the first, alice sends through the second. A message
/// arrives live (no poll exists to carry it). Then NATS's wake-up for the next message is
/// lost on the relay and the connection cut: after the reconnection the first process
/// re-reads, and the message arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wake_up_lost_with_the_connection_is_made_good() {
    let url = nats_url();
    let target = url
        .trim_start_matches("nats://")
        .parse::<SocketAddr>()
        .expect("ROSETTA_TEST_NATS_URL is nats://<ip>:<port>");
    let relay = Relay::start(target).await;
    let subject = format!("rosetta.test.{}", uuid::Uuid::new_v4().simple());
    let first = TestServer::start_with(Backend::Postgres, |c| {
        c.nats_url = Some(format!("nats://{}", relay.addr));
        c.messaging.bus_subject = subject.clone();
    })
    .await;
    let (db_url, dir) = (first.config.database_url(), first.config.data_dir.clone());
    let second = TestServer::start_with(Backend::Postgres, |c| {
        c.nats_url = Some(url.clone());
        c.messaging.bus_subject = subject.clone();
        c.database_url = Some(db_url);
        // The same token keys, as a deployment mounts them.
        c.data_dir = dir;
    })
    .await;
    let (alice, bob) = (user(&first, "alice").await, user(&first, "bob").await);
    befriend(&first, alice.id, bob.id).await;
    let mut bobs = stream(first.channel().await, &bob).await;
    let via_second = second.channel().await;

    send(&via_second, &alice, bob.id, "live").await;
    assert_eq!(next_message(&mut bobs).await.1, "live");

    relay.mute(true);
    send(&via_second, &alice, bob.id, "lost wake-up").await;
    // NATS sent the wake-up towards the first process, and the relay dropped it.
    relay.until_discarded(PATIENCE).await;
    relay.mute(false);
    relay.cut();
    assert_eq!(next_message(&mut bobs).await.1, "lost wake-up");

    send(&via_second, &alice, bob.id, "after").await;
    assert_eq!(next_message(&mut bobs).await.1, "after");
}
