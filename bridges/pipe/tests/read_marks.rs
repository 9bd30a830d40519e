//! A message pushed live counts as read: its push is not held up by the read mark, which is
//! written in the background shortly after, before a `get_unread_message` of the same login
//! lists anything, and before the login ends. It records delivery, so the sender gets no read
//! receipt for it.

mod common;

use std::time::Duration;

use common::{Bridge, Client, grpc_friends, live_events};
use rosetta_bridge_kit::{CallCounts, settings::PipeSettings};
use rosetta_proto::{
    account::v1::LoginResponse,
    messaging::v1::{
        GetUnreadCountsRequest, MessageKind, SendMessageRequest, event::Kind,
        messaging_service_client::MessagingServiceClient, send_message_request,
        subscribe_response::Item,
    },
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};
use tokio::time::Instant;

/// How long a test waits for a mark written in the background.
const WITHIN: Duration = Duration::from_secs(10);

fn id(login: &LoginResponse) -> i64 {
    login.user.as_ref().expect("user").id
}

async fn send(server: &TestServer, from: &LoginResponse, to: i64, text: &str) {
    MessagingServiceClient::new(server.channel().await)
        .send_message(authed(
            SendMessageRequest {
                to: Some(send_message_request::To::ToUserId(to)),
                kind: MessageKind::Text.into(),
                text: text.into(),
                client_message_id: format!("test-{text}"),
                ..Default::default()
            },
            &from.access_token,
        ))
        .await
        .expect("sent");
}

/// The user's unread messages over all conversations (read state is the user's, whichever
/// session reads it).
async fn unread(server: &TestServer, user: &LoginResponse) -> u64 {
    MessagingServiceClient::new(server.channel().await)
        .get_unread_counts(authed(GetUnreadCountsRequest {}, &user.access_token))
        .await
        .expect("unread counts")
        .into_inner()
        .total
}

