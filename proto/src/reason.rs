//! The machine-readable causes of the API's errors.
//!
//! Every error status carries one of these as the `reason` of a `google.rpc.ErrorInfo` detail
//! (domain [`ERROR_DOMAIN`]). Services raise them and bridges read them through this one type,
//! so a misspelt reason is a compile error on either side instead of a silent default reply.

use std::{fmt, str::FromStr};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// The domain `ErrorInfo` details are tagged with.
pub const ERROR_DOMAIN: &str = "rosetta";

macro_rules! reasons {
    ($($(#[doc = $class_doc:literal])* $class:ident {
        $($(#[doc = $doc:literal])* $variant:ident = $text:literal,)*
    })*) => {
        /// Why a call failed; on the wire, the upper-snake-case text of [`Reason::as_str`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($($(#[doc = $doc])* $variant,)*)*
        }

        /// The kinds of reason. A protocol with few words for failure answers by kind, after
        /// the few reasons it names: a reason added to the API then needs no edit there, and a
        /// kind added does not compile until every protocol places it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Class {
            $($(#[doc = $class_doc])* $class,)*
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &[Reason] = &[$($(Reason::$variant,)*)*];

            /// The reason as it travels in `ErrorInfo.reason`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($(Reason::$variant => $text,)*)*
                }
            }

            /// The kind of this reason.
            pub const fn class(self) -> Class {
                match self {
                    $($(Reason::$variant => Class::$class,)*)*
                }
            }
        }

        impl FromStr for Reason {
            type Err = UnknownReason;

            fn from_str(text: &str) -> Result<Self, UnknownReason> {
                match text {
                    $($($text => Ok(Reason::$variant),)*)*
                    _ => Err(UnknownReason),
                }
            }
        }
    };
}

