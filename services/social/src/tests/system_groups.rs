//! A system group (the DPC lobby) is joined by every user of its protocol: it is not held to
//! the member limit of an ordinary group, and a join or leave there is told to nobody but the
//! user concerned.

use rosetta_db::entity::social::group_member;
use rosetta_proto::social::v1::{Group, JoinPublicGroupRequest};
use tonic::Code;

use super::*;
use crate::limits::MAX_GROUP_MEMBERS;

impl World {
    async fn lobby(&self, caller: &Caller) -> ApiResult<Group> {
        let join = JoinPublicGroupRequest {
            slug: "dpc-lobby".into(),
            name: String::new(),
        };
        self.social.join_public_group(caller, join).await
    }

    async fn join(&self, caller: &Caller, group_id: i64) -> ApiResult<()> {
        let join = RequestJoinGroupRequest {
            group_id,
            note: String::new(),
        };
        self.social.request_join_group(caller, join).await.map(drop)
    }

    /// Makes `n` new users members of `group_id`, written directly as an import would.
    async fn fill(&self, group_id: i64, n: usize, prefix: &str) {
        let mut rows = Vec::with_capacity(n);
        for i in 0..n {
            let user = self.user(&format!("{prefix}{i}")).await;
            rows.push(group_member::ActiveModel {
                group_id: Set(group_id),
                user_id: Set(user.user_id),
                role: Set(crate::groups::MEMBER),
                joined_at_ms: Set(now_ms()),
                muted_until_ms: Set(0),
            });
        }
        for chunk in rows.chunks(500) {
            group_member::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&self.db)
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn joins_and_leaves_of_the_lobby_are_told_only_to_the_user_concerned() {
    let w = world().await;
    let (alice, bob, carol) = (
        w.user("alice").await,
        w.user("bob").await,
        w.user("carol").await,
    );
    let lobby = w.lobby(&alice).await.unwrap();
    w.lobby(&bob).await.unwrap();
    w.events.take();

    w.lobby(&carol).await.unwrap();
    let events = w.events.take();
    assert!(
        matches!(&events[..], [(to, Kind::MemberJoined(j))] if *to == vec![carol.user_id] && j.user_id == carol.user_id),
        "{events:?}"
    );

    w.social.leave_group(&carol, lobby.id).await.unwrap();
    let events = w.events.take();
    assert!(
        matches!(&events[..], [(to, Kind::MemberLeft(l))] if *to == vec![carol.user_id] && l.group_id == lobby.id),
        "{events:?}"
    );

    // The same join in an ordinary public group is told to every member.
    let open = w
        .social
        .create_group(
            &alice,
            CreateGroupRequest {
                name: "open".into(),
                public: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    w.events.take();
    w.join(&carol, open.id).await.unwrap();
    let events = w.events.take();
    assert!(
        matches!(&events[..], [(to, Kind::MemberJoined(_))] if *to == vec![alice.user_id, carol.user_id]),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_lobby_admits_beyond_the_member_limit_of_a_group() {
    let w = world().await;
    let alice = w.user("alice").await;
    let lobby = w.lobby(&alice).await.unwrap();
    let open = w
        .social
        .create_group(
            &alice,
            CreateGroupRequest {
                name: "open".into(),
                public: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let full = usize::try_from(MAX_GROUP_MEMBERS).unwrap() - 1;
    w.fill(lobby.id, full, "l").await;
    w.fill(open.id, full, "o").await;

    let late = w.user("late").await;
    let refused = w.join(&late, open.id).await.unwrap_err();
    assert_eq!(refused.code, Code::ResourceExhausted, "{refused:?}");
    let joined = w.lobby(&late).await.unwrap();
    assert_eq!(u64::from(joined.member_count), MAX_GROUP_MEMBERS + 1);
}
