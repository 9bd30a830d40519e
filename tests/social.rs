//! The social service end to end over real gRPC, on SQLite and on PostgreSQL: every RPC's
//! success path and its refusals. Event fan-out is tested at the domain level inside
//! `rosetta-social` (the messaging service that delivers events is not part of these nodes).

use rosetta_proto::Reason;
use rosetta_testkit::{self as support, both_backends};

use rosetta_proto::{
    common::v1::{PageRequest, UserRef, user_ref::Ref},
    social::v1::{
        AddGroupMembersRequest, Applicant, BlockUserRequest, CancelFriendRequestRequest,
        CreateGroupRequest, Direction, DissolveGroupRequest, GetGroupRequest, GroupRole,
        JoinPublicGroupRequest, KickMemberRequest, LeaveGroupRequest, ListBlockedRequest,
        ListContactsRequest, ListFriendRequestsRequest, ListGroupMembersRequest,
        ListJoinRequestsRequest, ListMyGroupsRequest, MuteMemberRequest, PresenceStatus,
        RemoveFriendRequest, RequestJoinGroupRequest, RequestState, RespondFriendRequestRequest,
        RespondJoinRequestRequest, SendFriendRequestRequest, SetAdminRequest,
        TransferOwnershipRequest, UnblockUserRequest, UpdateGroupRequest,
        respond_friend_request_request::Request as FriendWhich,
        respond_join_request_request::Request as JoinWhich,
        social_service_client::SocialServiceClient,
    },
};
use support::{Backend, TestServer, authed, reason};
use tonic::{Code, Request, Response, Status, transport::Channel};

/// A logged-in user.
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

async fn client(server: &TestServer) -> SocialServiceClient<Channel> {
    SocialServiceClient::new(server.channel().await)
}

/// The reason a call that must fail failed with.
fn refused<T: std::fmt::Debug>(result: Result<Response<T>, Status>) -> Reason {
    reason(&result.expect_err("the call must be refused"))
}

fn ok<T>(result: Result<Response<T>, Status>) -> T {
    result.expect("the call must succeed").into_inner()
}

fn to_id(id: i64) -> Option<UserRef> {
    Some(UserRef {
        r#ref: Some(Ref::Id(id)),
    })
}

fn ask(to: Option<UserRef>, note: &str) -> SendFriendRequestRequest {
    SendFriendRequestRequest {
        to,
        note: note.into(),
    }
}

fn answer(which: FriendWhich, accept: bool) -> RespondFriendRequestRequest {
    RespondFriendRequestRequest {
        request: Some(which),
        accept,
    }
}

fn as_user<T>(who: &Who, msg: T) -> Request<T> {
    authed(msg, &who.token)
}

/// `a` asks, `b` accepts: only friends are added to groups directly.
async fn befriend(s: &mut SocialServiceClient<Channel>, a: &Who, b: &Who) {
    ok(s.send_friend_request(as_user(a, ask(to_id(b.id), "")))
        .await);
    ok(
        s.respond_friend_request(as_user(b, answer(FriendWhich::FromUserId(a.id), true)))
            .await,
    );
}

