//! Every change to whom a user may message moves that user's policy epoch (and only theirs),
//! in the change's transaction: messaging's cached decisions rely on it.

use rosetta_db::entity::policy_epoch;
use rosetta_proto::social::v1::MuteMemberRequest;

use super::*;

impl World {
    async fn epochs(&self, users: &[&Caller]) -> Vec<i64> {
        let mut epochs = Vec::new();
        for user in users {
            let epoch = policy_epoch::of(&self.db, user.user_id).await.unwrap();
            epochs.push(epoch.unwrap_or(0));
        }
        epochs
    }
}

/// Runs `$change`, then asserts which of `$users` had their epoch moved.
macro_rules! moves {
    ($w:expr, $users:expr, $change:expr, $expected:expr) => {{
        let before = $w.epochs($users).await;
        $change;
        let after = $w.epochs($users).await;
        let moved: Vec<bool> = before.iter().zip(&after).map(|(b, a)| a > b).collect();
        assert_eq!(moved, $expected, "{}", stringify!($change));
    }};
}

#[tokio::test]
async fn every_change_of_rights_moves_the_epochs_it_concerns() {
    let w = world().await;
    let (alice, bob, carol) = (
        w.user("alice").await,
        w.user("bob").await,
        w.user("carol").await,
    );
    let all = [&alice, &bob, &carol];
    let s = &w.social;
    let b = bob.user_id;

    moves!(w, &all, w.befriend(&alice, &bob).await, [true, true, false]);
    moves!(
        w,
        &all,
        s.block_user(&alice, b).await.unwrap(),
        [true, true, false]
    );
    moves!(
        w,
        &all,
        s.unblock_user(&alice, b).await.unwrap(),
        [true, true, false]
    );
    moves!(
        w,
        &all,
        s.unblock_user(&alice, b).await.unwrap(),
        [false, false, false]
    );
    w.befriend(&alice, &bob).await;
    w.befriend(&alice, &carol).await;
    moves!(
        w,
        &all,
        s.block_user(&carol, alice.user_id).await.unwrap(),
        [true, false, true]
    );
    s.unblock_user(&carol, alice.user_id).await.unwrap();
    w.befriend(&alice, &carol).await;
    moves!(
        w,
        &all,
        s.remove_friend(&carol, alice.user_id).await.unwrap(),
        [true, false, true]
    );

    let created = CreateGroupRequest {
        name: "team".into(),
        member_ids: vec![b, carol.user_id],
        ..Default::default()
    };
    let group;
    // Carol is no friend of alice's any more: invited, not added, so her rights stay.
    moves!(
        w,
        &all,
        group = s.create_group(&alice, created).await.unwrap().id,
        [true, true, false]
    );
    let mute = |until_ms| MuteMemberRequest {
        group_id: group,
        user_id: b,
        until_ms,
    };
    moves!(
        w,
        &all,
        s.mute_member(&alice, mute(now_ms() + 60_000))
            .await
            .unwrap(),
        [false, true, false]
    );
    moves!(
        w,
        &all,
        s.mute_member(&alice, mute(0)).await.unwrap(),
        [false, true, false]
    );
    let admin = |admin| SetAdminRequest {
        group_id: group,
        user_id: b,
        admin,
    };
    moves!(
        w,
        &all,
        s.set_admin(&alice, admin(true)).await.unwrap(),
        [false, true, false]
    );
    moves!(
        w,
        &all,
        s.set_admin(&alice, admin(false)).await.unwrap(),
        [false, true, false]
    );
    moves!(
        w,
        &all,
        s.kick_member(&alice, group, b).await.unwrap(),
        [false, true, false]
    );
    let add = || AddGroupMembersRequest {
        group_id: group,
        user_ids: vec![b],
        friends_only: true,
    };
    moves!(
        w,
        &all,
        s.add_group_members(&alice, add()).await.unwrap(),
        [false, true, false]
    );
    moves!(
        w,
        &all,
        s.leave_group(&bob, group).await.unwrap(),
        [false, true, false]
    );
    s.add_group_members(&alice, add()).await.unwrap();
    moves!(
        w,
        &all,
        s.transfer_ownership(&alice, group, b).await.unwrap(),
        [true, true, false]
    );
    moves!(
        w,
        &all,
        s.dissolve_group(&bob, group).await.unwrap(),
        [true, true, false]
    );
}
