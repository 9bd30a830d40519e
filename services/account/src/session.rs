//! Sessions: opening one after a login, rotating refresh tokens, logout, and the legacy
//! tokens some bridges hand to their clients in place of a password.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{Rng, RngCore, distr::Alphanumeric};
use rosetta_auth::Caller;
use rosetta_db::{
    entity::{legacy_token, session, user},
    now_ms,
};
use rosetta_kit::{ApiError, ApiResult, Reason};
use rosetta_proto::account::v1::{ExchangeLegacyTokenRequest, LegacyTokenFormat, LoginResponse};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QuerySelect, sea_query::Expr,
};
use sha2::{Digest, Sha256};

use crate::{Accounts, accounts::own_profile};

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A legacy token in the shape its protocol's client expects.
fn legacy_token(format: LegacyTokenFormat) -> String {
    let mut rng = rand::rng();
    match format {
        LegacyTokenFormat::Printable => {
            let len = rng.random_range(15..=19);
            (0..len)
                .map(|_| char::from(rng.random_range(b'!'..=b'~')))
                .collect()
        }
        _ => (&mut rng)
            .sample_iter(&Alphanumeric)
            .take(16)
            .map(char::from)
            .collect(),
    }
}

fn protocol_name(protocol: &str) -> ApiResult<String> {
    let ok = (1..=32).contains(&protocol.len())
        && protocol
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(protocol.to_owned())
    } else {
        Err(ApiError::invalid(
            Reason::InvalidArgument,
            "bad protocol name",
        ))
    }
}

impl Accounts {
    pub(crate) async fn open_session(
        &self,
        user: &user::Model,
        client: &str,
    ) -> ApiResult<LoginResponse> {
        // Checked before and after the session is stored: a DisableUser (or a draining
        // SetMaintenance) that commits between the two is seen by the second check, or ends
        // this session in its own second pass (see `admin::actions`, `admin::maintenance`),
        // so no login outlives a disable or a drain.
        self.refuse_login(user.id, false).await?;
        let now = now_ms();
        let id = uuid::Uuid::new_v4().to_string();
        let refresh = refresh_token();
        let refresh_expires_at_ms = now + self.cfg.refresh_ttl.as_millis() as i64;
        session::Entity::insert(session::ActiveModel {
            id: Set(id.clone()),
            user_id: Set(user.id),
            refresh_hash: Set(digest(&refresh)),
            prev_refresh_hash: Set(None),
            refresh_expires_at_ms: Set(refresh_expires_at_ms),
            created_at_ms: Set(now),
            last_used_at_ms: Set(now),
            revoked_at_ms: Set(None),
            client: Set(client.chars().take(200).collect()),
        })
        .exec(&self.db)
        .await?;
        if let Err(refused) = self.refuse_login(user.id, true).await {
            self.revoke(&id).await?;
            return Err(refused);
        }
        let (access_token, access_expires_at_ms) = self.issuer.issue(user.id, &id, now)?;
        Ok(LoginResponse {
            access_token,
            access_expires_at_ms,
            refresh_token: refresh,
            refresh_expires_at_ms,
            session_id: id,
            user: Some(own_profile(user)),
            legacy_token: String::new(),
        })
    }

    /// Spends a refresh token for a new pair. A token presented twice means it leaked: the
    /// whole session ends.
    pub async fn refresh(&self, presented: &str) -> ApiResult<LoginResponse> {
        let hash = digest(presented);
        let now = now_ms();
        let Some(current) = session::Entity::find()
            .filter(session::Column::RefreshHash.eq(&hash))
            .one(&self.db)
            .await?
        else {
            if let Some(leaked) = session::Entity::find()
                .filter(session::Column::PrevRefreshHash.eq(&hash))
                .one(&self.db)
                .await?
            {
                tracing::warn!(session = %leaked.id, "refresh token reused; revoking the session");
                self.revoke(&leaked.id).await?;
                return Err(ApiError::unauthenticated(
                    Reason::RefreshReused,
                    "refresh token was already used",
                ));
            }
            return Err(ApiError::unauthenticated(
                Reason::TokenInvalid,
                "unknown refresh token",
            ));
        };
        if current.revoked_at_ms.is_some() || current.refresh_expires_at_ms <= now {
            return Err(ApiError::unauthenticated(
                Reason::SessionRevoked,
                "session has ended",
            ));
        }
        let user = self
            .find(user::Column::Id.eq(current.user_id))
            .await?
            .ok_or_else(|| ApiError::unauthenticated(Reason::SessionRevoked, "account is gone"))?;
        let next = refresh_token();
        let refresh_expires_at_ms = now + self.cfg.refresh_ttl.as_millis() as i64;
        // Conditional on the old hash, so two concurrent refreshes cannot both win.
        let updated = session::Entity::update_many()
            .col_expr(session::Column::RefreshHash, Expr::value(digest(&next)))
            .col_expr(session::Column::PrevRefreshHash, Expr::value(hash.clone()))
            .col_expr(
                session::Column::RefreshExpiresAtMs,
                Expr::value(refresh_expires_at_ms),
            )
            .col_expr(session::Column::LastUsedAtMs, Expr::value(now))
            .filter(session::Column::Id.eq(&current.id))
            .filter(session::Column::RefreshHash.eq(&hash))
            // Not a session ended meanwhile (a password change racing this refresh).
            .filter(session::Column::RevokedAtMs.is_null())
            .exec(&self.db)
            .await?;
        if updated.rows_affected != 1 {
            return Err(ApiError::unauthenticated(
                Reason::RefreshReused,
                "refresh token was already used",
            ));
        }
        let (access_token, access_expires_at_ms) = self.issuer.issue(user.id, &current.id, now)?;
        Ok(LoginResponse {
            access_token,
            access_expires_at_ms,
            refresh_token: next,
            refresh_expires_at_ms,
            session_id: current.id,
            user: Some(own_profile(&user)),
            legacy_token: String::new(),
        })
    }