async fn friend_requests_and_contacts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut s = client(&server).await;
    let (alice, bob, carol) = (
        who(&server, "alice").await,
        who(&server, "bob").await,
        who(&server, "carol").await,
    );

    // Refusals before anything exists.
    let by_name = Some(UserRef {
        r#ref: Some(Ref::Username("bob".into())),
    });
    assert_eq!(
        refused(
            s.send_friend_request(as_user(&alice, ask(to_id(alice.id), "")))
                .await
        ),
        Reason::InvalidArgument
    );
    assert_eq!(
        refused(
            s.send_friend_request(as_user(&alice, ask(to_id(999_999), "")))
                .await
        ),
        Reason::NotFound
    );
    assert_eq!(
        refused(
            s.send_friend_request(as_user(&alice, ask(by_name.clone(), &"x".repeat(513))))
                .await
        ),
        Reason::InvalidArgument
    );
    assert_eq!(
        refused(s.send_friend_request(as_user(&alice, ask(None, ""))).await),
        Reason::InvalidArgument
    );

    let sent = ok(s
        .send_friend_request(as_user(&alice, ask(by_name.clone(), "hello bob")))
        .await);
    assert_eq!(sent.state, RequestState::Pending as i32);
    assert_eq!(sent.from.as_ref().unwrap().id, alice.id);
    assert_eq!(sent.to.as_ref().unwrap().username, "bob");
    assert_eq!(
        sent.to.as_ref().unwrap().email,
        "",
        "private fields stay private"
    );
    assert_eq!(
        refused(
            s.send_friend_request(as_user(&alice, ask(by_name, "")))
                .await
        ),
        Reason::RequestPending
    );
    assert_eq!(
        refused(
            s.send_friend_request(as_user(&bob, ask(to_id(alice.id), "")))
                .await
        ),
        Reason::ReverseRequestPending
    );

    // Only the recipient answers, only the sender cancels: others see no such request.
    let by_id = FriendWhich::RequestId(sent.id);
    assert_eq!(
        refused(
            s.respond_friend_request(as_user(&carol, answer(by_id, true)))
                .await
        ),
        Reason::NotFound
    );
    assert_eq!(
        refused(
            s.respond_friend_request(as_user(&alice, answer(by_id, true)))
                .await
        ),
        Reason::NotFound
    );
    assert_eq!(
        refused(
            s.respond_friend_request(as_user(
                &carol,
                answer(FriendWhich::FromUserId(alice.id), true)
            ))
            .await
        ),
        Reason::NotFound
    );
    let cancel = |id| CancelFriendRequestRequest { request_id: id };
    assert_eq!(
        refused(
            s.cancel_friend_request(as_user(&bob, cancel(sent.id)))
                .await
        ),
        Reason::NotFound
    );
    assert_eq!(
        refused(
            s.cancel_friend_request(as_user(&carol, cancel(sent.id)))
                .await
        ),
        Reason::NotFound
    );

    let list = |direction: Direction, include_answered| ListFriendRequestsRequest {
        direction: direction.into(),
        include_answered,
        page: None,
    };
    let incoming = ok(s
        .list_friend_requests(as_user(&bob, list(Direction::Incoming, false)))
        .await);
    assert_eq!(incoming.requests.len(), 1);
    assert_eq!(incoming.requests[0].note, "hello bob");
    assert!(
        ok(
            s.list_friend_requests(as_user(&bob, list(Direction::Outgoing, false)))
                .await
        )
        .requests
        .is_empty()
    );
    assert_eq!(
        ok(
            s.list_friend_requests(as_user(&alice, list(Direction::Unspecified, false)))
                .await
        )
        .requests
        .len(),
        1
    );
    assert!(
        ok(
            s.list_friend_requests(as_user(&carol, list(Direction::Both, true)))
                .await
        )
        .requests
        .is_empty()
    );

    // Bob accepts by naming the sender (pipe style).
    let accepted = ok(s
        .respond_friend_request(as_user(
            &bob,
            answer(FriendWhich::FromUserId(alice.id), true),
        ))
        .await);
    assert_eq!(accepted.state, RequestState::Accepted as i32);
    assert!(accepted.answered_at_ms > 0);
    assert_eq!(
        refused(
            s.respond_friend_request(as_user(&bob, answer(by_id, false)))
                .await
        ),
        Reason::NotPending
    );
    assert_eq!(
        refused(
            s.cancel_friend_request(as_user(&alice, cancel(sent.id)))
                .await
        ),
        Reason::NotPending
    );
    assert_eq!(
        refused(
            s.send_friend_request(as_user(&bob, ask(to_id(alice.id), "")))
                .await
        ),
        Reason::AlreadyFriends
    );
    assert!(
        ok(
            s.list_friend_requests(as_user(&bob, list(Direction::Both, false)))
                .await
        )
        .requests
        .is_empty()
    );
    let history = ok(s
        .list_friend_requests(as_user(&bob, list(Direction::Both, true)))
        .await);
    assert_eq!(history.requests[0].state, RequestState::Accepted as i32);

    for (me, friend) in [(&alice, &bob), (&bob, &alice)] {
        let contacts = ok(s
            .list_contacts(as_user(me, ListContactsRequest { page: None }))
            .await)
        .contacts;
        assert_eq!(contacts.len(), 1);
        assert_eq!(contacts[0].user.as_ref().unwrap().id, friend.id);
        assert!(contacts[0].since_ms > 0);
        assert_eq!(
            contacts[0].presence.as_ref().unwrap().status,
            PresenceStatus::Offline as i32
        );
    }

    // Carol is rejected by id, then asks again and withdraws.
    let second = ok(s
        .send_friend_request(as_user(&carol, ask(to_id(alice.id), "")))
        .await);
    let rejected = ok(s
        .respond_friend_request(as_user(
            &alice,
            answer(FriendWhich::RequestId(second.id), false),
        ))
        .await);
    assert_eq!(rejected.state, RequestState::Rejected as i32);
    let third = ok(s
        .send_friend_request(as_user(&carol, ask(to_id(alice.id), "again")))
        .await);
    let cancelled = ok(s
        .cancel_friend_request(as_user(&carol, cancel(third.id)))
        .await);
    assert_eq!(cancelled.state, RequestState::Cancelled as i32);
    let carols = ok(s
        .list_friend_requests(as_user(&carol, list(Direction::Outgoing, true)))
        .await);
    let states: Vec<i32> = carols.requests.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [
            RequestState::Rejected as i32,
            RequestState::Cancelled as i32
        ],
        "oldest first"
    );
    assert!(
        ok(
            s.list_contacts(as_user(&carol, ListContactsRequest { page: None }))
                .await
        )
        .contacts
        .is_empty()
    );

    // Paging the request history one by one.
    let page1 = ok(s
        .list_friend_requests(as_user(
            &alice,
            ListFriendRequestsRequest {
                direction: Direction::Both.into(),
                include_answered: true,
                page: Some(PageRequest {
                    page_size: 2,
                    page_token: String::new(),
                }),
            },
        ))
        .await);
    assert_eq!(page1.requests.len(), 2);
    let token = page1.page.unwrap().next_page_token;
    assert!(!token.is_empty());
    let page2 = ok(s
        .list_friend_requests(as_user(
            &alice,
            ListFriendRequestsRequest {
                direction: Direction::Both.into(),
                include_answered: true,
                page: Some(PageRequest {
                    page_size: 2,
                    page_token: token,
                }),
            },
        ))
        .await);
    assert_eq!(page2.requests.len(), 1);
    assert!(page2.page.unwrap().next_page_token.is_empty());

    // Removal is mutual and idempotent.
    let remove = |user_id| RemoveFriendRequest { user_id };
    assert!(ok(s.remove_friend(as_user(&bob, remove(alice.id))).await).removed);
    assert!(!ok(s.remove_friend(as_user(&bob, remove(alice.id))).await).removed);
    assert!(!ok(s.remove_friend(as_user(&alice, remove(bob.id))).await).removed);
    assert!(
        ok(
            s.list_contacts(as_user(&alice, ListContactsRequest { page: None }))
                .await
        )
        .contacts
        .is_empty()
    );

    // No token, no service.
    let anonymous = s
        .list_contacts(ListContactsRequest { page: None })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    server.stop().await;
}
both_backends!(
    friend_requests_and_contacts,
    super::friend_requests_and_contacts
);

