//! The account service end to end over real gRPC, on SQLite and on PostgreSQL.

mod support;

use rosetta_proto::account::v1::{
    GetMyProfileRequest, LoginRequest, PasswordScheme, RegisterRequest, login_request::Identifier,
};
use support::{Backend, TestServer, authed, reason};
use tonic::Code;

fn login_req(username: &str, password: &str, scheme: PasswordScheme) -> LoginRequest {
    LoginRequest {
        identifier: Some(Identifier::Username(username.into())),
        password: password.into(),
        password_scheme: scheme.into(),
        client: "test".into(),
    }
}

async fn register_login_and_profile(backend: Backend) {
    let server = TestServer::start(backend).await;
    let session = server.user("alice", "correct horse").await;
    assert!(
        session.user.as_ref().unwrap().id >= 100,
        "user ids start at 100"
    );
    let mut account = server.account().await;
    let me = account
        .get_my_profile(authed(GetMyProfileRequest {}, &session.access_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.username, "alice");
    assert_eq!(me.nickname, "ALICE");

    let dup = account
        .register(RegisterRequest {
            username: "alice".into(),
            password: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    assert_eq!(reason(&dup), "USERNAME_TAKEN");

    let wrong = account
        .login(login_req("alice", "wrong", PasswordScheme::Plain))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(reason(&wrong), "BAD_CREDENTIALS");
    server.stop().await;
}
both_backends!(
    register_login_and_profile,
    super::register_login_and_profile
);
