//! A DPC client sends its password with every line and the bridge remembers a login for a
//! while; a password changed elsewhere must stop the old one at once (issue 18, item 5). Over
//! the bridge's real sockets, on SQLite and PostgreSQL.

mod common;

use common::*;
use rosetta_proto::account::v1::{
    ChangePasswordRequest, LoginRequest, PasswordScheme, login_request::Identifier,
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};

fn line(name: &str, password: &str, news: &str) -> String {
    format!(
        r#"{{"op": 0, "args": {{"name": "{name}", "password": "{password}"}}, "news": "{news}\n"}}"#
    )
}

async fn old_password_stops_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = start_bridge(&server).await;
    register(&server, &bridge, "alice", "abc123", "13800138000").await;
    register(&server, &bridge, "bob", "xyz789", "13800138001").await;
    assert_eq!(
        login(&bridge, "alice", "abc123").await,
        frame(r#"{"op": 0, "test": 0}"#)
    );

    // Alice's remembered login carries her lines; Bob sees them.
    let mut bob = connect(bridge.chat).await;
    let mut alice = connect(bridge.chat).await;
    send(&mut alice, &line("alice", "abc123", "before")).await;
    assert!(read_body(&mut bob).await.contains("alice:before"));

    // Alice changes her password from another client (she suspects a leak).
    let mut account = server.account().await;
    let grpc = account
        .login(LoginRequest {
            identifier: Some(Identifier::Username("alice".into())),
            password: "abc123".into(),
            password_scheme: PasswordScheme::Plain.into(),
            client: "test".into(),
        })
        .await
        .expect("login")
        .into_inner();
    account
        .change_password(authed(
            ChangePasswordRequest {
                current_password: "abc123".into(),
                current_scheme: PasswordScheme::Plain.into(),
                new_password: "new456".into(),
                new_scheme: PasswordScheme::Plain.into(),
            },
            &grpc.access_token,
        ))
        .await
        .expect("change password");

    // The old password: the line is dropped and a login is refused. Lines on one socket are
    // handled in order, so Bob's next line being the one sent with the new password shows
    // the old one was not delivered.
    send(&mut alice, &line("alice", "abc123", "stolen")).await;
    send(&mut alice, &line("alice", "new456", "after")).await;
    let next = read_body(&mut bob).await;
    assert!(
        next.contains("alice:after"),
        "the old password's line must be refused, got {next}"
    );
    assert_eq!(
        login(&bridge, "alice", "abc123").await,
        frame(r#"{"op": 0, "test": 1}"#),
        "the old password must not log in"
    );
    assert_eq!(
        login(&bridge, "alice", "new456").await,
        frame(r#"{"op": 0, "test": 0}"#)
    );
}
both_backends!(
    old_password_stops_at_once,
    super::old_password_stops_at_once
);
