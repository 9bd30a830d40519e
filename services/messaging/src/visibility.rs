//! Who sees what of a user's presence: the one rule every path that shows a `Presence` goes
//! through (GetPresence, contact lists through `PresenceView`, presence_changed events).
//!
//! - the user themself: everything (including their own INVISIBLE status);
//! - an accepted friend: status, location and last-seen;
//! - a group peer (shares a group): ONLINE or OFFLINE only; a group can be joined or created
//!   by anybody (public groups, the DPC lobby), so it never reveals where somebody is;
//! - anybody else, and anybody on either side of a block: OFFLINE and nothing more. A block
//!   outranks friendship and groups, so it hides presence the moment it is set.

use std::collections::{HashMap, HashSet};

use rosetta_db::entity::social::{block, friendship, group_member};
use rosetta_kit::ApiResult;
use rosetta_proto::social::v1::{Presence, PresenceStatus};
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, EntityTrait as _, QueryFilter as _,
    QuerySelect as _,
    sea_query::{Expr, ExprTrait as _, Query},
};

/// How much of a user's presence a viewer may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sight {
    Own,
    Friend,
    GroupPeer,
    Nothing,
}

/// `presence` cut down to what `sight` allows.
pub fn apply(presence: Presence, sight: Sight) -> Presence {
    match sight {
        Sight::Own | Sight::Friend => presence,
        Sight::GroupPeer => Presence {
            user_id: presence.user_id,
            status: presence.status,
            location: None,
            last_seen_ms: 0,
        },
        Sight::Nothing => Presence {
            user_id: presence.user_id,
            status: PresenceStatus::Offline.into(),
            location: None,
            last_seen_ms: 0,
        },
    }
}

/// What `viewer` may see of each of `users`, in three batch queries (blocks, friendships,
/// shared groups).
pub async fn sights<C: ConnectionTrait>(
    db: &C,
    viewer: i64,
    users: &[i64],
) -> ApiResult<HashMap<i64, Sight>> {
    let others: Vec<i64> = users.iter().copied().filter(|&u| u != viewer).collect();
    let mut sights: HashMap<i64, Sight> = users
        .iter()
        .map(|&u| {
            (
                u,
                if u == viewer {
                    Sight::Own
                } else {
                    Sight::Nothing
                },
            )
        })
        .collect();
    if others.is_empty() {
        return Ok(sights);
    }
    let blocked = blocked_either_way(db, viewer, &others).await?;
    let peers = group_peers(db, viewer, &others).await?;
    let friends: HashSet<i64> = friendship::Entity::find()
        .select_only()
        .column(friendship::Column::FriendId)
        .filter(friendship::Column::UserId.eq(viewer))
        .filter(friendship::Column::FriendId.is_in(others.iter().copied()))
        .into_tuple::<i64>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    for user in others {
        let sight = if blocked.contains(&user) {
            Sight::Nothing
        } else if friends.contains(&user) {
            Sight::Friend
        } else if peers.contains(&user) {
            Sight::GroupPeer
        } else {
            Sight::Nothing
        };
        sights.insert(user, sight);
    }
    Ok(sights)
}

async fn blocked_either_way<C: ConnectionTrait>(
    db: &C,
    viewer: i64,
    others: &[i64],
) -> ApiResult<HashSet<i64>> {
    let them = || others.iter().copied();
    let rows = block::Entity::find()
        .filter(
            Condition::any()
                .add(
                    block::Column::UserId
                        .eq(viewer)
                        .and(block::Column::BlockedId.is_in(them())),
                )
                .add(
                    block::Column::BlockedId
                        .eq(viewer)
                        .and(block::Column::UserId.is_in(them())),
                ),
        )
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|b| {
            if b.user_id == viewer {
                b.blocked_id
            } else {
                b.user_id
            }
        })
        .collect())
}

/// Those of `others` who share at least one group with `viewer`.
async fn group_peers<C: ConnectionTrait>(
    db: &C,
    viewer: i64,
    others: &[i64],
) -> ApiResult<HashSet<i64>> {
    let viewer_groups = Query::select()
        .column(group_member::Column::GroupId)
        .from(group_member::Entity)
        .and_where(Expr::col(group_member::Column::UserId).eq(viewer))
        .to_owned();
    Ok(group_member::Entity::find()
        .select_only()
        .column(group_member::Column::UserId)
        .distinct()
        .filter(group_member::Column::UserId.is_in(others.iter().copied()))
        .filter(group_member::Column::GroupId.in_subquery(viewer_groups))
        .into_tuple::<i64>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

#[cfg(test)]
mod unit {
    use rosetta_proto::common::v1::Location;

    use super::*;

    fn full() -> Presence {
        Presence {
            user_id: 7,
            status: PresenceStatus::Online.into(),
            location: Some(Location {
                latitude: 1.0,
                longitude: 2.0,
                ..Default::default()
            }),
            last_seen_ms: 99,
        }
    }

    #[test]
    fn each_sight_shows_its_share() {
        assert_eq!(apply(full(), Sight::Friend), full());
        assert_eq!(apply(full(), Sight::Own), full());
        let peer = apply(full(), Sight::GroupPeer);
        assert_eq!(peer.status, PresenceStatus::Online as i32);
        assert!(peer.location.is_none());
        assert_eq!(peer.last_seen_ms, 0);
        let none = apply(full(), Sight::Nothing);
        assert_eq!(none.status, PresenceStatus::Offline as i32);
        assert!(none.location.is_none());
        assert_eq!(none.last_seen_ms, 0);
    }
}