    pub async fn logout(&self, caller: &Caller) -> ApiResult<()> {
        self.revoke(&caller.session_id).await
    }

    /// Ends a session: its refresh token, its access tokens and its legacy tokens.
    pub(crate) async fn revoke(&self, session_id: &str) -> ApiResult<()> {
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAtMs, Expr::value(now_ms()))
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::RevokedAtMs.is_null())
            .exec(&self.db)
            .await?;
        legacy_token::Entity::delete_many()
            .filter(legacy_token::Column::SessionId.eq(session_id))
            .exec(&self.db)
            .await?;
        self.sessions.revoked(session_id);
        Ok(())
    }

    /// Ends every session of a user and revokes all their legacy tokens (password recovery,
    /// account deletion).
    pub(crate) async fn revoke_all(&self, user_id: i64) -> ApiResult<()> {
        let ended = end_sessions(&self.db, user_id, None).await?;
        self.forget_sessions(&ended);
        Ok(())
    }

    /// Tells this process's session guard at once about sessions ended in the database
    /// (other processes see it within their cache time).
    pub(crate) fn forget_sessions(&self, ended: &[String]) {
        for id in ended {
            self.sessions.revoked(id);
        }
    }

    pub async fn issue_legacy_token(
        &self,
        caller: &Caller,
        protocol: &str,
        format: i32,
    ) -> ApiResult<String> {
        let protocol = protocol_name(protocol)?;
        let format = LegacyTokenFormat::try_from(format).unwrap_or(LegacyTokenFormat::Alnum16);
        self.store_legacy_token(caller.user_id, &caller.session_id, protocol, format)
            .await
    }

    async fn store_legacy_token(
        &self,
        user_id: i64,
        session_id: &str,
        protocol: String,
        format: LegacyTokenFormat,
    ) -> ApiResult<String> {
        let token = legacy_token(format);
        legacy_token::Entity::delete_by_id((user_id, protocol.clone()))
            .exec(&self.db)
            .await?;
        legacy_token::Entity::insert(legacy_token::ActiveModel {
            user_id: Set(user_id),
            protocol: Set(protocol),
            token_hash: Set(digest(&token)),
            session_id: Set(session_id.to_owned()),
            created_at_ms: Set(now_ms()),
        })
        .exec(&self.db)
        .await?;
        Ok(token)
    }

    pub async fn exchange_legacy_token(
        &self,
        req: ExchangeLegacyTokenRequest,
    ) -> ApiResult<LoginResponse> {
        let protocol = protocol_name(&req.protocol)?;
        let refused = || ApiError::unauthenticated(Reason::BadCredentials, "token does not match");
        let user = match &req.user {
            // An unknown user looks like a wrong token; a failing database stays an error.
            Some(r) => self.resolve(r).await.map_err(|err| match err.code {
                tonic::Code::NotFound => refused(),
                _ => err,
            })?,
            None => {
                return Err(ApiError::invalid(
                    Reason::InvalidArgument,
                    "user is required",
                ));
            }
        };
        let stored = legacy_token::Entity::find_by_id((user.id, protocol.clone()))
            .one(&self.db)
            .await?
            .ok_or_else(refused)?;
        if !constant_time_eq(stored.token_hash.as_bytes(), digest(&req.token).as_bytes()) {
            return Err(refused());
        }
        let mut response = self.open_session(&user, &req.client).await?;
        if req.rotate {
            let format =
                LegacyTokenFormat::try_from(req.format).unwrap_or(LegacyTokenFormat::Alnum16);
            response.legacy_token = self
                .store_legacy_token(user.id, &response.session_id, protocol, format)
                .await?;
        }
        Ok(response)
    }
}

/// Ends every live session of `user_id` except `keep` and deletes every legacy token of the
/// user, whichever session it was issued to (a token can outlive its session, and it is a
/// credential of its own). Returns the ids of the sessions it ended.
pub(crate) async fn end_sessions<C: ConnectionTrait>(
    db: &C,
    user_id: i64,
    keep: Option<&str>,
) -> ApiResult<Vec<String>> {
    let now = now_ms();
    let others = || {
        let mut cond = Condition::all()
            .add(session::Column::UserId.eq(user_id))
            .add(session::Column::RevokedAtMs.is_null());
        if let Some(keep) = keep {
            cond = cond.add(session::Column::Id.ne(keep));
        }
        cond
    };
    let ended: Vec<String> = session::Entity::find()
        .select_only()
        .column(session::Column::Id)
        .filter(others())
        .into_tuple()
        .all(db)
        .await?;
    // One conditional UPDATE: a session opened meanwhile is ended too (the database has it
    // revoked even if this process's cache was not told).
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAtMs, Expr::value(now))
        .filter(others())
        .exec(db)
        .await?;
    legacy_token::Entity::delete_many()
        .filter(legacy_token::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(ended)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_tokens_have_their_protocol_shape() {
        for _ in 0..100 {
            let pipe = legacy_token(LegacyTokenFormat::Alnum16);
            assert_eq!(pipe.len(), 16);
            assert!(pipe.bytes().all(|b| b.is_ascii_alphanumeric()));
            let cloud = legacy_token(LegacyTokenFormat::Printable);
            assert!((15..=19).contains(&cloud.len()));
            assert!(cloud.bytes().all(|b| (b'!'..=b'~').contains(&b)));
        }
    }
}
