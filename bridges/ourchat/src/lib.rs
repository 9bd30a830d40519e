//! The OurChat protocol bridge (PyQt clients, WebSocket 7777).
//!
//! [`codec`] turns one text frame into a typed request, accepting both the real client's form
//! and the seed document's, and builds the replies the client reads.

pub mod codec;

use rosetta_bridge_kit::{Backend, settings::OurChatSettings};
use tokio::net::TcpListener;

/// Serves ourchat clients on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    backend: Backend,
    settings: OurChatSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    let _ = (listener, backend, settings);
    shutdown.await;
    unimplemented!("ourchat session")
}
