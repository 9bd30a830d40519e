//! Which user names and nicknames an account may take. Some name forms belong to the system:
//! a user holding one would break or capture what the system does with it.

use rosetta_kit::{ApiError, ApiResult, Reason, text::is_bidi_control};

/// Names of the system's own voices (announcements, operators) that nobody may pose as.
/// `system` ([`rosetta_proto::system::NAME`]) is the sender IMPS and DPC clients see on
/// announcements; pipe and CloudChat show user id 0 and OurChat the reserved ocid, neither
/// of which an account can get (ids start at 1, the ocid is never drawn).
const SYSTEM_NAMES: &[&str] = &[
    rosetta_proto::system::NAME,
    "admin",
    "administrator",
    "root",
    "rosetta",
    "support",
    "postmaster",
];

/// Prefixes of names the system generates:
/// - `deleted-` — DeleteAccount renames the account to `deleted-<id>`; a user holding that
///   name would make the deletion fail.
/// - `#` — the IMPS bridge shows a user whose name GB2312 cannot hold as `#<id>` and takes
///   the alias back wherever a name goes; a user named `#153` would receive what IMPS clients
///   send to user 153.
///
/// The other bridges name users by numeric id (pipe, CloudChat) or ocid (OurChat) through
/// lookups of their own kind, never by user name, so no other form needs reserving (their
/// system identities are reserved where ids and ocids are drawn).
const SYSTEM_PREFIXES: &[&str] = &["deleted-", "#"];

/// Characters of a nickname.
const MAX_NICKNAME_CHARS: usize = 64;

/// A user name as chosen at registration or rename: 1 to 64 characters without whitespace,
/// control or bidirectional control characters or '|' (the pipe protocol's separator), and
/// not a reserved form. A reserved name is refused as taken (by the system), so every legacy
/// client shows its "name taken" answer.
pub(crate) fn username(name: &str) -> ApiResult<String> {
    let ok = (1..=64).contains(&name.chars().count())
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || is_bidi_control(c) || c == '|');
    if !ok {
        return Err(ApiError::invalid(
            Reason::InvalidArgument,
            "user name must be 1 to 64 characters without spaces, control or \
             bidirectional control characters or '|'",
        ));
    }
    if is_reserved(name) {
        return Err(ApiError::exists(
            Reason::UsernameTaken,
            "user name is reserved for the system",
        ));
    }
    Ok(name.to_owned())
}

fn is_reserved(name: &str) -> bool {
    let lower = name.to_lowercase();
    SYSTEM_NAMES.contains(&lower.as_str()) || SYSTEM_PREFIXES.iter().any(|p| lower.starts_with(p))
}

/// A display name: at most 64 characters, no bidirectional controls (they would reorder the
/// text around the name in other users' chat windows).
pub(crate) fn nickname(nickname: &str) -> ApiResult<String> {
    if nickname.chars().count() > MAX_NICKNAME_CHARS {
        return Err(ApiError::invalid(
            Reason::InvalidArgument,
            format!("nickname longer than {MAX_NICKNAME_CHARS} characters"),
        ));
    }
    if nickname.chars().any(is_bidi_control) {
        return Err(ApiError::invalid(
            Reason::InvalidArgument,
            "nickname cannot contain bidirectional control characters",
        ));
    }
    Ok(nickname.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_forms() {
        for name in [
            "deleted-7",
            "DELETED-x",
            "#153",
            "#",
            "System",
            "ADMIN",
            "rosetta",
        ] {
            let err = username(name).unwrap_err();
            assert_eq!(err.reason, Reason::UsernameTaken, "{name}");
        }
        for name in ["deleted", "c#", "admins", "小明", "smile😀", "a.b-c_d"] {
            assert_eq!(username(name).unwrap(), name);
        }
    }

    #[test]
    fn bad_characters() {
        for name in ["", "a b", "a|b", "a\u{202E}b", "a\u{200F}", "a\tb"] {
            assert_eq!(
                username(name).unwrap_err().reason,
                Reason::InvalidArgument,
                "{name:?}"
            );
        }
        assert!(nickname("Alice \u{1F600}").is_ok());
        assert!(nickname("evil\u{202E}gpj.exe").is_err());
        assert!(nickname(&"n".repeat(65)).is_err());
    }
}
