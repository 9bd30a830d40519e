//! Friend requests and friendships. A friendship is two rows, one per direction, so a user's
//! contacts are one range scan of their own rows.

use rosetta_auth::Caller;
use rosetta_db::{
    entity::{social::friend_request, social::friendship, user},
    now_ms,
};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::{
    messaging::v1::{FriendRemoved, event::Kind},
    social::v1::{
        Contact, Direction, FriendRequest, ListContactsRequest, ListContactsResponse,
        ListFriendRequestsRequest, ListFriendRequestsResponse, RequestState,
        RespondFriendRequestRequest, SendFriendRequestRequest,
        respond_friend_request_request::Request as Which,
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
    limits::{self, MAX_FRIENDS, MAX_PENDING_FRIEND_REQUESTS, invalid, within},
    social::{not_blocked_either_way, rights_changed},
    users::{profile, profiles, resolve, shown},
};

const PENDING: i16 = RequestState::Pending as i16;

impl Social {
    pub async fn send_friend_request(
        &self,
        caller: &Caller,
        req: SendFriendRequestRequest,
    ) -> ApiResult<FriendRequest> {
        let me = caller.user_id;
        let note = limits::note(&req.note)?;
        let target = resolve(&self.db, req.to.as_ref()).await?;
        if target.id == me {
            return Err(invalid("cannot befriend yourself"));
        }
        let txn = self.write().await?;
        not_blocked_either_way(&txn, me, target.id).await?;
        if are_friends(&txn, me, target.id).await? {
            return Err(ApiError::exists(Reason::AlreadyFriends, "already friends"));
        }
        if pending_between(&txn, me, target.id).await?.is_some() {
            return Err(ApiError::exists(
                Reason::RequestPending,
                "a request is already pending",
            ));
        }
        if pending_between(&txn, target.id, me).await?.is_some() {
            return Err(ApiError::exists(
                Reason::ReverseRequestPending,
                "this user already asked you; answer their request",
            ));
        }
        within(friend_count(&txn, me).await?, 1, MAX_FRIENDS, "friends")?;
        let outgoing = friend_request::Entity::find()
            .filter(friend_request::Column::FromUserId.eq(me))
            .filter(friend_request::Column::State.eq(PENDING))
            .count(&txn)
            .await?;
        within(
            outgoing,
            1,
            MAX_PENDING_FRIEND_REQUESTS,
            "pending friend requests",
        )?;
        let row = friend_request::Entity::insert(friend_request::ActiveModel {
            from_user_id: Set(me),
            to_user_id: Set(target.id),
            note: Set(note),
            state: Set(PENDING),
            created_at_ms: Set(now_ms()),
            answered_at_ms: Set(None),
            ..Default::default()
        })
        .exec_with_returning(&txn)
        .await?;
        txn.commit().await?;
        let shown = self.friend_request_view(row).await?;
        self.publish(&[target.id], Kind::FriendRequestReceived(shown.clone()))
            .await;
        Ok(shown)
    }

    /// The recipient answers; the request is named by id or by its sender (pipe answers by
    /// the applicant's uid).
    pub async fn respond_friend_request(
        &self,
        caller: &Caller,
        req: RespondFriendRequestRequest,
    ) -> ApiResult<FriendRequest> {
        let me = caller.user_id;
        let txn = self.write().await?;
        let row = match req.request {
            Some(Which::RequestId(id)) => friend_request::Entity::find_by_id(id)
                .filter(friend_request::Column::ToUserId.eq(me))
                .one(&txn)
                .await?
                .ok_or_else(|| ApiError::not_found("no such friend request"))?,
            Some(Which::FromUserId(from)) => pending_between(&txn, from, me)
                .await?
                .ok_or_else(|| ApiError::not_found("no pending request from this user"))?,
            None => return Err(invalid("request_id or from_user_id is required")),
        };
        if row.state != PENDING {
            return Err(not_pending());
        }
        let now = now_ms();
        let state = if req.accept {
            not_blocked_either_way(&txn, me, row.from_user_id).await?;
            within(friend_count(&txn, me).await?, 1, MAX_FRIENDS, "friends")?;
            within(
                friend_count(&txn, row.from_user_id).await?,
                1,
                MAX_FRIENDS,
                "friends",
            )?;
            befriend(&txn, me, row.from_user_id, now).await?;
            RequestState::Accepted
        } else {
            RequestState::Rejected
        };
        let row = answer(&txn, row, state, now).await?;
        txn.commit().await?;
        let shown = self.friend_request_view(row).await?;
        self.publish(
            &[shown.from.as_ref().map_or(0, |u| u.id)],
            Kind::FriendRequestAnswered(shown.clone()),
        )
        .await;
        Ok(shown)
    }

    /// The sender withdraws; the recipient learns it as an answered (cancelled) request.
    pub async fn cancel_friend_request(
        &self,
        caller: &Caller,
        id: i64,
    ) -> ApiResult<FriendRequest> {
        let txn = self.write().await?;
        let row = friend_request::Entity::find_by_id(id)
            .filter(friend_request::Column::FromUserId.eq(caller.user_id))
            .one(&txn)
            .await?
            .ok_or_else(|| ApiError::not_found("no such friend request"))?;
        if row.state != PENDING {
            return Err(not_pending());
        }
        let row = answer(&txn, row, RequestState::Cancelled, now_ms()).await?;
        txn.commit().await?;
        let to = row.to_user_id;
        let shown = self.friend_request_view(row).await?;
        self.publish(&[to], Kind::FriendRequestAnswered(shown.clone()))
            .await;
        Ok(shown)
    }

    pub async fn list_friend_requests(
        &self,
        caller: &Caller,
        req: ListFriendRequestsRequest,
    ) -> ApiResult<ListFriendRequestsResponse> {
        let me = caller.user_id;
        let cursor = Cursor::<1>::from_request(req.page.as_ref())?;
        let incoming = friend_request::Column::ToUserId.eq(me);
        let outgoing = friend_request::Column::FromUserId.eq(me);
        let side = match Direction::try_from(req.direction).unwrap_or_default() {
            Direction::Incoming => Condition::all().add(incoming),
            Direction::Outgoing => Condition::all().add(outgoing),
            Direction::Both | Direction::Unspecified => {
                Condition::any().add(incoming).add(outgoing)
            }
        };
        let mut query = friend_request::Entity::find()
            .filter(side)
            .order_by_asc(friend_request::Column::Id)
            .limit(cursor.fetch());
        if !req.include_answered {
            query = query.filter(friend_request::Column::State.eq(PENDING));
        }
        if let Some([after]) = cursor.after {
            query = query.filter(friend_request::Column::Id.gt(after));
        }
        let (rows, page) = cursor.finish(query.all(&self.db).await?, |r| [r.id]);
        let ids: Vec<i64> = rows
            .iter()
            .flat_map(|r| [r.from_user_id, r.to_user_id])
            .collect();
        let users = profiles(&self.db, &ids).await?;
        let requests = rows
            .into_iter()
            .map(|r| {
                let from = shown(&users, r.from_user_id);
                let to = shown(&users, r.to_user_id);
                request_view(r, from, to)
            })
            .collect();
        Ok(ListFriendRequestsResponse {
            requests,
            page: Some(page),
        })
    }

    /// Ends a friendship on both sides; false when there was none.
    pub async fn remove_friend(&self, caller: &Caller, other: i64) -> ApiResult<bool> {
        let me = caller.user_id;
        if other == me {
            return Err(invalid("cannot unfriend yourself"));
        }
        let txn = self.write().await?;
        let removed = unfriend(&txn, me, other).await?;
        txn.commit().await?;
        if removed {
            self.publish(
                &[other],
                Kind::FriendRemoved(FriendRemoved {
                    user_id: me,
                    removed_by: me,
                }),
            )
            .await;
        }
        Ok(removed)
    }

    /// The caller's friends with profiles (one joined, indexed query) and presence (one batch
    /// call to the presence view), by the time each friendship began.
    pub async fn list_contacts(
        &self,
        caller: &Caller,
        req: ListContactsRequest,
    ) -> ApiResult<ListContactsResponse> {
        let me = caller.user_id;
        let cursor = Cursor::<2>::from_request(req.page.as_ref())?;
        let (rows, page) = cursor.finish(contacts_page(&self.db, me, &cursor).await?, |(f, _)| {
            [f.since_ms, f.friend_id]
        });
        let ids: Vec<i64> = rows.iter().map(|(f, _)| f.friend_id).collect();
        let mut presence: std::collections::HashMap<i64, _> = self
            .presence
            .presence(me, &ids)
            .await?
            .into_iter()
            .map(|p| (p.user_id, p))
            .collect();
        let contacts = rows
            .into_iter()
            .map(|(f, u)| Contact {
                user: Some(profile(&u)),
                presence: presence.remove(&f.friend_id),
                since_ms: f.since_ms,
                // Friends may see each other's e-mail (social.proto `Contact.email`).
                email: u.email.clone().unwrap_or_default(),
            })
            .collect();
        Ok(ListContactsResponse {
            contacts,
            page: Some(page),
        })
    }

    async fn friend_request_view(&self, row: friend_request::Model) -> ApiResult<FriendRequest> {
        let users = profiles(&self.db, &[row.from_user_id, row.to_user_id]).await?;
        let from = shown(&users, row.from_user_id);
        let to = shown(&users, row.to_user_id);
        Ok(request_view(row, from, to))
    }
}

/// One page of contacts: friendships joined with the friends' user rows, keyed by
/// (since_ms, friend_id) on the `idx_friendships_since` index.
pub(crate) async fn contacts_page(
    db: &impl ConnectionTrait,
    me: i64,
    cursor: &Cursor<2>,
) -> ApiResult<Vec<(friendship::Model, user::Model)>> {
    Ok(contacts_query(me, cursor).all(db).await?)
}

pub(crate) fn contacts_query(
    me: i64,
    cursor: &Cursor<2>,
) -> sea_orm::SelectTwoRequired<friendship::Entity, user::Entity> {
    let mut query = friendship::Entity::find()
        .join(JoinType::InnerJoin, friend_user())
        .filter(friendship::Column::UserId.eq(me))
        .filter(user::Column::DeletedAtMs.is_null())
        .order_by(friendship::Column::SinceMs, Order::Asc)
        .order_by(friendship::Column::FriendId, Order::Asc)
        .limit(cursor.fetch());
    if let Some([since, friend]) = cursor.after {
        query = query.filter(
            Expr::tuple([
                Expr::col((friendship::Entity, friendship::Column::SinceMs)),
                Expr::col((friendship::Entity, friendship::Column::FriendId)),
            ])
            .gt(Expr::tuple([Expr::val(since), Expr::val(friend)])),
        );
    }
    query.select_two_required(user::Entity)
}

fn friend_user() -> RelationDef {
    friendship::Entity::belongs_to(user::Entity)
        .from(friendship::Column::FriendId)
        .to(user::Column::Id)
        .into()
}

fn request_view(
    r: friend_request::Model,
    from: rosetta_proto::account::v1::User,
    to: rosetta_proto::account::v1::User,
) -> FriendRequest {
    FriendRequest {
        id: r.id,
        from: Some(from),
        to: Some(to),
        note: r.note,
        state: i32::from(r.state),
        created_at_ms: r.created_at_ms,
        answered_at_ms: r.answered_at_ms.unwrap_or(0),
    }
}

pub(crate) fn not_pending() -> ApiError {
    ApiError::precondition(Reason::NotPending, "the request was already answered")
}

async fn answer(
    db: &impl ConnectionTrait,
    row: friend_request::Model,
    state: RequestState,
    now: i64,
) -> ApiResult<friend_request::Model> {
    let updated = friend_request::Entity::update_many()
        .col_expr(friend_request::Column::State, Expr::val(state as i16))
        .col_expr(friend_request::Column::AnsweredAtMs, Expr::val(now))
        .filter(friend_request::Column::Id.eq(row.id))
        .filter(friend_request::Column::State.eq(PENDING))
        .exec(db)
        .await?;
    // A concurrent answer won the race.
    if updated.rows_affected == 0 {
        return Err(not_pending());
    }
    Ok(friend_request::Model {
        state: state as i16,
        answered_at_ms: Some(now),
        ..row
    })
}

async fn pending_between(
    db: &impl ConnectionTrait,
    from: i64,
    to: i64,
) -> ApiResult<Option<friend_request::Model>> {
    Ok(friend_request::Entity::find()
        .filter(friend_request::Column::FromUserId.eq(from))
        .filter(friend_request::Column::ToUserId.eq(to))
        .filter(friend_request::Column::State.eq(PENDING))
        .one(db)
        .await?)
}

pub(crate) async fn are_friends(db: &impl ConnectionTrait, a: i64, b: i64) -> ApiResult<bool> {
    Ok(friendship::Entity::find_by_id((a, b))
        .one(db)
        .await?
        .is_some())
}

async fn friend_count(db: &impl ConnectionTrait, user: i64) -> ApiResult<u64> {
    Ok(friendship::Entity::find()
        .filter(friendship::Column::UserId.eq(user))
        .count(db)
        .await?)
}

async fn befriend(db: &impl ConnectionTrait, a: i64, b: i64, now: i64) -> ApiResult<()> {
    let row = |user_id, friend_id| friendship::ActiveModel {
        user_id: Set(user_id),
        friend_id: Set(friend_id),
        since_ms: Set(now),
    };
    friendship::Entity::insert_many([row(a, b), row(b, a)])
        .on_conflict_do_nothing()
        .exec_without_returning(db)
        .await?;
    rights_changed(db, &[a, b]).await
}

/// Deletes both directions of a friendship; true when there was one. Call on a transaction:
/// the two users' policy epochs move with it.
pub(crate) async fn unfriend(db: &impl ConnectionTrait, a: i64, b: i64) -> ApiResult<bool> {
    let deleted = friendship::Entity::delete_many()
        .filter(
            Condition::any()
                .add(
                    friendship::Column::UserId
                        .eq(a)
                        .and(friendship::Column::FriendId.eq(b)),
                )
                .add(
                    friendship::Column::UserId
                        .eq(b)
                        .and(friendship::Column::FriendId.eq(a)),
                ),
        )
        .exec(db)
        .await?;
    if deleted.rows_affected > 0 {
        rights_changed(db, &[a, b]).await?;
    }
    Ok(deleted.rows_affected > 0)
}
