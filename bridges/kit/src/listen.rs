//! The accept loop: one task per connection, each in a span naming the bridge and the peer;
//! on shutdown it stops accepting, tells the open connections to end, and returns once every
//! one of them has returned (each has ended its login by then).

use std::{future::Future, net::SocketAddr};

use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::Counters;

/// What a connection task gets besides its socket.
#[derive(Clone)]
pub struct Connections {
    /// Cancelled when the bridge shuts down: the connection ends its login (the services
    /// still run meanwhile) and returns.
    pub closing: CancellationToken,
    pub counters: Counters,
}

/// Accepts on `listener` until `shutdown` completes, running `handle` for each connection;
/// then closes the listener, cancels the open connections and waits for every one of them to
/// return. Dropping this future (a caller's bound on the shutdown ran out) aborts the
/// connections still open, so none outlives the bridge.
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
    let mut open = JoinSet::new();
    let local = listener.local_addr().ok();
    tracing::info!(bridge, addr = ?local, "bridge listening");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(ended) = open.join_next(), if !open.is_empty() => reaped(bridge, ended),
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let span = tracing::info_span!("connection", bridge, %peer);
                    let counters = connections.counters;
                    let task = handle(stream, peer, connections.clone());
                    open.spawn(
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
    // Refuse new clients at once rather than leave them in the kernel's backlog.
    drop(listener);
    tracing::info!(
        bridge,
        open = open.len(),
        "bridge stopping; ending open connections"
    );
    connections.closing.cancel();
    while let Some(ended) = open.join_next().await {
        reaped(bridge, ended);
    }
    tracing::info!(bridge, "bridge stopped");
}

/// Logs a connection task that panicked (its peer's socket is closed by now).
fn reaped(bridge: &'static str, ended: Result<(), tokio::task::JoinError>) {
    if let Err(err) = ended {
        tracing::error!(bridge, %err, "connection task failed");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::{mpsc, oneshot};

    use super::*;

    const PATIENCE: Duration = Duration::from_secs(10);

    async fn listener() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        (listener, addr)
    }

    /// Shutdown closes the listener first, then waits for a connection still ending its
    /// login; `serve_tcp` returns only once that connection has returned.
    #[tokio::test]
    async fn shutdown_waits_for_open_connections_to_end() {
        let (listener, addr) = listener().await;
        let (stop, stopped) = oneshot::channel::<()>();
        let (seen, mut steps) = mpsc::channel(2);
        let (release, released) = tokio::sync::watch::channel(false);
        let serving = tokio::spawn(serve_tcp(
            "test",
            listener,
            async {
                let _ = stopped.await;
            },
            move |_stream, _peer, conns| {
                let (seen, mut released) = (seen.clone(), released.clone());
                async move {
                    let _ = seen.send("started").await;
                    conns.closing.cancelled().await;
                    let _ = seen.send("closing").await;
                    // The close path: still running after the shutdown began.
                    let _ = released.wait_for(|released| *released).await;
                }
            },
        ));
        let _client = TcpStream::connect(addr).await.expect("accepted");
        assert_eq!(next_step(&mut steps).await, "started");
        stop.send(()).expect("serving");
        assert_eq!(next_step(&mut steps).await, "closing");
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "the listener is closed before connections are told to end"
        );
        assert!(
            !serving.is_finished(),
            "serve_tcp returned while a connection was still ending"
        );
        release.send(true).expect("the connection waits");
        tokio::time::timeout(PATIENCE, serving)
            .await
            .expect("serve_tcp returns once its connections have")
            .expect("no panic");
    }

    async fn next_step(steps: &mut mpsc::Receiver<&'static str>) -> &'static str {
        tokio::time::timeout(PATIENCE, steps.recv())
            .await
            .expect("the connection task moves on in time")
            .expect("a connection task")
    }

    /// A caller that gives up on the drain (drops `serve_tcp`) aborts the connections left.
    #[tokio::test]
    async fn dropping_the_accept_loop_aborts_its_connections() {
        let (listener, addr) = listener().await;
        let (started, mut starts) = mpsc::channel(1);
        let (guard_tx, guard_rx) = oneshot::channel::<()>();
        let guard = std::sync::Mutex::new(Some(guard_tx));
        let serving = tokio::spawn(serve_tcp(
            "test",
            listener,
            std::future::pending(),
            move |_stream, _peer, _conns| {
                // Held until the task ends; its drop closes `guard_rx`.
                let held = guard.lock().expect("lock").take();
                let started = started.clone();
                async move {
                    let _held = held;
                    let _ = started.send(()).await;
                    std::future::pending::<()>().await;
                }
            },
        ));
        let _client = TcpStream::connect(addr).await.expect("accepted");
        tokio::time::timeout(PATIENCE, starts.recv())
            .await
            .expect("the connection task runs")
            .expect("a connection");
        serving.abort();
        let ended = tokio::time::timeout(PATIENCE, guard_rx)
            .await
            .expect("the connection task is aborted in time");
        assert!(ended.is_err(), "the task ended by abort, not by sending");
    }
}
