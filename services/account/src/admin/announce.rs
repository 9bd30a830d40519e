//! Announcements: an operator's message to every user. Stored here once (with its audit
//! entry, in one transaction) and then broadcast; the messaging service delivers it to every
//! open stream and, within its lifetime, once to each user who logs in later (see
//! `rosetta-messaging`'s stream). Legacy clients show it from the reserved system identity
//! (`rosetta_proto::system`), which registration refuses.

use rosetta_db::{begin_write, entity::announcement, now_ms};
use rosetta_kit::{ApiError, ApiResult, Reason, text::is_bidi_control};
use rosetta_proto::{admin::v1::AnnounceRequest, messaging::v1::Announcement};
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, ConnectionTrait as _, DatabaseBackend, EntityTrait as _,
    PaginatorTrait as _, QueryFilter as _,
};

use super::audit::{self, Actor, Entry};
use crate::Accounts;

/// Longest announcement text, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Lifetime when the request names none.
const DEFAULT_LIFETIME_SECS: i64 = 24 * 3600;
/// Shortest and longest lifetime.
const LIFETIME_SECS: std::ops::RangeInclusive<i64> = 60..=30 * 24 * 3600;
/// Announcements in their lifetime at once: every stream opening reads them (a stream reads
/// at most this many), so they stay few.
pub const MAX_ACTIVE: u64 = 16;

/// The text as stored: trimmed, 1 to [`MAX_TEXT_CHARS`] characters, no control characters
/// but line breaks (the legacy protocols frame by them or cannot show them) and no
/// bidirectional controls.
fn text(text: &str) -> ApiResult<String> {
    let text = text.trim();
    let count = text.chars().count();
    if count == 0 || count > MAX_TEXT_CHARS {
        return Err(ApiError::invalid(
            Reason::InvalidArgument,
            format!("an announcement is 1 to {MAX_TEXT_CHARS} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| (c.is_control() && c != '\n') || is_bidi_control(c))
    {
        return Err(ApiError::invalid(
            Reason::InvalidArgument,
            "an announcement cannot contain control characters other than line breaks",
        ));
    }
    Ok(text.to_owned())
}

fn lifetime_ms(secs: i64) -> ApiResult<i64> {
    let secs = if secs == 0 {
        DEFAULT_LIFETIME_SECS
    } else {
        secs
    };
    if !LIFETIME_SECS.contains(&secs) {
        return Err(ApiError::invalid(
            Reason::InvalidArgument,
            format!(
                "lifetime must be {} to {} seconds",
                LIFETIME_SECS.start(),
                LIFETIME_SECS.end()
            ),
        ));
    }
    Ok(secs * 1000)
}

impl Accounts {
    /// Stores an announcement with its audit entry; the caller broadcasts it after this
    /// returns (committed, so a stream woken by the broadcast can read it).
    pub(crate) async fn admin_announce(
        &self,
        actor: &Actor,
        req: &AnnounceRequest,
    ) -> ApiResult<Announcement> {
        let text = text(&req.text)?;
        let lifetime = lifetime_ms(req.lifetime_secs)?;
        let txn = begin_write(&self.db).await?;
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            // Announcers take turns: the count below holds, and ids become visible in id
            // order, so no stream's cursor passes an id still uncommitted. (SQLite has one
            // writer at a time already.) Readers are not blocked.
            txn.execute_unprepared("LOCK TABLE announcements IN SHARE ROW EXCLUSIVE MODE")
                .await?;
        }
        let now = now_ms();
        let active = announcement::Entity::find()
            .filter(announcement::Column::ExpiresAtMs.gt(now))
            .count(&*txn)
            .await?;
        if active >= MAX_ACTIVE {
            return Err(ApiError::new(
                tonic::Code::ResourceExhausted,
                Reason::LimitReached,
                format!("at most {MAX_ACTIVE} announcements may be active at once"),
            ));
        }
        let inserted = announcement::Entity::insert(announcement::ActiveModel {
            text: Set(text.clone()),
            author_user_id: Set(actor.user_id),
            author: Set(actor.name.clone()),
            created_at_ms: Set(now),
            expires_at_ms: Set(now + lifetime),
            ..Default::default()
        })
        .exec(&*txn)
        .await?;
        let stored = Announcement {
            id: inserted.last_insert_id,
            text,
            sent_at_ms: now,
            expires_at_ms: now + lifetime,
        };
        let entry = Entry {
            actor,
            action: "Announce",
            target: None,
            details: format!(
                "id={} expires_at_ms={} text={:?}",
                stored.id, stored.expires_at_ms, stored.text
            ),
            outcome: audit::OK,
        };
        audit::record(&*txn, entry).await?;
        txn.commit().await?;
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_lifetime_bounds() {
        assert_eq!(text("  hello\nworld ").unwrap(), "hello\nworld");
        for bad in ["", "   ", "a\u{0}b", "a\rb", "tab\there", "evil\u{202E}txt"] {
            assert!(text(bad).is_err(), "{bad:?}");
        }
        assert!(text(&"x".repeat(MAX_TEXT_CHARS)).is_ok());
        assert!(text(&"x".repeat(MAX_TEXT_CHARS + 1)).is_err());
        assert_eq!(lifetime_ms(0).unwrap(), DEFAULT_LIFETIME_SECS * 1000);
        assert_eq!(lifetime_ms(60).unwrap(), 60_000);
        for bad in [59, -1, 30 * 24 * 3600 + 1] {
            assert!(lifetime_ms(bad).is_err(), "{bad}");
        }
    }
}
