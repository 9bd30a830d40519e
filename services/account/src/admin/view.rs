//! What operators see of accounts: lists with role and state, and one account with its
//! handles and live sessions. Only what the account service itself knows: its users, roles,
//! states and sessions (not presence, which the messaging service keeps).

use std::collections::{HashMap, HashSet};

use rosetta_db::{
    entity::{admin, disabled_account, session, user},
    now_ms,
};
use rosetta_kit::{ApiError, ApiResult, Reason, page::Page};
use rosetta_proto::{
    admin::v1::{
        ListUsersRequest, ListUsersResponse, ProtocolHandle, Session, UserDetails, UserSummary,
    },
    common::v1::{UserRef, user_ref::Ref},
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};

use crate::{
    Accounts,
    accounts::{live_users, own_profile},
    profile::escape_like,
};

/// Live sessions shown per account: a user who logs in without ever logging out can have
/// many; the newest are the ones an operator acts on.
const MAX_SESSIONS_SHOWN: u64 = 200;

/// The protocols whose bridges name themselves in a session's `client` text.
const BRIDGES: [&str; 5] = ["pipe", "dpc", "imps", "ourchat", "cloudchat"];

impl Accounts {
    pub(crate) async fn admin_list_users(
        &self,
        req: &ListUsersRequest,
    ) -> ApiResult<ListUsersResponse> {
        let page = Page::from_request(req.page.as_ref())?;
        let mut query = if req.include_deleted {
            user::Entity::find()
        } else {
            live_users()
        };
        query = query.order_by_asc(user::Column::Id).limit(page.fetch());
        if let Some(after) = page.after {
            query = query.filter(user::Column::Id.gt(after));
        }
        let text = req.query.trim();
        if text.chars().count() > 256 {
            return Err(ApiError::invalid(
                Reason::InvalidArgument,
                "query longer than 256 characters",
            ));
        }
        if let Ok(id) = text.parse::<i64>() {
            query = query.filter(user::Column::Id.eq(id));
        } else if !text.is_empty() {
            let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
            let like = |c: user::Column| {
                Expr::expr(Func::lower(Expr::col(c))).like(LikeExpr::new(&pattern).escape('\\'))
            };
            query = query.filter(
                Condition::any()
                    .add(like(user::Column::Username))
                    .add(like(user::Column::Nickname))
                    .add(like(user::Column::Email)),
            );
        }
        let (rows, page) = page.finish(query.all(&self.db).await?, |u| u.id);
        Ok(ListUsersResponse {
            users: summaries(&self.db, rows).await?,
            page: Some(page),
        })
    }

    pub(crate) async fn admin_get_user(&self, r: Option<&UserRef>) -> ApiResult<UserDetails> {
        let target = self.admin_target(r, true).await?;
        let handles = handles(&target);
        let now = now_ms();
        let sessions = session::Entity::find()
            .filter(live_sessions(now))
            .filter(session::Column::UserId.eq(target.id))
            .order_by_desc(session::Column::CreatedAtMs)
            .limit(MAX_SESSIONS_SHOWN)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|s| Session {
                protocol: protocol_of(&s.client).to_owned(),
                id: s.id,
                client: s.client,
                created_at_ms: s.created_at_ms,
                last_used_at_ms: s.last_used_at_ms,
                refresh_expires_at_ms: s.refresh_expires_at_ms,
            })
            .collect();
        let summary = summaries(&self.db, vec![target]).await?.pop();
        Ok(UserDetails {
            summary,
            handles,
            sessions,
        })
    }

    /// The account an admin call names. `deleted`: a deleted account is found too, by id only
    /// (its other handles are scrubbed).
    pub(crate) async fn admin_target(
        &self,
        r: Option<&UserRef>,
        deleted: bool,
    ) -> ApiResult<user::Model> {
        let r = r.ok_or_else(|| ApiError::invalid(Reason::InvalidArgument, "user is required"))?;
        match &r.r#ref {
            Some(Ref::Id(id)) if deleted => user::Entity::find_by_id(*id)
                .one(&self.db)
                .await?
                .ok_or_else(|| ApiError::not_found("no such user")),
            _ => self.resolve(r).await,
        }
    }
}

