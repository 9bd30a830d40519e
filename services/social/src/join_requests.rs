//! Requests to join a group. Public groups admit at once (the request is stored already
//! accepted, so the applicant's history shows it); otherwise the owner or an admin answers.

use rosetta_auth::Caller;
use rosetta_db::{
    entity::social::{group_member, join_request},
    now_ms,
};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::{
    account::v1::User,
    messaging::v1::event::Kind,
    social::v1::{
        JoinRequest, ListJoinRequestsRequest, ListJoinRequestsResponse, RequestJoinGroupRequest,
        RequestState, RespondJoinRequestRequest, respond_join_request_request::Request as Which,
    },
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};

use crate::{
    Social,
    cursor::Cursor,
    friends::not_pending,
    groups::{
        ADMIN, MEMBER, add_rows, joined, live_group, managed_group, membership, require_admin,
        room_for_one, told_of_membership,
    },
    limits::{self, MAX_PENDING_JOIN_REQUESTS, invalid, within},
    users::{profiles, shown},
};

const PENDING: i16 = RequestState::Pending as i16;

impl Social {
    pub async fn request_join_group(
        &self,
        caller: &Caller,
        req: RequestJoinGroupRequest,
    ) -> ApiResult<JoinRequest> {
        let me = caller.user_id;
        let note = limits::note(&req.note)?;
        let group = live_group(&self.db, req.group_id).await?;
        let now = now_ms();
        let txn = self.write().await?;
        if membership(&txn, group.id, me).await?.is_some() {
            return Err(ApiError::exists(Reason::AlreadyMember, "already a member"));
        }
        if pending_of(&txn, group.id, me).await?.is_some() {
            return Err(ApiError::exists(
                Reason::RequestPending,
                "a request is already pending",
            ));
        }
        let mine = join_request::Entity::find()
            .filter(join_request::Column::ApplicantId.eq(me))
            .filter(join_request::Column::State.eq(PENDING))
            .count(&txn)
            .await?;
        within(mine, 1, MAX_PENDING_JOIN_REQUESTS, "pending join requests")?;
        let state = if group.public {
            room_for_one(&txn, &group).await?;
            add_rows(&txn, group.id, &[me], MEMBER, now).await?;
            RequestState::Accepted
        } else {
            RequestState::Pending
        };
        let row = join_request::Entity::insert(join_request::ActiveModel {
            group_id: Set(group.id),
            applicant_id: Set(me),
            note: Set(note),
            state: Set(state as i16),
            created_at_ms: Set(now),
            answered_at_ms: Set(group.public.then_some(now)),
            answered_by: Set(None),
            ..Default::default()
        })
        .exec_with_returning(&txn)
        .await?;
        txn.commit().await?;
        let shown = self.join_request_view(row).await?;
        if group.public {
            let told = told_of_membership(&self.db, &group, &[me]).await?;
            self.publish(&told, joined(group.id, me, me)).await;
        } else {
            let admins = admin_ids(&self.db, group.id).await?;
            self.publish(&admins, Kind::JoinRequestReceived(shown.clone()))
                .await;
        }
        Ok(shown)
    }

