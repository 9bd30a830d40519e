//! The accept loop: one task per connection, each in a span naming the bridge and the peer;
//! on shutdown it stops accepting and cancels the open connections.

use std::{future::Future, net::SocketAddr};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument as _;

use crate::Counters;

/// What a connection task gets besides its socket.
#[derive(Clone)]
pub struct Connections {
    /// Cancelled when the bridge shuts down.
    pub closing: CancellationToken,
    pub counters: Counters,
}

/// Accepts on `listener` until `shutdown` completes, running `handle` for each connection;
/// then cancels the open connections and waits for them to finish.
pub async fn serve_tcp<H, F>(
    bridge: &'static str,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    handle: H,
) where
    H: Fn(TcpStream, SocketAddr, Connections) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let connections = Connections {
        closing: CancellationToken::new(),
        counters: Counters::new(bridge),
    };
    let tasks = TaskTracker::new();
    let local = listener.local_addr().ok();
    tracing::info!(bridge, addr = ?local, "bridge listening");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let span = tracing::info_span!("connection", bridge, %peer);
                    let counters = connections.counters;
                    let task = handle(stream, peer, connections.clone());
                    tasks.spawn(
                        async move {
                            counters.connection_opened();
                            task.await;
                            counters.connection_closed();
                        }
                        .instrument(span),
                    );
                }
                // Out of descriptors and the like: back off instead of spinning.
                Err(err) => {
                    tracing::warn!(bridge, %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
    connections.closing.cancel();
    tasks.close();
    tasks.wait().await;
    tracing::info!(bridge, "bridge stopped");
}
