//! A TCP relay in front of a server (a node, NATS) that a test can use to fail the network:
//! drop what the server sends (a message lost on the way) and cut every connection.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::Notify,
    task::AbortHandle,
};

pub struct Relay {
    /// Where clients connect instead of the server.
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    muted: Arc<AtomicBool>,
    discarded: Arc<AtomicU64>,
    /// Woken each time bytes are dropped.
    dropped: Arc<Notify>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Relay {
    /// Relays every connection made to [`Relay::addr`] to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let relay = Self {
            addr: listener.local_addr().expect("addr"),
            accepted: Arc::default(),
            muted: Arc::default(),
            discarded: Arc::default(),
            dropped: Arc::default(),
            open: Arc::default(),
        };
        let (accepted, muted, discarded, dropped, open) = (
            relay.accepted.clone(),
            relay.muted.clone(),
            relay.discarded.clone(),
            relay.dropped.clone(),
            relay.open.clone(),
        );
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
                });
                let (muted, discarded, dropped) =
                    (muted.clone(), discarded.clone(), dropped.clone());
                let down = tokio::spawn(async move {
                    let mut buf = vec![0; 16 * 1024];
                    while let Ok(n @ 1..) = server_rx.read(&mut buf).await {
                        if muted.load(Ordering::SeqCst) {
                            discarded.fetch_add(n as u64, Ordering::SeqCst);
                            dropped.notify_waiters();
                        } else if client_tx.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
                open.push(up.abort_handle());
                open.push(down.abort_handle());
            }
        });
        relay
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// While on, what the server sends is dropped (and counted) instead of relayed.
    pub fn mute(&self, on: bool) {
        self.muted.store(on, Ordering::SeqCst);
    }

    /// Bytes from the server dropped while muted.
    pub fn discarded(&self) -> u64 {
        self.discarded.load(Ordering::SeqCst)
    }

    /// Waits (at most `within`) until the relay has dropped something since it was muted.
    pub async fn until_discarded(&self, within: std::time::Duration) {
        let wait = async {
            loop {
                let dropped = self.dropped.notified();
                if self.discarded() > 0 {
                    return;
                }
                dropped.await;
            }
        };
        tokio::time::timeout(within, wait)
            .await
            .expect("nothing reached the relay while muted");
    }

    /// Drops every relayed connection, as a network failure would.
    pub fn cut(&self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        for conn in open.drain(..) {
            conn.abort();
        }
    }
}
