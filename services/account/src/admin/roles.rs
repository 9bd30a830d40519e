//! The admin role: granted and revoked only from the server's command line (with database
//! access), never over the API, and checked on every admin call.

use rosetta_db::{
    entity::{admin, disabled_account, user},
    now_ms,
};
use rosetta_kit::{ApiError, ApiResult, Reason};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
    sea_query::OnConflict,
};

use super::audit::{self, Actor, Entry};
use crate::accounts::live_users;

/// Grants the admin role to the live account `handle` names (a numeric id or a user name),
/// audited as an action of the command line. Granting it again changes nothing. Returns the
/// user id.
pub async fn grant(db: &DatabaseConnection, handle: &str) -> ApiResult<i64> {
    let target = by_handle(db, handle).await?;
    let txn = db.begin().await?;
    admin::Entity::insert(admin::ActiveModel {
        user_id: Set(target.id),
        granted_at_ms: Set(now_ms()),
        granted_by: Set(Actor::cli().name),
    })
    .on_conflict(
        OnConflict::column(admin::Column::UserId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    let entry = Entry {
        actor: &Actor::cli(),
        action: "Grant",
        target: Some(target.id),
        details: format!("username={}", target.username),
        outcome: audit::OK,
    };
    audit::record(&txn, entry).await?;
    txn.commit().await?;
    Ok(target.id)
}

/// Takes the admin role from the account `handle` names; audited like [`grant`]. Returns the
/// user id.
pub async fn revoke(db: &DatabaseConnection, handle: &str) -> ApiResult<i64> {
    let target = by_handle(db, handle).await?;
    let txn = db.begin().await?;
    admin::Entity::delete_by_id(target.id).exec(&txn).await?;
    let entry = Entry {
        actor: &Actor::cli(),
        action: "Revoke",
        target: Some(target.id),
        details: format!("username={}", target.username),
        outcome: audit::OK,
    };
    audit::record(&txn, entry).await?;
    txn.commit().await?;
    Ok(target.id)
}

/// The live account a command-line handle names: a number is an id, anything else a user name.
async fn by_handle(db: &DatabaseConnection, handle: &str) -> ApiResult<user::Model> {
    let handle = handle.trim();
    let filter = match handle.parse::<i64>() {
        Ok(id) => user::Column::Id.eq(id),
        Err(_) => user::Column::Username.eq(handle),
    };
    live_users()
        .filter(filter)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no account named {handle:?}")))
}

/// The admin `user_id` acts as, or a refusal: the account must be live, enabled and hold the
/// role. A refusal is logged here (who tried what), not stored, so that callers without the
/// role cannot grow the audit log.
pub(super) async fn authorize(
    db: &DatabaseConnection,
    user_id: i64,
    action: &'static str,
) -> ApiResult<Actor> {
    let account = live_users()
        .filter(user::Column::Id.eq(user_id))
        .one(db)
        .await?;
    let is_admin = admin::Entity::find_by_id(user_id).one(db).await?.is_some();
    let disabled = disabled_account::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .is_some();
    match account {
        Some(account) if is_admin && !disabled => Ok(Actor {
            user_id: Some(account.id),
            name: account.username,
        }),
        _ => {
            tracing::warn!(user_id, action, "admin call refused: no admin role");
            Err(ApiError::denied(
                Reason::AdminRoleRequired,
                "this call needs the admin role",
            ))
        }
    }
}
