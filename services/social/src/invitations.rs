//! Group invitations: what a user who is not the inviter's friend receives instead of being
//! added. The invitee accepts (becomes a member) or declines; the inviter or the group's
//! owner or admins may withdraw it; dissolving the group or a block between the two voids it.
//! States are `RequestState`: PENDING, then ACCEPTED, REJECTED or CANCELLED, once.

use std::collections::HashMap;

use rosetta_auth::Caller;
use rosetta_db::{
    entity::social::{group, group_invitation},
    now_ms,
};
use rosetta_kit::{ApiError, ApiResult};
use rosetta_proto::{
    messaging::v1::event::Kind,
    social::v1::{
        CancelGroupInvitationRequest, Direction, GroupInvitation, ListGroupInvitationsRequest,
        ListGroupInvitationsResponse, RequestState, RespondGroupInvitationRequest,
        respond_group_invitation_request::Invitation as Which,
    },
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};

use crate::{
    Social,
    consent::PENDING,
    cursor::Cursor,
    friends::not_pending,
    groups::{
        ADMIN, MEMBER, add_rows, joined, live_group, membership, room_for_one, told_of_membership,
    },
    limits::invalid,
    social::not_blocked_either_way,
    users::{profiles, shown},
};

impl Social {
    /// Invitations to the caller, from the caller, or both; oldest first.
    pub async fn list_group_invitations(
        &self,
        caller: &Caller,
        req: ListGroupInvitationsRequest,
    ) -> ApiResult<ListGroupInvitationsResponse> {
        let me = caller.user_id;
        let cursor = Cursor::<1>::from_request(req.page.as_ref())?;
        let incoming = group_invitation::Column::InviteeId.eq(me);
        let outgoing = group_invitation::Column::InviterId.eq(me);
        let side = match Direction::try_from(req.direction).unwrap_or_default() {
            Direction::Incoming => Condition::all().add(incoming),
            Direction::Outgoing => Condition::all().add(outgoing),
            Direction::Both | Direction::Unspecified => {
                Condition::any().add(incoming).add(outgoing)
            }
        };
        let mut query = group_invitation::Entity::find()
            .filter(side)
            .order_by_asc(group_invitation::Column::Id)
            .limit(cursor.fetch());
        if !req.include_answered {
            query = query.filter(group_invitation::Column::State.eq(PENDING));
        }
        if let Some([after]) = cursor.after {
            query = query.filter(group_invitation::Column::Id.gt(after));
        }
        let (rows, page) = cursor.finish(query.all(&self.db).await?, |r| [r.id]);
        Ok(ListGroupInvitationsResponse {
            invitations: self.invitation_views(rows).await?,
            page: Some(page),
        })
    }

    /// The invitee accepts (joins, unless a block now stands between them and the inviter or
    /// the group is full) or declines.
    pub async fn respond_group_invitation(
        &self,
        caller: &Caller,
        req: RespondGroupInvitationRequest,
    ) -> ApiResult<GroupInvitation> {
        let me = caller.user_id;
        let now = now_ms();
        let txn = self.write().await?;
        let mine =
            group_invitation::Entity::find().filter(group_invitation::Column::InviteeId.eq(me));
        let row = match req.invitation {
            Some(Which::InvitationId(id)) => mine.filter(group_invitation::Column::Id.eq(id)),
            Some(Which::GroupId(group)) => mine
                .filter(group_invitation::Column::GroupId.eq(group))
                .filter(group_invitation::Column::State.eq(PENDING)),
            None => return Err(invalid("invitation_id or group_id is required")),
        }
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found("no such group invitation"))?;
        if row.state != PENDING {
            return Err(not_pending());
        }
        let joins = req.accept && membership(&txn, row.group_id, me).await?.is_none();
        let group = if req.accept {
            let group = live_group(&txn, row.group_id).await?;
            not_blocked_either_way(&txn, me, row.inviter_id).await?;
            Some(group)
        } else {
            None
        };
        let joining = group.filter(|_| joins);
        if let Some(group) = &joining {
            room_for_one(&txn, group).await?;
            add_rows(&txn, row.group_id, &[me], MEMBER, now).await?;
        }
        let state = if req.accept {
            RequestState::Accepted
        } else {
            RequestState::Rejected
        };
        let row = answer(&txn, row, state, now).await?;
        txn.commit().await?;
        let (group_id, inviter) = (row.group_id, row.inviter_id);
        let view = self.invitation_view(row).await?;
        self.publish(&[inviter], Kind::GroupInvitationAnswered(view.clone()))
            .await;
        if let Some(group) = &joining {
            let told = told_of_membership(&self.db, group, &[me]).await?;
            self.publish(&told, joined(group_id, me, inviter)).await;
        }
        Ok(view)
    }

    /// The inviter, or an owner or admin of the group, withdraws a pending invitation.
    pub async fn cancel_group_invitation(
        &self,
        caller: &Caller,
        req: CancelGroupInvitationRequest,
    ) -> ApiResult<GroupInvitation> {
        let me = caller.user_id;
        let txn = self.write().await?;
        let row = group_invitation::Entity::find_by_id(req.invitation_id)
            .one(&txn)
            .await?
            .ok_or_else(|| ApiError::not_found("no such group invitation"))?;
        let runs_group = membership(&txn, row.group_id, me)
            .await?
            .is_some_and(|m| m.role >= ADMIN);
        if row.inviter_id != me && !runs_group {
            // Indistinguishable from a missing one: ids of others' invitations stay private.
            return Err(ApiError::not_found("no such group invitation"));
        }
        if row.state != PENDING {
            return Err(not_pending());
        }
        let row = answer(&txn, row, RequestState::Cancelled, now_ms()).await?;
        txn.commit().await?;
        let invitee = row.invitee_id;
        let view = self.invitation_view(row).await?;
        self.publish(&[invitee], Kind::GroupInvitationAnswered(view.clone()))
            .await;
        Ok(view)
    }

    /// Tells each invitee of their new invitation (one event row each).
    pub(crate) async fn announce_invitations(&self, rows: Vec<group_invitation::Model>) {
        let views = match self.invitation_views(rows).await {
            Ok(views) => views,
            Err(err) => {
                tracing::warn!(%err, "group invitations stored but not announced");
                return;
            }
        };
        for view in views {
            let invitee = view.invitee.as_ref().map_or(0, |u| u.id);
            self.publish(&[invitee], Kind::GroupInvitationReceived(view))
                .await;
        }
    }

    /// Tells the invitees of voided invitations (a dissolved group, a block).
    pub(crate) async fn announce_voided(&self, rows: Vec<group_invitation::Model>) {
        match self.invitation_views(rows).await {
            Ok(views) => {
                for view in views {
                    let invitee = view.invitee.as_ref().map_or(0, |u| u.id);
                    self.publish(&[invitee], Kind::GroupInvitationAnswered(view))
                        .await;
                }
            }
            Err(err) => tracing::warn!(%err, "voided group invitations not announced"),
        }
    }

    async fn invitation_view(&self, row: group_invitation::Model) -> ApiResult<GroupInvitation> {
        self.invitation_views(vec![row])
            .await?
            .pop()
            .ok_or_else(|| ApiError::internal("invitation view missing"))
    }

    /// Views with profiles and group names, in two batch queries.
    async fn invitation_views(
        &self,
        rows: Vec<group_invitation::Model>,
    ) -> ApiResult<Vec<GroupInvitation>> {
        let ids: Vec<i64> = rows
            .iter()
            .flat_map(|r| [r.inviter_id, r.invitee_id])
            .collect();
        let users = profiles(&self.db, &ids).await?;
        let names: HashMap<i64, String> = if rows.is_empty() {
            HashMap::new()
        } else {
            group::Entity::find()
                .select_only()
                .column(group::Column::Id)
                .column(group::Column::Name)
                .filter(group::Column::Id.is_in(rows.iter().map(|r| r.group_id)))
                .into_tuple::<(i64, String)>()
                .all(&self.db)
                .await?
                .into_iter()
                .collect()
        };
        Ok(rows
            .into_iter()
            .map(|r| GroupInvitation {
                id: r.id,
                group_id: r.group_id,
                group_name: names.get(&r.group_id).cloned().unwrap_or_default(),
                inviter: Some(shown(&users, r.inviter_id)),
                invitee: Some(shown(&users, r.invitee_id)),
                state: i32::from(r.state),
                created_at_ms: r.created_at_ms,
                answered_at_ms: r.answered_at_ms.unwrap_or(0),
            })
            .collect())
    }
}

