//! The accept loop: one task per connection, each in a span naming the bridge and the peer;
//! connections over the listener's caps are refused in the protocol's form; a connection that
//! has not logged in within the handshake timeout is told to end; on shutdown it stops
//! accepting, tells the open connections to end, and returns once every one of them has
//! returned (each has ended its login by then).

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{
    Counters,
    admission::{self, Admission, Backoff, MAX_REFUSING, Refusal},
    settings::ConnectionLimits,
};

/// A listener and what it admits.
pub struct Listening {
    /// The bridge's name, in logs and counters.
    pub bridge: &'static str,
    pub listener: TcpListener,
    pub limits: ConnectionLimits,
    /// What a connection over a cap gets.
    pub refusal: Refusal,
    /// Whether connections must log in within `limits.handshake_timeout_ms` (false for a
    /// socket the protocol never logs in on).
    pub handshake: bool,
    /// Where the open connections are counted for the status reports, if anywhere.
    pub board: Option<crate::Board>,
}

impl Listening {
    pub fn new(
        bridge: &'static str,
        listener: TcpListener,
        limits: ConnectionLimits,
        refusal: Refusal,
    ) -> Self {
        Self {
            bridge,
            listener,
            limits,
            refusal,
            handshake: true,
            board: None,
        }
    }

    /// The open connections counted on `board` (the backend's) for the status reports.
    #[must_use]
    pub fn reported_on(mut self, board: &crate::Board) -> Self {
        self.board = Some(board.clone());
        self
    }

    /// No handshake timeout on this listener.
    #[must_use]
    pub fn without_handshake(mut self) -> Self {
        self.handshake = false;
        self
    }

    fn handshake_timeout(&self) -> Option<Duration> {
        (self.handshake && self.limits.handshake_timeout_ms > 0)
            .then(|| Duration::from_millis(self.limits.handshake_timeout_ms))
    }
}

/// What a connection task gets besides its socket.
#[derive(Clone)]
pub struct Connections {
    /// Cancelled when the bridge shuts down, or when the connection has not logged in within
    /// the handshake timeout: the connection ends its login, if any (the services still run
    /// meanwhile), and returns.
    pub closing: CancellationToken,
    pub counters: Counters,
    /// Marked by the session once the connection has logged in.
    pub handshake: Handshake,
}

/// Whether a connection has logged in (and so is past the handshake timeout).
#[derive(Clone, Default)]
pub struct Handshake(Arc<AtomicBool>);

