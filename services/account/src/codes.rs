//! One-time verification codes for phone numbers and e-mail addresses: one outstanding code
//! per target, hashed at rest, expiring, limited in attempts and in how often they are sent.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use rand::Rng;
use rosetta_db::{entity::verification_code as code, now_ms};
use rosetta_kit::{ApiError, Reason};
use rosetta_proto::account::v1::{VerificationChannel, VerificationPurpose};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, Query},
};
use sha2::{Digest, Sha256};

use crate::AccountConfig;

/// Wrong guesses before a code is void.
const MAX_ATTEMPTS: i32 = 5;

/// Delivers codes. The default logs them; a deployment plugs in SMS or e-mail.
#[async_trait::async_trait]
pub trait CodeSender: Send + Sync {
    async fn send(
        &self,
        channel: VerificationChannel,
        target: &str,
        code: &str,
    ) -> Result<(), ApiError>;
}

/// Writes each code to the log, for operators of deployments without SMS or e-mail.
pub struct LogSender;

#[async_trait::async_trait]
impl CodeSender for LogSender {
    async fn send(
        &self,
        channel: VerificationChannel,
        target: &str,
        code: &str,
    ) -> Result<(), ApiError> {
        tracing::info!(
            channel = channel.as_str_name(),
            target,
            code,
            "verification code issued"
        );
        Ok(())
    }
}

/// Keeps the last code per target in memory, for tests and embedding applications.
#[derive(Default, Clone)]
pub struct MemorySender(Arc<Mutex<HashMap<String, String>>>);

impl MemorySender {
    pub fn last_code(&self, target: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(target)
            .cloned()
    }
}

#[async_trait::async_trait]
impl CodeSender for MemorySender {
    async fn send(&self, _: VerificationChannel, target: &str, code: &str) -> Result<(), ApiError> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(target.to_owned(), code.to_owned());
        Ok(())
    }
}

fn digest(code: &str) -> String {
    hex::encode(Sha256::digest(code.trim().as_bytes()))
}

/// Stores a fresh code for `target` (rate limited) and returns it with its expiry.
pub async fn issue(
    db: &DatabaseConnection,
    cfg: &AccountConfig,
    channel: VerificationChannel,
    target: &str,
    purpose: VerificationPurpose,
) -> Result<(String, i64), ApiError> {
    let now = now_ms();
    let existing = code::Entity::find_by_id((channel as i16, target.to_owned()))
        .one(db)
        .await?;
    let hour = 3_600_000;
    let (window_start_ms, sends_in_window) = match &existing {
        Some(row) => {
            let since_last = now - row.sent_at_ms;
            let resend = cfg.code_resend_interval.as_millis() as i64;
            if since_last < resend {
                return Err(rate_limited(resend - since_last));
            }
            if now - row.window_start_ms < hour {
                if row.sends_in_window >= cfg.code_max_per_hour as i32 {
                    return Err(rate_limited(row.window_start_ms + hour - now));
                }
                (row.window_start_ms, row.sends_in_window + 1)
            } else {
                (now, 1)
            }
        }
        None => (now, 1),
    };
    let value = cfg
        .fixed_code
        .clone()
        .unwrap_or_else(|| format!("{:06}", rand::rng().random_range(0..1_000_000)));
    let expires_at_ms = now + cfg.code_ttl.as_millis() as i64;
    let row = code::ActiveModel {
        channel: Set(channel as i16),
        target: Set(target.to_owned()),
        purpose: Set(purpose as i16),
        code_hash: Set(digest(&value)),
        expires_at_ms: Set(expires_at_ms),
        attempts: Set(0),
        sent_at_ms: Set(now),
        window_start_ms: Set(window_start_ms),
        sends_in_window: Set(sends_in_window),
    };
    if existing.is_some() {
        row.update(db).await?;
    } else {
        row.insert(db).await?;
    }
    Ok((value, expires_at_ms))
}

/// Spends the code for `target` if `presented` matches it.
///
/// The attempt is spent first, by one conditional `UPDATE … SET attempts = attempts + 1 …
/// WHERE attempts < MAX_ATTEMPTS RETURNING code_hash`, and only then compared: guesses that
/// arrive at once can never compare more than `MAX_ATTEMPTS` times.
pub async fn consume(
    db: &DatabaseConnection,
    channel: VerificationChannel,
    target: &str,
    purpose: VerificationPurpose,
    presented: &str,
) -> Result<(), ApiError> {
    consume_on(db, channel as i16, target, purpose, presented).await
}