/// Moves a pending invitation to `state`; NOT_PENDING when a concurrent answer won.
async fn answer(
    db: &impl ConnectionTrait,
    row: group_invitation::Model,
    state: RequestState,
    now: i64,
) -> ApiResult<group_invitation::Model> {
    let updated = group_invitation::Entity::update_many()
        .col_expr(group_invitation::Column::State, Expr::val(state as i16))
        .col_expr(group_invitation::Column::AnsweredAtMs, Expr::val(now))
        .filter(group_invitation::Column::Id.eq(row.id))
        .filter(group_invitation::Column::State.eq(PENDING))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Err(not_pending());
    }
    Ok(group_invitation::Model {
        state: state as i16,
        answered_at_ms: Some(now),
        ..row
    })
}

/// Cancels every pending invitation of a group being dissolved; returns them, answered.
pub(crate) async fn void_pending(
    db: &impl ConnectionTrait,
    group_id: i64,
    now: i64,
) -> ApiResult<Vec<group_invitation::Model>> {
    void(
        db,
        group_invitation::Column::GroupId.eq(group_id),
        RequestState::Cancelled,
        now,
    )
    .await
}

/// Voids the pending invitations between a blocker and the blocked: theirs to the blocker
/// are rejected, the blocker's to them cancelled. Returns them, answered.
pub(crate) async fn void_between(
    db: &impl ConnectionTrait,
    blocker: i64,
    blocked: i64,
    now: i64,
) -> ApiResult<Vec<group_invitation::Model>> {
    let from_to = |from: i64, to: i64| {
        Condition::all()
            .add(group_invitation::Column::InviterId.eq(from))
            .add(group_invitation::Column::InviteeId.eq(to))
    };
    let mut voided = void(db, from_to(blocked, blocker), RequestState::Rejected, now).await?;
    voided.extend(void(db, from_to(blocker, blocked), RequestState::Cancelled, now).await?);
    Ok(voided)
}

async fn void(
    db: &impl ConnectionTrait,
    which: impl sea_orm::sea_query::IntoCondition,
    state: RequestState,
    now: i64,
) -> ApiResult<Vec<group_invitation::Model>> {
    let which = which.into_condition();
    let rows = group_invitation::Entity::find()
        .filter(which.clone())
        .filter(group_invitation::Column::State.eq(PENDING))
        .all(db)
        .await?;
    if rows.is_empty() {
        return Ok(rows);
    }
    group_invitation::Entity::update_many()
        .col_expr(group_invitation::Column::State, Expr::val(state as i16))
        .col_expr(group_invitation::Column::AnsweredAtMs, Expr::val(now))
        .filter(group_invitation::Column::Id.is_in(rows.iter().map(|r| r.id)))
        .exec(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| group_invitation::Model {
            state: state as i16,
            answered_at_ms: Some(now),
            ..r
        })
        .collect())
}