/// Reads the unread count until it is `want`, failing after [`WITHIN`].
async fn until_unread(server: &TestServer, user: &LoginResponse, want: u64) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let seen = unread(server, user).await;
        if seen == want {
            return;
        }
        assert!(Instant::now() < deadline, "{seen} unread, want {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Alice on pipe (with her uid and token as the login gave them), Bob on gRPC, friends.
async fn alice_and_bob(
    bridge: &Bridge,
) -> (Client, (String, String), LoginResponse, LoginResponse) {
    let (alice, bob) = grpc_friends(&bridge.server, "alice", "bob").await;
    let mut pipe = bridge.client().await;
    let (uid, token, count) = pipe.login("alice", "alice-pw").await;
    assert_eq!(count, 0);
    (pipe, (uid, token), alice, bob)
}

async fn marked_soon_after_the_push(backend: Backend) {
    let bridge = Bridge::start(backend, None).await;
    let (mut pipe, _, alice, bob) = alice_and_bob(&bridge).await;
    for text in ["one", "two", "three"] {
        send(&bridge.server, &bob, id(&alice), text).await;
        let push = pipe.recv_until_prefix("message|0|").await;
        assert!(push.ends_with(text), "{push:?}");
    }
    until_unread(&bridge.server, &alice, 0).await;
    bridge.stop().await;
}
both_backends!(
    marked_soon_after_the_push,
    super::marked_soon_after_the_push
);

async fn a_delivery_mark_sends_the_sender_no_receipt(backend: Backend) {
    // A pipe client has no read state: the mark its bridge writes on delivery records the
    // delivery; nobody saw the message read, so Bob is not told it was.
    let bridge = Bridge::start(backend, None).await;
    let (mut pipe, (uid, token), alice, bob) = alice_and_bob(&bridge).await;
    let (_, mut bob_events) = live_events(&bridge.server, &bob.access_token).await;
    send(&bridge.server, &bob, id(&alice), "one").await;
    pipe.recv_until_prefix("message|0|").await;
    until_unread(&bridge.server, &alice, 0).await;
    // Alice's reply comes after the mark in Bob's log: every event before it is in view.
    pipe.send(&format!(
        "send_message|0|{uid}|{:05}|20260101120000|reply|{token}",
        id(&bob)
    ))
    .await;
    loop {
        let item = tokio::time::timeout(WITHIN, bob_events.message())
            .await
            .expect("an event within the wait")
            .expect("stream")
            .expect("item")
            .item;
        let Some(Item::Event(event)) = item else {
            continue;
        };
        match event.kind {
            Some(Kind::ReadReceipt(receipt)) => panic!("Bob was sent a receipt: {receipt:?}"),
            Some(Kind::Message(message)) if message.text == "reply" => break,
            _ => {}
        }
    }
    bridge.stop().await;
}
both_backends!(
    a_delivery_mark_sends_the_sender_no_receipt,
    super::a_delivery_mark_sends_the_sender_no_receipt
);

/// A bridge that writes no read mark in the background within a test (only a listing or a
/// close writes them), its calls counted.
async fn marking_only_on_demand(backend: Backend) -> (Bridge, CallCounts) {
    let settings = PipeSettings {
        read_mark_flush_ms: 3_600_000,
        ..PipeSettings::default()
    };
    let server = TestServer::start(backend).await;
    let calls = CallCounts::default();
    let counted = server.backend().counting(calls.clone());
    (Bridge::with_backend(server, counted, settings).await, calls)
}

async fn marks_written_before_a_listing_and_at_close(backend: Backend) {
    // Only a listing or the close writes the marks.
    let (bridge, calls) = marking_only_on_demand(backend).await;
    let (mut pipe, (uid, token), alice, bob) = alice_and_bob(&bridge).await;

    send(&bridge.server, &bob, id(&alice), "first").await;
    pipe.recv_until_prefix("message|0|").await;
    assert_eq!(unread(&bridge.server, &alice).await, 1, "the mark waits");
    // The listing writes the pending marks first: the pushed message is not listed again.
    pipe.send(&format!("get_unread_message|{uid}|{token}"))
        .await;
    pipe.expect("no_unread_message|0").await;
    assert_eq!(unread(&bridge.server, &alice).await, 0);

    assert_eq!(calls.get("MarkRead"), 1);

    for text in ["second", "third", "fourth"] {
        send(&bridge.server, &bob, id(&alice), text).await;
        pipe.recv_until_prefix("message|0|").await;
    }
    assert_eq!(unread(&bridge.server, &alice).await, 3, "the marks wait");
    drop(pipe);
    until_unread(&bridge.server, &alice, 0).await;
    assert_eq!(
        calls.get("MarkRead"),
        2,
        "one call for the conversation's three marks"
    );
    bridge.stop().await;
}
both_backends!(
    marks_written_before_a_listing_and_at_close,
    super::marks_written_before_a_listing_and_at_close
);

async fn each_login_flushes_only_its_own_marks(backend: Backend) {
    // One batcher serves every login of the bridge; only a login's own listing or close
    // writes its marks.
    let (bridge, calls) = marking_only_on_demand(backend).await;
    let (mut alice_pipe, (uid, token), alice, bob) = alice_and_bob(&bridge).await;
    let (carol, dave) = grpc_friends(&bridge.server, "carol", "dave").await;
    let mut carol_pipe = bridge.client().await;
    let (_, _, count) = carol_pipe.login("carol", "carol-pw").await;
    assert_eq!(count, 0);

    send(&bridge.server, &bob, id(&alice), "to alice").await;
    alice_pipe.recv_until_prefix("message|0|").await;
    send(&bridge.server, &dave, id(&carol), "to carol").await;
    carol_pipe.recv_until_prefix("message|0|").await;
    assert_eq!(
        unread(&bridge.server, &alice).await,
        1,
        "alice's mark waits"
    );
    assert_eq!(
        unread(&bridge.server, &carol).await,
        1,
        "carol's mark waits"
    );

    // Alice's listing writes her mark, not Carol's.
    alice_pipe
        .send(&format!("get_unread_message|{uid}|{token}"))
        .await;
    alice_pipe.expect("no_unread_message|0").await;
    assert_eq!(unread(&bridge.server, &alice).await, 0);
    assert_eq!(
        unread(&bridge.server, &carol).await,
        1,
        "carol's mark still waits"
    );
    assert_eq!(calls.get("MarkRead"), 1);

    // Carol's close writes hers.
    drop(carol_pipe);
    until_unread(&bridge.server, &carol, 0).await;
    assert_eq!(calls.get("MarkRead"), 2);
    drop(alice_pipe);
    bridge.stop().await;
}
both_backends!(
    each_login_flushes_only_its_own_marks,
    super::each_login_flushes_only_its_own_marks
);