async fn blocking(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut s = client(&server).await;
    let (alice, bob) = (who(&server, "alice").await, who(&server, "bob").await);
    let sent = ok(s
        .send_friend_request(as_user(&bob, ask(to_id(alice.id), "")))
        .await);
    ok(s.respond_friend_request(as_user(
        &alice,
        answer(FriendWhich::RequestId(sent.id), true),
    ))
    .await);

    let block = |user_id| BlockUserRequest { user_id };
    assert_eq!(
        refused(s.block_user(as_user(&alice, block(alice.id))).await),
        Reason::InvalidArgument
    );
    assert_eq!(
        refused(s.block_user(as_user(&alice, block(999_999))).await),
        Reason::NotFound
    );
    ok(s.block_user(as_user(&alice, block(bob.id))).await);
    ok(s.block_user(as_user(&alice, block(bob.id))).await);
    assert!(
        ok(
            s.list_contacts(as_user(&bob, ListContactsRequest { page: None }))
                .await
        )
        .contacts
        .is_empty(),
        "blocking ends the friendship"
    );
    let blocked = ok(s
        .list_blocked(as_user(&alice, ListBlockedRequest { page: None }))
        .await)
    .users;
    assert_eq!(blocked.iter().map(|u| u.id).collect::<Vec<_>>(), [bob.id]);
    assert!(
        ok(
            s.list_blocked(as_user(&bob, ListBlockedRequest { page: None }))
                .await
        )
        .users
        .is_empty()
    );

    assert_eq!(
        refused(
            s.send_friend_request(as_user(&bob, ask(to_id(alice.id), "")))
                .await
        ),
        Reason::Blocked
    );
    assert_eq!(
        refused(
            s.send_friend_request(as_user(&alice, ask(to_id(bob.id), "")))
                .await
        ),
        Reason::Blocked
    );
    // Bob cannot pull Alice into a group.
    let with_alice = CreateGroupRequest {
        name: "trap".into(),
        member_ids: vec![alice.id],
        ..Default::default()
    };
    assert_eq!(
        refused(s.create_group(as_user(&bob, with_alice)).await),
        Reason::Blocked
    );
    let group = ok(s
        .create_group(as_user(
            &bob,
            CreateGroupRequest {
                name: "g".into(),
                ..Default::default()
            },
        ))
        .await);
    let add = AddGroupMembersRequest {
        group_id: group.id,
        user_ids: vec![alice.id],
        friends_only: false,
    };
    assert_eq!(
        refused(s.add_group_members(as_user(&bob, add)).await),
        Reason::Blocked
    );

    ok(
        s.unblock_user(as_user(&alice, UnblockUserRequest { user_id: bob.id }))
            .await,
    );
    ok(
        s.unblock_user(as_user(&alice, UnblockUserRequest { user_id: bob.id }))
            .await,
    );
    assert!(
        ok(
            s.list_blocked(as_user(&alice, ListBlockedRequest { page: None }))
                .await
        )
        .users
        .is_empty()
    );
    ok(
        s.send_friend_request(as_user(&bob, ask(to_id(alice.id), "sorry")))
            .await,
    );
    server.stop().await;
}
both_backends!(blocking, super::blocking);

