//! Issue 18, items 2, 6 and 7, attacked over real gRPC on SQLite and PostgreSQL: nobody is put
//! into a group without consent, location reaches friends only, the DPC lobby cannot be taken
//! over, and creating a group writes O(members) events with an hourly cap.

use rosetta_proto::Reason;
use rosetta_testkit::{self as support, both_backends};

use rosetta_db::{
    entity::{messaging::user_event, social::friendship, user},
    sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait as _, PaginatorTrait as _},
};
use rosetta_proto::{
    common::v1::{Location, UserRef, user_ref::Ref},
    messaging::v1::{
        GetPresenceRequest, HeartbeatRequest, messaging_service_client::MessagingServiceClient,
    },
    social::v1::{
        AddGroupMembersRequest, BlockUserRequest, CreateGroupRequest, Direction,
        DissolveGroupRequest, GroupRole, JoinPublicGroupRequest, KickMemberRequest,
        ListContactsRequest, ListGroupInvitationsRequest, ListMyGroupsRequest, MuteMemberRequest,
        Presence, PresenceStatus, RequestState, RespondFriendRequestRequest,
        RespondGroupInvitationRequest, SendFriendRequestRequest, SetAdminRequest,
        TransferOwnershipRequest, UpdateGroupRequest,
        respond_friend_request_request::Request as FriendWhich,
        respond_group_invitation_request::Invitation, social_service_client::SocialServiceClient,
    },
};
use support::{Backend, TestServer, authed, reason};
use tonic::{Code, transport::Channel};

struct Who {
    id: i64,
    token: String,
}

async fn who(server: &TestServer, name: &str) -> Who {
    let login = server.user(name, "pw").await;
    Who {
        id: login.user.expect("user").id,
        token: login.access_token,
    }
}

async fn social(server: &TestServer) -> SocialServiceClient<Channel> {
    SocialServiceClient::new(server.channel().await)
}

async fn messaging(server: &TestServer) -> MessagingServiceClient<Channel> {
    MessagingServiceClient::new(server.channel().await)
}

async fn db(server: &TestServer) -> DatabaseConnection {
    rosetta_db::connect(&server.config.database_url())
        .await
        .expect("test connects to the node's database")
}

/// `a` asks, `b` accepts, over gRPC.
async fn befriend(server: &TestServer, a: &Who, b: &Who) {
    let mut s = social(server).await;
    s.send_friend_request(authed(
        SendFriendRequestRequest {
            to: Some(UserRef {
                r#ref: Some(Ref::Id(b.id)),
            }),
            note: String::new(),
        },
        &a.token,
    ))
    .await
    .expect("friend request");
    s.respond_friend_request(authed(
        RespondFriendRequestRequest {
            request: Some(FriendWhich::FromUserId(a.id)),
            accept: true,
        },
        &b.token,
    ))
    .await
    .expect("accept");
}

fn group(name: &str, members: Vec<i64>) -> CreateGroupRequest {
    CreateGroupRequest {
        name: name.into(),
        member_ids: members,
        ..Default::default()
    }
}

async fn my_group_ids(server: &TestServer, user: &Who) -> Vec<i64> {
    social(server)
        .await
        .list_my_groups(authed(ListMyGroupsRequest { page: None }, &user.token))
        .await
        .expect("my groups")
        .into_inner()
        .groups
        .iter()
        .map(|g| g.id)
        .collect()
}