/// Sessions that still work: not ended, refresh token not expired.
fn live_sessions(now: i64) -> Condition {
    Condition::all()
        .add(session::Column::RevokedAtMs.is_null())
        .add(session::Column::RefreshExpiresAtMs.gt(now))
}

/// Role, state and session figures of `users`, in a fixed number of statements.
async fn summaries<C: ConnectionTrait>(
    db: &C,
    users: Vec<user::Model>,
) -> ApiResult<Vec<UserSummary>> {
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let admins: HashSet<i64> = admin::Entity::find()
        .select_only()
        .column(admin::Column::UserId)
        .filter(admin::Column::UserId.is_in(ids.clone()))
        .into_tuple()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let disabled: HashMap<i64, i64> = disabled_account::Entity::find()
        .select_only()
        .column(disabled_account::Column::UserId)
        .column(disabled_account::Column::DisabledAtMs)
        .filter(disabled_account::Column::UserId.is_in(ids.clone()))
        .into_tuple()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let last_seen: HashMap<i64, Option<i64>> = session::Entity::find()
        .select_only()
        .column(session::Column::UserId)
        .column_as(
            Expr::expr(Func::max(Expr::col(session::Column::LastUsedAtMs))),
            "last_seen",
        )
        .filter(session::Column::UserId.is_in(ids.clone()))
        .group_by(session::Column::UserId)
        .into_tuple()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let live: HashMap<i64, i64> = session::Entity::find()
        .select_only()
        .column(session::Column::UserId)
        .column_as(
            Expr::expr(Func::count(Expr::col(session::Column::Id))),
            "live",
        )
        .filter(session::Column::UserId.is_in(ids))
        .filter(live_sessions(now_ms()))
        .group_by(session::Column::UserId)
        .into_tuple()
        .all(db)
        .await?
        .into_iter()
        .collect();
    Ok(users
        .iter()
        .map(|u| UserSummary {
            user: Some(own_profile(u)),
            admin: admins.contains(&u.id),
            disabled_at_ms: disabled.get(&u.id).copied().unwrap_or(0),
            deleted_at_ms: u.deleted_at_ms.unwrap_or(0),
            live_sessions: live
                .get(&u.id)
                .map_or(0, |n| i32::try_from(*n).unwrap_or(i32::MAX)),
            last_seen_ms: last_seen.get(&u.id).copied().flatten().unwrap_or(0),
        })
        .collect())
}

/// How each protocol's clients name `u` (see `ProtocolHandle` in admin.proto).
fn handles(u: &user::Model) -> Vec<ProtocolHandle> {
    let id = u.id.to_string();
    [
        ("grpc", &u.username),
        ("pipe", &id),
        ("dpc", &u.username),
        ("imps", &u.username),
        ("ourchat", &u.ocid),
        ("cloudchat", &id),
    ]
    .into_iter()
    .map(|(protocol, handle)| ProtocolHandle {
        protocol: protocol.into(),
        handle: handle.clone(),
    })
    .collect()
}

/// The protocol a session's `client` text names: bridges write `bridge-<protocol> <peer>`
/// (IMPS just `imps`); anything else is a gRPC client.
fn protocol_of(client: &str) -> &'static str {
    let word = client.split_whitespace().next().unwrap_or_default();
    let word = word.strip_prefix("bridge-").unwrap_or(word);
    BRIDGES
        .into_iter()
        .find(|bridge| *bridge == word)
        .unwrap_or("grpc")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_name_their_protocol() {
        assert_eq!(protocol_of("bridge-pipe 127.0.0.1:5000"), "pipe");
        assert_eq!(protocol_of("imps"), "imps");
        assert_eq!(protocol_of("bridge-cloudchat [::1]:80"), "cloudchat");
        assert_eq!(protocol_of("test"), "grpc");
        assert_eq!(protocol_of(""), "grpc");
    }
}
