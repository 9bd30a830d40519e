//! The pipe protocol bridge (QtQQ clients, TCP 8263).
//!
//! [`codec`] turns one read of client bytes into a typed [`codec::Request`] and typed replies
//! and pushes back into the exact bytes the real server sent; it does no I/O. The session
//! (one task per connection, which also writes its replies and pushes) turns requests into
//! calls on the canonical services and the logged-in user's events into the protocol's pushes.

pub mod codec;
mod events;
mod session;

use std::sync::Arc;

use rosetta_bridge_kit::{Backend, Listening, Refusal, serve_tcp, settings::PipeSettings};
use tokio::net::TcpListener;

/// Serves pipe clients on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    backend: Backend,
    settings: PipeSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    let listening =
        Listening::new("pipe", listener, settings.limits, REFUSAL).reported_on(backend.board());
    let shared = Arc::new(session::Shared::new(backend, &settings));
    serve_tcp(listening, shutdown, move |stream, peer, conns| {
        session::run(shared.clone(), stream, peer, conns)
    })
    .await;
}

/// What a connection over a cap gets before the close: the protocol has no "server full",
/// and the client shows this reply (the real server's "login failed") whenever it arrives,
/// so the user sees why the login did not go through.
pub const REFUSAL: Refusal = Refusal::Reply("login_error|登录失败！".as_bytes());
