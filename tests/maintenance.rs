//! Maintenance mode (issue 23) end to end, on SQLite and on PostgreSQL: while it is on, a new
//! login is refused on each protocol with that protocol's "server busy" reply (pipe
//! `login_error|登录失败！`, IMPS error 3, CloudChat `LOGIN_FAILURE` "服务器维护中，请稍后再试",
//! DPC `test 2`, OurChat server status 1 and login status 2, gRPC UNAVAILABLE / MAINTENANCE
//! with a RetryInfo); sessions already open are kept, or ended by a drain (pipe, IMPS,
//! CloudChat and OurChat clients disconnected in their protocols' ways); an admin still logs
//! in; turned off, logins work again; each switch is in the audit log. Real sockets to real
//! bridges in front of a real node.

mod clients;

use std::{net::SocketAddr, time::Duration};

use clients::{
    Fields, Imps, PATIENCE, Pipe, Ws,
    bridges::{self, Bridges, sha256_hex},
};
use rosetta_bridge_imps::codec::{ClientMessage, cmd, error};
use rosetta_proto::{
    Reason,
    account::v1::{GetMyProfileRequest, LoginRequest, PasswordScheme, login_request::Identifier},
    admin::v1::{
        ListAuditLogRequest, SetMaintenanceRequest, SetMaintenanceResponse,
        admin_service_client::AdminServiceClient,
    },
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends, reason};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt as _;

/// A DPC auth request as the client makes it (one connection, one frame: a 15-byte
/// space-padded length, then the JSON); the reply's JSON.
async fn dpc_auth(addr: SocketAddr, json: &str) -> Value {
    let mut stream = TcpStream::connect(addr).await.expect("DPC auth accepts");
    let header = format!("{:<15}", json.len());
    stream.write_all(header.as_bytes()).await.expect("header");
    stream.write_all(json.as_bytes()).await.expect("body");
    let read = async {
        let mut header = [0u8; 15];
        stream.read_exact(&mut header).await?;
        let len: usize = std::str::from_utf8(&header)
            .expect("ASCII header")
            .trim()
            .parse()
            .expect("a length");
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    };
    let body = tokio::time::timeout(PATIENCE, read)
        .await
        .expect("a DPC reply in time")
        .expect("a DPC reply");
    serde_json::from_slice(&body).expect("JSON")
}

