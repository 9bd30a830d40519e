//! Blocks: a blocked user cannot send the blocker friend requests, messages or group
//! invitations. Blocking ends a friendship and closes pending requests between the two.

use rosetta_auth::Caller;
use rosetta_db::{
    entity::social::{block, friend_request},
    now_ms,
};
use rosetta_kit::ApiResult;
use rosetta_proto::{
    messaging::v1::{FriendRemoved, event::Kind},
    social::v1::{ListBlockedRequest, ListBlockedResponse, RequestState},
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};

use crate::{
    Social,
    cursor::Cursor,
    friends::unfriend,
    limits::invalid,
    social::rights_changed,
    users::{profiles, require_live, shown},
};

impl Social {
    pub async fn block_user(&self, caller: &Caller, other: i64) -> ApiResult<()> {
        let me = caller.user_id;
        if other == me {
            return Err(invalid("cannot block yourself"));
        }
        require_live(&self.db, &[other]).await?;
        let now = now_ms();
        let txn = self.write().await?;
        block::Entity::insert(block::ActiveModel {
            user_id: Set(me),
            blocked_id: Set(other),
            created_at_ms: Set(now),
        })
        .on_conflict_do_nothing()
        .exec_without_returning(&txn)
        .await?;
        rights_changed(&txn, &[me, other]).await?;
        let ended = unfriend(&txn, me, other).await?;
        // Their pending requests to me are rejected, mine to them withdrawn.
        for (from, to, state) in [
            (other, me, RequestState::Rejected),
            (me, other, RequestState::Cancelled),
        ] {
            friend_request::Entity::update_many()
                .col_expr(friend_request::Column::State, Expr::val(state as i16))
                .col_expr(friend_request::Column::AnsweredAtMs, Expr::val(now))
                .filter(friend_request::Column::FromUserId.eq(from))
                .filter(friend_request::Column::ToUserId.eq(to))
                .filter(friend_request::Column::State.eq(RequestState::Pending as i16))
                .exec(&txn)
                .await?;
        }
        let voided = crate::invitations::void_between(&txn, me, other, now).await?;
        txn.commit().await?;
        self.announce_voided(voided).await;
        if ended {
            self.publish(
                &[other],
                Kind::FriendRemoved(FriendRemoved {
                    user_id: me,
                    removed_by: me,
                }),
            )
            .await;
        }
        Ok(())
    }

    /// Idempotent: unblocking a user who is not blocked succeeds.
    pub async fn unblock_user(&self, caller: &Caller, other: i64) -> ApiResult<()> {
        let txn = self.write().await?;
        let removed = block::Entity::delete_by_id((caller.user_id, other))
            .exec(&txn)
            .await?;
        if removed.rows_affected > 0 {
            rights_changed(&txn, &[caller.user_id, other]).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Users the caller blocks, by id.
    pub async fn list_blocked(
        &self,
        caller: &Caller,
        req: ListBlockedRequest,
    ) -> ApiResult<ListBlockedResponse> {
        let cursor = Cursor::<1>::from_request(req.page.as_ref())?;
        let mut query = block::Entity::find()
            .filter(block::Column::UserId.eq(caller.user_id))
            .order_by_asc(block::Column::BlockedId)
            .limit(cursor.fetch());
        if let Some([after]) = cursor.after {
            query = query.filter(block::Column::BlockedId.gt(after));
        }
        let (rows, page) = cursor.finish(query.all(&self.db).await?, |b| [b.blocked_id]);
        let ids: Vec<i64> = rows.iter().map(|b| b.blocked_id).collect();
        let found = profiles(&self.db, &ids).await?;
        Ok(ListBlockedResponse {
            users: ids.iter().map(|id| shown(&found, *id)).collect(),
            page: Some(page),
        })
    }
}
