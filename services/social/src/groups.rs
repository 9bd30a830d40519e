//! Groups: what members see of a group, renaming and dissolution, and the checks every group
//! operation shares. Creation lives in `create`, membership changes in `members`.
//!
//! System-owned groups (the DPC lobby) have no owner or admin member, so every moderation
//! check fails for them; [`managed_group`] refuses them up front with a reason of their own.

use std::collections::HashMap;

use rosetta_auth::Caller;
use rosetta_db::{
    entity::social::{group, group_member, join_request},
    entity::user,
    now_ms,
};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::{
    messaging::v1::{GroupDissolved, GroupMemberChanged, event::Kind},
    social::v1::{
        Group, GroupMember, GroupRole, ListGroupMembersRequest, ListGroupMembersResponse,
        ListMyGroupsRequest, ListMyGroupsResponse, RequestState, UpdateGroupRequest,
    },
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, JoinType, Order, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, RelationDef,
    sea_query::{Expr, ExprTrait},
};

use crate::{
    Social,
    cursor::Cursor,
    limits::{self, MAX_GROUP_MEMBERS, invalid, within},
    social::rights_changed,
    users::profile,
};

pub(crate) const MEMBER: i16 = GroupRole::Member as i16;
pub(crate) const ADMIN: i16 = GroupRole::Admin as i16;
pub(crate) const OWNER: i16 = GroupRole::Owner as i16;

impl Social {
    /// Members only, except for public groups.
    pub async fn get_group(&self, caller: &Caller, group_id: i64) -> ApiResult<Group> {
        let group = live_group(&self.db, group_id).await?;
        if !group.public {
            require_member(&self.db, group_id, caller.user_id).await?;
        }
        self.group_view(caller.user_id, group).await
    }

    /// The caller's groups by the time they joined: one indexed join per page, then one batch
    /// query for the counts and admins of the whole page.
    pub async fn list_my_groups(
        &self,
        caller: &Caller,
        req: ListMyGroupsRequest,
    ) -> ApiResult<ListMyGroupsResponse> {
        let cursor = Cursor::<2>::from_request(req.page.as_ref())?;
        let rows = my_groups_query(caller.user_id, &cursor)
            .all(&self.db)
            .await?;
        let (rows, page) = cursor.finish(rows, |(m, _)| [m.joined_at_ms, m.group_id]);
        let groups = rows.into_iter().map(|(_, g)| g).collect();
        Ok(ListMyGroupsResponse {
            groups: self.group_views(caller.user_id, groups).await?,
            page: Some(page),
        })
    }

    /// Owner first, then admins, then members, each by join time.
    pub async fn list_group_members(
        &self,
        caller: &Caller,
        req: ListGroupMembersRequest,
    ) -> ApiResult<ListGroupMembersResponse> {
        live_group(&self.db, req.group_id).await?;
        require_member(&self.db, req.group_id, caller.user_id).await?;
        let cursor = Cursor::<3>::from_request(req.page.as_ref())?;
        let mut query = group_member::Entity::find()
            .join(JoinType::InnerJoin, member_user())
            .filter(group_member::Column::GroupId.eq(req.group_id))
            .order_by(group_member::Column::Role, Order::Desc)
            .order_by(group_member::Column::JoinedAtMs, Order::Asc)
            .order_by(group_member::Column::UserId, Order::Asc)
            .limit(cursor.fetch());
        if let Some([role, joined_at, user_id]) = cursor.after {
            let role = i16::try_from(role).map_err(|_| invalid("malformed page token"))?;
            let (role_col, later) = (
                Expr::col((group_member::Entity, group_member::Column::Role)),
                Expr::tuple([
                    Expr::col((group_member::Entity, group_member::Column::JoinedAtMs)),
                    Expr::col((group_member::Entity, group_member::Column::UserId)),
                ])
                .gt(Expr::tuple([Expr::val(joined_at), Expr::val(user_id)])),
            );
            query = query.filter(
                Condition::any()
                    .add(role_col.clone().lt(role))
                    .add(role_col.eq(role).and(later)),
            );
        }
        let rows = query
            .select_two_required(user::Entity)
            .all(&self.db)
            .await?;
        let (rows, page) = cursor.finish(rows, |(m, _)| {
            [i64::from(m.role), m.joined_at_ms, m.user_id]
        });
        let members = rows
            .into_iter()
            .map(|(m, u)| GroupMember {
                user: Some(profile(&u)),
                role: i32::from(m.role),
                joined_at_ms: m.joined_at_ms,
                muted_until_ms: m.muted_until_ms,
            })
            .collect();
        Ok(ListGroupMembersResponse {
            members,
            page: Some(page),
        })
    }