fn dpc_login(name: &str, password: &str) -> String {
    format!(r#"{{"op": 0, "args": {{"user_name": "{name}", "user_pwd": "{password}"}}}}"#)
}

/// An IMPS login; the first S_LOGIN_RSP or S_ERROR frame of the answer.
async fn imps_login(addr: SocketAddr, name: &str) -> (u8, Vec<u8>) {
    let mut imps = Imps::connect(addr).await;
    imps.send(ClientMessage::Login {
        user: name.into(),
        password: format!("pw-{name}"),
    })
    .await;
    loop {
        let frame = imps.recv_any().await;
        if [cmd::S_LOGIN_RSP, cmd::S_ERROR].contains(&frame.cmd) {
            return (frame.cmd, frame.body.to_vec());
        }
    }
}

async fn cloudchat_login(addr: SocketAddr, name: &str) -> Value {
    let mut ws = Ws::connect(addr).await;
    ws.call(&format!(
        r#"{{"type":"LOGIN","payload":{{"username":"{name}","password":"pw-{name}"}}}}"#
    ))
    .await
}

/// An OurChat client's start: SERVER_STATUS (12), then a login by ocid; both replies.
async fn ourchat_start(addr: SocketAddr, ocid: &str, password: &str) -> (Value, Value) {
    let mut ws = Ws::connect(addr).await;
    let status = ws.call(r#"{"code": 12}"#).await;
    let login = ws
        .call(&format!(
            r#"{{"code": 6, "login_type": 1, "account": "{ocid}", "password": "{password}"}}"#
        ))
        .await;
    (status, login)
}

fn grpc_login(name: &str) -> LoginRequest {
    LoginRequest {
        identifier: Some(Identifier::Username(name.into())),
        password: format!("{name}-pw"),
        password_scheme: PasswordScheme::Plain.into(),
        client: "test".into(),
    }
}

async fn set_maintenance(
    admin: &mut AdminServiceClient<Channel>,
    token: &str,
    enabled: bool,
    drain: bool,
) -> SetMaintenanceResponse {
    admin
        .set_maintenance(authed(
            SetMaintenanceRequest {
                enabled,
                message: "back at 10:00 UTC".into(),
                drain,
            },
            token,
        ))
        .await
        .expect("SetMaintenance")
        .into_inner()
}

/// An IMPS user registered and logged in: the connection.
async fn imps_user(addr: SocketAddr, name: &str) -> Imps {
    let mut imps = Imps::connect(addr).await;
    imps.send(ClientMessage::Register {
        user: name.into(),
        password: format!("pw-{name}"),
        gender: 1,
        email: format!("{name}@example.cn"),
    })
    .await;
    imps.recv(cmd::S_REGISTER).await;
    imps.send(ClientMessage::Login {
        user: name.into(),
        password: format!("pw-{name}"),
    })
    .await;
    imps.recv(cmd::S_LOGIN_RSP).await;
    imps
}

/// A CloudChat user registered and logged in: the connection.
async fn cloudchat_user(addr: SocketAddr, name: &str) -> Ws {
    let mut ws = Ws::connect(addr).await;
    let registered = ws
        .call(&format!(
            r#"{{"type":"REGISTER","payload":{{"username":"{name}","password":"pw-{name}","email":"{name}@example.com"}}}}"#
        ))
        .await;
    assert_eq!(registered["type"], "REGISTER_SUCCESS", "{registered}");
    drop(ws);
    let mut ws = Ws::connect(addr).await;
    let login = ws
        .call(&format!(
            r#"{{"type":"LOGIN","payload":{{"username":"{name}","password":"pw-{name}"}}}}"#
        ))
        .await;
    assert_eq!(login["type"], "LOGIN_SUCCESS", "{login}");
    ws
}

/// Accounts on every protocol, registered before maintenance: (OurChat ocid, its password).
async fn register_everyone(server: &TestServer, bridges: &Bridges) -> (String, String) {
    let (pia, _, _) = Pipe::user(bridges.pipe, "pia").await;
    drop(pia);
    let mut ivan = Imps::connect(bridges.imps).await;
    ivan.send(ClientMessage::Register {
        user: "ivan".into(),
        password: "pw-ivan".into(),
        gender: 1,
        email: "ivan@example.cn".into(),
    })
    .await;
    ivan.recv(cmd::S_REGISTER).await;
    let mut cara = Ws::connect(bridges.cloudchat).await;
    let registered = cara
        .call(r#"{"type":"REGISTER","payload":{"username":"cara","password":"pw-cara","email":"cara@example.com"}}"#)
        .await;
    assert_eq!(registered["type"], "REGISTER_SUCCESS", "{registered}");
    server.user("dora", "dora-pw").await;
    let mut olga = Ws::connect(bridges.ourchat).await;
    let password = sha256_hex("olga-pw");
    let registered = olga
        .call(&format!(
            r#"{{"code": 4, "email": "olga@example.com", "password": "{password}", "name": "Olga"}}"#
        ))
        .await;
    assert_eq!(registered["status"], 0, "{registered}");
    let ocid = registered["ocid"].as_str().expect("ocid").to_owned();
    (ocid, password)
}

async fn maintenance_refuses_new_logins(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridges = bridges::start(&server).await;
    let opal = server.user("opal", "opal-pw").await;
    server.grant_admin("opal").await;
    let mut admin = AdminServiceClient::new(server.channel().await);
    let mut account = server.account().await;
    let (ocid, ourchat_pw) = register_everyone(&server, &bridges).await;
    // Sessions open before maintenance: pipe, IMPS, CloudChat and gRPC clients.
    let (mut pete, pete_uid, pete_token) = Pipe::user(bridges.pipe, "pete").await;
    let gus = server.user("gus", "gus-pw").await;
    let mut iris = imps_user(bridges.imps, "iris").await;
    let mut cleo = cloudchat_user(bridges.cloudchat, "cleo").await;
    // Olga's client reads pushes (`time` in its login), so a drain can tell it.
    let mut olga = Ws::connect(bridges.ourchat).await;
    let login = olga
        .call(&format!(
            r#"{{"code": 6, "time": 1722441600, "login_type": 1, "account": "{ocid}", "password": "{ourchat_pw}"}}"#
        ))
        .await;
    assert_eq!(login["status"], 0, "{login}");

    let on = set_maintenance(&mut admin, &opal.access_token, true, false).await;
    let state = on.maintenance.expect("state");
    assert!(state.enabled);
    assert_eq!(state.changed_by, "opal");
    assert_eq!(on.sessions_ended, 0, "no drain asked");

    // A new login on each protocol gets its protocol's "server busy" reply.
    let mut pipe = Pipe::connect(bridges.pipe).await;
    assert_eq!(
        pipe.call("login|pia|pw-pia").await,
        "login_error|登录失败！"
    );
    let (answer, body) = imps_login(bridges.imps, "ivan").await;
    assert_eq!(answer, cmd::S_ERROR);
    assert_eq!(Fields(&body).i32(), error::NOT_ALLOWED);
    let reply = cloudchat_login(bridges.cloudchat, "cara").await;
    assert_eq!(reply["type"], "LOGIN_FAILURE", "{reply}");
    assert_eq!(reply["payload"]["error"], "服务器维护中，请稍后再试");
    let reply = dpc_auth(bridges.dpc_auth, &dpc_login("dora", "dora-pw")).await;
    assert_eq!(reply, serde_json::json!({"op": 0, "test": 2}));
    let (status, login) = ourchat_start(bridges.ourchat, &ocid, &ourchat_pw).await;
    assert_eq!(
        (&status["code"], &status["status"]),
        (&12.into(), &1.into())
    );
    assert_eq!((&login["code"], &login["status"]), (&7.into(), &2.into()));
    let refused = account
        .login(grpc_login("gus"))
        .await
        .expect_err("gRPC login refused");
    assert_eq!(refused.code(), Code::Unavailable);
    assert_eq!(reason(&refused), Reason::Maintenance);
    assert!(
        refused.message().contains("back at 10:00 UTC"),
        "{refused:?}"
    );
    let retry = refused.get_details_retry_info().expect("RetryInfo");
    assert!(retry.retry_delay.is_some_and(|d| d > Duration::ZERO));

    // An admin still logs in; the sessions open before are kept.
    account
        .login(grpc_login("opal"))
        .await
        .expect("an admin logs in during maintenance");
    assert_eq!(
        pete.call(&format!("get_user_friend|{pete_uid}|{pete_token}"))
            .await,
        "friendinfo|0"
    );
    account
        .get_my_profile(authed(GetMyProfileRequest {}, &gus.access_token))
        .await
        .expect("a gRPC session opened before is kept");

    // A drain ends the sessions of everyone but admins: each legacy client is disconnected in
    // its protocol's way (pipe: the close; IMPS: error 7, then the close; CloudChat: 1008;
    // OurChat: the close).
    let drained = set_maintenance(&mut admin, &opal.access_token, true, true).await;
    assert!(drained.sessions_ended >= 4, "{drained:?}");
    pete.closed().await;
    let last = iris.closed().await;
    let told = last
        .iter()
        .find(|f| f.cmd == cmd::S_ERROR)
        .expect("IMPS is told before the close");
    assert_eq!(Fields(&told.body).i32(), error::ELSEWHERE);
    assert_eq!(cleo.closed().await, Some(1008), "policy close");
    olga.closed().await;
    let ended = account
        .get_my_profile(authed(GetMyProfileRequest {}, &gus.access_token))
        .await
        .expect_err("gus's session was drained");
    assert_eq!(ended.code(), Code::Unauthenticated);
    account
        .get_my_profile(authed(GetMyProfileRequest {}, &opal.access_token))
        .await
        .expect("the admin's session survives a drain");

    // Off: logins work again, and OurChat says the server runs.
    set_maintenance(&mut admin, &opal.access_token, false, false).await;
    let login = pipe.call("login|pia|pw-pia").await;
    assert!(login.starts_with("login_succ|"), "{login}");
    let (answer, _) = imps_login(bridges.imps, "ivan").await;
    assert_eq!(answer, cmd::S_LOGIN_RSP);
    let reply = cloudchat_login(bridges.cloudchat, "cara").await;
    assert_eq!(reply["type"], "LOGIN_SUCCESS", "{reply}");
    let reply = dpc_auth(bridges.dpc_auth, &dpc_login("dora", "dora-pw")).await;
    assert_eq!(reply, serde_json::json!({"op": 0, "test": 0}));
    let (status, login) = ourchat_start(bridges.ourchat, &ocid, &ourchat_pw).await;
    assert_eq!(status["status"], 0, "{status}");
    assert_eq!(login["status"], 0, "{login}");
    account.login(grpc_login("gus")).await.expect("gRPC login");

    // Each switch is in the audit log, newest first.
    let entries = admin
        .list_audit_log(authed(ListAuditLogRequest::default(), &opal.access_token))
        .await
        .expect("audit log")
        .into_inner()
        .entries;
    let switches: Vec<&str> = entries
        .iter()
        .filter(|e| e.action == "SetMaintenance")
        .map(|e| e.details.as_str())
        .collect();
    assert_eq!(switches.len(), 3, "{entries:?}");
    assert!(switches[0].starts_with("enabled=false"), "{switches:?}");
    assert!(
        switches[1].starts_with("enabled=true drain=true"),
        "{switches:?}"
    );
    assert!(
        switches[2].starts_with("enabled=true drain=false"),
        "{switches:?}"
    );
    server.stop().await;
}
both_backends!(
    maintenance_refuses_new_logins,
    super::maintenance_refuses_new_logins
);