/// A stranger's CreateGroup and AddGroupMembers invite the victim instead of adding her;
/// she becomes a member only by accepting. Friends are added at once; `friends_only` refuses.
async fn strangers_only_invite(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (victim, mallory, friend) = (
        who(&server, "victim").await,
        who(&server, "mallory").await,
        who(&server, "friend").await,
    );
    befriend(&server, &mallory, &friend).await;
    let mut s = social(&server).await;

    let created = s
        .create_group(authed(
            group("trap", vec![victim.id, friend.id]),
            &mallory.token,
        ))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.invited_user_ids, vec![victim.id]);
    assert_eq!(created.member_count, 2, "mallory and her friend only");
    assert!(my_group_ids(&server, &victim).await.is_empty(), "not added");
    assert_eq!(my_group_ids(&server, &friend).await, vec![created.id]);

    let invitations = s
        .list_group_invitations(authed(
            ListGroupInvitationsRequest {
                direction: Direction::Incoming.into(),
                ..Default::default()
            },
            &victim.token,
        ))
        .await
        .expect("list")
        .into_inner()
        .invitations;
    assert_eq!(invitations.len(), 1);
    let invitation = &invitations[0];
    assert_eq!(invitation.group_id, created.id);
    assert_eq!(invitation.group_name, "trap");
    assert_eq!(invitation.inviter.as_ref().unwrap().id, mallory.id);
    assert_eq!(invitation.state, RequestState::Pending as i32);

    // AddGroupMembers by a stranger invites too; friends_only refuses the whole call.
    let other = who(&server, "other").await;
    let added = s
        .add_group_members(authed(
            AddGroupMembersRequest {
                group_id: created.id,
                user_ids: vec![other.id],
                friends_only: false,
            },
            &mallory.token,
        ))
        .await
        .expect("add")
        .into_inner();
    assert!(added.added_user_ids.is_empty());
    assert_eq!(added.invited_user_ids, vec![other.id]);
    let refused = s
        .create_group(authed(
            CreateGroupRequest {
                friends_only: true,
                ..group("legacy", vec![victim.id])
            },
            &mallory.token,
        ))
        .await
        .expect_err("a stranger cannot be added where nobody can ask her");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(reason(&refused), Reason::NotFriends);

    let accepted = s
        .respond_group_invitation(authed(
            RespondGroupInvitationRequest {
                invitation: Some(Invitation::GroupId(created.id)),
                accept: true,
            },
            &victim.token,
        ))
        .await
        .expect("accept")
        .into_inner();
    assert_eq!(accepted.state, RequestState::Accepted as i32);
    assert_eq!(my_group_ids(&server, &victim).await, vec![created.id]);

    // Declining leaves the invitee out; a blocked inviter cannot invite at all.
    s.respond_group_invitation(authed(
        RespondGroupInvitationRequest {
            invitation: Some(Invitation::GroupId(created.id)),
            accept: false,
        },
        &other.token,
    ))
    .await
    .expect("decline");
    assert!(my_group_ids(&server, &other).await.is_empty());
    s.block_user(authed(
        BlockUserRequest {
            user_id: mallory.id,
        },
        &other.token,
    ))
    .await
    .expect("block");
    let blocked = s
        .create_group(authed(group("again", vec![other.id]), &mallory.token))
        .await
        .expect_err("blocks still refuse");
    assert_eq!(reason(&blocked), Reason::Blocked);
}
both_backends!(strangers_only_invite, super::strangers_only_invite);

/// GetPresence of `user` as `viewer` sees it.
async fn seen(server: &TestServer, viewer: &Who, user: &Who) -> Presence {
    messaging(server)
        .await
        .get_presence(authed(
            GetPresenceRequest {
                user_ids: vec![user.id],
            },
            &viewer.token,
        ))
        .await
        .expect("presence")
        .into_inner()
        .presences
        .remove(0)
}

async fn report_location(server: &TestServer, user: &Who) {
    messaging(server)
        .await
        .heartbeat(authed(
            HeartbeatRequest {
                location: Some(Location {
                    latitude: 52.5,
                    longitude: 13.4,
                    client_time: "2026-12-06 20:00:00".into(),
                    received_at_ms: 0,
                }),
            },
            &user.token,
        ))
        .await
        .expect("heartbeat");
}