reasons! {
    /// The request is malformed or out of range.
    Input {
        /// A field is missing or out of range (the message says which).
        InvalidArgument = "INVALID_ARGUMENT",
        BadName = "BAD_NAME",
        BadPageToken = "BAD_PAGE_TOKEN",
        BadConversation = "BAD_CONVERSATION",
        BadRecipient = "BAD_RECIPIENT",
        BadKind = "BAD_KIND",
        BadStatus = "BAD_STATUS",
        BadScope = "BAD_SCOPE",
        BadProof = "BAD_PROOF",
        BadOffset = "BAD_OFFSET",
        BadVisibility = "BAD_VISIBILITY",
        BadContentType = "BAD_CONTENT_TYPE",
        BadUpload = "BAD_UPLOAD",
        EmptyMessage = "EMPTY_MESSAGE",
        TooLarge = "TOO_LARGE",
        SizeMismatch = "SIZE_MISMATCH",
        ConversationRequired = "CONVERSATION_REQUIRED",
        RecipientRequired = "RECIPIENT_REQUIRED",
        ClientMessageIdRequired = "CLIENT_MESSAGE_ID_REQUIRED",
        FileIdRequired = "FILE_ID_REQUIRED",
        SignalRequired = "SIGNAL_REQUIRED",
    }
    /// The proof offered (password, code) is wrong or missing.
    Credentials {
        BadCredentials = "BAD_CREDENTIALS",
        CodeRequired = "CODE_REQUIRED",
        CodeInvalid = "CODE_INVALID",
        CodeNotRequested = "CODE_NOT_REQUESTED",
    }
    /// The caller's session is missing or over: log in again.
    Session {
        TokenMissing = "TOKEN_MISSING",
        TokenInvalid = "TOKEN_INVALID",
        TokenExpired = "TOKEN_EXPIRED",
        /// The session was ended (logout, password change, account deleted).
        SessionRevoked = "SESSION_REVOKED",
        RefreshReused = "REFRESH_REUSED",
    }
    /// A name or address already in use.
    Taken {
        UsernameTaken = "USERNAME_TAKEN",
        EmailTaken = "EMAIL_TAKEN",
        PhoneTaken = "PHONE_TAKEN",
        GroupIdTaken = "GROUP_ID_TAKEN",
    }
    /// The caller may not do this.
    Denied {
        Forbidden = "FORBIDDEN",
        NotAllowed = "NOT_ALLOWED",
        NotFriends = "NOT_FRIENDS",
        Blocked = "BLOCKED",
        NotMember = "NOT_MEMBER",
        NotOwner = "NOT_OWNER",
        NotAdmin = "NOT_ADMIN",
        Muted = "MUTED",
        SystemGroup = "SYSTEM_GROUP",
        OwnerCannotLeave = "OWNER_CANNOT_LEAVE",
        RecallWindowPassed = "RECALL_WINDOW_PASSED",
        /// The account was disabled by an operator: no login on any protocol.
        AccountDisabled = "ACCOUNT_DISABLED",
        /// An admin RPC called by an account without the admin role.
        AdminRoleRequired = "ADMIN_ROLE_REQUIRED",
        /// A service-to-service RPC called without the bridge credential.
        BridgeKeyRequired = "BRIDGE_KEY_REQUIRED",
    }
    /// The state of things does not allow the request.
    State {
        NotFound = "NOT_FOUND",
        AlreadyFriends = "ALREADY_FRIENDS",
        AlreadyMember = "ALREADY_MEMBER",
        RequestPending = "REQUEST_PENDING",
        ReverseRequestPending = "REVERSE_REQUEST_PENDING",
        NotPending = "NOT_PENDING",
        Offline = "OFFLINE",
        UploadInterrupted = "UPLOAD_INTERRUPTED",
    }
    /// Too much, too often.
    Limit {
        /// Too many attempts; a `RetryInfo` detail says when to try again.
        Throttled = "THROTTLED",
        RateLimited = "RATE_LIMITED",
        LimitReached = "LIMIT_REACHED",
        QuotaExceeded = "QUOTA_EXCEEDED",
    }
    /// The service failed: nothing is wrong with the request.
    Service {
        /// The service is overloaded or a dependency is down; try again later.
        Unavailable = "UNAVAILABLE",
        /// The server is in maintenance mode (`AdminService/SetMaintenance`): new logins are
        /// refused until an operator ends it; a `RetryInfo` detail suggests when to try again.
        Maintenance = "MAINTENANCE",
        /// An unexpected failure, logged by the service; never carries its cause.
        Internal = "INTERNAL",
    }
}

impl Reason {
    /// The `ErrorInfo` detail that carries this reason.
    pub fn details(self) -> ErrorDetails {
        ErrorDetails::with_error_info(self.as_str(), ERROR_DOMAIN, [])
    }

    /// A status with `code` and `message` carrying this reason, as a service answers.
    pub fn status(self, code: Code, message: impl Into<String>) -> Status {
        Status::with_error_details(code, message, self.details())
    }

    /// The reason of a status produced by a Rosetta service; `None` for statuses without one
    /// (transport failures, deadlines) or with a reason this build does not know.
    pub fn of(status: &Status) -> Option<Self> {
        status
            .get_details_error_info()
            .filter(|info| info.domain == ERROR_DOMAIN)
            .and_then(|info| info.reason.parse().ok())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reason text this build does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownReason;

impl fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown error reason")
    }
}

impl std::error::Error for UnknownReason {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back_from_its_text() {
        for reason in Reason::ALL {
            assert_eq!(reason.as_str().parse(), Ok(*reason));
            assert!(
                reason
                    .as_str()
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{reason} is upper snake case"
            );
        }
        assert_eq!("NO_SUCH_REASON".parse::<Reason>(), Err(UnknownReason));
    }

    #[test]
    fn a_reason_travels_in_its_status() {
        let status = Reason::NotFriends.status(Code::PermissionDenied, "not friends");
        assert_eq!(Reason::of(&status), Some(Reason::NotFriends));
    }

    #[test]
    fn a_status_without_error_info_has_no_reason() {
        assert_eq!(Reason::of(&Status::unavailable("connection refused")), None);
    }
}
