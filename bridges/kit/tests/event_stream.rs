//! The kit's event stream against a real node: a stream cut on the network is reopened after
//! the newest event seen (nothing sent meanwhile is lost or repeated), and a revoked session
//! ends the stream instead of being retried forever.

use std::{sync::Arc, time::Duration};

use rosetta_bridge_kit::{Backend, EventStream, UserSession};
use rosetta_proto::{
    account::v1::LogoutRequest,
    messaging::v1::{
        Event, MessageKind, SendMessageRequest, event,
        messaging_service_client::MessagingServiceClient, send_message_request,
    },
    social::v1::{
        CreateGroupRequest, JoinPublicGroupRequest, social_service_client::SocialServiceClient,
    },
};
use rosetta_testkit::{TestServer, authed, both_backends, relay::Relay};

/// Longest wait for something the test expects to happen.
const PATIENCE: Duration = Duration::from_secs(10);

async fn next(events: &mut EventStream) -> Option<Event> {
    tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("an event or the end within the patience")
}

/// The next message event's text, skipping other events (presence, group changes).
async fn next_text(events: &mut EventStream) -> String {
    loop {
        if let Some(event::Kind::Message(message)) =
            next(events).await.expect("the stream goes on").kind
        {
            return message.text;
        }
    }
}

async fn resumes_after_a_cut(backend: rosetta_testkit::Backend) {
    let server = TestServer::start(backend).await;
    let relay = Relay::start(server.addr).await;
    let login = server.user("alice", "secret-pw-1").await;
    let token = login.access_token.clone();
    let via_relay = Backend::connect_lazy(&format!("http://{}", relay.addr)).expect("endpoint");
    let session = Arc::new(UserSession::new(via_relay, login));
    let mut events = EventStream::open(session, PATIENCE)
        .await
        .expect("subscribed");

    let channel = server.channel().await;
    let group = SocialServiceClient::new(channel.clone())
        .create_group(authed(
            CreateGroupRequest {
                name: "notes".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("group")
        .into_inner()
        .id;
    let messaging = MessagingServiceClient::new(channel);
    let send = |text: &'static str| {
        let (mut messaging, token) = (messaging.clone(), token.clone());
        async move {
            messaging
                .send_message(authed(
                    SendMessageRequest {
                        to: Some(send_message_request::To::ToGroupId(group)),
                        kind: MessageKind::Text.into(),
                        text: text.into(),
                        client_message_id: text.into(),
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .expect("sent");
        }
    };

    send("before").await;
    assert_eq!(next_text(&mut events).await, "before");
    relay.cut();
    // Sent while the stream is down: it comes from the replay after the newest event seen.
    send("during").await;
    assert_eq!(next_text(&mut events).await, "during");
    send("after").await;
    assert_eq!(next_text(&mut events).await, "after", "nothing repeated");
    assert!(
        relay.accepted() >= 2,
        "the stream was reopened on a new connection"
    );
    assert!(!events.revoked());
}
both_backends!(resume_after_a_cut, super::resumes_after_a_cut);

async fn ends_when_revoked(backend: rosetta_testkit::Backend) {
    let server = TestServer::start(backend).await;
    let login = server.user("bob", "secret-pw-2").await;
    let token = login.access_token.clone();
    let session = Arc::new(UserSession::new(server.backend(), login));
    let mut events = EventStream::open(session, PATIENCE)
        .await
        .expect("subscribed");

    server
        .account()
        .await
        .logout(authed(LogoutRequest {}, &token))
        .await
        .expect("logged out elsewhere");
    while next(&mut events).await.is_some() {}
    assert!(events.revoked(), "the end is the revocation, not a break");
    assert!(
        next(&mut events).await.is_none(),
        "a revoked stream is not retried"
    );
}
both_backends!(revoked_session, super::ends_when_revoked);

/// A large group's messages are not in the user's log: the stream resumes them by the
/// conversation cursors the kit keeps, with nothing lost and nothing repeated.
async fn resumes_a_large_group_after_a_cut(backend: rosetta_testkit::Backend) {
    // Groups of more than one member are large here.
    let server = TestServer::start_with(backend, |config| {
        config.messaging.group_fanout_max_members = 1;
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let alice = server.user("alice", "secret-pw-1").await;
    let bob = server.user("bob", "secret-pw-2").await;
    let via_relay = Backend::connect_lazy(&format!("http://{}", relay.addr)).expect("endpoint");
    let session = Arc::new(UserSession::new(via_relay, alice.clone()));
    let mut events = EventStream::open(session, PATIENCE)
        .await
        .expect("subscribed");

    let channel = server.channel().await;
    let mut social = SocialServiceClient::new(channel.clone());
    let mut group = 0;
    for who in [&alice, &bob] {
        group = social
            .join_public_group(authed(
                JoinPublicGroupRequest {
                    slug: "dpc-lobby".into(),
                    ..Default::default()
                },
                &who.access_token,
            ))
            .await
            .expect("joined")
            .into_inner()
            .id;
    }
    let messaging = MessagingServiceClient::new(channel);
    let send = |text: &'static str| {
        let (mut messaging, token) = (messaging.clone(), bob.access_token.clone());
        async move {
            messaging
                .send_message(authed(
                    SendMessageRequest {
                        to: Some(send_message_request::To::ToGroupId(group)),
                        kind: MessageKind::Text.into(),
                        text: text.into(),
                        client_message_id: text.into(),
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .expect("sent");
        }
    };

    send("before").await;
    let before = next_event_with_text(&mut events).await;
    assert_eq!(
        (before.seq, before.text.as_str()),
        (0, "before"),
        "read by cursor: no log seq"
    );
    relay.cut();
    send("during 1").await;
    send("during 2").await;
    // Without the cursor the group would resume from the read mark and repeat "before".
    assert_eq!(next_text(&mut events).await, "during 1");
    assert_eq!(next_text(&mut events).await, "during 2");
    send("after").await;
    assert_eq!(next_text(&mut events).await, "after", "nothing repeated");
    assert!(relay.accepted() >= 2, "the stream was reopened");
}
both_backends!(
    large_group_after_a_cut,
    super::resumes_a_large_group_after_a_cut
);

struct Texted {
    seq: u64,
    text: String,
}

async fn next_event_with_text(events: &mut EventStream) -> Texted {
    loop {
        let event = next(events).await.expect("the stream goes on");
        if let Some(event::Kind::Message(message)) = event.kind {
            return Texted {
                seq: event.seq,
                text: message.text,
            };
        }
    }
}
