//! The WebSocket handshake (RFC 6455 §4.2) on the bridge's HTTP port. A request that asks to
//! upgrade is answered `101 Switching Protocols` and leaves hyper's upgrade handle with its
//! connection, whose task then serves the WebSocket itself (see [`crate::connection`]): one
//! task per client, tracked by the accept loop, and no second task or span per WebSocket.

use std::sync::{Arc, Mutex, PoisonError};

use axum::{
    http::{HeaderMap, HeaderName, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};

use crate::codec;

/// A WebSocket of this bridge.
pub(crate) type WebSocket = WebSocketStream<TokioIo<Upgraded>>;

/// Where the request that upgrades its connection leaves the upgrade for the connection's
/// task. Shared by the connection's requests; one upgrade at most, since the connection ends
/// with it.
#[derive(Clone, Default)]
pub(crate) struct Pending(Arc<Mutex<Option<OnUpgrade>>>);

impl Pending {
    /// The upgrade a request left, if any.
    pub(crate) fn take(&self) -> Option<OnUpgrade> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn put(&self, upgrade: OnUpgrade) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(upgrade);
    }
}

/// Answers an upgrade request: `101` with the accept key, the upgrade left in `pending`; or
/// the refusal axum's extractor gave (405 for another method than GET, 400 for a missing or
/// wrong header, 426 when the connection cannot be upgraded).
pub(crate) fn accept(parts: &mut Parts, pending: &Pending) -> Response {
    if parts.method != Method::GET {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            "Request method must be `GET`",
        )
            .into_response();
    }
    let headers = &parts.headers;
    let refusal = if !has_token(headers, header::CONNECTION, "upgrade") {
        Some("Connection header did not include 'upgrade'")
    } else if !is(headers, header::UPGRADE, "websocket") {
        Some("`Upgrade` header did not include 'websocket'")
    } else if !is(headers, header::SEC_WEBSOCKET_VERSION, "13") {
        Some("`Sec-WebSocket-Version` header did not include '13'")
    } else {
        None
    };
    if let Some(refusal) = refusal {
        return (StatusCode::BAD_REQUEST, refusal).into_response();
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return (
            StatusCode::BAD_REQUEST,
            "`Sec-WebSocket-Key` header missing",
        )
            .into_response();
    };
    let accept = derive_accept_key(key.as_bytes());
    let Some(upgrade) = parts.extensions.remove::<OnUpgrade>() else {
        return (
            StatusCode::UPGRADE_REQUIRED,
            "WebSocket request couldn't be upgraded since no upgrade state was present",
        )
            .into_response();
    };
    pending.put(upgrade);
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(axum::body::Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The WebSocket over an upgraded connection.
pub(crate) async fn open(upgraded: Upgraded) -> WebSocket {
    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config())).await
}

/// Small buffers: connections are many and mostly idle (128 KiB defaults made a held
/// WebSocket cost ~157 KiB of the bridge's memory); the read buffer is also the size of each
/// read, and a larger frame grows it as it arrives. The write buffer stays uncapped: a reply
/// is queued whole before it is written, and a history (MESSAGES_LOADED) can be many MiB; a
/// cap below that dropped the connection.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(Some(codec::MAX_MESSAGE))
        .max_frame_size(Some(codec::MAX_MESSAGE))
}

/// Whether the comma-separated header `name` has `token` (any case).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Whether header `name` is `value` (any case).
fn is(headers: &HeaderMap, name: HeaderName, value: &str) -> bool {
    headers
        .get(name)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(method: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::builder().method(method).uri("/");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).expect("request").into_parts().0
    }

    const GOOD: [(&str, &str); 4] = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    /// The refusals of a malformed handshake; a well-formed one gets as far as the upgrade
    /// state, which only a served connection has (the 101 itself is met by every WebSocket
    /// test of the crate, whose client checks the accept key).
    #[test]
    fn a_handshake_is_checked_before_the_upgrade() {
        let status = |method, headers: &[(&str, &str)]| {
            let pending = Pending::default();
            let status = accept(&mut parts(method, headers), &pending).status();
            assert!(pending.take().is_none(), "nothing pending after {status}");
            status
        };
        assert_eq!(status("POST", &GOOD), StatusCode::METHOD_NOT_ALLOWED);
        for missing in 0..GOOD.len() {
            let mut headers = GOOD.to_vec();
            headers.remove(missing);
            assert_eq!(
                status("GET", &headers),
                StatusCode::BAD_REQUEST,
                "{missing}"
            );
        }
        let mut old = GOOD.to_vec();
        old[2] = ("sec-websocket-version", "8");
        assert_eq!(status("GET", &old), StatusCode::BAD_REQUEST);
        assert_eq!(status("GET", &GOOD), StatusCode::UPGRADE_REQUIRED);
    }
}
