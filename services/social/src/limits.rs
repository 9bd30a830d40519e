//! Limits of the social graph and the validation of free-text input. Every refusal here is
//! `LIMIT_REACHED` (resource exhausted) or `INVALID_ARGUMENT`.

use rosetta_kit::{ApiError, ApiResult, Reason};
use tonic::Code;

/// Friends one user may have.
pub const MAX_FRIENDS: u64 = 5_000;
/// Friend requests one user may have pending (sent, unanswered).
pub const MAX_PENDING_FRIEND_REQUESTS: u64 = 1_000;
/// Members of one group, owner included.
pub const MAX_GROUP_MEMBERS: u64 = 2_000;
/// Join requests one user may have pending.
pub const MAX_PENDING_JOIN_REQUESTS: u64 = 100;
/// Group invitations one user may have waiting for their answer.
pub const MAX_PENDING_GROUP_INVITATIONS: u64 = 100;
/// Group invitations one user may have sent that are still unanswered.
pub const MAX_SENT_GROUP_INVITATIONS: u64 = 1_000;
/// Groups one user may create per hour, unless configured otherwise.
pub const DEFAULT_GROUPS_PER_HOUR: u64 = 20;
/// Characters of a friend or join request note.
pub const MAX_NOTE_CHARS: usize = 512;
/// Characters of a group name.
pub const MAX_GROUP_NAME_CHARS: usize = 64;
/// Characters of a public group slug.
pub const MAX_SLUG_CHARS: usize = 64;

/// What a deployment may tune.
#[derive(Debug, Clone)]
pub struct SocialConfig {
    /// Slugs of the system-owned public groups JoinPublicGroup may create (an existing one
    /// can always be joined). Every other slug is NOT_FOUND, so users cannot mint public
    /// groups without bound.
    pub public_slugs: Vec<String>,
    /// Groups one user may create per rolling hour (CreateGroup); past it LIMIT_REACHED.
    pub groups_per_hour: u64,
}

impl Default for SocialConfig {
    fn default() -> Self {
        Self {
            public_slugs: vec!["dpc-lobby".into()],
            groups_per_hour: DEFAULT_GROUPS_PER_HOUR,
        }
    }
}

pub(crate) fn limit_reached(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::ResourceExhausted, Reason::LimitReached, message)
}

pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid(Reason::InvalidArgument, message)
}

pub(crate) fn note(text: &str) -> ApiResult<String> {
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(invalid(format!(
            "note is longer than {MAX_NOTE_CHARS} characters"
        )));
    }
    Ok(text.to_owned())
}

pub(crate) fn group_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    let chars = name.chars().count();
    // Bidirectional controls would reorder the text around the name in members' windows.
    let printable = !name
        .chars()
        .any(|c| c.is_control() || rosetta_kit::text::is_bidi_control(c));
    if chars == 0 || chars > MAX_GROUP_NAME_CHARS || !printable {
        return Err(invalid(format!(
            "group name must be 1 to {MAX_GROUP_NAME_CHARS} printable characters, without \
             bidirectional controls"
        )));
    }
    Ok(name.to_owned())
}

pub(crate) fn slug(slug: &str) -> ApiResult<String> {
    let ok = (1..=MAX_SLUG_CHARS).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(invalid(format!(
            "slug must be 1 to {MAX_SLUG_CHARS} lowercase letters, digits or '-'"
        )));
    }
    Ok(slug.to_owned())
}

/// Refuses `count + adding` when it passes `max`.
pub(crate) fn within(count: u64, adding: u64, max: u64, what: &str) -> ApiResult<()> {
    if count.saturating_add(adding) > max {
        return Err(limit_reached(format!("at most {max} {what}")));
    }
    Ok(())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn validates_text() {
        assert!(note(&"é".repeat(512)).is_ok());
        assert_eq!(
            note(&"x".repeat(513)).unwrap_err().reason,
            Reason::InvalidArgument
        );
        assert_eq!(group_name("  Team  ").unwrap(), "Team");
        assert!(group_name("").is_err());
        assert!(group_name(&"x".repeat(65)).is_err());
        assert!(slug("dpc-lobby").is_ok());
        assert!(slug("DPC").is_err());
        assert!(slug("").is_err());
        assert!(within(4_999, 1, MAX_FRIENDS, "friends").is_ok());
        assert_eq!(
            within(5_000, 1, MAX_FRIENDS, "friends").unwrap_err().reason,
            Reason::LimitReached
        );
    }
}
