//! The live users of every protocol for the announcement tests: the five bridges in front of
//! one node, a user logged in on each, and what each of them must show.

use rosetta_bridge_imps::codec::{ClientMessage, cmd};
use rosetta_proto::messaging::v1::Announcement;
use rosetta_testkit::TestServer;
use serde_json::{Value, json};

use crate::clients::{
    Dpc, Fields, Imps, Pipe, Ws,
    bridges::{Bridges, sha256_hex},
};

/// The live users of every protocol, each logged in and ready for pushes.
pub struct Online {
    pub pipe: Pipe,
    pub imps: Imps,
    pub cloudchat: Ws,
    pub cloudchat_id: i64,
    pub ourchat: Ws,
    pub ourchat_ocid: String,
    /// A chat window that only listens, and one that spoke (its user's own stream too).
    pub dpc_listener: Dpc,
    pub dpc_window: Dpc,
}

pub async fn log_everyone_in(server: &TestServer, bridges: &Bridges) -> Online {
    let (pipe, _, _) = Pipe::user(bridges.pipe, "pia").await;

    let mut imps = Imps::connect(bridges.imps).await;
    imps.send(ClientMessage::Register {
        user: "ivan".into(),
        password: "pw-ivan".into(),
        gender: 1,
        email: "ivan@example.cn".into(),
    })
    .await;
    imps.recv(cmd::S_REGISTER).await;
    imps.send(ClientMessage::Login {
        user: "ivan".into(),
        password: "pw-ivan".into(),
    })
    .await;
    imps.recv(cmd::S_LOGIN_RSP).await;

    let mut cloudchat = Ws::connect(bridges.cloudchat).await;
    let registered = cloudchat
        .call(r#"{"type":"REGISTER","payload":{"username":"cara","password":"pw-cara","email":"cara@example.com"}}"#)
        .await;
    assert_eq!(registered["type"], "REGISTER_SUCCESS", "{registered}");
    let cloudchat_id = registered["payload"]["userId"].as_i64().expect("userId");

    // An OurChat client written from the document (`time` in the login turns on pushes).
    let mut ourchat = Ws::connect(bridges.ourchat).await;
    let password = sha256_hex("olga-pw");
    let registered = ourchat
        .call(&format!(
            r#"{{"code": 4, "time": 1722441600, "email": "olga@example.com", "password": "{password}", "name": "Olga"}}"#
        ))
        .await;
    let ourchat_ocid = registered["ocid"].as_str().expect("ocid").to_owned();
    let login = ourchat
        .call(&format!(
            r#"{{"code": 6, "time": 1722441600, "login_type": 1, "account": "{ourchat_ocid}", "password": "{password}"}}"#
        ))
        .await;
    assert_eq!(login["state"], 0, "{login}");

    // DPC: Dora logs in on the auth port; one chat window speaks (it becomes hers), one only
    // listens. Her line reaching the listener shows the room's stream is up.
    server.user("dora", "pw-dora").await;
    let mut auth = Dpc::connect(bridges.dpc_auth).await;
    auth.send(r#"{"op": 0, "args": {"user_name": "dora", "user_pwd": "pw-dora"}}"#)
        .await;
    let answer: Value = serde_json::from_str(&auth.recv().await).expect("JSON");
    assert_eq!(answer["test"], 0, "{answer}");
    let mut dpc_listener = Dpc::connect(bridges.dpc_chat).await;
    let mut dpc_window = Dpc::connect(bridges.dpc_chat).await;
    dpc_window
        .send(r#"{"op": 0, "args": {"name": "dora", "password": "pw-dora"}, "news": "hello\n"}"#)
        .await;
    dpc_listener.recv_containing("dora:hello").await;

    Online {
        pipe,
        imps,
        cloudchat,
        cloudchat_id,
        ourchat,
        ourchat_ocid,
        dpc_listener,
        dpc_window,
    }
}

/// Each live user gets `sent` in their protocol's form.
pub async fn each_protocol_shows(online: &mut Online, sent: &Announcement) {
    let text = &sent.text;

    let push = online.pipe.recv().await;
    let fields: Vec<&str> = push.splitn(5, '|').collect();
    assert_eq!(fields[..3], ["message", "0", "00000"], "{push}");
    assert!(
        fields[3].len() == 14 && fields[3].bytes().all(|b| b.is_ascii_digit()),
        "{push}"
    );
    assert_eq!(fields[4], text, "{push}");

    let frame = online.imps.recv(cmd::S_SEND_MSG).await;
    let mut body = Fields(&frame.body);
    assert_eq!(body.string(), "system");
    assert_eq!(&body.string(), text);
    assert_eq!(body.string().len(), 19, "yyyy-MM-dd HH:mm:ss");

    let push = online
        .cloudchat
        .recv_where(|f| f["type"] == "MESSAGE_RECEIVED_OTHER")
        .await;
    let payload = &push["payload"];
    assert_eq!(
        (&payload["senderId"], &payload["receiverId"], &payload["id"]),
        (&json!(0), &json!(online.cloudchat_id), &json!(0)),
        "{push}"
    );
    assert_eq!(
        (&payload["content"], &payload["type"], &payload["status"]),
        (&json!(text), &json!("text"), &json!("sent")),
        "{push}"
    );

    let push = online.ourchat.recv_where(|f| f["code"] == 0).await;
    assert_eq!(push["msg"], json!(text), "{push}");
    assert_eq!(push["sender"]["ocid"], "0000000000", "{push}");
    assert_eq!(push["sender"]["private_id"], json!(online.ourchat_ocid));

    let expected = json!({"op": 0, "args": {"name": "system"}, "news": format!("system:{text}\n")});
    for socket in [&mut online.dpc_listener, &mut online.dpc_window] {
        let line: Value = serde_json::from_str(&socket.recv().await).expect("JSON");
        assert_eq!(line, expected);
    }
}
