//! Domain errors and their single mapping to gRPC statuses.
//!
//! Every error carries a stable machine-readable `reason` that travels to the client as a
//! `google.rpc.ErrorInfo` detail (domain `rosetta`), so bridges can turn it into their
//! protocol's own reply without parsing messages.

use std::{fmt, time::Duration};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The domain `ErrorInfo` details are tagged with.
pub const ERROR_DOMAIN: &str = "rosetta";

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    /// Stable, upper-snake-case cause, e.g. `USERNAME_TAKEN`.
    pub reason: &'static str,
    pub message: String,
    /// When the caller may try again (throttling).
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(code: Code, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn invalid(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, reason, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, "NOT_FOUND", message)
    }

    pub fn exists(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::AlreadyExists, reason, message)
    }

    pub fn denied(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::PermissionDenied, reason, message)
    }

    pub fn unauthenticated(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, reason, message)
    }

    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::FailedPrecondition, reason, message)
    }

    pub fn throttled(retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                Code::ResourceExhausted,
                "THROTTLED",
                format!(
                    "too many attempts; retry in {} s",
                    retry_after.as_secs().max(1)
                ),
            )
        }
    }

    /// The same error with another reason.
    pub fn with_reason(self, reason: &'static str) -> Self {
        Self { reason, ..self }
    }

    /// An unexpected failure; the cause is logged here and never sent to the client.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(Code::Internal, "INTERNAL", "internal error")
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
        let mut details = ErrorDetails::with_error_info(err.reason, ERROR_DOMAIN, []);
        if let Some(delay) = err.retry_after {
            details.set_retry_info(Some(delay));
        }
        Status::with_error_details(err.code, err.message, details)
    }
}

/// The `ErrorInfo` reason of a status produced by [`ApiError`], for clients of the API.
pub fn reason_of(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|info| info.reason)
}
