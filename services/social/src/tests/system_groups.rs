//! A system group (the DPC lobby) is joined by every user of its protocol: it is not held to
//! the member limit of an ordinary group, and past that many members a join or leave there is
//! told to nobody but the user concerned.

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

    async fn open_group(&self, owner: &Caller) -> Group {
        let create = CreateGroupRequest {
            name: "open".into(),
            public: true,
            ..Default::default()
        };
        self.social.create_group(owner, create).await.unwrap()
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

/// Whom the one event recorded since the last look went to, and what it was.
fn only_event(w: &World) -> (Vec<i64>, Kind) {
    let mut events = w.events.take();
    assert_eq!(events.len(), 1, "{events:?}");
    events.pop().unwrap()
}

#[tokio::test]
async fn a_small_lobby_tells_every_member_of_a_join() {
    let w = world().await;
    let (alice, bob, carol) = (
        w.user("alice").await,
        w.user("bob").await,
        w.user("carol").await,
    );
    w.lobby(&alice).await.unwrap();
    w.lobby(&bob).await.unwrap();
    w.events.take();

    w.lobby(&carol).await.unwrap();
    let (to, kind) = only_event(&w);
    assert!(matches!(kind, Kind::MemberJoined(j) if j.user_id == carol.user_id));
    assert_eq!(to, vec![alice.user_id, bob.user_id, carol.user_id]);
}

#[tokio::test]
async fn a_full_lobby_admits_more_and_tells_only_the_user_concerned() {
    let w = world().await;
    let alice = w.user("alice").await;
    let lobby = w.lobby(&alice).await.unwrap();
    let open = w.open_group(&alice).await;
    let full = usize::try_from(MAX_GROUP_MEMBERS).unwrap() - 1;
    w.fill(lobby.id, full, "l").await;
    w.fill(open.id, full, "o").await;
    let (late, later) = (w.user("late").await, w.user("later").await);

    // An ordinary group is full at the limit; the lobby is not.
    let refused = w.join(&late, open.id).await.unwrap_err();
    assert_eq!(refused.code, Code::ResourceExhausted, "{refused:?}");
    w.events.take();
    let joined = w.lobby(&late).await.unwrap();
    assert_eq!(u64::from(joined.member_count), MAX_GROUP_MEMBERS + 1);
    let (to, kind) = only_event(&w);
    assert!(matches!(kind, Kind::MemberJoined(j) if j.user_id == late.user_id));
    assert_eq!(to, vec![late.user_id]);

    w.lobby(&later).await.unwrap();
    w.events.take();
    w.social.leave_group(&late, lobby.id).await.unwrap();
    let (to, kind) = only_event(&w);
    assert!(matches!(kind, Kind::MemberLeft(l) if l.user_id == late.user_id));
    assert_eq!(to, vec![late.user_id]);
}