async fn group_ids_and_creation(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut s = client(&server).await;
    let (alice, bob) = (who(&server, "alice").await, who(&server, "bob").await);
    let create = |name: &str, requested_id: Option<i64>| CreateGroupRequest {
        name: name.into(),
        requested_id,
        ..Default::default()
    };

    // A client-chosen id first; server-allocated ids afterwards must step around it (the
    // PostgreSQL sequence does not advance on explicit ids).
    let chosen = ok(s
        .create_group(as_user(&alice, create("chosen", Some(2))))
        .await);
    assert_eq!(chosen.id, 2);
    assert_eq!(
        refused(
            s.create_group(as_user(&bob, create("again", Some(2))))
                .await
        ),
        Reason::GroupIdTaken
    );
    let mut ids = vec![2];
    for i in 0..3 {
        let g = ok(s
            .create_group(as_user(&alice, create(&format!("auto{i}"), None)))
            .await);
        assert!(!ids.contains(&g.id), "allocated id {} collides", g.id);
        ids.push(g.id);
    }
    let high = ok(s
        .create_group(as_user(&bob, create("high", Some(1_000))))
        .await);
    assert_eq!(high.id, 1_000);
    let after = ok(s.create_group(as_user(&bob, create("after", None))).await);
    assert!(
        after.id > 1_000,
        "allocation continues past the highest explicit id on both backends"
    );

    assert_eq!(
        refused(s.create_group(as_user(&alice, create("", None))).await),
        Reason::InvalidArgument
    );
    assert_eq!(
        refused(
            s.create_group(as_user(&alice, create(&"n".repeat(65), None)))
                .await
        ),
        Reason::InvalidArgument
    );
    assert_eq!(
        refused(
            s.create_group(as_user(&alice, create("neg", Some(-5))))
                .await
        ),
        Reason::InvalidArgument
    );
    let ghost = CreateGroupRequest {
        name: "ghost".into(),
        member_ids: vec![999_999],
        ..Default::default()
    };
    assert_eq!(
        refused(s.create_group(as_user(&alice, ghost)).await),
        Reason::NotFound
    );

    // Initial members (friends) join at once; the creator owns the group.
    befriend(&mut s, &alice, &bob).await;
    let team = ok(s
        .create_group(as_user(
            &alice,
            CreateGroupRequest {
                name: " Team ".into(),
                member_ids: vec![bob.id, bob.id, alice.id],
                ..Default::default()
            },
        ))
        .await);
    assert_eq!(team.name, "Team");
    assert_eq!(team.owner_id, alice.id);
    assert_eq!(team.member_count, 2);
    assert_eq!(team.my_role, GroupRole::Owner as i32);
    assert!(!team.public);
    let seen_by_bob = ok(s
        .get_group(as_user(&bob, GetGroupRequest { group_id: team.id }))
        .await);
    assert_eq!(seen_by_bob.my_role, GroupRole::Member as i32);
    let bobs = ok(s
        .list_my_groups(as_user(&bob, ListMyGroupsRequest { page: None }))
        .await)
    .groups;
    let bob_group_ids: Vec<i64> = bobs.iter().map(|g| g.id).collect();
    assert_eq!(bob_group_ids, [high.id, after.id, team.id], "by join time");
    server.stop().await;
}
both_backends!(group_ids_and_creation, super::group_ids_and_creation);

