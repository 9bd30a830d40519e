//! Domain tests on in-memory SQLite: who receives which event, and list ordering and paging
//! that the end-to-end tests cover less precisely.

use std::sync::{Arc, Mutex};

use rosetta_auth::Caller;
use rosetta_db::{entity::user, now_ms};
use rosetta_events::{EventSink, NoPresence};
use rosetta_kit::ApiResult;
use rosetta_proto::{
    common::v1::{PageRequest, UserRef, user_ref::Ref},
    messaging::v1::event::Kind,
    social::v1::{
        AddGroupMembersRequest, Applicant, CreateGroupRequest, GroupRole, ListContactsRequest,
        ListGroupMembersRequest, ListMyGroupsRequest, RequestJoinGroupRequest,
        RespondFriendRequestRequest, RespondGroupInvitationRequest, RespondJoinRequestRequest,
        SendFriendRequestRequest, SetAdminRequest, UpdateGroupRequest,
        respond_friend_request_request, respond_group_invitation_request,
        respond_join_request_request,
    },
};
use sea_orm::{ActiveValue::Set, EntityTrait};

use crate::Social;

mod epochs;
mod system_groups;

/// Every published event with its recipients, in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<(Vec<i64>, Kind)>>);

#[async_trait::async_trait]
impl EventSink for Recorder {
    async fn publish(&self, recipients: &[i64], kind: Kind) -> ApiResult<()> {
        let mut sorted = recipients.to_vec();
        sorted.sort_unstable();
        self.0.lock().unwrap().push((sorted, kind));
        Ok(())
    }
}

impl Recorder {
    fn take(&self) -> Vec<(Vec<i64>, Kind)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct World {
    social: Social,
    events: Arc<Recorder>,
    db: sea_orm::DatabaseConnection,
}

async fn world() -> World {
    let db = rosetta_db::connect("sqlite::memory:").await.unwrap();
    let events = Arc::new(Recorder::default());
    let social = Social::new(db.clone(), events.clone(), Arc::new(NoPresence));
    World { social, events, db }
}

impl World {
    async fn user(&self, name: &str) -> Caller {
        let row = user::Entity::insert(user::ActiveModel {
            username: Set(name.into()),
            ocid: Set(format!("oc-{name}")),
            email: Set(Some(format!("{name}@example.com"))),
            phone: Set(None),
            nickname: Set(name.to_uppercase()),
            avatar: Set(String::new()),
            signature: Set(String::new()),
            gender: Set(0),
            vip: Set(false),
            security_question_id: Set(0),
            security_answer_hash: Set(None),
            created_at_ms: Set(now_ms()),
            deleted_at_ms: Set(None),
            ..Default::default()
        })
        .exec_with_returning(&self.db)
        .await
        .unwrap();
        Caller {
            user_id: row.id,
            session_id: "s".into(),
        }
    }

