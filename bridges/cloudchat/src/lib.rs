//! The CloudChat protocol bridge (Angular and HarmonyOS clients, WebSocket + HTTP 14514).
//!
//! [`codec`] turns one message (a WebSocket text frame or an HTTP body) into a typed request
//! and builds every reply and push with the key names the clients read; [`session`] turns
//! requests into canonical calls. One port serves both: an `Upgrade` request becomes a
//! WebSocket connection, anything else is one request/reply over HTTP.

pub mod codec;
mod connection;
mod http_sessions;
mod session;
mod upgrade;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Extension, Router,
    body::{Body, to_bytes},
    extract::{ConnectInfo, Request, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use rosetta_bridge_kit::{
    Backend, Counters, HTTP_UNAVAILABLE, Listening, serve_tcp, settings::CloudChatSettings,
};
use tokio::net::TcpListener;

use crate::{
    http_sessions::HttpSessions,
    session::{Conn, Outcome},
};

const BRIDGE: &str = "cloudchat";

/// The body the real server gave an HTTP request it could not parse.
const ILLEGAL: &str = "Illegal message received.";

/// What every connection of one bridge instance shares.
pub(crate) struct Shared {
    backend: Backend,
    counters: Counters,
    /// HTTP logins by client address (empty unless `http_sessions` is on).
    http: HttpSessions,
    online: rosetta_bridge_kit::LiveLogins,
    sockets: session::Sockets,
}

/// Serves cloudchat clients on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    backend: Backend,
    settings: CloudChatSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    // The listener is already bound to `settings.listen`.
    let board = backend.board().clone();
    let shared = Arc::new(Shared {
        backend,
        counters: Counters::new(BRIDGE),
        http: HttpSessions::new(&settings),
        online: rosetta_bridge_kit::LiveLogins::reported(BRIDGE, &board),
        sockets: Mutex::new(HashMap::new()),
    });
    let app = Router::new().fallback(entry).with_state(shared.clone());
    let header_timeout = Duration::from_millis(settings.limits.header_timeout_ms);
    // Over a cap: 503, which both clients read as a failed request or WebSocket connect (and
    // retry: the web client reconnects after 5 s, the HarmonyOS one every 3 s).
    let listening =
        Listening::new(BRIDGE, listener, settings.limits, HTTP_UNAVAILABLE).reported_on(&board);
    serve_tcp(listening, shutdown, move |stream, peer, conns| {
        connection::serve(
            app.clone(),
            shared.clone(),
            stream,
            peer,
            conns,
            header_timeout,
        )
    })
    .await;
}

/// Any method, any path: a WebSocket upgrade or one HTTP request.
async fn entry(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(pending): Extension<upgrade::Pending>,
    request: Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    if parts.headers.contains_key(header::UPGRADE) {
        return upgrade::accept(&mut parts, &pending);
    }
    let Ok(bytes) = to_bytes(body, codec::MAX_MESSAGE).await else {
        shared.counters.error("HTTP");
        return (StatusCode::BAD_REQUEST, ILLEGAL).into_response();
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        shared.counters.error("HTTP");
        return (StatusCode::BAD_REQUEST, ILLEGAL).into_response();
    };
    let mut conn = Conn::http(shared.clone(), peer.ip());
    match conn.on_message(text).await {
        Outcome::Illegal => (StatusCode::BAD_REQUEST, ILLEGAL).into_response(),
        Outcome::Replies(replies) => match replies.into_iter().next() {
            Some((_, json)) => Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
            None => StatusCode::OK.into_response(),
        },
    }
}