async fn group_administration(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut s = client(&server).await;
    let owner = who(&server, "owner").await;
    let admin = who(&server, "admin1").await;
    let member = who(&server, "member").await;
    let other = who(&server, "other").await;
    let outsider = who(&server, "outsider").await;
    for friend in [&admin, &member] {
        befriend(&mut s, &owner, friend).await;
    }
    // The admin adds `other` below: a friend of theirs.
    befriend(&mut s, &admin, &other).await;
    let g = ok(s
        .create_group(as_user(
            &owner,
            CreateGroupRequest {
                name: "club".into(),
                member_ids: vec![admin.id, member.id],
                ..Default::default()
            },
        ))
        .await)
    .id;

    // Private: outsiders see nothing.
    assert_eq!(
        refused(
            s.get_group(as_user(&outsider, GetGroupRequest { group_id: g }))
                .await
        ),
        Reason::NotMember
    );
    assert_eq!(
        refused(
            s.get_group(as_user(&owner, GetGroupRequest { group_id: 987_654 }))
                .await
        ),
        Reason::NotFound
    );
    let members_of = |group_id| ListGroupMembersRequest {
        group_id,
        page: None,
    };
    assert_eq!(
        refused(
            s.list_group_members(as_user(&outsider, members_of(g)))
                .await
        ),
        Reason::NotMember
    );

    // Admin role: the owner only.
    let make_admin = |user_id, admin| SetAdminRequest {
        group_id: g,
        user_id,
        admin,
    };
    assert_eq!(
        refused(
            s.set_admin(as_user(&member, make_admin(admin.id, true)))
                .await
        ),
        Reason::NotOwner
    );
    assert_eq!(
        refused(
            s.set_admin(as_user(&owner, make_admin(outsider.id, true)))
                .await
        ),
        Reason::NotMember
    );
    assert_eq!(
        refused(
            s.set_admin(as_user(&owner, make_admin(owner.id, false)))
                .await
        ),
        Reason::InvalidArgument
    );
    ok(s.set_admin(as_user(&owner, make_admin(admin.id, true)))
        .await);
    let view = ok(s
        .get_group(as_user(&admin, GetGroupRequest { group_id: g }))
        .await);
    assert_eq!(view.admin_ids, [admin.id]);
    assert_eq!(view.my_role, GroupRole::Admin as i32);

    // Adding: owner or admin; members already in are skipped.
    let add = |user_ids: Vec<i64>| AddGroupMembersRequest {
        group_id: g,
        user_ids,
        friends_only: false,
    };
    assert_eq!(
        refused(
            s.add_group_members(as_user(&member, add(vec![other.id])))
                .await
        ),
        Reason::NotAdmin
    );
    assert_eq!(
        refused(
            s.add_group_members(as_user(&outsider, add(vec![other.id])))
                .await
        ),
        Reason::NotMember
    );
    assert_eq!(
        refused(
            s.add_group_members(as_user(&admin, add(vec![999_999])))
                .await
        ),
        Reason::NotFound
    );
    let added = ok(s
        .add_group_members(as_user(&admin, add(vec![other.id, member.id])))
        .await);
    assert_eq!(added.added_user_ids, [other.id]);

    let members = ok(s.list_group_members(as_user(&member, members_of(g))).await).members;
    let roles: Vec<(i64, i32)> = members
        .iter()
        .map(|m| (m.user.as_ref().unwrap().id, m.role))
        .collect();
    assert_eq!(roles[0], (owner.id, GroupRole::Owner as i32));
    assert_eq!(roles[1], (admin.id, GroupRole::Admin as i32));
    assert_eq!(roles.len(), 4);

    // Mute: owner or admin, over lower ranks only.
    let mute = |user_id, until_ms| MuteMemberRequest {
        group_id: g,
        user_id,
        until_ms,
    };
    assert_eq!(
        refused(s.mute_member(as_user(&member, mute(other.id, 1))).await),
        Reason::NotAdmin
    );
    assert_eq!(
        refused(s.mute_member(as_user(&admin, mute(owner.id, 1))).await),
        Reason::NotOwner
    );
    assert_eq!(
        refused(s.mute_member(as_user(&admin, mute(other.id, -1))).await),
        Reason::InvalidArgument
    );
    let until = 4_102_444_800_000;
    ok(s.mute_member(as_user(&admin, mute(other.id, until))).await);
    let members = ok(s.list_group_members(as_user(&owner, members_of(g))).await).members;
    let muted = members
        .iter()
        .find(|m| m.user.as_ref().unwrap().id == other.id)
        .unwrap();
    assert_eq!(muted.muted_until_ms, until);
    ok(s.mute_member(as_user(&owner, mute(other.id, 0))).await);

    // Rename: owner or admin.
    let rename = |name: &str| UpdateGroupRequest {
        group_id: g,
        name: Some(name.into()),
    };
    assert_eq!(
        refused(s.update_group(as_user(&member, rename("x"))).await),
        Reason::NotAdmin
    );
    assert_eq!(
        refused(s.update_group(as_user(&admin, rename(""))).await),
        Reason::InvalidArgument
    );
    assert_eq!(
        ok(s.update_group(as_user(&admin, rename("renamed"))).await).name,
        "renamed"
    );

    // Kick: admins cannot kick admins or the owner.
    let kick = |user_id| KickMemberRequest {
        group_id: g,
        user_id,
    };
    assert_eq!(
        refused(s.kick_member(as_user(&member, kick(other.id))).await),
        Reason::NotAdmin
    );
    assert_eq!(
        refused(s.kick_member(as_user(&admin, kick(owner.id))).await),
        Reason::NotOwner
    );
    assert_eq!(
        refused(s.kick_member(as_user(&admin, kick(outsider.id))).await),
        Reason::NotMember
    );
    ok(s.kick_member(as_user(&admin, kick(other.id))).await);
    assert_eq!(
        refused(
            s.get_group(as_user(&other, GetGroupRequest { group_id: g }))
                .await
        ),
        Reason::NotMember
    );

    // Ownership: the owner cannot just leave.
    let leave = LeaveGroupRequest { group_id: g };
    assert_eq!(
        refused(s.leave_group(as_user(&owner, leave)).await),
        Reason::OwnerCannotLeave
    );
    let transfer = |new_owner_id| TransferOwnershipRequest {
        group_id: g,
        new_owner_id,
    };
    assert_eq!(
        refused(
            s.transfer_ownership(as_user(&admin, transfer(admin.id)))
                .await
        ),
        Reason::NotOwner
    );
    assert_eq!(
        refused(
            s.transfer_ownership(as_user(&owner, transfer(outsider.id)))
                .await
        ),
        Reason::NotMember
    );
    let handed = ok(s
        .transfer_ownership(as_user(&owner, transfer(member.id)))
        .await);
    assert_eq!(handed.owner_id, member.id);
    assert_eq!(
        handed.my_role,
        GroupRole::Admin as i32,
        "the old owner stays an admin"
    );
    let mut admins = handed.admin_ids.clone();
    admins.sort_unstable();
    let mut expected = vec![owner.id, admin.id];
    expected.sort_unstable();
    assert_eq!(admins, expected);
    ok(s.leave_group(as_user(&owner, leave)).await);
    assert_eq!(
        refused(s.leave_group(as_user(&owner, leave)).await),
        Reason::NotMember
    );
    assert_eq!(
        ok(
            s.get_group(as_user(&member, GetGroupRequest { group_id: g }))
                .await
        )
        .member_count,
        2
    );

    // Dissolve: the owner only; the id stays taken.
    let dissolve = DissolveGroupRequest { group_id: g };
    assert_eq!(
        refused(s.dissolve_group(as_user(&admin, dissolve)).await),
        Reason::NotOwner
    );
    ok(s.dissolve_group(as_user(&member, dissolve)).await);
    assert_eq!(
        refused(
            s.get_group(as_user(&member, GetGroupRequest { group_id: g }))
                .await
        ),
        Reason::NotFound
    );
    assert!(
        ok(
            s.list_my_groups(as_user(&admin, ListMyGroupsRequest { page: None }))
                .await
        )
        .groups
        .is_empty()
    );
    let reuse = CreateGroupRequest {
        name: "reuse".into(),
        requested_id: Some(g),
        ..Default::default()
    };
    assert_eq!(
        refused(s.create_group(as_user(&admin, reuse)).await),
        Reason::GroupIdTaken
    );
    server.stop().await;
}
both_backends!(group_administration, super::group_administration);

