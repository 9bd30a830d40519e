//! The one table from why a canonical call failed to what the IMPS client is told.
//!
//! The client knows seven error codes (imps.md §4.13); every [`Reason`] the services give maps
//! to one of them here: the reasons it names, then the rest by [`Class`], exhaustively, so a new
//! class is a compile error until it is placed.

use rosetta_proto::{Class, Reason};
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
        // The legacy server answered a refused login with 6 whatever the cause; a disabled
        // account is a refused login.
        R::BadCredentials | R::Throttled | R::AccountDisabled => domain(error::BAD_CREDENTIALS),
        // Maintenance: "user state does not allow the operation", the nearest the client
        // has to "server busy"; like every error on the login screen it shows a dialog and
        // reconnects.
        R::Maintenance => domain(error::NOT_ALLOWED),
        other => match other.class() {
            // The login's session ended under it: as the client understands being logged out.
            Class::Session => domain(error::ELSEWHERE),
            Class::Service => failure(error::NOT_ALLOWED),
            Class::Input
            | Class::Credentials
            | Class::Taken
            | Class::Denied
            | Class::State
            | Class::Limit => domain(error::NOT_ALLOWED),
        },
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
        assert_eq!(
            refusal(Some(Reason::AccountDisabled)).code,
            error::BAD_CREDENTIALS
        );
        let maintenance = refusal(Some(Reason::Maintenance));
        assert_eq!(maintenance.code, error::NOT_ALLOWED);
        assert!(
            maintenance.expected,
            "maintenance is no failure to warn about"
        );
        assert!(!refusal(None).expected && !refusal(Some(Reason::Internal)).expected);
    }
}