/// A group peer (here: a stranger who joined the DPC lobby the victim is in) sees the victim
/// online but neither location nor last-seen; a friend sees both, until a block hides all.
async fn location_for_friends_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (victim, friend, stranger) = (
        who(&server, "victim").await,
        who(&server, "friend").await,
        who(&server, "stranger").await,
    );
    befriend(&server, &victim, &friend).await;
    let mut s = social(&server).await;
    let lobby = JoinPublicGroupRequest {
        slug: "dpc-lobby".into(),
        name: String::new(),
    };
    s.join_public_group(authed(lobby.clone(), &victim.token))
        .await
        .expect("victim in the lobby");
    s.join_public_group(authed(lobby, &stranger.token))
        .await
        .expect("stranger in the lobby");
    report_location(&server, &victim).await;

    let by_peer = seen(&server, &stranger, &victim).await;
    assert_eq!(
        by_peer.status,
        PresenceStatus::Online as i32,
        "status is shown"
    );
    assert_eq!(by_peer.location, None, "a group peer sees no location");
    assert_eq!(by_peer.last_seen_ms, 0, "nor when she was last seen");

    let by_friend = seen(&server, &friend, &victim).await;
    assert_eq!(by_friend.location.as_ref().map(|l| l.latitude), Some(52.5));
    assert!(by_friend.last_seen_ms > 0);
    let contacts = s
        .list_contacts(authed(ListContactsRequest { page: None }, &friend.token))
        .await
        .expect("contacts")
        .into_inner()
        .contacts;
    let listed = contacts[0].presence.clone().expect("presence");
    assert_eq!(listed.location.map(|l| l.longitude), Some(13.4));

    // A block in either direction hides everything at once, groups or not.
    s.block_user(authed(
        BlockUserRequest { user_id: victim.id },
        &stranger.token,
    ))
    .await
    .expect("block");
    let blocked = seen(&server, &stranger, &victim).await;
    assert_eq!(blocked.status, PresenceStatus::Offline as i32);
    assert_eq!((blocked.location, blocked.last_seen_ms), (None, 0));
    s.block_user(authed(
        BlockUserRequest { user_id: friend.id },
        &victim.token,
    ))
    .await
    .expect("block");
    let former = seen(&server, &friend, &victim).await;
    assert_eq!(former.status, PresenceStatus::Offline as i32);
    assert_eq!((former.location, former.last_seen_ms), (None, 0));
}
both_backends!(location_for_friends_only, super::location_for_friends_only);

/// The first gRPC user in the DPC lobby used to become its owner. Now nobody owns it: every
/// moderation call is PERMISSION_DENIED, and slugs that are not configured cannot be minted.
async fn lobby_is_system_owned(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (first, victim) = (who(&server, "first").await, who(&server, "victim").await);
    let mut s = social(&server).await;
    let join = JoinPublicGroupRequest {
        slug: "dpc-lobby".into(),
        name: "mine".into(),
    };
    let lobby = s
        .join_public_group(authed(join.clone(), &first.token))
        .await
        .expect("join first")
        .into_inner();
    assert!(lobby.system);
    assert_eq!(lobby.owner_id, 0);
    assert_eq!(lobby.my_role, GroupRole::Member as i32);
    s.join_public_group(authed(join, &victim.token))
        .await
        .expect("victim joins");

    let g = lobby.id;
    let attempts = [
        s.mute_member(authed(
            MuteMemberRequest {
                group_id: g,
                user_id: victim.id,
                until_ms: i64::MAX,
            },
            &first.token,
        ))
        .await
        .map(|_| ()),
        s.kick_member(authed(
            KickMemberRequest {
                group_id: g,
                user_id: victim.id,
            },
            &first.token,
        ))
        .await
        .map(|_| ()),
        s.update_group(authed(
            UpdateGroupRequest {
                group_id: g,
                name: Some("owned".into()),
            },
            &first.token,
        ))
        .await
        .map(|_| ()),
        s.transfer_ownership(authed(
            TransferOwnershipRequest {
                group_id: g,
                new_owner_id: victim.id,
            },
            &first.token,
        ))
        .await
        .map(|_| ()),
        s.set_admin(authed(
            SetAdminRequest {
                group_id: g,
                user_id: victim.id,
                admin: true,
            },
            &first.token,
        ))
        .await
        .map(|_| ()),
        s.dissolve_group(authed(DissolveGroupRequest { group_id: g }, &first.token))
            .await
            .map(|_| ()),
    ];
    for (i, attempt) in attempts.into_iter().enumerate() {
        let err = attempt.expect_err("nobody runs the lobby");
        assert_eq!(err.code(), Code::PermissionDenied, "attempt {i}: {err:?}");
        assert_eq!(reason(&err), Reason::SystemGroup, "attempt {i}");
    }
    assert!(my_group_ids(&server, &victim).await.contains(&g));

    let minted = s
        .join_public_group(authed(
            JoinPublicGroupRequest {
                slug: "my-own-lobby".into(),
                name: String::new(),
            },
            &first.token,
        ))
        .await
        .expect_err("only configured slugs are created");
    assert_eq!(minted.code(), Code::NotFound);
}
both_backends!(lobby_is_system_owned, super::lobby_is_system_owned);

