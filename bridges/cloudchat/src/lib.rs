//! The CloudChat protocol bridge (Angular and HarmonyOS clients, WebSocket + HTTP 14514).
//!
//! [`codec`] turns one message (a WebSocket text frame or an HTTP body) into a typed request
//! and builds every reply and push with the key names the clients read.

pub mod codec;

use rosetta_bridge_kit::{Backend, settings::CloudChatSettings};
use tokio::net::TcpListener;

/// Serves cloudchat clients on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    backend: Backend,
    settings: CloudChatSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    let _ = (listener, backend, settings);
    shutdown.await;
    unimplemented!("cloudchat session")
}