    /// Owner or admin renames the group.
    pub async fn update_group(&self, caller: &Caller, req: UpdateGroupRequest) -> ApiResult<Group> {
        let group = managed_group(&self.db, req.group_id).await?;
        require_admin(&self.db, group.id, caller.user_id).await?;
        let Some(name) = req.name else {
            return self.group_view(caller.user_id, group).await;
        };
        let name = limits::group_name(&name)?;
        group::Entity::update_many()
            .col_expr(group::Column::Name, Expr::val(name.clone()))
            .filter(group::Column::Id.eq(group.id))
            .exec(&self.db)
            .await?;
        self.announce_update(group.id).await?;
        self.group_view(caller.user_id, group::Model { name, ..group })
            .await
    }

    /// Owner deletes every membership; the row stays (messages reference it) and its slug is
    /// freed so a public lobby can be created anew.
    pub async fn dissolve_group(&self, caller: &Caller, group_id: i64) -> ApiResult<()> {
        let group = managed_group(&self.db, group_id).await?;
        require_owner(&self.db, group_id, caller.user_id).await?;
        let now = now_ms();
        let txn = self.write().await?;
        let former = member_ids(&txn, group_id).await?;
        group::Entity::update_many()
            .col_expr(group::Column::DissolvedAtMs, Expr::val(now))
            .col_expr(group::Column::Slug, Expr::val(Option::<String>::None))
            .filter(group::Column::Id.eq(group_id))
            .exec(&txn)
            .await?;
        // The rows actually deleted: on PostgreSQL a member who joined after `former` was
        // read is deleted too, and must lose their cached right to send as well.
        let removed = group_member::Entity::delete_many()
            .filter(group_member::Column::GroupId.eq(group_id))
            .exec_with_returning(&txn)
            .await?;
        let touched: Vec<i64> = removed
            .iter()
            .map(|m| m.user_id)
            .chain(former.iter().copied())
            .collect();
        rights_changed(&txn, &touched).await?;
        join_request::Entity::update_many()
            .col_expr(
                join_request::Column::State,
                Expr::val(RequestState::Cancelled as i16),
            )
            .col_expr(join_request::Column::AnsweredAtMs, Expr::val(now))
            .filter(join_request::Column::GroupId.eq(group_id))
            .filter(join_request::Column::State.eq(RequestState::Pending as i16))
            .exec(&txn)
            .await?;
        let voided = crate::invitations::void_pending(&txn, group_id, now).await?;
        txn.commit().await?;
        self.announce_voided(voided).await;
        self.publish(
            &former,
            Kind::GroupDissolved(GroupDissolved {
                group_id,
                name: group.name,
            }),
        )
        .await;
        Ok(())
    }

    /// Tells every member the group's new state (rename, transfer, admin change).
    pub(crate) async fn announce_update(&self, group_id: i64) -> ApiResult<()> {
        let group = live_group(&self.db, group_id).await?;
        let members = member_ids(&self.db, group_id).await?;
        let mut shown = self.group_views(0, vec![group]).await?;
        if let Some(view) = shown.pop() {
            self.publish(&members, Kind::GroupUpdated(view)).await;
        }
        Ok(())
    }

    pub(crate) async fn group_view(&self, viewer: i64, group: group::Model) -> ApiResult<Group> {
        self.group_views(viewer, vec![group])
            .await?
            .pop()
            .ok_or_else(|| ApiError::internal("group view missing"))
    }

