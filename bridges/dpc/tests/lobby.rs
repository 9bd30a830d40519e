//! Issue 18 items 2 and 6 at the DPC lobby, over the real sockets: a gRPC user who joins the
//! lobby first cannot moderate or dissolve it (it used to make them its owner), cannot read a
//! DPC user's location, and the bridge keeps chatting when the lobby group is gone.

mod common;

use common::*;
use rosetta_db::{
    entity::social::{group, group_member},
    now_ms,
    sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, sea_query::Expr},
};
use rosetta_proto::{
    common::v1::Location,
    messaging::v1::{
        GetPresenceRequest, HeartbeatRequest, messaging_service_client::MessagingServiceClient,
    },
    social::v1::{
        DissolveGroupRequest, KickMemberRequest, MuteMemberRequest,
        social_service_client::SocialServiceClient,
    },
};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};
use tokio::net::TcpStream;
use tonic::Code;

fn line(name: &str, password: &str, text: &str) -> String {
    format!(
        r#"{{"op": 0, "args": {{"name": "{name}", "password": "{password}"}}, "news": "{text}\n"}}"#
    )
}

/// The next push whose news is `news`, skipping others.
async fn push_with(stream: &mut TcpStream, news: &str) {
    loop {
        let body = read_body(stream).await;
        if body.contains(news) {
            return;
        }
    }
}

async fn lobby_cannot_be_hijacked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = start_bridge(&server).await;
    let mallory = server.user("mallory", "m-pw").await;
    let alice = server.user("alice", "abc123").await;
    server.user("bob", "xyz789").await;
    let alice_id = alice.user.as_ref().expect("user").id;

    // Mallory is in the lobby before any DPC user.
    let lobby = join_lobby(&server, &mallory.access_token).await;
    let mut social = SocialServiceClient::new(server.channel().await);
    assert_eq!(lobby.owner_id, 0, "nobody owns the lobby");

    for (name, password) in [("alice", "abc123"), ("bob", "xyz789")] {
        assert_eq!(
            login(&bridge, name, password).await,
            frame(r#"{"op": 0, "test": 0}"#)
        );
    }
    let mut alice_chat = connect(bridge.chat).await;
    let mut bob_chat = connect(bridge.chat).await;

    let t = &mallory.access_token;
    let g = lobby.id;
    let attempts = [
        social
            .mute_member(authed(
                MuteMemberRequest {
                    group_id: g,
                    user_id: alice_id,
                    until_ms: i64::MAX,
                },
                t,
            ))
            .await
            .map(|_| ()),
        social
            .kick_member(authed(
                KickMemberRequest {
                    group_id: g,
                    user_id: alice_id,
                },
                t,
            ))
            .await
            .map(|_| ()),
        social
            .dissolve_group(authed(DissolveGroupRequest { group_id: g }, t))
            .await
            .map(|_| ()),
    ];
    for attempt in attempts {
        assert_eq!(attempt.expect_err("refused").code(), Code::PermissionDenied);
    }
    send(&mut alice_chat, &line("alice", "abc123", "still here")).await;
    push_with(&mut bob_chat, "alice:still here").await;

    // Alice also reports a location (say from an IMPS phone): a lobby peer cannot read it.
    let mut messaging = MessagingServiceClient::new(server.channel().await);
    messaging
        .heartbeat(authed(
            HeartbeatRequest {
                location: Some(Location {
                    latitude: 31.2,
                    longitude: 121.5,
                    ..Default::default()
                }),
            },
            &alice.access_token,
        ))
        .await
        .expect("heartbeat");
    let seen = messaging
        .get_presence(authed(
            GetPresenceRequest {
                user_ids: vec![alice_id],
            },
            t,
        ))
        .await
        .expect("presence")
        .into_inner()
        .presences
        .remove(0);
    assert_eq!(seen.location, None, "a lobby peer sees no location");
    assert_eq!(seen.last_seen_ms, 0);

    // The lobby vanishes behind the services' back (as the old DissolveGroup left it): the
    // next line re-creates it, and chat goes on.
    let db = rosetta_db::connect(&server.config.database_url())
        .await
        .expect("database");
    group::Entity::update_many()
        .col_expr(group::Column::DissolvedAtMs, Expr::value(now_ms()))
        .col_expr(group::Column::Slug, Expr::value(Option::<String>::None))
        .filter(group::Column::Id.eq(g))
        .exec(&db)
        .await
        .expect("dissolve");
    // What the social service's dissolution does besides: the former members' messaging
    // rights changed, so their policy epochs move (the messaging cache relies on it).
    let gone = group_member::Entity::delete_many()
        .filter(group_member::Column::GroupId.eq(g))
        .exec_with_returning(&db)
        .await
        .expect("memberships gone");
    let members: Vec<i64> = gone.iter().map(|m| m.user_id).collect();
    rosetta_db::entity::policy_epoch::bump(&db, &members)
        .await
        .expect("policy epochs moved");
    send(&mut alice_chat, &line("alice", "abc123", "after the flood")).await;
    push_with(&mut bob_chat, "alice:after the flood").await;
}
both_backends!(lobby_hijack, super::lobby_cannot_be_hijacked);