async fn join_requests(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut s = client(&server).await;
    let owner = who(&server, "owner").await;
    let member = who(&server, "member").await;
    let bob = who(&server, "bob").await;
    let carol = who(&server, "carol").await;
    befriend(&mut s, &owner, &member).await;
    let g = ok(s
        .create_group(as_user(
            &owner,
            CreateGroupRequest {
                name: "private".into(),
                member_ids: vec![member.id],
                ..Default::default()
            },
        ))
        .await)
    .id;
    let join = |group_id, note: &str| RequestJoinGroupRequest {
        group_id,
        note: note.into(),
    };

    assert_eq!(
        refused(s.request_join_group(as_user(&bob, join(555_555, ""))).await),
        Reason::NotFound
    );
    assert_eq!(
        refused(s.request_join_group(as_user(&member, join(g, ""))).await),
        Reason::AlreadyMember
    );
    assert_eq!(
        refused(
            s.request_join_group(as_user(&bob, join(g, &"x".repeat(513))))
                .await
        ),
        Reason::InvalidArgument
    );
    let asked = ok(s.request_join_group(as_user(&bob, join(g, "please"))).await);
    assert_eq!(asked.state, RequestState::Pending as i32);
    assert_eq!(asked.applicant.as_ref().unwrap().id, bob.id);
    assert_eq!(
        refused(s.request_join_group(as_user(&bob, join(g, ""))).await),
        Reason::RequestPending
    );
    let carols = ok(s.request_join_group(as_user(&carol, join(g, ""))).await);

    let listing = |group_id, mine, include_answered| ListJoinRequestsRequest {
        group_id,
        mine,
        include_answered,
        page: None,
    };
    let for_owner = ok(s
        .list_join_requests(as_user(&owner, listing(0, false, false)))
        .await)
    .requests;
    assert_eq!(
        for_owner.iter().map(|r| r.id).collect::<Vec<_>>(),
        [asked.id, carols.id]
    );
    assert_eq!(
        ok(
            s.list_join_requests(as_user(&owner, listing(g, false, false)))
                .await
        )
        .requests
        .len(),
        2
    );
    assert!(
        ok(
            s.list_join_requests(as_user(&member, listing(0, false, false)))
                .await
        )
        .requests
        .is_empty(),
        "members administer nothing"
    );
    assert_eq!(
        refused(
            s.list_join_requests(as_user(&member, listing(g, false, false)))
                .await
        ),
        Reason::NotAdmin
    );
    assert_eq!(
        refused(
            s.list_join_requests(as_user(&bob, listing(g, false, false)))
                .await
        ),
        Reason::NotMember
    );
    let bobs = ok(s
        .list_join_requests(as_user(&bob, listing(0, true, false)))
        .await)
    .requests;
    assert_eq!(bobs.iter().map(|r| r.id).collect::<Vec<_>>(), [asked.id]);

    // Only the owner or an admin answers; the applicant cannot admit themself.
    let respond = |which, accept| RespondJoinRequestRequest {
        request: Some(which),
        accept,
    };
    assert_eq!(
        refused(
            s.respond_join_request(as_user(&bob, respond(JoinWhich::RequestId(asked.id), true)))
                .await
        ),
        Reason::NotMember
    );
    assert_eq!(
        refused(
            s.respond_join_request(as_user(
                &member,
                respond(JoinWhich::RequestId(asked.id), true)
            ))
            .await
        ),
        Reason::NotAdmin
    );
    assert_eq!(
        refused(
            s.respond_join_request(as_user(
                &owner,
                respond(JoinWhich::RequestId(999_999), true)
            ))
            .await
        ),
        Reason::NotFound
    );
    let by_applicant = JoinWhich::Applicant(Applicant {
        group_id: g,
        user_id: bob.id,
    });
    let accepted = ok(s
        .respond_join_request(as_user(&owner, respond(by_applicant, true)))
        .await);
    assert_eq!(accepted.state, RequestState::Accepted as i32);
    assert_eq!(accepted.answered_by, owner.id);
    assert_eq!(
        ok(s.get_group(as_user(&bob, GetGroupRequest { group_id: g }))
            .await)
        .my_role,
        GroupRole::Member as i32
    );
    assert_eq!(
        refused(
            s.respond_join_request(as_user(
                &owner,
                respond(JoinWhich::RequestId(asked.id), false)
            ))
            .await
        ),
        Reason::NotPending
    );
    let rejected = ok(s
        .respond_join_request(as_user(
            &owner,
            respond(JoinWhich::RequestId(carols.id), false),
        ))
        .await);
    assert_eq!(rejected.state, RequestState::Rejected as i32);
    assert_eq!(
        refused(
            s.get_group(as_user(&carol, GetGroupRequest { group_id: g }))
                .await
        ),
        Reason::NotMember
    );
    assert!(
        ok(
            s.list_join_requests(as_user(&owner, listing(0, false, false)))
                .await
        )
        .requests
        .is_empty()
    );
    assert_eq!(
        ok(
            s.list_join_requests(as_user(&owner, listing(0, false, true)))
                .await
        )
        .requests
        .len(),
        2
    );

    // Public groups admit at once.
    let open = ok(s
        .create_group(as_user(
            &owner,
            CreateGroupRequest {
                name: "open".into(),
                public: true,
                ..Default::default()
            },
        ))
        .await);
    assert_eq!(
        ok(
            s.get_group(as_user(&carol, GetGroupRequest { group_id: open.id }))
                .await
        )
        .my_role,
        0,
        "public groups are visible"
    );
    let admitted = ok(s
        .request_join_group(as_user(&carol, join(open.id, "")))
        .await);
    assert_eq!(admitted.state, RequestState::Accepted as i32);
    assert_eq!(
        ok(
            s.get_group(as_user(&carol, GetGroupRequest { group_id: open.id }))
                .await
        )
        .member_count,
        2
    );
    server.stop().await;
}
both_backends!(join_requests, super::join_requests);