impl Handshake {
    /// The connection has logged in: the handshake timeout no longer applies to it.
    pub fn done(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_done(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Accepts on `listening` until `shutdown` completes, running `handle` for each connection
/// admitted; then closes the listener, cancels the open connections and waits for every one
/// of them to return. Dropping this future (a caller's bound on the shutdown ran out) aborts
/// the connections still open, so none outlives the bridge.
pub async fn serve_tcp<H, F>(listening: Listening, shutdown: impl Future<Output = ()>, handle: H)
where
    H: Fn(TcpStream, SocketAddr, Connections) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let bridge = listening.bridge;
    let counters = Counters::new(bridge);
    let closing = CancellationToken::new();
    let admission = Admission::new(bridge, &listening.limits);
    if let Some(board) = &listening.board {
        board.listener(bridge, &admission);
    }
    let handshake_timeout = listening.handshake_timeout();
    let (listener, refusal) = (listening.listener, listening.refusal);
    let mut open = JoinSet::new();
    let mut refusing = JoinSet::new();
    let mut backoff = Backoff::new();
    let pause = tokio::time::sleep(Duration::ZERO);
    let mut paused = false;
    tracing::info!(bridge, addr = ?listener.local_addr().ok(), "bridge listening");
    tokio::pin!(shutdown, pause);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(ended) = open.join_next(), if !open.is_empty() => reaped(bridge, ended),
            Some(_) = refusing.join_next(), if !refusing.is_empty() => {}
            () = &mut pause, if paused => paused = false,
            accepted = listener.accept(), if !paused => match accepted {
                Ok((stream, peer)) => {
                    backoff.succeeded();
                    let slot = match admission.admit(peer.ip()) {
                        Ok(slot) => slot,
                        Err(over) => {
                            counters.refused(over.label());
                            tracing::debug!(bridge, %peer, over = over.label(), "connection refused");
                            if let Refusal::Reply(reply) = refusal
                                && refusing.len() < MAX_REFUSING
                            {
                                refusing.spawn(admission::refuse(stream, reply));
                            }
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let span = tracing::info_span!("connection", bridge, %peer);
                    let conn = Connections {
                        closing: closing.child_token(),
                        counters,
                        handshake: Handshake::default(),
                    };
                    let task = handle(stream, peer, conn.clone());
                    open.spawn(connection(task, conn, handshake_timeout, slot).instrument(span));
                }
                // Out of descriptors and the like: back off instead of spinning.
                Err(err) => {
                    let wait = backoff.failed();
                    tracing::warn!(bridge, %err, ?wait, "accept failed");
                    pause.as_mut().reset(tokio::time::Instant::now() + wait);
                    paused = true;
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
    closing.cancel();
    while let Some(ended) = open.join_next().await {
        reaped(bridge, ended);
    }
    tracing::info!(bridge, "bridge stopped");
}

/// One admitted connection's task: `task` (the bridge's handler) within the handshake timeout,
/// counted while it runs, holding its admission `slot` until it returns.
///
/// The handler's state is boxed, and so stored once. Inline, the async block holding it and
/// the future it is moved into would each keep a copy for the connection's whole life: three
/// copies of the largest part of an idle connection's memory.
fn connection<F: Future<Output = ()>>(
    task: F,
    conn: Connections,
    handshake_timeout: Option<Duration>,
    slot: admission::Slot,
) -> impl Future<Output = ()> {
    let task = Box::pin(task);
    async move {
        conn.counters.connection_opened();
        within_handshake(task, &conn, handshake_timeout).await;
        conn.counters.connection_closed();
        drop(slot);
    }
}

/// Runs `task`; if the connection has not logged in when `timeout` runs out, tells it to end
/// (through its `closing`, so a login in flight is still ended properly) and waits for it.
async fn within_handshake(
    task: impl Future<Output = ()>,
    conn: &Connections,
    timeout: Option<Duration>,
) {
    tokio::pin!(task);
    if let Some(timeout) = timeout {
        // The timer is boxed: it is over within seconds, and inline it would stay in every
        // connection's task for the connection's whole life.
        tokio::select! {
            () = &mut task => return,
            () = Box::pin(tokio::time::sleep(timeout)) => {}
        }
        if !conn.handshake.is_done() {
            tracing::info!(
                ?timeout,
                "not logged in within the handshake timeout; closing"
            );
            conn.counters.handshake_timed_out();
            conn.closing.cancel();
        }
    }
    task.await;
}

/// Logs a connection task that panicked (its peer's socket is closed by now).
fn reaped(bridge: &'static str, ended: Result<(), tokio::task::JoinError>) {
    if let Err(err) = ended {
        tracing::error!(bridge, %err, "connection task failed");
    }
}

#[cfg(test)]
mod limit_tests;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::{mpsc, oneshot};

    use super::*;

    const PATIENCE: Duration = Duration::from_secs(10);

    /// An idle connection's memory is mostly its handler's state: the task spawned for it
    /// must hold that state once (boxed), not once per future it passes through.
    #[test]
    fn a_connection_task_holds_its_handler_once() {
        let handler = async {
            let state = [1u8; 4096];
            tokio::task::yield_now().await;
            std::hint::black_box(&state);
        };
        let handler_size = std::mem::size_of_val(&handler);
        assert!(
            handler_size >= 4096,
            "the handler holds its state: {handler_size}"
        );
        let conns = Connections {
            closing: CancellationToken::new(),
            counters: Counters::new("test"),
            handshake: Handshake::default(),
        };
        let admission = Admission::new("test", &ConnectionLimits::default());
        let slot = admission
            .admit(std::net::Ipv4Addr::LOCALHOST.into())
            .expect("room");
        let task = connection(handler, conns, Some(PATIENCE), slot);
        let size = std::mem::size_of_val(&task);
        println!("connection task: {size} bytes");
        // 216 measured in a debug build: 320 with the handshake timer inline, over 12 KiB
        // with the handler stored in each layer.
        assert!(size <= 256, "the connection task is {size} bytes");
    }

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
            Listening::new(
                "test",
                listener,
                ConnectionLimits::default(),
                Refusal::Close,
            ),
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
            Listening::new(
                "test",
                listener,
                ConnectionLimits::default(),
                Refusal::Close,
            ),
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
