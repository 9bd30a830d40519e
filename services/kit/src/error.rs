//! Domain errors and their single mapping to gRPC statuses.
//!
//! Every error carries a stable machine-readable [`Reason`] that travels to the client as a
//! `google.rpc.ErrorInfo` detail (domain [`ERROR_DOMAIN`]), so bridges can turn it into their
//! protocol's own reply without parsing messages, and a misspelt reason does not compile.

use std::{fmt, time::Duration};

use tonic::{Code, Status};
use tonic_types::StatusExt;

pub use rosetta_proto::{ERROR_DOMAIN, Reason};

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    /// Stable cause, e.g. [`Reason::UsernameTaken`].
    pub reason: Reason,
    pub message: String,
    /// When the caller may try again (throttling).
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(code: Code, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn invalid(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, reason, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, Reason::NotFound, message)
    }

    pub fn exists(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(Code::AlreadyExists, reason, message)
    }

    pub fn denied(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(Code::PermissionDenied, reason, message)
    }

    pub fn unauthenticated(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, reason, message)
    }

    pub fn precondition(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(Code::FailedPrecondition, reason, message)
    }

    /// Too many attempts; the status carries a `RetryInfo` with `retry_after`.
    pub fn throttled(retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                Code::ResourceExhausted,
                Reason::Throttled,
                format!(
                    "too many attempts; retry in {} s",
                    retry_after.as_secs().max(1)
                ),
            )
        }
    }

    /// The server is overloaded or a dependency is down; the caller should try again later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, Reason::Unavailable, message)
    }

    /// The same error with another reason.
    pub fn with_reason(self, reason: Reason) -> Self {
        Self { reason, ..self }
    }

    /// An unexpected failure; the cause is logged here and never sent to the client.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(Code::Internal, Reason::Internal, "internal error")
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.reason, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::internal(err)
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        let mut details = err.reason.details();
        if let Some(delay) = err.retry_after {
            details.set_retry_info(Some(delay));
        }
        Status::with_error_details(err.code, err.message, details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_survives_the_trip_through_a_status() {
        for &reason in Reason::ALL {
            let status = Status::from(ApiError::invalid(reason, "x"));
            assert_eq!(Reason::of(&status), Some(reason));
        }
    }

    #[test]
    fn throttling_carries_retry_info() {
        let status = Status::from(ApiError::throttled(Duration::from_secs(7)));
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(Reason::of(&status), Some(Reason::Throttled));
        let retry = status.get_details_retry_info().expect("RetryInfo");
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(7)));
    }
}