/// Users written straight into the database (registering 100 accounts would cost 300 argon2
/// hashes), each a friend of `owner`.
async fn friends_of(db: &DatabaseConnection, owner: i64, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let row = user::Entity::insert(user::ActiveModel {
            username: Set(format!("friend{i}")),
            ocid: Set(format!("ocfriend{i:03}")),
            email: Set(None),
            phone: Set(None),
            nickname: Set(format!("F{i}")),
            avatar: Set(String::new()),
            signature: Set(String::new()),
            gender: Set(0),
            vip: Set(false),
            security_question_id: Set(0),
            security_answer_hash: Set(None),
            created_at_ms: Set(rosetta_db::now_ms()),
            deleted_at_ms: Set(None),
            ..Default::default()
        })
        .exec_with_returning(db)
        .await
        .expect("user row");
        for (user_id, friend_id) in [(owner, row.id), (row.id, owner)] {
            friendship::Entity::insert(friendship::ActiveModel {
                user_id: Set(user_id),
                friend_id: Set(friend_id),
                since_ms: Set(rosetta_db::now_ms()),
            })
            .exec_without_returning(db)
            .await
            .expect("friendship row");
        }
        ids.push(row.id);
    }
    ids
}

/// A group of 100 friends writes one event row per member (it wrote 100 × 101), and the
/// hourly cap refuses the next creation, also when the attempts come at once.
async fn creation_is_linear_and_capped(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.social.groups_per_hour = 3).await;
    let owner = who(&server, "owner").await;
    let db = db(&server).await;
    let friends = friends_of(&db, owner.id, 100).await;
    let before = user_event::Entity::find().count(&db).await.expect("count");
    let mut s = social(&server).await;
    let created = s
        .create_group(authed(group("hundred", friends.clone()), &owner.token))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.member_count, 101);
    let written = user_event::Entity::find().count(&db).await.expect("count") - before;
    assert!(
        written <= 2 * 101,
        "{written} event rows for a group of 101 (at most 2 per member)"
    );

    // Two more are allowed this hour; of ten at once, exactly two get through.
    let attempts = (0..10).map(|i| {
        let mut s = s.clone();
        let token = owner.token.clone();
        let members = vec![friends[i]];
        async move {
            s.create_group(authed(group(&format!("g{i}"), members), &token))
                .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let made = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(made, 2, "{results:?}");
    for err in results.into_iter().filter_map(Result::err) {
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        assert_eq!(reason(&err), Reason::LimitReached);
    }
}
both_backends!(
    creation_is_linear_and_capped,
    super::creation_is_linear_and_capped
);
