//! A send to a friend's name takes the id from the connection's memory (no `LookupUser` per
//! C_SEND_MSG), and a name that changed hands is not resolved from a stale entry.

use rosetta_bridge_imps::codec::{ClientMessage, cmd};
use rosetta_bridge_kit::{CallCounts, settings::ImpsSettings};
use rosetta_proto::{
    account::v1::{
        DeleteAccountRequest, LoginResponse, PasswordScheme, UpdateProfileRequest,
        account_service_client::AccountServiceClient,
    },
    messaging::v1::{SubscribeResponse, event::Kind},
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};
use tonic::Streaming;

mod common;

use common::*;

/// Long enough that within a test only what the bridge learns changes its memory.
const NAME_CACHE_MS: u64 = 600_000;

/// A node, and a bridge in front of it whose calls are counted.
async fn counted(backend: Backend) -> (TestServer, Bridge, CallCounts) {
    let server = TestServer::start(backend).await;
    let counts = CallCounts::default();
    let settings = ImpsSettings {
        name_cache_ms: NAME_CACHE_MS,
        ..ImpsSettings::default()
    };
    let bridge = bridge_on(server.backend().counting(counts.clone()), settings).await;
    (server, bridge, counts)
}

/// The IMPS user alice (password `pw`) and the gRPC user `friend`, friends; the friend's
/// login and live event stream.
async fn alice_and(
    server: &TestServer,
    bridge: &Bridge,
    friend: &str,
) -> (LoginResponse, Streaming<SubscribeResponse>) {
    register_user(bridge, "alice").await;
    let mut alice = login(bridge, "alice", "pw").await;
    let login = server.user(friend, &format!("pw-{friend}")).await;
    let mut events = events(server, &login.access_token).await;
    befriend_over_grpc(
        server,
        &mut alice,
        "alice",
        friend,
        &login.access_token,
        &mut events,
    )
    .await;
    (login, events)
}

async fn send(alice: &mut Client, friend: &str, text: &str) {
    alice
        .send(ClientMessage::SendMessage {
            user: "alice".into(),
            friend: friend.into(),
            text: text.into(),
        })
        .await;
}

/// The next message in `events`; its text.
async fn received(events: &mut Streaming<SubscribeResponse>) -> String {
    let Kind::Message(message) = next_event(events, |k| matches!(k, Kind::Message(_))).await else {
        unreachable!()
    };
    message.text
}

/// The S_ERROR code the client gets next.
async fn error_code(alice: &mut Client) -> i32 {
    let frame = alice.recv_cmd(cmd::S_ERROR).await;
    Fields::of(&frame).i32()
}

async fn one_lookup_per_friend(backend: Backend) {
    let (server, bridge, counts) = counted(backend).await;
    let (_, mut bob) = alice_and(&server, &bridge, "bob").await;
    // A fresh login remembers nobody yet.
    let mut alice = login(&bridge, "alice", "pw").await;
    let before = counts.get("LookupUser");
    for text in ["one", "two", "three"] {
        send(&mut alice, "bob", text).await;
        assert_eq!(received(&mut bob).await, text);
    }
    assert_eq!(counts.get("LookupUser") - before, 1, "looked up once");
    assert_eq!(counts.get("SendMessage"), 3);

    // The friend list fills the memory: no lookup at all.
    drop(alice);
    let mut alice = login(&bridge, "alice", "pw").await;
    alice.friend_list("alice").await;
    let before = counts.get("LookupUser");
    send(&mut alice, "bob", "four").await;
    assert_eq!(received(&mut bob).await, "four");
    assert_eq!(counts.get("LookupUser"), before);
}
both_backends!(one_lookup, super::one_lookup_per_friend);

async fn a_renamed_friend_is_not_found_by_the_old_name(backend: Backend) {
    let (server, bridge, counts) = counted(backend).await;
    let (bob_login, mut bob) = alice_and(&server, &bridge, "bob").await;
    let mut alice = login(&bridge, "alice", "pw").await;
    send(&mut alice, "bob", "hi").await;
    assert_eq!(received(&mut bob).await, "hi");

    let rename = UpdateProfileRequest {
        username: Some("bobby".into()),
        ..Default::default()
    };
    AccountServiceClient::new(server.channel().await)
        .update_profile(authed(rename, &bob_login.access_token))
        .await
        .expect("renamed");
    // The friend list shows the new name; the old one leads nowhere now.
    alice.friend_list("alice").await;
    let before = counts.get("LookupUser");
    send(&mut alice, "bob", "still there?").await;
    assert_eq!(error_code(&mut alice).await, 2, "NO_SUCH_USER");
    assert_eq!(counts.get("LookupUser"), before + 1, "looked up afresh");
    send(&mut alice, "bobby", "there you are").await;
    assert_eq!(received(&mut bob).await, "there you are");
    assert_eq!(
        counts.get("LookupUser"),
        before + 1,
        "the new name is known"
    );
}
both_backends!(
    renamed,
    super::a_renamed_friend_is_not_found_by_the_old_name
);

async fn a_deleted_friends_name_taken_by_a_stranger(backend: Backend) {
    let (server, bridge, counts) = counted(backend).await;
    let (carol_login, mut carol) = alice_and(&server, &bridge, "carol").await;
    let mut alice = login(&bridge, "alice", "pw").await;
    send(&mut alice, "carol", "hi").await;
    assert_eq!(received(&mut carol).await, "hi");

    let delete = DeleteAccountRequest {
        password: "pw-carol".into(),
        password_scheme: PasswordScheme::Plain.into(),
    };
    AccountServiceClient::new(server.channel().await)
        .delete_account(authed(delete, &carol_login.access_token))
        .await
        .expect("deleted");
    // Somebody else registers the freed name; they are not alice's friend.
    let stranger = server.user("carol", "pw-stranger").await;
    assert_ne!(
        stranger.user.expect("user").id,
        carol_login.user.expect("user").id
    );
    // The friend list shows the deleted friend under her `#<id>` alias.
    alice.friend_list("alice").await;
    let before = counts.get("LookupUser");
    send(&mut alice, "carol", "is that you?").await;
    assert_eq!(error_code(&mut alice).await, 3, "NOT_ALLOWED: not friends");
    assert_eq!(counts.get("LookupUser"), before + 1, "looked up afresh");
}
both_backends!(deleted, super::a_deleted_friends_name_taken_by_a_stranger);
