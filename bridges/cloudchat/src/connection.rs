//! One TCP connection on the bridge's port, admitted by the kit's accept loop: HTTP/1.1
//! requests (each one answered on its own) until the client closes, the header timeout runs
//! out on a request head, the connection is told to end, or a request upgrades it. An upgraded
//! connection is then served as a WebSocket by the same task.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use rosetta_bridge_kit::Connections;
use tokio::net::TcpStream;
use tower::ServiceExt as _;

use crate::{Shared, session, upgrade};

/// Serves `stream` until it closes or `conns.closing` is cancelled (then requests in flight
/// are answered, and a WebSocket ends its login, before it returns).
pub(crate) async fn serve(
    app: Router,
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    conns: Connections,
    header_timeout: Duration,
) {
    // A request extension: where an upgrade request leaves its upgrade for this task.
    let pending = upgrade::Pending::default();
    let upgrading = pending.clone();
    let service = service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(upgrading.clone());
        app.clone().oneshot(request.map(Body::new))
    });
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new());
    http.header_read_timeout((!header_timeout.is_zero()).then_some(header_timeout));
    let mut connection = Box::pin(
        http.serve_connection(TokioIo::new(stream), service)
            .with_upgrades(),
    );
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = conns.closing.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.as_mut().await
        }
    };
    if let Err(err) = served {
        tracing::debug!(%err, "connection ended");
    }
    // The HTTP connection's buffers and service go; an upgraded socket is handed over.
    drop(connection);
    let Some(upgrading) = pending.take() else {
        return;
    };
    match upgrading.await {
        Ok(upgraded) => {
            let socket = upgrade::open(upgraded).await;
            Box::pin(session::websocket(shared, socket, peer.ip(), conns)).await;
        }
        Err(err) => tracing::debug!(%err, "upgrade failed"),
    }
}
