//! The one table from canonical error reasons to what a DPC client can be told. DPC has few
//! words for failure (a `test` number per auth request, silence on the chat and file servers),
//! so every reason falls into one [`Refusal`] and each server picks its reply from that.

use rosetta_proto::{Class, Reason};
use tonic::Status;

/// What a refused call means in DPC terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown user, wrong password, or too many attempts: the login's `test 1`.
    Credentials,
    /// The user name is taken, or not a valid one: register's "user name exists" (`test 1`),
    /// the client's only dialog for a refused account.
    NameTaken,
    /// The phone number is registered already.
    PhoneTaken,
    /// A field the services refuse (format, length).
    BadInput,
    /// Register without a code sent to that phone first.
    CodeNotRequested,
    /// A wrong or expired verification code.
    CodeWrong,
    /// The lobby group is gone or the user is not in it: join it again.
    NotInLobby,
    /// The session was ended elsewhere: authenticate afresh.
    SessionEnded,
    /// The server is in maintenance: the login's `test 2`, a value the client answers with
    /// no dialog and no window, so the user stays on the login screen and may try later
    /// (`test 1` would tell them their password is wrong).
    Maintenance,
    /// A refusal DPC has no words for (logged where it is converted).
    Other,
    /// No answer from the services (no reason: transport failure, deadline) or a failure on
    /// their side: the connection's usual failure (close without a reply).
    Outage,
}

/// The one table: every reason a service can give, and what it means to a DPC client.
pub fn refusal(status: &Status) -> Refusal {
    let Some(reason) = Reason::of(status) else {
        return Refusal::Outage;
    };
    match reason {
        // A disabled account: the login's refusal, the only one the client shows.
        Reason::BadCredentials
        | Reason::Throttled
        | Reason::RateLimited
        | Reason::AccountDisabled => Refusal::Credentials,
        Reason::Maintenance => Refusal::Maintenance,
        Reason::UsernameTaken | Reason::BadName => Refusal::NameTaken,
        Reason::PhoneTaken => Refusal::PhoneTaken,
        Reason::InvalidArgument | Reason::EmailTaken | Reason::TooLarge | Reason::EmptyMessage => {
            Refusal::BadInput
        }
        Reason::CodeNotRequested | Reason::CodeRequired => Refusal::CodeNotRequested,
        Reason::CodeInvalid => Refusal::CodeWrong,
        Reason::NotFound | Reason::NotMember => Refusal::NotInLobby,
        other => match other.class() {
            Class::Session => Refusal::SessionEnded,
            Class::Service => Refusal::Outage,
            Class::Input
            | Class::Credentials
            | Class::Taken
            | Class::Denied
            | Class::State
            | Class::Limit => Refusal::Other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(reason: Reason) -> Status {
        reason.status(tonic::Code::FailedPrecondition, "refused")
    }

    #[test]
    fn reasons_map_to_the_clients_answers() {
        assert_eq!(refusal(&status(Reason::Throttled)), Refusal::Credentials);
        assert_eq!(
            refusal(&status(Reason::AccountDisabled)),
            Refusal::Credentials
        );
        assert_eq!(refusal(&status(Reason::UsernameTaken)), Refusal::NameTaken);
        assert_eq!(refusal(&status(Reason::Maintenance)), Refusal::Maintenance);
        assert_eq!(refusal(&status(Reason::CodeInvalid)), Refusal::CodeWrong);
        assert_eq!(refusal(&status(Reason::NotMember)), Refusal::NotInLobby);
        assert_eq!(
            refusal(&status(Reason::SessionRevoked)),
            Refusal::SessionEnded
        );
        assert_eq!(refusal(&Status::unavailable("down")), Refusal::Outage);
        for reason in Reason::ALL {
            let _ = refusal(&status(*reason));
        }
    }
}
