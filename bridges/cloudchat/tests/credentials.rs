//! Recovery credentials over the CloudChat WebSocket (issue 18, item 5): UPDATE_PROFILE cannot
//! change the e-mail address without a code sent to it (the protocol cannot carry one), and a
//! password changed elsewhere ends the CloudChat token. On SQLite and PostgreSQL.

mod common;

use common::{Bridge, Ws, change_password, js, payload, register};
use rosetta_proto::account::v1::{
    GetMyProfileRequest, LoginRequest, PasswordScheme, login_request::Identifier,
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};

async fn email_change_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = Bridge::start(server.backend()).await;
    let (alice, _) = register(bridge.addr, "alice", "secret1").await;
    let (mut ws, _) = common::login(bridge.addr, "alice", "secret1").await;

    let reply = ws
        .ask(&format!(
            r#"{{"type":"UPDATE_PROFILE","payload":{{"userId":{alice},"username":"alice","password":"placeholder","email":"mallory@example.com","avatar":"b.png"}}}}"#
        ))
        .await;
    assert_eq!(
        reply,
        r#"{"type":"PROFILE_UPDATED_FAILED","payload":{"error":"修改邮箱需要验证码，邮箱未修改"}}"#
    );

    // The e-mail is unchanged; the avatar of the same request did change.
    let mut account = server.account().await;
    let session = account
        .login(LoginRequest {
            identifier: Some(Identifier::Username("alice".into())),
            password: "secret1".into(),
            password_scheme: PasswordScheme::Plain.into(),
            client: "test".into(),
        })
        .await
        .expect("login")
        .into_inner();
    let me = account
        .get_my_profile(authed(GetMyProfileRequest {}, &session.access_token))
        .await
        .expect("profile")
        .into_inner();
    assert_eq!(
        (me.email.as_str(), me.avatar.as_str()),
        ("alice@example.com", "b.png")
    );
    bridge.stop().await;
    server.stop().await;
}
both_backends!(email_change_is_refused, super::email_change_is_refused);

async fn password_change_ends_the_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = Bridge::start(server.backend()).await;
    register(bridge.addr, "alice", "secret1").await;
    // The victim's browser stays logged in, holding the token a thief may have copied.
    let mut browser = Ws::connect(bridge.addr).await;
    let token = payload(
        &browser
            .ask(r#"{"type":"LOGIN","payload":{"username":"alice","password":"secret1"}}"#)
            .await,
        "LOGIN_SUCCESS",
    )["token"]
        .as_str()
        .expect("token")
        .to_owned();

    change_password(&server, "alice", "secret1", "secret2").await;

    let mut ws = Ws::connect(bridge.addr).await;
    let reply = ws
        .ask(&format!(
            r#"{{"type":"LOGIN_BY_TOKEN","payload":{{"token":{},"username":"alice"}}}}"#,
            js(&token)
        ))
        .await;
    assert_eq!(
        payload(&reply, "LOGIN_FAILURE")["error"],
        "令牌已失效，请重新登录"
    );
    drop(browser);
    bridge.stop().await;
    server.stop().await;
}
both_backends!(
    password_change_ends_the_token,
    super::password_change_ends_the_token
);
