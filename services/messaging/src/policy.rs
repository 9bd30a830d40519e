//! Who may talk to whom, read from the social service's tables (never written here).

use rosetta_db::entity::social::{block, friendship, group, group_member};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::social::v1::GroupRole;
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, DbErr, EntityTrait as _, PaginatorTrait as _,
    QueryFilter as _, QuerySelect as _,
};

use crate::conversations::Target;

/// What a send was admitted as: checked again inside the writer's transaction by [`confirm`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub sender: i64,
    pub target: Target,
}

/// INTEGRATION POINT (placeholder; the policy-cache work replaces it): the writer calls this
/// first thing inside each batch transaction, one entry per admission in the same order, and
/// fails exactly the sends whose entry is `Err`. This placeholder confirms every send.
pub async fn confirm(
    _tx: &impl ConnectionTrait,
    admissions: &[Admission],
) -> Result<Vec<ApiResult<()>>, DbErr> {
    Ok(admissions.iter().map(|_| Ok(())).collect())
}

/// Private messages: friends only, neither side blocking.
pub async fn check_private<C: ConnectionTrait>(db: &C, sender: i64, to: i64) -> ApiResult<()> {
    if sender == to {
        return Err(ApiError::invalid(
            Reason::BadRecipient,
            "cannot message yourself",
        ));
    }
    let blocked = block::Entity::find()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(block::Column::UserId.eq(sender))
                        .add(block::Column::BlockedId.eq(to)),
                )
                .add(
                    Condition::all()
                        .add(block::Column::UserId.eq(to))
                        .add(block::Column::BlockedId.eq(sender)),
                ),
        )
        .count(db)
        .await?;
    if blocked > 0 {
        return Err(ApiError::denied(
            Reason::Blocked,
            "one of you blocks the other",
        ));
    }
    if !are_friends(db, sender, to).await? {
        return Err(ApiError::denied(
            Reason::NotFriends,
            "you can only message friends",
        ));
    }
    Ok(())
}

pub async fn are_friends<C: ConnectionTrait>(db: &C, a: i64, b: i64) -> ApiResult<bool> {
    Ok(friendship::Entity::find_by_id((a, b))
        .one(db)
        .await?
        .is_some())
}

/// `user`'s membership of a live group: NOT_FOUND for no such group, NOT_MEMBER otherwise.
pub async fn membership<C: ConnectionTrait>(
    db: &C,
    group_id: i64,
    user: i64,
) -> ApiResult<group_member::Model> {
    let group = group::Entity::find_by_id(group_id).one(db).await?;
    if group.is_none_or(|g| g.dissolved_at_ms.is_some()) {
        return Err(ApiError::not_found("no such group"));
    }
    group_member::Entity::find_by_id((group_id, user))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::denied(Reason::NotMember, "you are not a member of this group"))
}

/// Group messages: members only, and not while muted.
pub async fn check_group_send<C: ConnectionTrait>(
    db: &C,
    group_id: i64,
    sender: i64,
    now_ms: i64,
) -> ApiResult<()> {
    let member = membership(db, group_id, sender).await?;
    if member.muted_until_ms > now_ms {
        return Err(ApiError::denied(
            Reason::Muted,
            "you are muted in this group",
        ));
    }
    Ok(())
}

/// Owners and admins moderate a group.
pub fn is_moderator(member: &group_member::Model) -> bool {
    member.role == GroupRole::Owner as i16 || member.role == GroupRole::Admin as i16
}

pub async fn group_members<C: ConnectionTrait>(db: &C, group_id: i64) -> ApiResult<Vec<i64>> {
    Ok(group_member::Entity::find()
        .select_only()
        .column(group_member::Column::UserId)
        .filter(group_member::Column::GroupId.eq(group_id))
        .into_tuple()
        .all(db)
        .await?)
}

pub async fn groups_of<C: ConnectionTrait>(db: &C, user: i64) -> ApiResult<Vec<i64>> {
    Ok(group_member::Entity::find()
        .select_only()
        .column(group_member::Column::GroupId)
        .filter(group_member::Column::UserId.eq(user))
        .into_tuple()
        .all(db)
        .await?)
}
