//! Membership changes made by members themselves or by those who run the group: adding,
//! leaving, kicking, ownership, the admin role and mutes. Rank decides: the owner outranks
//! admins, admins outrank members, and nobody acts on an equal or higher rank.

use rosetta_auth::Caller;
use rosetta_db::{
    entity::social::{group, group_member},
    now_ms,
};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::{
    messaging::v1::{GroupMemberChanged, event::Kind},
    social::v1::{
        AddGroupMembersRequest, AddGroupMembersResponse, Group, MuteMemberRequest, SetAdminRequest,
    },
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use tonic::Code;

use crate::{
    Social,
    consent::{self, lock_users},
    groups::{
        ADMIN, MEMBER, OWNER, add_rows, live_group, managed_group, member_ids, membership,
        require_admin, require_member, require_owner, told_of_membership,
    },
    limits::{MAX_GROUP_MEMBERS, invalid, within},
    social::rights_changed,
    users::require_live,
};

impl Social {
    /// Owner or admin adds their friends and invites everybody else (see `consent`); users
    /// already members are skipped. Every member, the added ones included, gets one event.
    pub async fn add_group_members(
        &self,
        caller: &Caller,
        req: AddGroupMembersRequest,
    ) -> ApiResult<AddGroupMembersResponse> {
        let me = caller.user_id;
        let group_id = req.group_id;
        managed_group(&self.db, group_id).await?;
        require_admin(&self.db, group_id, me).await?;
        let mut users = req.user_ids;
        users.sort_unstable();
        users.dedup();
        users.retain(|u| *u != me);
        within(
            0,
            users.len() as u64,
            MAX_GROUP_MEMBERS,
            "members per group",
        )?;
        require_live(&self.db, &users).await?;
        let now = now_ms();
        let txn = self.write().await?;
        lock_users(&txn, me, &users).await?;
        let present = member_ids(&txn, group_id).await?;
        users.retain(|u| !present.contains(u));
        let split = consent::split(&txn, me, &users, req.friends_only).await?;
        within(
            present.len() as u64,
            split.friends.len() as u64,
            MAX_GROUP_MEMBERS,
            "members per group",
        )?;
        add_rows(&txn, group_id, &split.friends, MEMBER, now).await?;
        let invitations = consent::invite(&txn, group_id, me, &split.strangers, now).await?;
        txn.commit().await?;
        if !split.friends.is_empty() {
            let everyone: Vec<i64> = present.iter().chain(&split.friends).copied().collect();
            self.publish(
                &everyone,
                consent::members_added(group_id, &split.friends, me),
            )
            .await;
        }
        let invited_user_ids = invitations.iter().map(|i| i.invitee_id).collect();
        self.announce_invitations(invitations).await;
        Ok(AddGroupMembersResponse {
            added_user_ids: split.friends,
            invited_user_ids,
        })
    }

    /// A member leaves; the owner must transfer ownership first (or dissolve).
    pub async fn leave_group(&self, caller: &Caller, group_id: i64) -> ApiResult<()> {
        let me = caller.user_id;
        let group = live_group(&self.db, group_id).await?;
        let mine = require_member(&self.db, group_id, me).await?;
        if mine.role == OWNER {
            return Err(ApiError::precondition(
                Reason::OwnerCannotLeave,
                "the owner must transfer ownership or dissolve the group",
            ));
        }
        self.remove_member(&group, me, me).await
    }

    /// Owner or admin removes a member of lower rank.
    pub async fn kick_member(&self, caller: &Caller, group_id: i64, user_id: i64) -> ApiResult<()> {
        let me = caller.user_id;
        let group = managed_group(&self.db, group_id).await?;
        if user_id == me {
            return Err(invalid("use LeaveGroup to leave"));
        }
        let (_, target) = self.outranked(group_id, me, user_id).await?;
        self.remove_member(&group, target.user_id, me).await
    }

    /// The owner hands the group to another member and stays on as an admin.
    pub async fn transfer_ownership(
        &self,
        caller: &Caller,
        group_id: i64,
        new_owner: i64,
    ) -> ApiResult<Group> {
        let me = caller.user_id;
        managed_group(&self.db, group_id).await?;
        require_owner(&self.db, group_id, me).await?;
        if new_owner == me {
            return Err(invalid("you already own this group"));
        }
        let txn = self.write().await?;
        membership(&txn, group_id, new_owner)
            .await?
            .ok_or_else(target_not_member)?;
        set_role(&txn, group_id, me, ADMIN).await?;
        set_role(&txn, group_id, new_owner, OWNER).await?;
        rights_changed(&txn, &[me, new_owner]).await?;
        group::Entity::update_many()
            .col_expr(group::Column::OwnerId, Expr::val(new_owner))
            .filter(group::Column::Id.eq(group_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.announce_update(group_id).await?;
        self.group_view(me, live_group(&self.db, group_id).await?)
            .await
    }

    /// The owner grants or takes the admin role.
    pub async fn set_admin(&self, caller: &Caller, req: SetAdminRequest) -> ApiResult<()> {
        let me = caller.user_id;
        managed_group(&self.db, req.group_id).await?;
        require_owner(&self.db, req.group_id, me).await?;
        let target = membership(&self.db, req.group_id, req.user_id)
            .await?
            .ok_or_else(target_not_member)?;
        if target.role == OWNER {
            return Err(invalid(
                "the owner's role cannot change; transfer ownership instead",
            ));
        }
        let role = if req.admin { ADMIN } else { MEMBER };
        if target.role != role {
            let txn = self.write().await?;
            set_role(&txn, req.group_id, req.user_id, role).await?;
            rights_changed(&txn, &[req.user_id]).await?;
            txn.commit().await?;
            self.announce_update(req.group_id).await?;
        }
        Ok(())
    }

    /// Owner or admin mutes a member of lower rank until a time; 0 unmutes.
    pub async fn mute_member(&self, caller: &Caller, req: MuteMemberRequest) -> ApiResult<()> {
        if req.until_ms < 0 {
            return Err(invalid("until_ms must not be negative"));
        }
        managed_group(&self.db, req.group_id).await?;
        if req.user_id == caller.user_id {
            return Err(invalid("cannot mute yourself"));
        }
        self.outranked(req.group_id, caller.user_id, req.user_id)
            .await?;
        let txn = self.write().await?;
        group_member::Entity::update_many()
            .col_expr(group_member::Column::MutedUntilMs, Expr::val(req.until_ms))
            .filter(group_member::Column::GroupId.eq(req.group_id))
            .filter(group_member::Column::UserId.eq(req.user_id))
            .exec(&txn)
            .await?;
        rights_changed(&txn, &[req.user_id]).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The actor's and the target's memberships, when the actor (an admin at least) outranks
    /// the target.
    async fn outranked(
        &self,
        group_id: i64,
        actor: i64,
        target: i64,
    ) -> ApiResult<(group_member::Model, group_member::Model)> {
        let mine = require_admin(&self.db, group_id, actor).await?;
        let theirs = membership(&self.db, group_id, target)
            .await?
            .ok_or_else(target_not_member)?;
        if theirs.role >= mine.role {
            return Err(ApiError::denied(
                Reason::NotOwner,
                "only the owner may act on an admin",
            ));
        }
        Ok((mine, theirs))
    }

    /// Deletes a membership and tells the remaining members and the one who left.
    async fn remove_member(
        &self,
        group: &group::Model,
        user_id: i64,
        actor_id: i64,
    ) -> ApiResult<()> {
        let group_id = group.id;
        let txn = self.write().await?;
        let removed = group_member::Entity::delete_by_id((group_id, user_id))
            .exec(&txn)
            .await?;
        if removed.rows_affected == 0 {
            return Err(target_not_member());
        }
        rights_changed(&txn, &[user_id]).await?;
        txn.commit().await?;
        let told = told_of_membership(&self.db, group, &[user_id]).await?;
        self.publish(
            &told,
            Kind::MemberLeft(GroupMemberChanged {
                group_id,
                user_id,
                actor_id,
            }),
        )
        .await;
        Ok(())
    }
}

/// The user acted upon is not in the group.
fn target_not_member() -> ApiError {
    ApiError::new(
        Code::NotFound,
        Reason::NotMember,
        "that user is not a member of this group",
    )
}

/// Changes a member's role; the caller moves the member's policy epoch in the same
/// transaction.
async fn set_role(
    db: &impl sea_orm::ConnectionTrait,
    group_id: i64,
    user_id: i64,
    role: i16,
) -> ApiResult<()> {
    group_member::Entity::update_many()
        .col_expr(group_member::Column::Role, Expr::val(role))
        .filter(group_member::Column::GroupId.eq(group_id))
        .filter(group_member::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}
