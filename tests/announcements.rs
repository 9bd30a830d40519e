//! Announcements (issue 23): an operator's message reaches a live user of every protocol in
//! that protocol's own form, from the system's reserved identity, and a gRPC subscriber as an
//! `Announcement` event; a user who logs in later gets it once (not again at the next login,
//! not twice from two streams at once); an expired one is not delivered; the bounds hold and
//! the audit log lists every call. Real sockets to real bridges in front of a real node, on
//! SQLite and on PostgreSQL; one announcement goes through the `rosetta admin announce` binary.

mod clients;
#[path = "announcements/online.rs"]
mod online;

use std::collections::BTreeMap;

use clients::{Imps, PATIENCE, Pipe, Ws, bridges};
use online::{Online, each_protocol_shows, log_everyone_in};
use rosetta_bridge_imps::codec::{ClientMessage, cmd};
use rosetta_proto::{
    Reason,
    account::v1::{LoginRequest, login_request::Identifier},
    admin::v1::{AnnounceRequest, ListAuditLogRequest, admin_service_client::AdminServiceClient},
    messaging::v1::{
        Announcement, SubscribeRequest, SubscribeResponse, event,
        messaging_service_client::MessagingServiceClient, subscribe_response::Item,
    },
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends, reason};
use sea_orm::ConnectionTrait as _;
use serde_json::Value;
use tonic::{Code, Streaming, transport::Channel};

type Admin = AdminServiceClient<Channel>;
type Events = Streaming<SubscribeResponse>;

/// `name` registered over gRPC and given the admin role as `rosetta admin grant` does.
async fn admin_user(server: &TestServer, name: &str) -> String {
    let login = server.user(name, &format!("pw-{name}")).await;
    server.grant_admin(name).await;
    login.access_token
}

async fn announce(admin: &mut Admin, token: &str, text: &str) -> Announcement {
    admin
        .announce(authed(
            AnnounceRequest {
                text: text.into(),
                lifetime_secs: 0,
            },
            token,
        ))
        .await
        .expect("announce")
        .into_inner()
        .announcement
        .expect("the announcement")
}

/// A `Subscribe` stream of `token`'s user, read up to its `CaughtUp`.
async fn subscribe(server: &TestServer, token: &str) -> Events {
    let mut stream = MessagingServiceClient::new(server.channel().await)
        .subscribe(authed(SubscribeRequest::default(), token))
        .await
        .expect("subscribe")
        .into_inner();
    loop {
        if let Item::CaughtUp(_) = next_item(&mut stream).await {
            return stream;
        }
    }
}

async fn next_item(stream: &mut Events) -> Item {
    tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("an item in time")
        .expect("stream open")
        .expect("stream not ended")
        .item
        .expect("an item")
}

/// The next announcement on a stream, skipping other events (presence and the like).
async fn next_announcement(stream: &mut Events) -> Announcement {
    loop {
        if let Item::Event(event) = next_item(stream).await
            && let Some(event::Kind::Announcement(announcement)) = event.kind
        {
            assert_eq!((event.seq, event.at_ms), (0, announcement.sent_at_ms));
            return announcement;
        }
    }
}

async fn every_protocol_gets_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridges = bridges::start(&server).await;
    let opal = admin_user(&server, "opal").await;
    let mut admin = AdminServiceClient::new(server.channel().await);
    let gus = server.user("gus", "pw-gus").await;
    let mut gus_events = subscribe(&server, &gus.access_token).await;
    let mut online = log_everyone_in(&server, &bridges).await;

    let first = announce(&mut admin, &opal, "Maintenance at 22:00 UTC: 今晚维护").await;
    assert_eq!(next_announcement(&mut gus_events).await, first);
    each_protocol_shows(&mut online, &first).await;

    // Dora's window got it through the room and through her own stream, and showed it once:
    // the next line there is the next lobby message.
    SocialLobby::say(&server, &gus.access_token, "after").await;
    let next = online.dpc_window.recv().await;
    assert!(next.contains("gus:after"), "shown once: {next}");

    online.dpc_listener.recv_containing("gus:after").await;

    // The second goes through the command line.
    let second = {
        let (endpoint, token) = (server.endpoint(), opal.clone());
        tokio::task::spawn_blocking(move || announce_with_cli(&endpoint, &token, "Second notice"))
            .await
            .expect("the command ran")
    };
    assert_eq!(next_announcement(&mut gus_events).await.id, second);
    each_protocol_shows_text(&mut online, "Second notice").await;

    let audit = admin
        .list_audit_log(authed(ListAuditLogRequest::default(), &opal))
        .await
        .expect("audit")
        .into_inner();
    let announced: Vec<&str> = audit
        .entries
        .iter()
        .filter(|e| e.action == "Announce")
        .map(|e| e.details.as_str())
        .collect();
    assert_eq!(announced.len(), 2, "{announced:?}");
    assert!(announced[0].contains("Second notice"), "newest first");
    assert!(announced[1].contains("今晚维护"), "{announced:?}");
    assert!(
        audit
            .entries
            .iter()
            .filter(|e| e.action == "Announce")
            .all(|e| e.actor == "opal" && e.outcome == "OK")
    );
    server.stop().await;
}
both_backends!(every_protocol, super::every_protocol_gets_it);

