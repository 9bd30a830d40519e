//! Server side of trace propagation: each incoming call gets a span whose parent is the
//! caller's span, read from the W3C `traceparent`/`tracestate` metadata the bridges' clients
//! write, so a legacy frame, the calls it causes in other processes and their SQL form one
//! trace. The propagator is the process-wide one (installed with the telemetry).

use opentelemetry::propagation::Extractor;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The span of one incoming gRPC call, a child of the caller's span when the request carries
/// a trace context (and a root otherwise). Named after the method, as OpenTelemetry's RPC
/// conventions ask (`package.Service/Method`).
pub fn server_span(request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path();
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("", ""));
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    // Fails only when the span is disabled (filtered out or no OpenTelemetry layer): then
    // there is nothing to link.
    let _ = span.set_parent(parent);
    span
}

/// Reads propagation fields from HTTP/2 headers (gRPC metadata).
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_trace_headers_and_ignores_non_ascii() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            http::HeaderValue::from_static(
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
        );
        headers.insert(
            "tracestate",
            http::HeaderValue::from_bytes(b"\xffbad").expect("opaque bytes are a valid value"),
        );
        let extractor = HeaderExtractor(&headers);
        assert_eq!(
            extractor.get("traceparent"),
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        );
        assert_eq!(extractor.get("tracestate"), None);
        assert_eq!(extractor.get("missing"), None);
        let mut keys = extractor.keys();
        keys.sort_unstable();
        assert_eq!(keys, ["traceparent", "tracestate"]);
    }
}
