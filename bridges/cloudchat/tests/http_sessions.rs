//! HTTP sessions (the HarmonyOS client) are trusted by the client's address alone, so they are
//! off by default; when on, nothing over them changes who a user is, and HDL_INFO binds only a
//! live HTTP session of the same address. Each test performs the attack over real HTTP
//! requests and WebSockets.

mod common;

use std::{net::IpAddr, time::Duration};

use common::{Bridge, Ws, befriend, login, payload, post, post_from, register};
use rosetta_bridge_kit::settings::CloudChatSettings;
use rosetta_testkit::{Backend, TestServer};

const HTTP_OFF: &str = "服务器未开启 HTTP 登录";
const NOT_BY_ADDRESS: &str = "此连接不能修改用户名或邮箱";

fn login_body(name: &str, password: &str) -> String {
    format!(r#"{{"type":"LOGIN","payload":{{"username":"{name}","password":"{password}"}}}}"#)
}

fn send_body(from: i64, to: i64, text: &str) -> String {
    format!(
        r#"{{"type":"SEND_MESSAGE","payload":{{"tempId":"t-{text}","senderId":{from},"receiverId":{to},"content":"{text}"}}}}"#
    )
}

fn profile_body(user: i64, name: &str, email: &str, avatar: &str) -> String {
    format!(
        r#"{{"type":"UPDATE_PROFILE","payload":{{"userId":{user},"username":"{name}","password":"placeholder","email":"{email}","avatar":"{avatar}"}}}}"#
    )
}

fn contacts_body(user: i64) -> String {
    format!(r#"{{"type":"LOAD_CONTACTS","payload":{{"userId":{user}}}}}"#)
}

fn hdl_info(user: i64) -> String {
    format!(r#"{{"type":"HDL_INFO","payload":{{"userId":{user}}}}}"#)
}

/// Asserts that `ws` is bound to nobody: a command as `user` finds no login.
async fn assert_unbound(ws: &mut Ws, user: i64) {
    assert_eq!(
        ws.ask(&contacts_body(user)).await,
        r#"{"type":"CONTACTS_LOADED_FAILED","payload":{"error":"请先登录"}}"#
    );
}

/// The e-mail address `name` has, as a fresh password login shows it.
async fn email_of(addr: std::net::SocketAddr, name: &str, password: &str) -> String {
    let mut ws = Ws::connect(addr).await;
    let reply = ws.ask(&login_body(name, password)).await;
    payload(&reply, "LOGIN_SUCCESS")["email"]
        .as_str()
        .expect("email")
        .to_owned()
}

/// Default settings: alice logs in over HTTP; mallory, at the same address and with no
/// credentials, names alice's id over HTTP and on a WebSocket (HDL_INFO) and gets nothing.
async fn same_address_gets_nothing_by_default(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = Bridge::start(server.backend()).await;
    let addr = bridge.addr;
    let (alice, _) = register(addr, "alice", "secret1").await;
    let (carol, _) = register(addr, "carol", "secret3").await;
    let (mut a, _) = login(addr, "alice", "secret1").await;
    let (mut c, _) = login(addr, "carol", "secret3").await;
    befriend(&mut c, carol, &mut a, alice).await;
    payload(
        &c.ask(&send_body(carol, alice, "private")).await,
        "MESSAGE_RECEIVED_SELF",
    );
    payload(&a.recv().await, "MESSAGE_RECEIVED_OTHER");

    // alice's phone logs in over HTTP.
    let (status, _, victim_login) = post(addr, "/login", &login_body("alice", "secret1")).await;
    assert_eq!(status, 200);

    // mallory, same address, no credentials.
    let (status, _, body) = post(addr, "/send", &send_body(alice, carol, "forged")).await;
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            r#"{"type":"MESSAGE_SEND_FAILED","payload":{"tempId":"t-forged","error":"请先登录"}}"#
        )
    );
    let load =
        format!(r#"{{"type":"LOAD_MESSAGES","payload":{{"userId":{alice},"targetId":{carol}}}}}"#);
    let (status, _, body) = post(addr, "/load/contacts", &load).await;
    // LOAD_MESSAGES has no failure reply: 200 with an empty body, no history.
    assert_eq!((status, body.as_str()), (200, ""), "history leaked");
    let (status, _, body) = post(
        addr,
        "/profile/update",
        &profile_body(alice, "alice", "mallory@example.com", "default.png"),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            r#"{"type":"PROFILE_UPDATED_FAILED","payload":{"error":"请先登录"}}"#
        )
    );
    assert_eq!(
        email_of(addr, "alice", "secret1").await,
        "alice@example.com"
    );

    // HDL_INFO with alice's id binds nothing: no HDL_GOT, no commands, none of her pushes.
    let mut m = Ws::connect(addr).await;
    m.send(&hdl_info(alice)).await;
    assert_unbound(&mut m, alice).await;
    payload(
        &c.ask(&send_body(carol, alice, "second")).await,
        "MESSAGE_RECEIVED_SELF",
    );
    let pushed = payload(&a.recv().await, "MESSAGE_RECEIVED_OTHER");
    assert_eq!(pushed["content"], "second");
    assert_unbound(&mut m, alice).await;

    // The HTTP login itself was refused: it could only have been used that way.
    assert_eq!(
        victim_login,
        format!(r#"{{"type":"LOGIN_FAILURE","payload":{{"error":"{HTTP_OFF}"}}}}"#)
    );
    let register_body = r#"{"type":"REGISTER","payload":{"username":"dave","password":"secret4","email":"dave@example.com"}}"#;
    let (_, _, body) = post(addr, "/register", register_body).await;
    assert_eq!(
        body,
        format!(r#"{{"type":"REGISTER_FAILURE","payload":{{"error":"{HTTP_OFF}"}}}}"#)
    );

    bridge.stop().await;
    server.stop().await;
}

rosetta_testkit::both_backends!(off_by_default, super::same_address_gets_nothing_by_default);

/// HTTP sessions on: an HTTP login (or a WebSocket bound to it with HDL_INFO) acts in the
/// user's conversations but cannot change their user name or e-mail; the avatar still can.
async fn identity_is_not_changed_by_address(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = Bridge::start_http(server.backend()).await;
    let addr = bridge.addr;
    let (alice, _) = register(addr, "alice", "secret1").await;
    let (_, _, body) = post(addr, "/login", &login_body("alice", "secret1")).await;
    payload(&body, "LOGIN_SUCCESS");

    let refused =
        format!(r#"{{"type":"PROFILE_UPDATED_FAILED","payload":{{"error":"{NOT_BY_ADDRESS}"}}}}"#);
    for update in [
        profile_body(alice, "alice", "mallory@example.com", "default.png"),
        profile_body(alice, "mallory", "alice@example.com", "default.png"),
    ] {
        let (status, _, body) = post(addr, "/profile/update", &update).await;
        assert_eq!((status, body.as_str()), (200, refused.as_str()), "{update}");
    }
    let mut hos = Ws::connect(addr).await;
    assert_eq!(
        hos.ask(&hdl_info(alice)).await,
        format!(r#"{{"type":"HDL_GOT","payload":{{"userId":{alice}}}}}"#)
    );
    assert_eq!(
        hos.ask(&profile_body(
            alice,
            "alice",
            "mallory@example.com",
            "default.png"
        ))
        .await,
        refused
    );
    assert_eq!(
        email_of(addr, "alice", "secret1").await,
        "alice@example.com"
    );

    // The avatar is not who she is: HarmonyOS can still change it.
    let (_, _, body) = post(
        addr,
        "/profile/update",
        &profile_body(alice, "alice", "alice@example.com", "cat.png"),
    )
    .await;
    let updated = payload(&body, "PROFILE_UPDATED_SUCCESS");
    assert_eq!(
        (&updated["avatar"], &updated["email"]),
        (&"cat.png".into(), &"alice@example.com".into())
    );

    bridge.stop().await;
    server.stop().await;
}

rosetta_testkit::both_backends!(
    identity_by_address,
    super::identity_is_not_changed_by_address
);

/// HTTP sessions on: HDL_INFO binds a user only while an HTTP login of theirs from the same
/// address is live: not one from another address, not after LOGOUT, not once it idled out
/// (while a WebSocket bound to it is open it does not idle out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdl_info_needs_a_live_http_session_of_the_address() {
    let server = TestServer::start(Backend::Sqlite).await;
    let idle = Duration::from_millis(1_000);
    let settings = CloudChatSettings {
        http_sessions: true,
        http_session_idle_ms: idle.as_millis() as u64,
        ..CloudChatSettings::default()
    };
    let bridge = Bridge::start_with(server.backend(), settings).await;
    let addr = bridge.addr;
    let (alice, _) = register(addr, "alice", "secret1").await;
    let logged_in = |body: &str| payload(body, "LOGIN_SUCCESS");

    // Another address's login is not this address's.
    let elsewhere: IpAddr = "127.0.0.2".parse().expect("address");
    let (_, _, body) = post_from(addr, elsewhere, "/login", &login_body("alice", "secret1")).await;
    logged_in(&body);
    let mut m = Ws::connect(addr).await;
    m.send(&hdl_info(alice)).await;
    assert_unbound(&mut m, alice).await;
    let (_, _, body) = post_from(addr, elsewhere, "/", &contacts_body(alice)).await;
    payload(&body, "CONTACTS_LOADED");

    // After LOGOUT over HTTP nothing is left to bind.
    let (_, _, body) = post(addr, "/login", &login_body("alice", "secret1")).await;
    logged_in(&body);
    let logout = format!(r#"{{"type":"LOGOUT","payload":{{"userId":{alice}}}}}"#);
    let (status, _, body) = post(addr, "/", &logout).await;
    assert_eq!((status, body.as_str()), (200, ""));
    m.send(&hdl_info(alice)).await;
    assert_unbound(&mut m, alice).await;

    // A login left idle ends: neither HTTP nor HDL_INFO finds it.
    let (_, _, body) = post(addr, "/login", &login_body("alice", "secret1")).await;
    logged_in(&body);
    tokio::time::sleep(idle * 2).await;
    m.send(&hdl_info(alice)).await;
    assert_unbound(&mut m, alice).await;
    let (_, _, body) = post(addr, "/", &contacts_body(alice)).await;
    assert_eq!(
        body,
        r#"{"type":"CONTACTS_LOADED_FAILED","payload":{"error":"请先登录"}}"#
    );

    // One held by an open HDL_INFO WebSocket stays while the app is open.
    let (_, _, body) = post(addr, "/login", &login_body("alice", "secret1")).await;
    logged_in(&body);
    let mut hos = Ws::connect(addr).await;
    payload(&hos.ask(&hdl_info(alice)).await, "HDL_GOT");
    tokio::time::sleep(idle * 2).await;
    let (_, _, body) = post(addr, "/", &contacts_body(alice)).await;
    payload(&body, "CONTACTS_LOADED");

    bridge.stop().await;
    server.stop().await;
}