/// Shown to everyone as in [`each_protocol_shows`]; only the text is known (sent by the CLI).
async fn each_protocol_shows_text(online: &mut Online, text: &str) {
    let sent = Announcement {
        text: text.into(),
        ..Default::default()
    };
    each_protocol_shows(online, &sent).await;
}

/// `rosetta admin announce <text>` against the test server; the announcement's id.
fn announce_with_cli(endpoint: &str, token: &str, text: &str) -> i64 {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rosetta"))
        .args(["admin", "announce", text, "--server", endpoint])
        .env("ROSETTA_TOKEN", token)
        .output()
        .expect("the rosetta binary runs");
    assert!(output.status.success(), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    assert_eq!(printed["text"], text, "{printed}");
    printed["announced"].as_i64().expect("id")
}

/// The DPC lobby as a gRPC member sees it.
struct SocialLobby;

impl SocialLobby {
    /// `token`'s user joins the lobby and says `text` there.
    async fn say(server: &TestServer, token: &str, text: &str) {
        use rosetta_proto::{
            messaging::v1::{MessageKind, SendMessageRequest, send_message_request},
            social::v1::{JoinPublicGroupRequest, social_service_client::SocialServiceClient},
        };
        let group = SocialServiceClient::new(server.channel().await)
            .join_public_group(authed(
                JoinPublicGroupRequest {
                    slug: "dpc-lobby".into(),
                    name: String::new(),
                },
                token,
            ))
            .await
            .expect("join the lobby")
            .into_inner();
        MessagingServiceClient::new(server.channel().await)
            .send_message(authed(
                SendMessageRequest {
                    to: Some(send_message_request::To::ToGroupId(group.id)),
                    kind: MessageKind::Text.into(),
                    text: text.into(),
                    client_message_id: uuid::Uuid::new_v4().to_string(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .expect("send to the lobby");
    }
}

/// A user who logs in after an announcement gets it once: at their first login (on any
/// protocol), not at the next one, and from only one of two streams opened at once; an
/// expired one reaches nobody.
async fn later_logins_get_it_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridges = bridges::start(&server).await;
    let opal = admin_user(&server, "opal").await;
    let mut admin = AdminServiceClient::new(server.channel().await);
    let twin = server.user("twin", "pw-twin").await;

    let first = announce(&mut admin, &opal, "stored for later").await;

    // Lena registers and logs in on pipe afterwards: the announcement follows the login.
    let (mut lena, _, _) = Pipe::user(bridges.pipe, "lena").await;
    let push = lena.recv().await;
    assert!(push.ends_with("|stored for later"), "{push}");
    assert!(push.starts_with("message|0|00000|"), "{push}");
    drop(lena);
    // Her next login, on another protocol, does not repeat it: the next push she gets is
    // the next announcement.
    let lena_grpc = server
        .account()
        .await
        .login(LoginRequest {
            identifier: Some(Identifier::Username("lena".into())),
            password: "pw-lena".into(),
            client: "test".into(),
            ..Default::default()
        })
        .await
        .expect("Lena logs in over gRPC with her pipe password")
        .into_inner();
    let mut lena_events = subscribe(&server, &lena_grpc.access_token).await;
    let second = announce(&mut admin, &opal, "second").await;
    assert_eq!(next_announcement(&mut lena_events).await, second);

    // Twin opens two streams at once: between them they deliver each pending announcement
    // exactly once (live ones reach both).
    let (mut a, mut b) = tokio::join!(
        subscribe(&server, &twin.access_token),
        subscribe(&server, &twin.access_token)
    );
    let third = announce(&mut admin, &opal, "third").await;
    let mut seen = BTreeMap::<i64, usize>::new();
    for stream in [&mut a, &mut b] {
        loop {
            let got = next_announcement(stream).await;
            *seen.entry(got.id).or_default() += 1;
            if got.id == third.id {
                break;
            }
        }
    }
    assert_eq!(
        seen,
        BTreeMap::from([(first.id, 1), (second.id, 1), (third.id, 2)])
    );

    // Once expired, an announcement reaches nobody who logs in later.
    let db = rosetta_db::connect(&server.config.database_url())
        .await
        .expect("the test reaches the node's database");
    let expire = format!(
        "UPDATE announcements SET expires_at_ms = {} WHERE id = {}",
        rosetta_db::now_ms() - 1,
        third.id
    );
    db.execute_unprepared(&expire).await.expect("expire");
    let newbie = server.user("newbie", "pw-newbie").await;
    let mut newbie_events = subscribe(&server, &newbie.access_token).await;
    assert_eq!(next_announcement(&mut newbie_events).await, first);
    assert_eq!(next_announcement(&mut newbie_events).await, second);
    let fourth = announce(&mut admin, &opal, "fourth").await;
    assert_eq!(
        next_announcement(&mut newbie_events).await,
        fourth,
        "the expired third is skipped"
    );

    // A live delivery moves the user's cursor too (written in batches): once it has, the
    // next login does not repeat it.
    let newbie_id = newbie.user.as_ref().expect("user").id;
    cursor_reaches(&db, newbie_id, fourth.id).await;
    drop(newbie_events);
    let mut again = subscribe(&server, &newbie.access_token).await;
    let fifth = announce(&mut admin, &opal, "fifth").await;
    assert_eq!(next_announcement(&mut again).await, fifth);
    server.stop().await;
}

/// Waits (bounded) until `user`'s announcement cursor has reached `id`.
async fn cursor_reaches(db: &sea_orm::DatabaseConnection, user: i64, id: i64) {
    use rosetta_db::entity::announcement_cursor;
    use sea_orm::EntityTrait as _;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let cursor = announcement_cursor::Entity::find_by_id(user)
            .one(db)
            .await
            .expect("read the cursor");
        if cursor.as_ref().is_some_and(|c| c.last_id >= id) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "cursor of {user} never reached {id}: {cursor:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
both_backends!(later_logins, super::later_logins_get_it_once);

/// The bounds: text length and characters, lifetime, announcements active at once; every
/// refused call is audited with its reason.
async fn bounds_hold(backend: Backend) {
    let server = TestServer::start(backend).await;
    let opal = admin_user(&server, "opal").await;
    let mut admin = AdminServiceClient::new(server.channel().await);
    let refused = |text: String, lifetime_secs: i64| AnnounceRequest {
        text,
        lifetime_secs,
    };
    for (request, why) in [
        (refused(String::new(), 0), "empty"),
        (refused("x".repeat(2001), 0), "too long"),
        (refused("a\u{7}b".into(), 0), "control character"),
        (refused("ok".into(), 59), "lifetime too short"),
        (
            refused("ok".into(), 30 * 24 * 3600 + 1),
            "lifetime too long",
        ),
    ] {
        let err = admin.announce(authed(request, &opal)).await.expect_err(why);
        assert_eq!(err.code(), Code::InvalidArgument, "{why}: {err:?}");
    }
    for n in 0..16 {
        let request = refused(format!("notice {n}\nsecond line"), 60);
        admin
            .announce(authed(request, &opal))
            .await
            .expect("within the bound");
    }
    let err = admin
        .announce(authed(refused("one too many".into(), 60), &opal))
        .await
        .expect_err("17 active");
    assert_eq!(
        (err.code(), reason(&err)),
        (Code::ResourceExhausted, Reason::LimitReached)
    );
    let audit = admin
        .list_audit_log(authed(ListAuditLogRequest::default(), &opal))
        .await
        .expect("audit")
        .into_inner();
    let outcomes: Vec<&str> = audit
        .entries
        .iter()
        .filter(|e| e.action == "Announce")
        .map(|e| e.outcome.as_str())
        .collect();
    assert_eq!(outcomes.len(), 22, "{outcomes:?}");
    assert_eq!(outcomes[0], "LIMIT_REACHED");
    assert_eq!(outcomes.iter().filter(|o| **o == "OK").count(), 16);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == "INVALID_ARGUMENT")
            .count(),
        5
    );
    server.stop().await;
}
both_backends!(bounds, super::bounds_hold);

/// The system's names cannot be registered on the protocols that let a client choose one.
async fn system_identity_is_reserved(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridges = bridges::start(&server).await;
    let mut pipe = Pipe::connect(bridges.pipe).await;
    let reply = pipe
        .call("register|system|pw-system|sys|1|sig|1|answer")
        .await;
    assert!(reply.starts_with("register_error|"), "{reply}");
    let mut imps = Imps::connect(bridges.imps).await;
    imps.send(ClientMessage::Register {
        user: "System".into(),
        password: "pw-system".into(),
        gender: 1,
        email: "system@example.cn".into(),
    })
    .await;
    let answer = imps.recv_any().await;
    assert_eq!(answer.cmd, cmd::S_ERROR, "refused: {answer:?}");
    let mut cloudchat = Ws::connect(bridges.cloudchat).await;
    let reply = cloudchat
        .call(r#"{"type":"REGISTER","payload":{"username":"system","password":"pw","email":"s@example.com"}}"#)
        .await;
    assert_ne!(reply["type"], "REGISTER_SUCCESS", "{reply}");
    server.stop().await;
}
both_backends!(reserved_identity, super::system_identity_is_reserved);
