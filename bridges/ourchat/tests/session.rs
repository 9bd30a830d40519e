//! The OurChat bridge over real WebSocket connections: the note's example session byte for
//! byte, the real client's and the document's forms chatting, a gRPC user in an OurChat
//! session, the verification flow, and malformed input that must not hurt other clients.

mod common;

use std::time::Duration;

use common::{
    Client, HASH_123456, PATIENCE, befriend, bridge, bridge_with, grpc_login, is_ocid, sha256_hex,
};
use rosetta_bridge_kit::settings::OurChatSettings;
use rosetta_proto::{
    account::v1::account_service_client::AccountServiceClient,
    common::v1::{UserRef, user_ref},
    messaging::v1::{
        MessageKind, SendMessageRequest, SubscribeRequest, SubscribeResponse, event::Kind,
        messaging_service_client::MessagingServiceClient, send_message_request::To,
        subscribe_response::Item,
    },
    social::v1::{
        CreateGroupRequest, ListGroupInvitationsRequest, ListMyGroupsRequest,
        social_service_client::SocialServiceClient,
    },
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};
use tonic::Streaming;

/// ourchat.md §10, the client's frames byte for byte.
async fn example_session(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = bridge(&server).await;

    let mut alice = Client::connect(bridge.addr).await;
    alice.send(r#"{"code": 12}"#).await;
    assert_eq!(
        alice.recv().await,
        json!({"code": 12, "status": 0, "state": 0})
    );
    alice.send(r#"{"code": 14}"#).await;
    assert_eq!(
        alice.recv().await,
        json!({"code": 15, "status": 0, "state": 0})
    );
    alice
        .send(r#"{"code": 4, "email": "alice@example.com", "password": "8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92"}"#)
        .await;
    let registered = alice.recv().await;
    let ocid = registered["ocid"]
        .as_str()
        .expect("ocid is a string")
        .to_owned();
    assert!(is_ocid(&ocid), "{ocid}");
    assert_eq!(
        registered,
        json!({"code": 5, "status": 0, "state": 0, "ocid": ocid})
    );
    // The same e-mail again: "Email Exist".
    alice
        .send(r#"{"code": 4, "email": "alice@example.com", "password": "8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92"}"#)
        .await;
    assert_eq!(
        alice.recv().await,
        json!({"code": 5, "status": 2, "state": 2})
    );

    // A new app run: connect, 12, login by e-mail.
    let mut again = Client::connect(bridge.addr).await;
    again.send(r#"{"code": 12}"#).await;
    assert_eq!(again.recv().await["status"], 0);
    again
        .send(r#"{"code": 6, "login_type": 0, "account": "alice@example.com", "password": "8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92"}"#)
        .await;
    assert_eq!(
        again.recv().await,
        json!({"code": 7, "status": 0, "state": 0, "ocid": ocid})
    );

    // Login by ocid: the right hash, then a wrong one (status 1, no ocid).
    let mut by_ocid = Client::connect(bridge.addr).await;
    by_ocid
        .send(&format!(
            r#"{{"code": 6, "login_type": 1, "account": "{ocid}", "password": "{HASH_123456}"}}"#
        ))
        .await;
    assert_eq!(
        by_ocid.recv().await,
        json!({"code": 7, "status": 0, "state": 0, "ocid": ocid})
    );
    by_ocid
        .send(&format!(
            r#"{{"code": 6, "login_type": 1, "account": "{ocid}", "password": "{}"}}"#,
            sha256_hex("654321")
        ))
        .await;
    assert_eq!(
        by_ocid.recv().await,
        json!({"code": 7, "status": 1, "state": 1})
    );
}
both_backends!(example, super::example_session);

/// A real-client-form user and a document-form user register, log in, open a session and
/// chat both ways; account info answers with the requested fields.
async fn both_forms_chat(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = bridge(&server).await;

    let mut real = Client::connect(bridge.addr).await;
    let real_ocid = real.register_real("rita@example.com", "rita-pw").await;
    let login = real.login_real("rita@example.com", "rita-pw").await;
    assert_eq!(login["status"], 0);

    let mut doc = Client::connect(bridge.addr).await;
    let doc_ocid = doc
        .register_doc("dora@example.com", "dora-pw", "Dora")
        .await;
    doc.login_doc("dora@example.com", "dora-pw").await;
    // A session takes friends only (the client cannot show an invitation).
    befriend(
        &server,
        &grpc_login(&server, &doc_ocid, "dora-pw").await,
        &grpc_login(&server, &real_ocid, "rita-pw").await,
    )
    .await;

    let created = doc
        .call(&format!(
            r#"{{"code": 8, "time": 1722441600, "members": ["{doc_ocid}", "{real_ocid}"]}}"#
        ))
        .await;
    assert_eq!(created["code"], 9);
    assert_eq!(created["status"], 0);
    assert_eq!(created["success"], true);
    let session_id = created["session_id"].as_i64().expect("session id");

    // The later document's form from the real-client side (json.dumps spacing, no time)…
    real.send(&format!(
        r#"{{"code": 0, "sender": {{"ocid": "{real_ocid}", "session_id": {session_id}}}, "msg": "hi Dora \u00e9"}}"#
    ))
    .await;
    let push = doc.recv().await;
    assert_eq!(push["code"], 0);
    assert_eq!(push["msg"], "hi Dora é");
    assert_eq!(push["sender"]["ocid"], real_ocid);
    assert_eq!(push["sender"]["group_id"], session_id);
    assert_eq!(push["sender"]["session_id"], session_id);
    assert!(push["cid"].as_i64().is_some_and(|cid| cid > 0));
    assert!(push["time"].as_i64().is_some_and(|t| t > 1_700_000_000));

    // …and the seed's form back.
    doc.send(&format!(
        r#"{{"code": 0, "time": 1722441600, "sender": {{"ocid": "{doc_ocid}", "group_id": {session_id}}}, "msg": "hello Rita"}}"#
    ))
    .await;
    // Rita's own message turned her pushes on: being added to the session (9) is pushed too
    // when its event reached her connection after that (under load it can), and always
    // before the text.
    let mut push = real.recv().await;
    if push["code"] == 9 {
        assert_eq!(push["session_id"], session_id, "{push}");
        push = real.recv().await;
    }
    assert_eq!(push["msg"], "hello Rita");
    assert_eq!(push["sender"]["ocid"], doc_ocid);

    let info = doc
        .call(&format!(
            r#"{{"code": 10, "time": 1722441600, "ocid": "{real_ocid}", "request_values": ["ocid", "nickname", "avater", "time"]}}"#
        ))
        .await;
    assert_eq!(info["code"], 11);
    assert_eq!(info["data"]["ocid"], real_ocid);
    assert_eq!(info["data"]["nickname"], "rita");
    assert_eq!(info["data"]["avater"], "");
    assert!(
        info["data"]["time"]
            .as_i64()
            .is_some_and(|t| t > 1_700_000_000)
    );
    assert!(info["data"].get("status").is_none());
    let unknown = doc
        .call(r#"{"code": 10, "ocid": "0000000000", "request_values": ["ocid"]}"#)
        .await;
    assert_eq!(unknown["data"], json!({}));
}
both_backends!(chat, super::both_forms_chat);

/// The real client aborts on frames it did not ask for: a real-client login gets no pushes
/// while a document-form member of the same group does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_client_gets_no_pushes() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = bridge(&server).await;
    let grpc = server.user("gina", "pw").await;

    let mut real = Client::connect(bridge.addr).await;
    let real_ocid = real.register_real("quiet@example.com", "pw").await;
    assert_eq!(real.login_real(&real_ocid, "pw").await["status"], 0);
    let mut doc = Client::connect(bridge.addr).await;
    let doc_ocid = doc.register_doc("loud@example.com", "pw", "Loud").await;
    doc.login_doc("loud@example.com", "pw").await;
    for ocid in [&real_ocid, &doc_ocid] {
        befriend(&server, &grpc, &grpc_login(&server, ocid, "pw").await).await;
    }

    let ids = lookup_ids(&server, &grpc.access_token, &[&real_ocid, &doc_ocid]).await;
    let mut social = SocialServiceClient::new(server.channel().await);
    let group = social
        .create_group(authed(
            CreateGroupRequest {
                name: "mixed".into(),
                member_ids: ids,
                ..Default::default()
            },
            &grpc.access_token,
        ))
        .await
        .expect("group")
        .into_inner();
    // Being added is pushed as a new session (9) to the client that reads pushes.
    let added = doc.recv().await;
    assert_eq!(
        (added["code"].clone(), added["session_id"].clone()),
        (json!(9), json!(group.id))
    );

    send_to_group(&server, &grpc.access_token, group.id, "ping").await;
    assert_eq!(doc.recv().await["msg"], "ping");
    send_to_group(&server, &grpc.access_token, group.id, "ping 2").await;
    assert_eq!(doc.recv().await["msg"], "ping 2");
    // Both events reached the bridge by now; the real client saw neither nor the 9.
    real.assert_nothing_pending().await;
    // Unknown codes get no answer on such a connection either.
    real.send(r#"{"code": 99}"#).await;
    real.assert_nothing_pending().await;
}

/// A gRPC user in an OurChat session, and in a private chat, both directions.
async fn grpc_member(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = bridge(&server).await;
    let grpc = server.user("grace", "pw").await;
    let grace = grpc.user.clone().expect("user");
    let mut events = subscribe(&server, &grpc.access_token).await;

    let mut oc = Client::connect(bridge.addr).await;
    let oc_ocid = oc.register_doc("olga@example.com", "olga-pw", "Olga").await;
    oc.login_doc(&oc_ocid, "olga-pw").await;
    // Sessions and private chat take friends: Grace and Olga befriend over gRPC.
    let olga = grpc_login(&server, &oc_ocid, "olga-pw").await;
    befriend(&server, &grpc, &olga).await;

    let created = oc
        .call(&format!(
            r#"{{"code": 8, "members": ["{oc_ocid}", "{}"]}}"#,
            grace.ocid
        ))
        .await;
    assert_eq!(created["status"], 0, "{created}");
    let group = created["session_id"].as_i64().expect("session id");

    oc.send(&format!(
        r#"{{"code": 0, "sender": {{"ocid": "{oc_ocid}", "group_id": {group}}}, "msg": "to the group"}}"#
    ))
    .await;
    let received = next_message(&mut events, "to the group").await;
    assert_eq!(
        received.to,
        Some(rosetta_proto::messaging::v1::message::To::ToGroupId(group))
    );

    send_to_group(&server, &grpc.access_token, group, "from grpc").await;
    let push = oc.recv().await;
    assert_eq!(push["msg"], "from grpc");
    assert_eq!(push["sender"]["ocid"], grace.ocid);
    assert_eq!(push["sender"]["group_id"], group);

    oc.send(&format!(
        r#"{{"code": 0, "time": 1722441600, "sender": {{"ocid": "{oc_ocid}", "private_id": "{}"}}, "msg": "just you"}}"#,
        grace.ocid
    ))
    .await;
    let received = next_message(&mut events, "just you").await;
    assert_eq!(
        received.to,
        Some(rosetta_proto::messaging::v1::message::To::ToUserId(
            grace.id
        ))
    );

    MessagingServiceClient::new(server.channel().await)
        .send_message(authed(
            SendMessageRequest {
                to: Some(To::ToUserId(olga.user.expect("user").id)),
                kind: MessageKind::Text.into(),
                text: "back to you".into(),
                client_message_id: "grace-1".into(),
                ..Default::default()
            },
            &grpc.access_token,
        ))
        .await
        .expect("private send");
    let push = next_push(&mut oc, "back to you").await;
    assert_eq!(push["sender"]["ocid"], grace.ocid);
    assert_eq!(push["sender"]["private_id"], oc_ocid);
}
both_backends!(grpc, super::grpc_member);

/// Issue 18 item 2: NEW_SESSION used to put any ocid into a group, making its owner a group
/// peer who could read the victim's location. The client cannot show an invitation, so a
/// stranger is refused with the protocol's failure reply and nothing is created, not even an
/// invitation; a friend is taken in.
async fn new_session_takes_friends_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = bridge(&server).await;
    let victim = server.user("victim", "pw").await;
    let victim_ocid = victim.user.clone().expect("user").ocid;

    let mut mallory = Client::connect(bridge.addr).await;
    let mallory_ocid = mallory
        .register_doc("mallory@example.com", "m-pw", "Mallory")
        .await;
    mallory.login_doc(&mallory_ocid, "m-pw").await;
    let refused = mallory
        .call(&format!(
            r#"{{"code": 8, "time": 1722441600, "members": ["{mallory_ocid}", "{victim_ocid}"]}}"#
        ))
        .await;
    assert_eq!(refused["code"], 9);
    assert_eq!(refused["success"], false, "{refused}");
    assert_eq!(refused["status"], 1, "{refused}");
    assert!(
        refused["msg"]
            .as_str()
            .is_some_and(|m| m.contains("NOT_FRIENDS")),
        "{refused}"
    );
    assert!(refused.get("session_id").is_none());
    let mut social = SocialServiceClient::new(server.channel().await);
    let groups = social
        .list_my_groups(authed(
            ListMyGroupsRequest { page: None },
            &victim.access_token,
        ))
        .await
        .expect("groups")
        .into_inner()
        .groups;
    assert!(groups.is_empty(), "the victim is in no group: {groups:?}");
    let invitations = social
        .list_group_invitations(authed(
            ListGroupInvitationsRequest::default(),
            &victim.access_token,
        ))
        .await
        .expect("invitations")
        .into_inner()
        .invitations;
    assert!(invitations.is_empty(), "nor invited: {invitations:?}");

    befriend(
        &server,
        &victim,
        &grpc_login(&server, &mallory_ocid, "m-pw").await,
    )
    .await;
    let created = mallory
        .call(&format!(r#"{{"code": 8, "members": ["{victim_ocid}"]}}"#))
        .await;
    assert_eq!(created["success"], true, "{created}");
}
both_backends!(new_session_friends, super::new_session_takes_friends_only);

/// With the account service requiring e-mail codes, a document-form client asks for one
/// with its address (14), and registers with it (4 with `verify_code`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_verification() {
    let server = TestServer::start_with(Backend::Sqlite, |cfg| {
        cfg.account.require_email_code = true;
    })
    .await;
    let bridge = bridge(&server).await;
    let mut client = Client::connect(bridge.addr).await;
    let hash = sha256_hex("pw");

    // The real client's register carries no code: refused ("Server Error").
    assert_eq!(client.call(r#"{"code": 14}"#).await["status"], 0);
    let refused = client
        .call(&format!(
            r#"{{"code": 4, "email": "vic@example.com", "password": "{hash}"}}"#
        ))
        .await;
    assert_eq!(refused, json!({"code": 5, "status": 1, "state": 1}));

    let asked = client
        .call(r#"{"code": 14, "time": 1722441600, "email": "vic@example.com"}"#)
        .await;
    assert_eq!(asked, json!({"code": 15, "status": 0, "state": 0}));
    let code = server
        .codes
        .last_code("vic@example.com")
        .expect("a code was sent");
    let wrong = client
        .call(&format!(
            r#"{{"code": 4, "email": "vic@example.com", "password": "{hash}", "verify_code": "x{code}"}}"#
        ))
        .await;
    assert_eq!(wrong["status"], 1);
    let registered = client
        .call(&format!(
            r#"{{"code": 4, "email": "vic@example.com", "password": "{hash}", "verify_code": "{code}"}}"#
        ))
        .await;
    assert_eq!(registered["status"], 0, "{registered}");
    // A taken address gets no code.
    let taken = client
        .call(r#"{"code": 14, "email": "vic@example.com"}"#)
        .await;
    assert_eq!(taken["status"], 1);
}

/// Unregister (16 → 17) deletes the account; the login no longer works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregister() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = bridge(&server).await;
    let mut client = Client::connect(bridge.addr).await;
    assert_eq!(
        client.call(r#"{"code": 16}"#).await,
        json!({"code": 17, "status": 1, "state": 1})
    );
    client.register_doc("gone@example.com", "pw", "Gone").await;
    client.login_doc("gone@example.com", "pw").await;
    assert_eq!(
        client.call(r#"{"code": 16}"#).await,
        json!({"code": 17, "status": 0, "state": 0})
    );
    assert_eq!(
        client.login_real("gone@example.com", "pw").await["status"],
        1
    );
}

/// Bad JSON, wrong types, unknown codes, oversized and binary frames: refused on their own
/// connection while another client keeps being served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = bridge(&server).await;
    let mut bystander = Client::connect(bridge.addr).await;
    bystander.assert_nothing_pending().await;

    // Real-client connection: no ErrorMsg, but 4 and 6 get their failure replies.
    let mut real = Client::connect(bridge.addr).await;
    for junk in [
        "not json",
        "[1, 2]",
        "{\"code\": \"12\"}",
        "{\"code\": 99}",
        "{\"code\": 1.5}",
        "{}",
    ] {
        real.send(junk).await;
    }
    real.assert_nothing_pending().await;
    assert_eq!(
        real.call(r#"{"code": 6, "login_type": [], "account": "a", "password": "b"}"#)
            .await,
        json!({"code": 7, "status": 1, "state": 1})
    );
    assert_eq!(
        real.call(r#"{"code": 4, "email": 5, "password": "b"}"#)
            .await,
        json!({"code": 5, "status": 1, "state": 1})
    );
    assert_eq!(
        real.login_real("nobody@example.com", "pw").await["status"],
        1
    );

    // A client that reads pushes gets ErrorMsg (18).
    let mut doc = Client::connect(bridge.addr).await;
    let refused = doc.call(r#"{"code": 0, "msg": "no sender"}"#).await;
    assert_eq!(refused["code"], 18);
    assert_eq!(doc.call("not json").await["code"], 18);
    assert_eq!(
        doc.call(r#"{"code": 42}"#).await["details"],
        "unknown code 42"
    );
    let not_logged_in = doc
        .call(r#"{"code": 0, "sender": {"ocid": "x", "group_id": 1}, "msg": "hi"}"#)
        .await;
    assert_eq!(
        not_logged_in,
        json!({"code": 18, "details": "not logged in"})
    );
    assert_eq!(
        doc.call(r#"{"code": 8, "members": "x"}"#).await["status"],
        1
    );

    // Oversized and binary frames close only their own connection.
    let mut big = Client::connect(bridge.addr).await;
    big.send(&format!(
        r#"{{"code": 12, "pad": "{}"}}"#,
        "x".repeat(100_000)
    ))
    .await;
    assert_eq!(big.closed().await, Some(CloseCode::Size));
    let mut binary = Client::connect(bridge.addr).await;
    futures::SinkExt::send(&mut binary.ws, Message::binary(&b"{\"code\": 12}"[..]))
        .await
        .expect("send binary");
    assert_eq!(binary.closed().await, Some(CloseCode::Unsupported));

    bystander.assert_nothing_pending().await;
    assert_eq!(
        real.login_real("nobody@example.com", "pw").await["status"],
        1
    );
}

/// An empty Email box is refused as "Email Exist" (the legacy unique e-mail column held the
/// empty text once), every time, and creates no account; the connection goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_email_is_refused_as_taken() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = bridge(&server).await;
    let mut client = Client::connect(bridge.addr).await;
    assert_eq!(client.call(r#"{"code": 12}"#).await["status"], 0);
    for email in ["", "", "  "] {
        assert_eq!(client.call(r#"{"code": 14}"#).await["status"], 0);
        assert_eq!(
            client
                .call(&format!(
                    r#"{{"code": 4, "email": "{email}", "password": "{HASH_123456}"}}"#
                ))
                .await,
            json!({"code": 5, "status": 2, "state": 2}),
            "{email:?}"
        );
    }
    let ocid = client.register_real("dora@example.com", "123456").await;
    assert!(is_ocid(&ocid), "{ocid}");
}

/// With the `pushes` setting, a real-form login reads pushes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_setting() {
    let server = TestServer::start(Backend::Sqlite).await;
    let settings = OurChatSettings {
        pushes: true,
        ..OurChatSettings::default()
    };
    let bridge = bridge_with(&server, settings).await;
    let mut client = Client::connect(bridge.addr).await;
    let ocid = client.register_real("pia@example.com", "pw").await;
    assert_eq!(
        client.login_real("pia@example.com", "pw").await["status"],
        0
    );
    assert_eq!(client.call(r#"{"code": 77}"#).await["code"], 18);
    let grpc = server.user("sam", "pw").await;
    befriend(&server, &grpc, &grpc_login(&server, &ocid, "pw").await).await;
    let ids = lookup_ids(&server, &grpc.access_token, &[&ocid]).await;
    let group = SocialServiceClient::new(server.channel().await)
        .create_group(authed(
            CreateGroupRequest {
                name: "g".into(),
                member_ids: ids,
                ..Default::default()
            },
            &grpc.access_token,
        ))
        .await
        .expect("group")
        .into_inner();
    send_to_group(&server, &grpc.access_token, group.id, "pushed").await;
    let push = next_push(&mut client, "pushed").await;
    assert_eq!(push["sender"]["group_id"], group.id);
}

async fn lookup_ids(server: &TestServer, token: &str, ocids: &[&str]) -> Vec<i64> {
    let mut account = AccountServiceClient::new(server.channel().await);
    let mut ids = Vec::new();
    for ocid in ocids {
        let user = account
            .lookup_user(authed(
                rosetta_proto::account::v1::LookupUserRequest {
                    user: Some(UserRef {
                        r#ref: Some(user_ref::Ref::Ocid((*ocid).to_owned())),
                    }),
                },
                token,
            ))
            .await
            .expect("lookup")
            .into_inner();
        ids.push(user.id);
    }
    ids
}

async fn send_to_group(server: &TestServer, token: &str, group: i64, text: &str) {
    MessagingServiceClient::new(server.channel().await)
        .send_message(authed(
            SendMessageRequest {
                to: Some(To::ToGroupId(group)),
                kind: MessageKind::Text.into(),
                text: text.into(),
                client_message_id: format!("{group}-{text}"),
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("group send");
}

async fn subscribe(server: &TestServer, token: &str) -> Streaming<SubscribeResponse> {
    let mut stream = MessagingServiceClient::new(server.channel().await)
        .subscribe(authed(
            SubscribeRequest {
                after_seq: None,
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("subscribe")
        .into_inner();
    // Registered once caught up.
    loop {
        let item = stream.message().await.expect("stream").expect("open");
        if matches!(item.item, Some(Item::CaughtUp(_))) {
            return stream;
        }
    }
}

async fn next_message(
    events: &mut Streaming<SubscribeResponse>,
    text: &str,
) -> rosetta_proto::messaging::v1::Message {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let item = events.message().await.expect("stream").expect("open");
            if let Some(Item::Event(event)) = item.item
                && let Some(Kind::Message(message)) = event.kind
                && message.text == text
            {
                return message;
            }
        }
    })
    .await
    .expect("message in time")
}

/// The next text push with `msg`, skipping other pushes (e.g. a new-session notice).
async fn next_push(client: &mut Client, msg: &str) -> Value {
    tokio::time::timeout(PATIENCE + Duration::from_secs(5), async {
        loop {
            let frame = client.recv().await;
            if frame["code"] == 0 && frame["msg"] == msg {
                return frame;
            }
        }
    })
    .await
    .expect("push in time")
}