    /// Views of several groups in two batch queries: member counts, and the rows of admins and
    /// of the viewer.
    pub(crate) async fn group_views(
        &self,
        viewer: i64,
        groups: Vec<group::Model>,
    ) -> ApiResult<Vec<Group>> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = groups.iter().map(|g| g.id).collect();
        let counts: HashMap<i64, i64> = group_member::Entity::find()
            .select_only()
            .column(group_member::Column::GroupId)
            .column_as(group_member::Column::UserId.count(), "n")
            .filter(group_member::Column::GroupId.is_in(ids.clone()))
            .group_by(group_member::Column::GroupId)
            .into_tuple::<(i64, i64)>()
            .all(&self.db)
            .await?
            .into_iter()
            .collect();
        let notable = group_member::Entity::find()
            .filter(group_member::Column::GroupId.is_in(ids))
            .filter(
                Condition::any()
                    .add(group_member::Column::Role.eq(ADMIN))
                    .add(group_member::Column::UserId.eq(viewer)),
            )
            .order_by_asc(group_member::Column::JoinedAtMs)
            .order_by_asc(group_member::Column::UserId)
            .all(&self.db)
            .await?;
        Ok(groups
            .into_iter()
            .map(|g| {
                let rows = notable.iter().filter(|m| m.group_id == g.id);
                Group {
                    id: g.id,
                    admin_ids: rows
                        .clone()
                        .filter(|m| m.role == ADMIN)
                        .map(|m| m.user_id)
                        .collect(),
                    my_role: rows
                        .clone()
                        .find(|m| m.user_id == viewer)
                        .map_or(0, |m| i32::from(m.role)),
                    member_count: u32::try_from(counts.get(&g.id).copied().unwrap_or(0))
                        .unwrap_or(u32::MAX),
                    name: g.name,
                    // The column names a user only because it must; nobody owns it.
                    owner_id: if g.system { 0 } else { g.owner_id },
                    public: g.public,
                    slug: g.slug.unwrap_or_default(),
                    created_at_ms: g.created_at_ms,
                    system: g.system,
                    invited_user_ids: Vec::new(),
                }
            })
            .collect())
    }
}

/// One page of the caller's memberships joined with their groups, keyed by
/// (joined_at_ms, group_id) on `idx_group_members_user`.
pub(crate) fn my_groups_query(
    me: i64,
    cursor: &Cursor<2>,
) -> sea_orm::SelectTwoRequired<group_member::Entity, group::Entity> {
    let mut query = group_member::Entity::find()
        .join(JoinType::InnerJoin, member_group())
        .filter(group_member::Column::UserId.eq(me))
        .order_by(group_member::Column::JoinedAtMs, Order::Asc)
        .order_by(group_member::Column::GroupId, Order::Asc)
        .limit(cursor.fetch());
    if let Some([joined_at, group_id]) = cursor.after {
        query = query.filter(
            Expr::tuple([
                Expr::col((group_member::Entity, group_member::Column::JoinedAtMs)),
                Expr::col((group_member::Entity, group_member::Column::GroupId)),
            ])
            .gt(Expr::tuple([Expr::val(joined_at), Expr::val(group_id)])),
        );
    }
    query.select_two_required(group::Entity)
}

fn member_group() -> RelationDef {
    group_member::Entity::belongs_to(group::Entity)
        .from(group_member::Column::GroupId)
        .to(group::Column::Id)
        .into()
}

fn member_user() -> RelationDef {
    group_member::Entity::belongs_to(user::Entity)
        .from(group_member::Column::UserId)
        .to(user::Column::Id)
        .into()
}

pub(crate) fn joined(group_id: i64, user_id: i64, actor_id: i64) -> Kind {
    Kind::MemberJoined(GroupMemberChanged {
        group_id,
        user_id,
        actor_id,
    })
}

/// A group that exists and is not dissolved.
pub(crate) async fn live_group(db: &impl ConnectionTrait, id: i64) -> ApiResult<group::Model> {
    group::Entity::find_by_id(id)
        .filter(group::Column::DissolvedAtMs.is_null())
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("no such group"))
}

/// A live group that users run: NOT_FOUND when there is none, PERMISSION_DENIED /
/// SYSTEM_GROUP for a system-owned one, which nobody renames, moderates or dissolves.
pub(crate) async fn managed_group(db: &impl ConnectionTrait, id: i64) -> ApiResult<group::Model> {
    let group = live_group(db, id).await?;
    if group.system {
        return Err(ApiError::denied(
            Reason::SystemGroup,
            "this group belongs to the server; nobody runs it",
        ));
    }
    Ok(group)
}

pub(crate) async fn membership(
    db: &impl ConnectionTrait,
    group_id: i64,
    user_id: i64,
) -> ApiResult<Option<group_member::Model>> {
    Ok(group_member::Entity::find_by_id((group_id, user_id))
        .one(db)
        .await?)
}

pub(crate) fn not_member() -> ApiError {
    ApiError::denied(Reason::NotMember, "not a member of this group")
}

