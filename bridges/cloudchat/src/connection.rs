//! One TCP connection on the bridge's port, admitted by the kit's accept loop: HTTP/1.1
//! requests (each one answered on its own, or upgraded to a WebSocket) until the client
//! closes, the header timeout runs out on a request head, or the connection is told to end.
//! The connection's slot is held until its WebSocket, if any, has ended too.

use std::{net::SocketAddr, time::Duration};

use axum::{Router, body::Body, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use rosetta_bridge_kit::Connections;
use tokio::{net::TcpStream, sync::mpsc};
use tower::ServiceExt as _;

/// What a request handler learns of its connection (a request extension).
#[derive(Clone)]
pub(crate) struct Scope {
    pub(crate) conns: Connections,
    /// Held by the connection's WebSocket session while it runs; the connection returns
    /// once every copy has dropped.
    pub(crate) held: mpsc::Sender<()>,
}

/// Serves `stream` until it closes or `conns.closing` is cancelled (then requests in flight
/// are answered, and an open WebSocket ends its login, before it returns).
pub(crate) async fn serve(
    app: Router,
    stream: TcpStream,
    peer: SocketAddr,
    conns: Connections,
    header_timeout: Duration,
) {
    // Even if this task is dropped (the bridge's shutdown bound ran out), the WebSocket
    // session, which runs in its own task, is told to end.
    let _ending = conns.closing.clone().drop_guard();
    let (held, mut released) = mpsc::channel::<()>(1);
    let scope = Scope {
        conns: conns.clone(),
        held,
    };
    let service = service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(scope.clone());
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
    // The service (and the scope it holds) goes with the connection: what is left is the
    // WebSocket's, if the connection was upgraded.
    drop(connection);
    let _ = released.recv().await;
}