    /// The owner or an admin answers a pending request, named by id or by (group, applicant).
    pub async fn respond_join_request(
        &self,
        caller: &Caller,
        req: RespondJoinRequestRequest,
    ) -> ApiResult<JoinRequest> {
        let me = caller.user_id;
        let row = match req.request {
            Some(Which::RequestId(id)) => join_request::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .ok_or_else(|| ApiError::not_found("no such join request"))?,
            Some(Which::Applicant(a)) => pending_of(&self.db, a.group_id, a.user_id)
                .await?
                .ok_or_else(|| ApiError::not_found("no pending request of this user"))?,
            None => return Err(invalid("request_id or applicant is required")),
        };
        let group = managed_group(&self.db, row.group_id).await?;
        require_admin(&self.db, row.group_id, me).await?;
        if row.state != PENDING {
            return Err(not_pending());
        }
        let now = now_ms();
        let txn = self.write().await?;
        let newly_joined = if req.accept
            && membership(&txn, row.group_id, row.applicant_id)
                .await?
                .is_none()
        {
            room_for_one(&txn, &group).await?;
            add_rows(&txn, row.group_id, &[row.applicant_id], MEMBER, now).await?;
            true
        } else {
            false
        };
        let state = if req.accept {
            RequestState::Accepted
        } else {
            RequestState::Rejected
        };
        let updated = join_request::Entity::update_many()
            .col_expr(join_request::Column::State, Expr::val(state as i16))
            .col_expr(join_request::Column::AnsweredAtMs, Expr::val(now))
            .col_expr(join_request::Column::AnsweredBy, Expr::val(me))
            .filter(join_request::Column::Id.eq(row.id))
            .filter(join_request::Column::State.eq(PENDING))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            return Err(not_pending());
        }
        txn.commit().await?;
        let row = join_request::Model {
            state: state as i16,
            answered_at_ms: Some(now),
            answered_by: Some(me),
            ..row
        };
        let (group_id, applicant) = (row.group_id, row.applicant_id);
        let shown = self.join_request_view(row).await?;
        self.publish(&[applicant], Kind::JoinRequestAnswered(shown.clone()))
            .await;
        if newly_joined {
            let told = told_of_membership(&self.db, &group, &[applicant]).await?;
            self.publish(&told, joined(group_id, applicant, me)).await;
        }
        Ok(shown)
    }

    /// Requests to the groups the caller administers (one group, or all of them in one query
    /// with a membership subquery), or with `mine` the caller's own; oldest first.
    pub async fn list_join_requests(
        &self,
        caller: &Caller,
        req: ListJoinRequestsRequest,
    ) -> ApiResult<ListJoinRequestsResponse> {
        let me = caller.user_id;
        let cursor = Cursor::<1>::from_request(req.page.as_ref())?;
        let mut query = join_request::Entity::find()
            .order_by_asc(join_request::Column::Id)
            .limit(cursor.fetch());
        if req.mine {
            query = query.filter(join_request::Column::ApplicantId.eq(me));
            if req.group_id != 0 {
                query = query.filter(join_request::Column::GroupId.eq(req.group_id));
            }
        } else if req.group_id != 0 {
            managed_group(&self.db, req.group_id).await?;
            require_admin(&self.db, req.group_id, me).await?;
            query = query.filter(join_request::Column::GroupId.eq(req.group_id));
        } else {
            query = query.filter(
                join_request::Column::GroupId.in_subquery(
                    Query::select()
                        .column(group_member::Column::GroupId)
                        .from(group_member::Entity)
                        .and_where(Expr::col(group_member::Column::UserId).eq(me))
                        .and_where(Expr::col(group_member::Column::Role).gte(ADMIN))
                        .to_owned(),
                ),
            );
        }
        if !req.include_answered {
            query = query.filter(join_request::Column::State.eq(PENDING));
        }
        if let Some([after]) = cursor.after {
            query = query.filter(join_request::Column::Id.gt(after));
        }
        let (rows, page) = cursor.finish(query.all(&self.db).await?, |r| [r.id]);
        let ids: Vec<i64> = rows.iter().map(|r| r.applicant_id).collect();
        let users = profiles(&self.db, &ids).await?;
        let requests = rows
            .into_iter()
            .map(|r| {
                let applicant = shown(&users, r.applicant_id);
                view(r, applicant)
            })
            .collect();
        Ok(ListJoinRequestsResponse {
            requests,
            page: Some(page),
        })
    }

    async fn join_request_view(&self, row: join_request::Model) -> ApiResult<JoinRequest> {
        let users = profiles(&self.db, &[row.applicant_id]).await?;
        let applicant = shown(&users, row.applicant_id);
        Ok(view(row, applicant))
    }
}

fn view(r: join_request::Model, applicant: User) -> JoinRequest {
    JoinRequest {
        id: r.id,
        group_id: r.group_id,
        applicant: Some(applicant),
        note: r.note,
        state: i32::from(r.state),
        created_at_ms: r.created_at_ms,
        answered_at_ms: r.answered_at_ms.unwrap_or(0),
        answered_by: r.answered_by.unwrap_or(0),
    }
}

async fn pending_of(
    db: &impl ConnectionTrait,
    group_id: i64,
    applicant: i64,
) -> ApiResult<Option<join_request::Model>> {
    Ok(join_request::Entity::find()
        .filter(join_request::Column::GroupId.eq(group_id))
        .filter(join_request::Column::ApplicantId.eq(applicant))
        .filter(join_request::Column::State.eq(PENDING))
        .one(db)
        .await?)
}

/// The owner and admins: who must learn of a join request.
async fn admin_ids(db: &impl ConnectionTrait, group_id: i64) -> ApiResult<Vec<i64>> {
    Ok(group_member::Entity::find()
        .select_only()
        .column(group_member::Column::UserId)
        .filter(group_member::Column::GroupId.eq(group_id))
        .filter(group_member::Column::Role.gte(ADMIN))
        .into_tuple::<i64>()
        .all(db)
        .await?)
}