pub(crate) async fn require_member(
    db: &impl ConnectionTrait,
    group_id: i64,
    user_id: i64,
) -> ApiResult<group_member::Model> {
    membership(db, group_id, user_id)
        .await?
        .ok_or_else(not_member)
}

pub(crate) async fn require_admin(
    db: &impl ConnectionTrait,
    group_id: i64,
    user_id: i64,
) -> ApiResult<group_member::Model> {
    let me = require_member(db, group_id, user_id).await?;
    if me.role < ADMIN {
        return Err(ApiError::denied(
            Reason::NotAdmin,
            "only the owner or an admin may do this",
        ));
    }
    Ok(me)
}

pub(crate) async fn require_owner(
    db: &impl ConnectionTrait,
    group_id: i64,
    user_id: i64,
) -> ApiResult<group_member::Model> {
    let me = require_member(db, group_id, user_id).await?;
    if me.role != OWNER {
        return Err(ApiError::denied(
            Reason::NotOwner,
            "only the owner may do this",
        ));
    }
    Ok(me)
}

pub(crate) async fn member_ids(db: &impl ConnectionTrait, group_id: i64) -> ApiResult<Vec<i64>> {
    Ok(members_of(group_id).into_tuple::<i64>().all(db).await?)
}

/// The user ids of a group's members, as a query.
fn members_of(group_id: i64) -> sea_orm::Select<group_member::Entity> {
    group_member::Entity::find()
        .select_only()
        .column(group_member::Column::UserId)
        .filter(group_member::Column::GroupId.eq(group_id))
}

pub(crate) async fn member_count(db: &impl ConnectionTrait, group_id: i64) -> ApiResult<u64> {
    Ok(group_member::Entity::find()
        .filter(group_member::Column::GroupId.eq(group_id))
        .count(db)
        .await?)
}

/// Refuses one more member when `group` is full: an ordinary group holds at most
/// [`MAX_GROUP_MEMBERS`]. A system group (the DPC lobby) is joined by every user of its
/// protocol, so it is bounded by the number of accounts (one row each) and not counted: a
/// count would read the whole lobby on every join.
pub(crate) async fn room_for_one(db: &impl ConnectionTrait, group: &group::Model) -> ApiResult<()> {
    if group.system {
        return Ok(());
    }
    within(
        member_count(db, group.id).await?,
        1,
        MAX_GROUP_MEMBERS,
        "members per group",
    )
}

/// Who is told that `users` joined or left `group`: they themselves and every member. A system
/// group (the DPC lobby) holds every user of a protocol, and telling each member of each join
/// would cost every join an event per member: past [`MAX_GROUP_MEMBERS`] members (read up to
/// one more) its changes are told to the users concerned alone. Up to that bound every
/// member hears of them, so members' open streams learn when the group turns large (fanned
/// out on read, at `group_fanout_max_members`, which is kept below this bound) and follow it.
pub(crate) async fn told_of_membership(
    db: &impl ConnectionTrait,
    group: &group::Model,
    users: &[i64],
) -> ApiResult<Vec<i64>> {
    let mut told = if group.system {
        let bound = MAX_GROUP_MEMBERS + 1;
        let some: Vec<i64> = members_of(group.id)
            .limit(bound)
            .into_tuple()
            .all(db)
            .await?;
        if u64::try_from(some.len()).unwrap_or(u64::MAX) < bound {
            some
        } else {
            Vec::new()
        }
    } else {
        member_ids(db, group.id).await?
    };
    for user in users {
        if !told.contains(user) {
            told.push(*user);
        }
    }
    Ok(told)
}

/// Inserts memberships with one role; users already members are left as they are. Call on the
/// change's transaction: the users' policy epochs move with it.
pub(crate) async fn add_rows(
    db: &impl ConnectionTrait,
    group_id: i64,
    users: &[i64],
    role: i16,
    now: i64,
) -> ApiResult<()> {
    if users.is_empty() {
        return Ok(());
    }
    let rows = users.iter().map(|&user_id| group_member::ActiveModel {
        group_id: Set(group_id),
        user_id: Set(user_id),
        role: Set(role),
        joined_at_ms: Set(now),
        muted_until_ms: Set(0),
    });
    group_member::Entity::insert_many(rows)
        .on_conflict_do_nothing()
        .exec_without_returning(db)
        .await?;
    rights_changed(db, users).await
}