/// [`consume`] on a channel by its stored number (the API's channels, or
/// [`OPERATOR_CHANNEL`]).
async fn consume_on(
    db: &DatabaseConnection,
    channel: i16,
    target: &str,
    purpose: VerificationPurpose,
    presented: &str,
) -> Result<(), ApiError> {
    let spend = Query::update()
        .table(code::Entity)
        .value(
            code::Column::Attempts,
            Expr::col(code::Column::Attempts).add(1),
        )
        .and_where(code::Column::Channel.eq(channel))
        .and_where(code::Column::Target.eq(target))
        .and_where(code::Column::Purpose.eq(purpose as i16))
        .and_where(code::Column::ExpiresAtMs.gt(now_ms()))
        .and_where(code::Column::Attempts.lt(MAX_ATTEMPTS))
        .returning_col(code::Column::CodeHash)
        .to_owned();
    let Some(spent) = db.query_one(&spend).await? else {
        return Err(refusal(db, channel, target, purpose).await?);
    };
    let code_hash: String = spent.try_get("", "code_hash")?;
    if code_hash != digest(presented) {
        return Err(ApiError::invalid(
            Reason::CodeInvalid,
            "wrong verification code",
        ));
    }
    // Two right guesses at once: only the one that deletes the code has spent it.
    let deleted = code::Entity::delete_many()
        .filter(code::Column::Channel.eq(channel))
        .filter(code::Column::Target.eq(target))
        .filter(code::Column::CodeHash.eq(code_hash))
        .exec(db)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(ApiError::invalid(Reason::CodeInvalid, "code already used"));
    }
    Ok(())
}

/// Why no attempt could be spent on the code for `target`.
async fn refusal(
    db: &DatabaseConnection,
    channel: i16,
    target: &str,
    purpose: VerificationPurpose,
) -> Result<ApiError, ApiError> {
    let row = code::Entity::find_by_id((channel, target.to_owned()))
        .one(db)
        .await?;
    Ok(match row {
        None => ApiError::precondition(Reason::CodeNotRequested, "no code was sent to this target"),
        Some(row) if row.purpose != purpose as i16 => ApiError::precondition(
            Reason::CodeNotRequested,
            "no code was sent for this purpose",
        ),
        Some(_) => ApiError::invalid(Reason::CodeInvalid, "code expired; request a new one"),
    })
}

/// The stored channel of recovery codes an operator issues (ResetPassword): not one of the
/// API's channels, so SendVerificationCode can never issue or replace one. Its target is the
/// user id in decimal.
pub(crate) const OPERATOR_CHANNEL: i16 = 100;

/// How long an operator's recovery code is valid: long enough to hand it to the user.
pub(crate) const OPERATOR_CODE_TTL_MS: i64 = 24 * 3_600_000;

/// Letters and digits that cannot be mistaken for each other when read out (no 0/O, 1/I).
const OPERATOR_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Stores a fresh operator recovery code for `user_id` on `db` (the admin call's
/// transaction), replacing an earlier one, and returns it with its expiry. Redeemed by
/// [`consume_operator`] through RecoverPassword.
pub(crate) async fn issue_operator<C: ConnectionTrait>(
    db: &C,
    user_id: i64,
) -> Result<(String, i64), ApiError> {
    // The generator is not `Send`: it must not live across an await.
    let value: String = {
        let mut rng = rand::rng();
        (0..12)
            .map(|_| char::from(OPERATOR_ALPHABET[rng.random_range(0..OPERATOR_ALPHABET.len())]))
            .collect()
    };
    let now = now_ms();
    let expires_at_ms = now + OPERATOR_CODE_TTL_MS;
    let target = user_id.to_string();
    code::Entity::delete_by_id((OPERATOR_CHANNEL, target.clone()))
        .exec(db)
        .await?;
    code::Entity::insert(code::ActiveModel {
        channel: Set(OPERATOR_CHANNEL),
        target: Set(target),
        purpose: Set(VerificationPurpose::Recovery as i16),
        code_hash: Set(digest(&value)),
        expires_at_ms: Set(expires_at_ms),
        attempts: Set(0),
        sent_at_ms: Set(now),
        window_start_ms: Set(now),
        sends_in_window: Set(1),
    })
    .exec_without_returning(db)
    .await?;
    Ok((value, expires_at_ms))
}

/// Spends the operator recovery code of `user_id` if `presented` matches it (attempts
/// limited as for every code). Codes are compared case-insensitively, as they are read out.
pub(crate) async fn consume_operator(
    db: &DatabaseConnection,
    user_id: i64,
    presented: &str,
) -> Result<(), ApiError> {
    consume_on(
        db,
        OPERATOR_CHANNEL,
        &user_id.to_string(),
        VerificationPurpose::Recovery,
        &presented.trim().to_ascii_uppercase(),
    )
    .await
}

fn rate_limited(wait_ms: i64) -> ApiError {
    let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0));
    ApiError {
        reason: Reason::RateLimited,
        ..ApiError::throttled(wait)
    }
}
