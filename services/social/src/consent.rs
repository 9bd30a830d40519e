//! Consent: who may put whom into a group. A user is added directly only by a friend of the
//! one adding; anybody else gets a group invitation to accept or decline, and callers that
//! cannot show invitations (legacy bridges) ask for `friends_only` and are refused instead.
//! A block in either direction refuses both.

use std::collections::HashSet;

use rosetta_db::entity::{
    social::{friendship, group_invitation},
    user,
};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::{
    messaging::v1::{GroupMembersAdded, event::Kind},
    social::v1::RequestState,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use crate::{
    limits::{MAX_PENDING_GROUP_INVITATIONS, MAX_SENT_GROUP_INVITATIONS, limit_reached, within},
    social::none_blocks,
};

pub(crate) const PENDING: i16 = RequestState::Pending as i16;

/// The users named for a group, by how they may come in.
pub(crate) struct Split {
    /// Friends of the one adding: added at once.
    pub friends: Vec<i64>,
    /// Everybody else: invited.
    pub strangers: Vec<i64>,
}

/// Sorts `users` into friends of `actor` and strangers. PERMISSION_DENIED / NOT_FRIENDS when
/// `friends_only` and a stranger is named; BLOCKED when a block stands between `actor` and
/// any of them.
pub(crate) async fn split(
    db: &impl ConnectionTrait,
    actor: i64,
    users: &[i64],
    friends_only: bool,
) -> ApiResult<Split> {
    none_blocks(db, users, actor).await?;
    let friends = friends_among(db, actor, users).await?;
    let (friends, strangers): (Vec<i64>, Vec<i64>) =
        users.iter().partition(|u| friends.contains(u));
    if friends_only && let Some(stranger) = strangers.first() {
        return Err(ApiError::denied(
            Reason::NotFriends,
            format!("user {stranger} is not your friend; only friends can be added"),
        ));
    }
    Ok(Split { friends, strangers })
}

async fn friends_among(
    db: &impl ConnectionTrait,
    me: i64,
    users: &[i64],
) -> ApiResult<HashSet<i64>> {
    if users.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(friendship::Entity::find()
        .select_only()
        .column(friendship::Column::FriendId)
        .filter(friendship::Column::UserId.eq(me))
        .filter(friendship::Column::FriendId.is_in(users.iter().copied()))
        .into_tuple::<i64>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// On PostgreSQL, locks the rows of `actor` and `others` (in id order, so two transactions
/// never wait on each other in a cycle): per-user counts read afterwards in the same
/// transaction (groups created this hour, pending invitations) cannot be raced past. SQLite
/// write transactions are serialized already (IMMEDIATE).
pub(crate) async fn lock_users(
    db: &impl ConnectionTrait,
    actor: i64,
    others: &[i64],
) -> ApiResult<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let mut ids = others.to_vec();
    ids.push(actor);
    user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::Id.is_in(ids))
        .order_by_asc(user::Column::Id)
        .lock_exclusive()
        .into_tuple::<i64>()
        .all(db)
        .await?;
    Ok(())
}

/// Invites `invitees` into `group_id` on behalf of `inviter`, skipping those with an
/// invitation pending there already. LIMIT_REACHED when an invitee has too many invitations
/// waiting, or the inviter too many unanswered. Call after [`lock_users`] of all of them.
pub(crate) async fn invite(
    db: &impl ConnectionTrait,
    group_id: i64,
    inviter: i64,
    invitees: &[i64],
    now: i64,
) -> ApiResult<Vec<group_invitation::Model>> {
    if invitees.is_empty() {
        return Ok(Vec::new());
    }
    let already: HashSet<i64> = group_invitation::Entity::find()
        .select_only()
        .column(group_invitation::Column::InviteeId)
        .filter(group_invitation::Column::GroupId.eq(group_id))
        .filter(group_invitation::Column::State.eq(PENDING))
        .filter(group_invitation::Column::InviteeId.is_in(invitees.iter().copied()))
        .into_tuple::<i64>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let fresh: Vec<i64> = invitees
        .iter()
        .copied()
        .filter(|u| !already.contains(u))
        .collect();
    let sent = pending(db, group_invitation::Column::InviterId, inviter).await?;
    within(
        sent,
        fresh.len() as u64,
        MAX_SENT_GROUP_INVITATIONS,
        "unanswered group invitations sent",
    )?;
    let mut rows = Vec::with_capacity(fresh.len());
    for invitee in fresh {
        let waiting = pending(db, group_invitation::Column::InviteeId, invitee).await?;
        if waiting >= MAX_PENDING_GROUP_INVITATIONS {
            return Err(limit_reached(format!(
                "user {invitee} has {MAX_PENDING_GROUP_INVITATIONS} group invitations waiting"
            )));
        }
        rows.push(
            group_invitation::Entity::insert(group_invitation::ActiveModel {
                group_id: Set(group_id),
                inviter_id: Set(inviter),
                invitee_id: Set(invitee),
                state: Set(PENDING),
                created_at_ms: Set(now),
                answered_at_ms: Set(None),
                ..Default::default()
            })
            .exec_with_returning(db)
            .await?,
        );
    }
    Ok(rows)
}

async fn pending(
    db: &impl ConnectionTrait,
    side: group_invitation::Column,
    user: i64,
) -> ApiResult<u64> {
    Ok(group_invitation::Entity::find()
        .filter(side.eq(user))
        .filter(group_invitation::Column::State.eq(PENDING))
        .count(db)
        .await?)
}

/// The one event a batch addition sends to every member.
pub(crate) fn members_added(group_id: i64, user_ids: &[i64], actor_id: i64) -> Kind {
    Kind::MembersAdded(GroupMembersAdded {
        group_id,
        user_ids: user_ids.to_vec(),
        actor_id,
    })
}
