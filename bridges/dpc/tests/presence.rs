//! Issue 19: a DPC user is online while their chat window's socket is open and goes offline
//! as soon as it closes (they used to stay online for the 300 s presence timeout, or never
//! show online at all unless their session held the lobby stream). A lobby peer watches over
//! gRPC (GetPresence) while the sockets speak and close.

mod common;

use std::time::Duration;

use common::*;
use rosetta_proto::{
    account::v1::{ChangePasswordRequest, PasswordScheme},
    social::v1::PresenceStatus,
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};

/// Far below the service's 300 s presence timeout: only an explicit sign-out meets it.
const WITHIN: Duration = Duration::from_secs(10);

fn line(name: &str, password: &str, text: &str) -> String {
    format!(
        r#"{{"op": 0, "args": {{"name": "{name}", "password": "{password}"}}, "news": "{text}\n"}}"#
    )
}

async fn offline_when_chat_socket_closes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = start_bridge(&server).await;
    let bob = server.user("bob", "xyz789").await;
    let alice = server.user("alice", "abc123").await;
    let alice_id = alice.user.as_ref().expect("user").id;
    // Bob is a lobby peer over gRPC; Alice is the only DPC user, so her session holds the
    // lobby stream, which alone used to keep her online until the presence timeout.
    join_lobby(&server, &bob.access_token).await;
    assert_eq!(
        login(&bridge, "alice", "abc123").await,
        frame(r#"{"op": 0, "test": 0}"#)
    );
    // One window only listens (it belongs to nobody); Alice's speaks, which makes it hers.
    let mut listener = connect(bridge.chat).await;
    let mut alice_chat = connect(bridge.chat).await;
    send(&mut alice_chat, &line("alice", "abc123", "hello")).await;
    loop {
        if read_body(&mut listener).await.contains("alice:hello") {
            break;
        }
    }
    server
        .await_presence(&bob.access_token, alice_id, PresenceStatus::Online, WITHIN)
        .await;

    // Alice closes her window: offline at once, while the bridge and Bob's socket run on.
    drop(alice_chat);
    server
        .await_presence(&bob.access_token, alice_id, PresenceStatus::Offline, WITHIN)
        .await;
}
both_backends!(offline_on_close, super::offline_when_chat_socket_closes);

/// A password change elsewhere revokes the session a chat window speaks with: that window's
/// login ends (it no longer holds its user online), though the socket stays open and still
/// receives the room. The user's new window, with the new password, is then their only one:
/// when it closes they go offline, while the old window is still open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_window_no_longer_holds_its_user_online() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = start_bridge(&server).await;
    let bob = server.user("bob", "xyz789").await;
    let alice = server.user("alice", "abc123").await;
    let alice_id = alice.user.as_ref().expect("user").id;
    join_lobby(&server, &bob.access_token).await;
    let mut listener = connect(bridge.chat).await;
    let mut old_window = connect(bridge.chat).await;
    send(&mut old_window, &line("alice", "abc123", "before")).await;
    until(&mut listener, "alice:before").await;
    server
        .await_presence(&bob.access_token, alice_id, PresenceStatus::Online, WITHIN)
        .await;

    server
        .account()
        .await
        .change_password(authed(
            ChangePasswordRequest {
                current_password: "abc123".into(),
                current_scheme: PasswordScheme::Plain.into(),
                new_password: "new456".into(),
                new_scheme: PasswordScheme::Plain.into(),
            },
            &alice.access_token,
        ))
        .await
        .expect("change password");

    let mut new_window = connect(bridge.chat).await;
    send(&mut new_window, &line("alice", "new456", "after")).await;
    until(&mut listener, "alice:after").await;
    drop(new_window);
    server
        .await_presence(&bob.access_token, alice_id, PresenceStatus::Offline, WITHIN)
        .await;
    // The old window still receives the room.
    send(&mut listener, &line("bob", "xyz789", "still there?")).await;
    until(&mut old_window, "bob:still there?").await;
}

/// Reads pushes until one contains `text`.
async fn until(stream: &mut tokio::net::TcpStream, text: &str) {
    while !read_body(stream).await.contains(text) {}
}
