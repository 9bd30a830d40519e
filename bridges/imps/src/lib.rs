//! The IMPS protocol bridge (SysOfIMPS Android clients, TCP 1200).
//!
//! [`codec`] reassembles frames from the byte stream (a `tokio_util` codec) and turns them into
//! typed messages and back, byte for byte as the real client reads and writes them.

pub mod codec;

use rosetta_bridge_kit::{Backend, settings::ImpsSettings};
use tokio::net::TcpListener;

/// Serves imps clients on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    backend: Backend,
    settings: ImpsSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    let _ = (listener, backend, settings);
    shutdown.await;
    unimplemented!("imps session")
}
