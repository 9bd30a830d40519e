//! The DPC protocol bridge (tkinter clients; auth 9999, chat 9998, file 9988).
//!
//! [`codec`] holds the framing, the Python-exact JSON writer and the typed requests and
//! replies of all three servers; it does no I/O.

pub mod codec;

use rosetta_bridge_kit::{Backend, settings::DpcSettings};
use tokio::net::TcpListener;

/// The three servers' listeners.
pub struct Listeners {
    pub auth: TcpListener,
    pub chat: TcpListener,
    pub file: TcpListener,
}

/// Serves DPC clients on the three listeners until `shutdown` completes.
pub async fn serve(
    listeners: Listeners,
    backend: Backend,
    settings: DpcSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    let _ = (listeners, backend, settings);
    shutdown.await;
    unimplemented!("dpc session")
}
