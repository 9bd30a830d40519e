//! Who may talk to whom, read from the social service's tables (never written here). These
//! are the decisions [`Policy`](super::Policy) caches, and the reads of the paths that do not
//! use the cache (moderation, history, participants).

use rosetta_db::entity::social::{block, friendship, group, group_member};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::social::v1::GroupRole;
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, DbErr, EntityTrait as _, PaginatorTrait as _,
    QueryFilter as _, QuerySelect as _,
};

use crate::conversations::Target;

/// Where a sender stands toward a target, as the tables say. Only standings that let the
/// sender send (at some time) exist: every other answer is a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Friends, and neither blocks the other.
    Friends,
    /// A member of the live group, muted until then (Unix ms; 0 or past: not muted).
    Member { muted_until_ms: i64 },
}

impl Standing {
    /// Whether this standing lets the sender send at `now_ms`: a mute is the one part of a
    /// standing that changes with time alone.
    pub fn admits(self, now_ms: i64) -> ApiResult<()> {
        match self {
            Self::Member { muted_until_ms } if muted_until_ms > now_ms => Err(ApiError::denied(
                Reason::Muted,
                "you are muted in this group",
            )),
            Self::Friends | Self::Member { .. } => Ok(()),
        }
    }
}

/// The sender's standing toward `target`, or the refusal the tables call for. The outer
/// error is the database's; the inner one is the refusal.
pub async fn decide<C: ConnectionTrait>(
    db: &C,
    sender: i64,
    target: Target,
) -> Result<ApiResult<Standing>, DbErr> {
    match target {
        Target::User(to) => private(db, sender, to).await,
        Target::Group(group_id) => {
            Ok(member_row(db, group_id, sender)
                .await?
                .map(|m| Standing::Member {
                    muted_until_ms: m.muted_until_ms,
                }))
        }
    }
}

/// BAD_RECIPIENT for a message to oneself: decided without the tables (and never cached).
pub fn not_to_self(sender: i64, target: Target) -> ApiResult<()> {
    if target == Target::User(sender) {
        return Err(ApiError::invalid(
            Reason::BadRecipient,
            "cannot message yourself",
        ));
    }
    Ok(())
}

/// Private messages: friends only, neither side blocking.
async fn private<C: ConnectionTrait>(
    db: &C,
    sender: i64,
    to: i64,
) -> Result<ApiResult<Standing>, DbErr> {
    if let Err(refusal) = not_to_self(sender, Target::User(to)) {
        return Ok(Err(refusal));
    }
    // The friendship first, the blocks second: these reads may run outside one snapshot
    // (the read-through before the write), and a block ends the friendship in the same
    // commit. Read in this order, a friendship found gone means its block is visible to the
    // second read, so a blocked sender hears BLOCKED, never NOT_FRIENDS.
    let friends = friendship::Entity::find_by_id((sender, to))
        .one(db)
        .await?
        .is_some();
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
        return Ok(Err(ApiError::denied(
            Reason::Blocked,
            "one of you blocks the other",
        )));
    }
    if !friends {
        return Ok(Err(ApiError::denied(
            Reason::NotFriends,
            "you can only message friends",
        )));
    }
    Ok(Ok(Standing::Friends))
}

/// `user`'s membership of a live group: NOT_FOUND for no such group, NOT_MEMBER otherwise.
pub async fn membership<C: ConnectionTrait>(
    db: &C,
    group_id: i64,
    user: i64,
) -> ApiResult<group_member::Model> {
    member_row(db, group_id, user).await?
}

async fn member_row<C: ConnectionTrait>(
    db: &C,
    group_id: i64,
    user: i64,
) -> Result<ApiResult<group_member::Model>, DbErr> {
    let group = group::Entity::find_by_id(group_id).one(db).await?;
    if group.is_none_or(|g| g.dissolved_at_ms.is_some()) {
        return Ok(Err(ApiError::not_found("no such group")));
    }
    Ok(group_member::Entity::find_by_id((group_id, user))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::denied(Reason::NotMember, "you are not a member of this group")))
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
