//! The CloudChat token is a canonical credential: it survives a bridge restart and works on
//! another bridge instance, rotates on every login and survives profile updates (a change
//! back to the login value included).

mod common;

use common::{Bridge, Ws, assert_token, js, payload};
use rosetta_testkit::{Backend, TestServer};

fn token_login(token: &str) -> String {
    format!(
        r#"{{"type":"LOGIN_BY_TOKEN","payload":{{"token":{},"username":"alice"}}}}"#,
        js(token)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_login_after_restart() {
    let server = TestServer::start(Backend::Sqlite).await;
    let first = Bridge::start(server.backend()).await;
    let mut a = Ws::connect(first.addr).await;
    let p = payload(
        &a.ask(r#"{"type":"REGISTER","payload":{"username":"alice","password":"secret1","email":"alice@example.com"}}"#)
            .await,
        "REGISTER_SUCCESS",
    );
    let alice = p["userId"].as_i64().expect("id");
    let registered = p["token"].as_str().expect("token").to_owned();
    // a password login rotates the token
    let token = payload(
        &a.ask(r#"{"type":"LOGIN","payload":{"username":"alice","password":"secret1"}}"#)
            .await,
        "LOGIN_SUCCESS",
    )["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_token(&token);
    assert_ne!(token, registered);

    // a profile update keeps the token and never echoes the password (the e-mail is left
    // as it is: changing it needs a code this protocol cannot carry)
    assert_eq!(
        a.ask(&format!(
            r#"{{"type":"UPDATE_PROFILE","payload":{{"userId":{alice},"username":"alice2","password":"placeholder","email":"alice@example.com","avatar":"a.png"}}}}"#
        ))
        .await,
        format!(
            r#"{{"type":"PROFILE_UPDATED_SUCCESS","payload":{{"userId":{alice},"username":"alice2","password":"","email":"alice@example.com","avatar":"a.png"}}}}"#
        )
    );
    // and a change back to the value the user had at login is a change too
    let back = a
        .ask(&format!(
            r#"{{"type":"UPDATE_PROFILE","payload":{{"userId":{alice},"username":"alice","password":"placeholder","email":"alice@example.com","avatar":"a.png"}}}}"#
        ))
        .await;
    assert_eq!(
        payload(&back, "PROFILE_UPDATED_SUCCESS")["username"],
        "alice"
    );

    first.stop().await;
    assert_eq!(a.next().await, None, "the stopped bridge closed the socket");

    let second = Bridge::start(server.backend()).await;
    let mut a = Ws::connect(second.addr).await;
    assert_eq!(
        a.ask(&token_login(&registered)).await,
        r#"{"type":"LOGIN_FAILURE","payload":{"error":"令牌已失效，请重新登录"}}"#
    );
    let reply = a.ask(&token_login(&token)).await;
    let rotated = payload(&reply, "LOGIN_SUCCESS")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_token(&rotated);
    assert_eq!(
        reply,
        format!(
            r#"{{"type":"LOGIN_SUCCESS","payload":{{"userId":{alice},"username":"alice","email":"alice@example.com","avatar":"a.png","token":{}}}}}"#,
            js(&rotated)
        )
    );
    // the presented token was spent by the rotation
    assert_eq!(
        payload(&a.ask(&token_login(&token)).await, "LOGIN_FAILURE")["error"],
        "令牌已失效，请重新登录"
    );
    // a third instance accepts the newest token
    let third = Bridge::start(server.backend()).await;
    let mut other = Ws::connect(third.addr).await;
    payload(&other.ask(&token_login(&rotated)).await, "LOGIN_SUCCESS");

    second.stop().await;
    third.stop().await;
    server.stop().await;
}
