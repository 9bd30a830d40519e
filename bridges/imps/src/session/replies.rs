//! The one table from why a canonical call failed to what the IMPS client is told.
//!
//! The client knows seven error codes (imps.md §4.13); every [`Reason`] the services give maps
//! to one of them here, exhaustively, so a new reason is a compile error until it is placed.

use rosetta_proto::Reason;
use tonic::Status;

use crate::codec::error;

/// What a refusal becomes on the wire, and whether it is worth a warning in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Refusal {
    /// The `S_ERROR` code.
    pub code: i32,
    /// A refusal the services give in their ordinary course (a wrong password, a name taken,
    /// a stranger): logged at info. Otherwise something broke (a service down, a deadline, an
    /// internal failure): logged as a warning with its cause.
    pub expected: bool,
}

const fn domain(code: i32) -> Refusal {
    Refusal {
        code,
        expected: true,
    }
}

const fn failure(code: i32) -> Refusal {
    Refusal {
        code,
        expected: false,
    }
}

/// The IMPS reply for a refusal's reason (`None`: no reason, i.e. a transport failure or a
/// deadline).
pub(super) fn refusal(reason: Option<Reason>) -> Refusal {
    use Reason as R;
    let Some(reason) = reason else {
        return failure(error::NOT_ALLOWED);
    };
    match reason {
        R::UsernameTaken => domain(error::USER_EXISTS),
        R::NotFound => domain(error::NO_SUCH_USER),
        R::Offline => domain(error::OFFLINE),
        // The legacy server answered a refused login with 6 whatever the cause.
        R::BadCredentials | R::Throttled => domain(error::BAD_CREDENTIALS),
        // The login's session ended under it: as the client understands being logged out.
        R::SessionRevoked
        | R::TokenMissing
        | R::TokenInvalid
        | R::TokenExpired
        | R::RefreshReused => domain(error::ELSEWHERE),
        R::InvalidArgument
        | R::BadName
        | R::BadPageToken
        | R::BadConversation
        | R::BadRecipient
        | R::BadKind
        | R::BadStatus
        | R::BadScope
        | R::BadProof
        | R::BadOffset
        | R::BadVisibility
        | R::BadContentType
        | R::BadUpload
        | R::EmptyMessage
        | R::TooLarge
        | R::SizeMismatch
        | R::ConversationRequired
        | R::RecipientRequired
        | R::ClientMessageIdRequired
        | R::FileIdRequired
        | R::SignalRequired
        | R::CodeRequired
        | R::CodeInvalid
        | R::CodeNotRequested
        | R::EmailTaken
        | R::PhoneTaken
        | R::GroupIdTaken
        | R::Forbidden
        | R::NotAllowed
        | R::NotFriends
        | R::Blocked
        | R::NotMember
        | R::NotOwner
        | R::NotAdmin
        | R::Muted
        | R::SystemGroup
        | R::OwnerCannotLeave
        | R::RecallWindowPassed
        | R::AlreadyFriends
        | R::AlreadyMember
        | R::RequestPending
        | R::ReverseRequestPending
        | R::NotPending
        | R::UploadInterrupted
        | R::RateLimited
        | R::LimitReached
        | R::QuotaExceeded => domain(error::NOT_ALLOWED),
        R::Unavailable | R::Internal => failure(error::NOT_ALLOWED),
    }
}

/// Logs a refused call with the user and the step (a warning when something broke) and
/// returns the code the client is told, if it is told anything.
/// `user` is the user's id, or the name they gave before they are logged in.
pub(super) fn refused(user: impl std::fmt::Display, step: &'static str, status: &Status) -> i32 {
    let refusal = refusal(Reason::of(status));
    if refusal.expected {
        tracing::info!(%user, %status, "{step} refused");
    } else {
        tracing::warn!(%user, %status, "{step} failed");
    }
    refusal.code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_code_the_client_knows() {
        for reason in Reason::ALL {
            let code = refusal(Some(*reason)).code;
            assert!((1..=7).contains(&code), "{reason}: {code}");
        }
        assert_eq!(
            refusal(Some(Reason::UsernameTaken)).code,
            error::USER_EXISTS
        );
        assert_eq!(refusal(Some(Reason::Offline)).code, error::OFFLINE);
        assert!(!refusal(None).expected && !refusal(Some(Reason::Internal)).expected);
    }
}