async fn public_lobby(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.social.public_slugs = vec!["dpc-lobby".into(), "other-lobby".into()];
    })
    .await;
    let mut s = client(&server).await;
    let (alice, bob) = (who(&server, "alice").await, who(&server, "bob").await);
    let lobby = |slug: &str| JoinPublicGroupRequest {
        slug: slug.into(),
        name: "DPC Lobby".into(),
    };

    assert_eq!(
        refused(
            s.join_public_group(as_user(&alice, lobby("DPC Lobby")))
                .await
        ),
        Reason::InvalidArgument
    );
    assert_eq!(
        refused(s.join_public_group(as_user(&alice, lobby(""))).await),
        Reason::InvalidArgument
    );
    let first = ok(s
        .join_public_group(as_user(&alice, lobby("dpc-lobby")))
        .await);
    assert_eq!(
        (first.slug.as_str(), first.name.as_str(), first.public),
        ("dpc-lobby", "DPC Lobby", true)
    );
    assert_eq!(first.member_count, 1);
    let second = ok(s.join_public_group(as_user(&bob, lobby("dpc-lobby"))).await);
    assert_eq!(second.id, first.id, "one lobby per slug");
    assert_eq!(second.member_count, 2);
    assert_eq!(second.my_role, GroupRole::Member as i32);
    assert_eq!(
        first.my_role,
        GroupRole::Member as i32,
        "the first is no owner"
    );
    let again = ok(s.join_public_group(as_user(&bob, lobby("dpc-lobby"))).await);
    assert_eq!(again.member_count, 2, "joining twice is harmless");
    let bobs = ok(s
        .list_my_groups(as_user(&bob, ListMyGroupsRequest { page: None }))
        .await)
    .groups;
    assert_eq!(bobs.iter().map(|g| g.id).collect::<Vec<_>>(), [first.id]);
    let other = ok(s
        .join_public_group(as_user(&bob, lobby("other-lobby")))
        .await);
    assert_ne!(other.id, first.id);
    server.stop().await;
}
both_backends!(public_lobby, super::public_lobby);
