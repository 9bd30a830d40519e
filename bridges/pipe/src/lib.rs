//! The pipe protocol bridge (QtQQ clients, TCP 8263).
//!
//! [`codec`] turns one read of client bytes into a typed [`codec::Request`] and typed replies
//! and pushes back into the exact bytes the real server sent; it does no I/O.

pub mod codec;

use rosetta_bridge_kit::{Backend, settings::PipeSettings};
use tokio::net::TcpListener;

/// Serves pipe clients on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    backend: Backend,
    settings: PipeSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    let _ = (listener, backend, settings);
    shutdown.await;
    unimplemented!("pipe session")
}