    async fn befriend(&self, a: &Caller, b: &Caller) {
        self.social
            .send_friend_request(
                a,
                SendFriendRequestRequest {
                    to: Some(UserRef {
                        r#ref: Some(Ref::Id(b.user_id)),
                    }),
                    note: String::new(),
                },
            )
            .await
            .unwrap();
        self.social
            .respond_friend_request(
                b,
                RespondFriendRequestRequest {
                    request: Some(respond_friend_request_request::Request::FromUserId(
                        a.user_id,
                    )),
                    accept: true,
                },
            )
            .await
            .unwrap();
    }
}

fn page(size: u32, token: String) -> Option<PageRequest> {
    Some(PageRequest {
        page_size: size,
        page_token: token,
    })
}

#[tokio::test]
async fn friend_events_reach_the_right_users() {
    let w = world().await;
    let (alice, bob, carol) = (
        w.user("alice").await,
        w.user("bob").await,
        w.user("carol").await,
    );
    let (a, b, c) = (alice.user_id, bob.user_id, carol.user_id);

    w.befriend(&alice, &bob).await;
    let events = w.events.take();
    assert!(
        matches!(&events[0], (to, Kind::FriendRequestReceived(r)) if *to == vec![b] && r.note.is_empty())
    );
    assert!(
        matches!(&events[1], (to, Kind::FriendRequestAnswered(r)) if *to == vec![a] && r.state == 2)
    );
    assert_eq!(events.len(), 2);

    let sent = w
        .social
        .send_friend_request(
            &carol,
            SendFriendRequestRequest {
                to: Some(UserRef {
                    r#ref: Some(Ref::Username("alice".into())),
                }),
                note: "hi".into(),
            },
        )
        .await
        .unwrap();
    w.social
        .cancel_friend_request(&carol, sent.id)
        .await
        .unwrap();
    let events = w.events.take();
    assert!(matches!(&events[0], (to, Kind::FriendRequestReceived(_)) if *to == vec![a]));
    assert!(
        matches!(&events[1], (to, Kind::FriendRequestAnswered(r)) if *to == vec![a] && r.state == 4)
    );

    assert!(w.social.remove_friend(&bob, a).await.unwrap());
    assert!(!w.social.remove_friend(&bob, a).await.unwrap());
    let events = w.events.take();
    assert_eq!(events.len(), 1, "a second removal publishes nothing");
    assert!(
        matches!(&events[0], (to, Kind::FriendRemoved(r)) if *to == vec![a] && r.user_id == b && r.removed_by == b)
    );

    w.befriend(&alice, &carol).await;
    w.events.take();
    w.social.block_user(&carol, a).await.unwrap();
    let events = w.events.take();
    assert!(
        matches!(&events[..], [(to, Kind::FriendRemoved(r))] if *to == vec![a] && r.user_id == c)
    );
}

#[tokio::test]
async fn group_events_reach_the_right_users() {
    let w = world().await;
    let owner = w.user("owner").await;
    let admin = w.user("admin").await;
    let member = w.user("member").await;
    let applicant = w.user("applicant").await;
    let (o, ad, m, ap) = (
        owner.user_id,
        admin.user_id,
        member.user_id,
        applicant.user_id,
    );

    w.befriend(&owner, &admin).await;
    w.befriend(&owner, &member).await;
    w.events.take();
    let group = w
        .social
        .create_group(
            &owner,
            CreateGroupRequest {
                name: "team".into(),
                member_ids: vec![ad, m],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let g = group.id;
    let everyone = {
        let mut v = vec![o, ad, m];
        v.sort_unstable();
        v
    };
    let events = w.events.take();
    assert!(
        matches!(&events[..], [(to, Kind::MembersAdded(a))] if *to == everyone && a.group_id == g && a.actor_id == o && a.user_ids == [ad, m]),
        "one event for the whole batch: {events:?}"
    );

    w.social
        .set_admin(
            &owner,
            SetAdminRequest {
                group_id: g,
                user_id: ad,
                admin: true,
            },
        )
        .await
        .unwrap();
    let events = w.events.take();
    assert!(
        matches!(&events[..], [(to, Kind::GroupUpdated(v))] if *to == everyone && v.admin_ids == vec![ad] && v.my_role == 0)
    );

    w.social
        .request_join_group(
            &applicant,
            RequestJoinGroupRequest {
                group_id: g,
                note: "let me in".into(),
            },
        )
        .await
        .unwrap();
    let events = w.events.take();
    let mut runners = vec![o, ad];
    runners.sort_unstable();
    assert!(
        matches!(&events[..], [(to, Kind::JoinRequestReceived(r))] if *to == runners && r.note == "let me in")
    );

    w.social
        .respond_join_request(
            &admin,
            RespondJoinRequestRequest {
                request: Some(respond_join_request_request::Request::Applicant(
                    Applicant {
                        group_id: g,
                        user_id: ap,
                    },
                )),
                accept: true,
            },
        )
        .await
        .unwrap();
    let events = w.events.take();
    let mut all4 = vec![o, ad, m, ap];
    all4.sort_unstable();
    assert!(
        matches!(&events[0], (to, Kind::JoinRequestAnswered(r)) if *to == vec![ap] && r.answered_by == ad)
    );
    assert!(
        matches!(&events[1], (to, Kind::MemberJoined(c)) if *to == all4 && c.user_id == ap && c.actor_id == ad)
    );

    w.social.kick_member(&admin, g, ap).await.unwrap();
    let events = w.events.take();
    assert!(
        matches!(&events[..], [(to, Kind::MemberLeft(c))] if *to == all4 && c.user_id == ap && c.actor_id == ad)
    );

    w.social.leave_group(&member, g).await.unwrap();
    let events = w.events.take();
    assert!(
        matches!(&events[..], [(to, Kind::MemberLeft(c))] if *to == everyone && c.user_id == m && c.actor_id == m)
    );

    w.social
        .update_group(
            &admin,
            UpdateGroupRequest {
                group_id: g,
                name: Some("renamed".into()),
            },
        )
        .await
        .unwrap();
    let mut pair = vec![o, ad];
    pair.sort_unstable();
    let events = w.events.take();
    assert!(
        matches!(&events[..], [(to, Kind::GroupUpdated(v))] if *to == pair && v.name == "renamed")
    );

    w.social.transfer_ownership(&owner, g, ad).await.unwrap();
    let events = w.events.take();
    assert!(
        matches!(&events[..], [(to, Kind::GroupUpdated(v))] if *to == pair && v.owner_id == ad && v.admin_ids == vec![o])
    );

    w.social.dissolve_group(&admin, g).await.unwrap();
    let events = w.events.take();
    assert!(
        matches!(&events[..], [(to, Kind::GroupDissolved(d))] if *to == pair && d.group_id == g && d.name == "renamed")
    );
}

#[tokio::test]
async fn contacts_and_groups_page_by_composite_keys() {
    let w = world().await;
    let me = w.user("me").await;
    let mut friends = Vec::new();
    for i in 0..5 {
        let f = w.user(&format!("f{i}")).await;
        w.befriend(&me, &f).await;
        friends.push(f.user_id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let resp = w
            .social
            .list_contacts(
                &me,
                ListContactsRequest {
                    page: page(2, token),
                },
            )
            .await
            .unwrap();
        assert!(resp.contacts.len() <= 2);
        for c in &resp.contacts {
            assert_eq!(
                c.presence.as_ref().unwrap().status,
                2,
                "NoPresence: offline"
            );
            seen.push(c.user.as_ref().unwrap().id);
        }
        token = resp.page.unwrap().next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, friends, "every friend once, in friendship order");

    for i in 0..3 {
        w.social
            .create_group(
                &me,
                CreateGroupRequest {
                    name: format!("g{i}"),
                    member_ids: friends.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    let first = w
        .social
        .list_my_groups(
            &me,
            ListMyGroupsRequest {
                page: page(2, String::new()),
            },
        )
        .await
        .unwrap();
    let rest = w
        .social
        .list_my_groups(
            &me,
            ListMyGroupsRequest {
                page: page(2, first.page.unwrap().next_page_token),
            },
        )
        .await
        .unwrap();
    let names: Vec<_> = first
        .groups
        .iter()
        .chain(&rest.groups)
        .map(|g| g.name.clone())
        .collect();
    assert_eq!(names, ["g0", "g1", "g2"]);
    assert!(
        first
            .groups
            .iter()
            .all(|g| g.member_count == 6 && g.my_role == 3)
    );

    let g = first.groups[0].id;
    w.social
        .set_admin(
            &me,
            SetAdminRequest {
                group_id: g,
                user_id: friends[3],
                admin: true,
            },
        )
        .await
        .unwrap();
    let mut order = Vec::new();
    let mut token = String::new();
    loop {
        let resp = w
            .social
            .list_group_members(
                &me,
                ListGroupMembersRequest {
                    group_id: g,
                    page: page(2, token),
                },
            )
            .await
            .unwrap();
        order.extend(
            resp.members
                .iter()
                .map(|m| (m.role, m.user.as_ref().unwrap().id)),
        );
        token = resp.page.unwrap().next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let (owner, admin, member) = (
        GroupRole::Owner as i32,
        GroupRole::Admin as i32,
        GroupRole::Member as i32,
    );
    assert_eq!(
        order,
        vec![
            (owner, me.user_id),
            (admin, friends[3]),
            (member, friends[0]),
            (member, friends[1]),
            (member, friends[2]),
            (member, friends[4]),
        ]
    );
}

/// The contact and group lists are each one joined statement (no N+1); printed so that its
/// PostgreSQL plan can be inspected with EXPLAIN (`cargo test -p rosetta-social -- --nocapture
/// list_queries`).
#[test]
fn list_queries_are_single_joins() {
    use sea_orm::{DbBackend, QueryTrait};

    let cursor = crate::cursor::Cursor::<2> {
        limit: 50,
        after: Some([1_700_000_000_000, 100]),
    };
    let contacts = crate::friends::contacts_query(100, &cursor)
        .build(DbBackend::Postgres)
        .to_string();
    println!("contacts: {contacts}");
    assert!(contacts.contains(r#"INNER JOIN "users" ON "friendships"."friend_id" = "users"."id""#));
    assert!(contacts.contains(
        r#"("friendships"."since_ms", "friendships"."friend_id") > (1700000000000, 100)"#
    ));
    let groups = crate::groups::my_groups_query(100, &cursor)
        .build(DbBackend::Postgres)
        .to_string();
    println!("groups: {groups}");
    assert!(
        groups.contains(r#"INNER JOIN "groups" ON "group_members"."group_id" = "groups"."id""#)
    );
    assert!(groups.contains(r#"WHERE "group_members"."user_id" = 100"#));
}

#[tokio::test]
async fn invitations_reach_the_right_users() {
    let w = world().await;
    let (owner, stranger) = (w.user("owner").await, w.user("stranger").await);
    let (o, st) = (owner.user_id, stranger.user_id);
    let group = w
        .social
        .create_group(
            &owner,
            CreateGroupRequest {
                name: "team".into(),
                member_ids: vec![st],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(group.invited_user_ids, vec![st]);
    let events = w.events.take();
    assert!(
        matches!(&events[..], [(to, Kind::GroupInvitationReceived(i))] if *to == vec![st] && i.group_id == group.id && i.group_name == "team"),
        "{events:?}"
    );
    w.social
        .respond_group_invitation(
            &stranger,
            RespondGroupInvitationRequest {
                invitation: Some(respond_group_invitation_request::Invitation::GroupId(
                    group.id,
                )),
                accept: true,
            },
        )
        .await
        .unwrap();
    let events = w.events.take();
    let mut both = vec![o, st];
    both.sort_unstable();
    assert!(
        matches!(&events[0], (to, Kind::GroupInvitationAnswered(i)) if *to == vec![o] && i.state == 2)
    );
    assert!(
        matches!(&events[1], (to, Kind::MemberJoined(c)) if *to == both && c.user_id == st && c.actor_id == o)
    );

    // Dissolving voids what is still pending, and tells the invitee.
    let late = w.user("late").await;
    w.social
        .add_group_members(
            &owner,
            AddGroupMembersRequest {
                group_id: group.id,
                user_ids: vec![late.user_id],
                friends_only: false,
            },
        )
        .await
        .unwrap();
    w.events.take();
    w.social.dissolve_group(&owner, group.id).await.unwrap();
    let events = w.events.take();
    assert!(
        events.iter().any(|(to, k)| *to == vec![late.user_id]
            && matches!(k, Kind::GroupInvitationAnswered(i) if i.state == 4)),
        "{events:?}"
    );
}
