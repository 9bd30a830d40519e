//! Users as the social graph sees them: resolved from a `UserRef`, checked to exist, and shown
//! with their public profile. Deleted accounts (kept with `deleted_at_ms` set) count as unknown.

use std::collections::HashMap;

use rosetta_db::entity::user;
use rosetta_kit::{ApiError, ApiResult};
use rosetta_proto::{
    account::v1::User,
    common::v1::{UserRef, user_ref::Ref},
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Select};

use crate::limits::invalid;

pub(crate) fn live_users() -> Select<user::Entity> {
    user::Entity::find().filter(user::Column::DeletedAtMs.is_null())
}

/// The public face of a user: no e-mail, phone or security question.
pub(crate) fn profile(u: &user::Model) -> User {
    User {
        id: u.id,
        username: u.username.clone(),
        ocid: u.ocid.clone(),
        nickname: u.nickname.clone(),
        avatar: u.avatar.clone(),
        signature: u.signature.clone(),
        gender: i32::from(u.gender),
        vip: u.vip,
        created_at_ms: u.created_at_ms,
        ..Default::default()
    }
}

/// The live user a reference names.
pub(crate) async fn resolve(
    db: &impl ConnectionTrait,
    r: Option<&UserRef>,
) -> ApiResult<user::Model> {
    let filter = match r.and_then(|r| r.r#ref.as_ref()) {
        Some(Ref::Id(id)) => user::Column::Id.eq(*id),
        Some(Ref::Username(name)) => user::Column::Username.eq(name),
        Some(Ref::Ocid(ocid)) => user::Column::Ocid.eq(ocid),
        Some(Ref::Email(email)) => user::Column::Email.eq(email.trim().to_ascii_lowercase()),
        None => return Err(invalid("a user reference is required")),
    };
    live_users()
        .filter(filter)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))
}

/// Fails with NOT_FOUND unless every id names a live user.
pub(crate) async fn require_live(db: &impl ConnectionTrait, ids: &[i64]) -> ApiResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let found = profiles(db, ids).await?;
    match ids.iter().find(|id| !found.contains_key(id)) {
        Some(missing) => Err(ApiError::not_found(format!("no such user: {missing}"))),
        None => Ok(()),
    }
}

/// Public profiles of live users by id, in one query.
pub(crate) async fn profiles(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> ApiResult<HashMap<i64, User>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    Ok(live_users()
        .filter(user::Column::Id.is_in(ids))
        .all(db)
        .await?
        .iter()
        .map(|u| (u.id, profile(u)))
        .collect())
}

/// The profile of `id` from a batch, or a bare one carrying only the id (a deleted account).
pub(crate) fn shown(profiles: &HashMap<i64, User>, id: i64) -> User {
    profiles.get(&id).cloned().unwrap_or(User {
        id,
        ..Default::default()
    })
}
