//! The IMPS protocol bridge (SysOfIMPS Android clients, TCP 1200).
//!
//! [`codec`] reassembles frames from the byte stream (a `tokio_util` codec) and turns them into
//! typed messages and back, byte for byte as the real client reads and writes them. The session
//! (one task per connection) turns those messages into calls to the canonical services and the
//! logged-in user's `Subscribe` events into the client's pushes.

pub mod codec;
mod names;
mod session;

use std::sync::Arc;

use rosetta_bridge_kit::{Backend, Listening, Refusal, serve_tcp, settings::ImpsSettings};
use tokio::net::TcpListener;

pub use names::{alias_id, display_name};

/// Serves imps clients on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    backend: Backend,
    settings: ImpsSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    // The error frame (S_ERROR) is dialect-specific and the login screen answers any error by
    // reconnecting at once; a close before the first frame is what the client handles best.
    let listening = Listening::new("imps", listener, settings.limits, Refusal::Close)
        .reported_on(backend.board());
    let shared = Arc::new(session::Shared::new(backend, &settings));
    serve_tcp(listening, shutdown, move |stream, peer, conns| {
        session::run(shared.clone(), stream, peer, conns)
    })
    .await;
}
