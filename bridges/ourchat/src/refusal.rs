//! How refused calls reach an OurChat client: the one table from canonical error reasons to
//! what the protocol can say ([`refusal`]), and the two forms a failure takes ([`Failure`]).

use rosetta_proto::{Class, Reason};
use tonic::Status;

/// How a request failed: the failure form of its own reply, or an ErrorMsg (18), which only
/// clients that read pushes get.
pub(crate) enum Failure {
    Reply(String),
    ErrorMsg(String),
}

impl From<Status> for Failure {
    /// The ErrorMsg for a refused call, logged (with the step in the frame's span) unless it
    /// is a refusal the client is expected to meet.
    fn from(status: Status) -> Self {
        log(&status, "request refused");
        Failure::ErrorMsg(details(&status))
    }
}

/// What a refused call means in OurChat terms; each command picks its reply from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The e-mail is registered already: register's status 2 ("Email Exist").
    EmailTaken,
    /// No such account or group: a login's status 1, account info's empty `data`, a new
    /// session's "unknown member".
    NotFound,
    /// The request was refused for what it asks (wrong password, throttled, a bad field, not
    /// allowed): the command's status 1 or an ErrorMsg with the reason.
    Refused,
    /// The services failed or could not be reached (no reason: transport, deadline): a
    /// login's status 2 ("server error").
    Outage,
}

/// The one table: every reason a service can give and what it means to an OurChat client.
pub(crate) fn refusal(status: &Status) -> Refusal {
    let Some(reason) = Reason::of(status) else {
        return Refusal::Outage;
    };
    match reason {
        Reason::EmailTaken => Refusal::EmailTaken,
        Reason::NotFound => Refusal::NotFound,
        // A login during maintenance (the client asked SERVER_STATUS before maintenance
        // began): a login's status 2, "server error", the protocol's nearest to "busy".
        Reason::Maintenance => Refusal::Outage,
        other => match other.class() {
            Class::Service => Refusal::Outage,
            Class::Input
            | Class::Credentials
            | Class::Session
            | Class::Taken
            | Class::Denied
            | Class::State
            | Class::Limit => Refusal::Refused,
        },
    }
}

/// Logs a refused call: a failure of the services as a warning, a refusal of the request
/// (which the client is told about) at info.
pub(crate) fn log(status: &Status, what: &'static str) {
    match refusal(status) {
        Refusal::Outage => tracing::warn!(%status, "{what}"),
        Refusal::EmailTaken | Refusal::NotFound | Refusal::Refused => {
            tracing::info!(%status, "{what}")
        }
    }
}

/// ErrorMsg text for a refused call: the service's reason and message.
pub(crate) fn details(status: &Status) -> String {
    match Reason::of(status) {
        Some(reason) => format!("{reason}: {}", status.message()),
        None => status.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(reason: Reason) -> Status {
        reason.status(tonic::Code::FailedPrecondition, "refused")
    }

    #[test]
    fn reasons_map_to_what_the_client_can_be_told() {
        assert_eq!(refusal(&status(Reason::EmailTaken)), Refusal::EmailTaken);
        assert_eq!(refusal(&status(Reason::NotFound)), Refusal::NotFound);
        assert_eq!(refusal(&status(Reason::Throttled)), Refusal::Refused);
        assert_eq!(refusal(&status(Reason::Internal)), Refusal::Outage);
        // A login during maintenance: status 2, "server error".
        assert_eq!(refusal(&status(Reason::Maintenance)), Refusal::Outage);
        assert_eq!(refusal(&Status::unavailable("down")), Refusal::Outage);
        assert_eq!(details(&status(Reason::NotFriends)), "NOT_FRIENDS: refused");
    }
}
