//! Disabling an account from the admin API ends its live legacy sessions at once, each in its
//! protocol's way (pipe: the connection closes; IMPS: error 7 "logged in elsewhere", then the
//! close; CloudChat: a close frame), refuses the next login on each protocol with that
//! protocol's login refusal, and enabling it lets the user in again. Real sockets to real
//! bridges in front of a real node, on SQLite and on PostgreSQL.

mod clients;

use std::net::SocketAddr;

use clients::{Fields, Imps, Pipe, Ws, bridges};
use rosetta_bridge_imps::codec::{ClientMessage, cmd, error};
use rosetta_proto::{
    admin::v1::{DisableUserRequest, EnableUserRequest, admin_service_client::AdminServiceClient},
    common::v1::{UserRef, user_ref::Ref},
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};

fn by_name(name: &str) -> Option<UserRef> {
    Some(UserRef {
        r#ref: Some(Ref::Username(name.into())),
    })
}

/// An IMPS login of `name`; the first frame of the answer (S_LOGIN_RSP or S_ERROR).
async fn imps_login(addr: SocketAddr, name: &str) -> (Imps, u8, Vec<u8>) {
    let mut imps = Imps::connect(addr).await;
    imps.send(ClientMessage::Login {
        user: name.into(),
        password: format!("pw-{name}"),
    })
    .await;
    let frames = [cmd::S_LOGIN_RSP, cmd::S_ERROR];
    let frame = loop {
        let frame = imps.recv_any().await;
        if frames.contains(&frame.cmd) {
            break frame;
        }
    };
    (imps, frame.cmd, frame.body.to_vec())
}

/// A CloudChat login of `name`; the reply frame.
async fn cloudchat_login(addr: SocketAddr, name: &str) -> (Ws, serde_json::Value) {
    let mut ws = Ws::connect(addr).await;
    let reply = ws
        .call(&format!(
            r#"{{"type":"LOGIN","payload":{{"username":"{name}","password":"pw-{name}"}}}}"#
        ))
        .await;
    (ws, reply)
}

async fn disable_ends_legacy_sessions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridges = bridges::start(&server).await;
    let opal = server.user("opal", "opal-pw").await;
    server.grant_admin("opal").await;
    let mut admin = AdminServiceClient::new(server.channel().await);

    // A user logged in on each protocol.
    let (mut pia, _, _) = Pipe::user(bridges.pipe, "pia").await;
    let mut ivan = Imps::connect(bridges.imps).await;
    ivan.send(ClientMessage::Register {
        user: "ivan".into(),
        password: "pw-ivan".into(),
        gender: 1,
        email: "ivan@example.cn".into(),
    })
    .await;
    ivan.recv(cmd::S_REGISTER).await;
    drop(ivan);
    let (mut ivan, answer, _) = imps_login(bridges.imps, "ivan").await;
    assert_eq!(answer, cmd::S_LOGIN_RSP);
    let mut cara = Ws::connect(bridges.cloudchat).await;
    let registered = cara
        .call(r#"{"type":"REGISTER","payload":{"username":"cara","password":"pw-cara","email":"cara@example.com"}}"#)
        .await;
    assert_eq!(registered["type"], "REGISTER_SUCCESS", "{registered}");
    drop(cara);
    let (mut cara, reply) = cloudchat_login(bridges.cloudchat, "cara").await;
    assert_eq!(reply["type"], "LOGIN_SUCCESS", "{reply}");

    for name in ["pia", "ivan", "cara"] {
        let ended = admin
            .disable_user(authed(
                DisableUserRequest {
                    user: by_name(name),
                    note: String::new(),
                },
                &opal.access_token,
            ))
            .await
            .expect("disable")
            .into_inner();
        assert!(ended.sessions_ended >= 1, "{name}: {ended:?}");
    }

    // Each live connection ends in its protocol's way.
    pia.closed().await;
    let last = ivan.closed().await;
    let told = last
        .iter()
        .find(|f| f.cmd == cmd::S_ERROR)
        .expect("IMPS is told before the close");
    assert_eq!(Fields(&told.body).i32(), error::ELSEWHERE);
    assert_eq!(cara.closed().await, Some(1008), "policy close");

    // The next login is refused on each, in its protocol's words.
    let mut pipe = Pipe::connect(bridges.pipe).await;
    assert_eq!(
        pipe.call("login|pia|pw-pia").await,
        "login_error|登录失败！"
    );
    let (_, answer, body) = imps_login(bridges.imps, "ivan").await;
    assert_eq!(answer, cmd::S_ERROR);
    assert_eq!(Fields(&body).i32(), error::BAD_CREDENTIALS);
    let (_, reply) = cloudchat_login(bridges.cloudchat, "cara").await;
    assert_eq!(reply["type"], "LOGIN_FAILURE", "{reply}");
    assert_eq!(reply["payload"]["error"], "登录失败，请重试");

    // Enabled again, each logs in.
    for name in ["pia", "ivan", "cara"] {
        admin
            .enable_user(authed(
                EnableUserRequest {
                    user: by_name(name),
                    note: String::new(),
                },
                &opal.access_token,
            ))
            .await
            .expect("enable");
    }
    let login = pipe.call("login|pia|pw-pia").await;
    assert!(login.starts_with("login_succ|"), "{login}");
    let (_, answer, _) = imps_login(bridges.imps, "ivan").await;
    assert_eq!(answer, cmd::S_LOGIN_RSP);
    let (_, reply) = cloudchat_login(bridges.cloudchat, "cara").await;
    assert_eq!(reply["type"], "LOGIN_SUCCESS", "{reply}");
    server.stop().await;
}
both_backends!(
    disable_ends_legacy_sessions,
    super::disable_ends_legacy_sessions
);
