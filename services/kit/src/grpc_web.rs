//! Browsers on the gRPC listener: gRPC-Web (tonic-web translates it to gRPC in front of the
//! routes, over HTTP/1.1 and HTTP/2) and the CORS policy that decides which web pages may call.
//!
//! A page may call only from an origin on the allowed list: any other origin gets no CORS
//! headers, preflight or not, so the browser refuses to hand the answer to the page. Callers
//! that are not browsers send no `Origin` and are not affected.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, header::InvalidHeaderValue};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Request headers a gRPC-Web page sends (Connect-ES and grpc-web clients, plus the bearer
/// token and trace context).
const REQUEST_HEADERS: [&str; 9] = [
    "content-type",
    "authorization",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
    "traceparent",
    "tracestate",
];

/// Response headers the page must read: a call refused at once carries its status in the
/// headers (trailers-only), not in the body's trailer frame.
const RESPONSE_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// How long a browser may reuse a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The web origins allowed to call, e.g. `http://127.0.0.1:8080`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<HeaderValue>);

impl AllowedOrigins {
    /// Origins as a browser sends them (`scheme://host[:port]`, no path); none allows no page.
    pub fn new<S: AsRef<str>>(
        origins: impl IntoIterator<Item = S>,
    ) -> Result<Self, InvalidHeaderValue> {
        origins
            .into_iter()
            .map(|origin| HeaderValue::from_str(origin.as_ref().trim_end_matches('/')))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// The CORS layer answering preflights and marking answers for these origins only.
    pub fn cors(&self) -> CorsLayer {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(self.0.iter().cloned()))
            .allow_methods([Method::POST])
            .allow_headers(REQUEST_HEADERS.map(HeaderName::from_static))
            .expose_headers(RESPONSE_HEADERS.map(HeaderName::from_static))
            .max_age(PREFLIGHT_MAX_AGE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_taken_without_a_trailing_slash() {
        let origins = AllowedOrigins::new(["http://localhost:8080/"]).expect("valid");
        assert_eq!(
            origins.0,
            [HeaderValue::from_static("http://localhost:8080")]
        );
        assert!(AllowedOrigins::new(["http://bad\norigin"]).is_err());
    }
}
