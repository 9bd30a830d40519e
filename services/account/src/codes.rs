//! One-time verification codes for phone numbers and e-mail addresses: one outstanding code
//! per target, hashed at rest, expiring, limited in attempts and in how often they are sent.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use rand::Rng;
use rosetta_db::{entity::verification_code as code, now_ms};
use rosetta_kit::ApiError;
use rosetta_proto::account::v1::{VerificationChannel, VerificationPurpose};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, DatabaseConnection, EntityTrait, IntoActiveModel,
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
pub async fn consume(
    db: &DatabaseConnection,
    channel: VerificationChannel,
    target: &str,
    purpose: VerificationPurpose,
    presented: &str,
) -> Result<(), ApiError> {
    let Some(row) = code::Entity::find_by_id((channel as i16, target.to_owned()))
        .one(db)
        .await?
    else {
        return Err(ApiError::precondition(
            "CODE_NOT_REQUESTED",
            "no code was sent to this target",
        ));
    };
    if row.purpose != purpose as i16 {
        return Err(ApiError::precondition(
            "CODE_NOT_REQUESTED",
            "no code was sent for this purpose",
        ));
    }
    if row.expires_at_ms <= now_ms() || row.attempts >= MAX_ATTEMPTS {
        return Err(ApiError::invalid(
            "CODE_INVALID",
            "code expired; request a new one",
        ));
    }
    if row.code_hash == digest(presented) {
        code::Entity::delete_by_id((row.channel, row.target))
            .exec(db)
            .await?;
        return Ok(());
    }
    let attempts = row.attempts + 1;
    let mut active = row.into_active_model();
    active.attempts = Set(attempts);
    active.update(db).await?;
    Err(ApiError::invalid("CODE_INVALID", "wrong verification code"))
}

fn rate_limited(wait_ms: i64) -> ApiError {
    let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0));
    ApiError {
        reason: "RATE_LIMITED",
        ..ApiError::throttled(wait)
    }
}
