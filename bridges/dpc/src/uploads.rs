//! The order of the file server's connections. The client closes right after an upload's
//! last byte (the protocol has no acknowledgement) and may at once list or download on a new
//! connection; the real server had the file on disk by then. Here each connection has its own
//! task, so the upload's connection may still be unread when the listing's is. A listing or
//! download therefore waits first until no file connection accepted before its own holds
//! unread bytes while its first request is unread (once read, an upload counts as in
//! progress), and then until that user's uploads in progress are stored.

use std::{
    collections::{BTreeMap, HashMap},
    mem::MaybeUninit,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{net::TcpStream, sync::Notify};

/// How long a listing or download waits for earlier connections and the same user's uploads.
const UPLOAD_WAIT: Duration = Duration::from_secs(10);

/// Uploads in progress, per user name, and the file connections not yet read.
#[derive(Default)]
pub struct Uploads {
    running: Mutex<HashMap<String, usize>>,
    stored: Notify,
    /// The accepted file connections whose first request is not read yet, by number, each
    /// with a second handle on its socket to see whether bytes wait there (`None` when the
    /// handle could not be made: then it counts as holding bytes).
    unread: Mutex<BTreeMap<u64, Option<socket2::Socket>>>,
    next_arrival: AtomicU64,
    read: Notify,
}

impl Uploads {
    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn unread(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Option<socket2::Socket>>> {
        self.unread.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Numbers a file connection as it is accepted (call it in the accept loop, so numbers
    /// follow the order of arrival): it counts as unread until [`Arrival::read`].
    pub fn arrive(self: &Arc<Self>, stream: &TcpStream) -> Arrival {
        let id = self.next_arrival.fetch_add(1, Ordering::Relaxed);
        let handle = match socket2::SockRef::from(stream).try_clone() {
            Ok(handle) => Some(handle),
            Err(err) => {
                tracing::warn!(%err, "no second handle on a file connection");
                None
            }
        };
        self.unread().insert(id, handle);
        Arrival {
            uploads: Arc::clone(self),
            id,
            unread: true,
        }
    }

    /// Counts an upload of `name` until the returned guard drops.
    pub fn start(self: &Arc<Self>, name: &str) -> Running {
        *self.running().entry(name.to_owned()).or_default() += 1;
        Running {
            uploads: Arc::clone(self),
            name: name.to_owned(),
        }
    }

    /// Waits (at most [`UPLOAD_WAIT`] in all) until no file connection accepted before
    /// `arrival` holds bytes its task has not read a first request from, and `name` has no
    /// upload in progress. A connection that holds no bytes now has sent nothing before this
    /// request: what it sends later is not waited for.
    pub async fn settled(&self, arrival: &Arrival, name: &str) {
        let wait = async {
            loop {
                let read = self.read.notified();
                tokio::pin!(read);
                read.as_mut().enable();
                let pending = self
                    .unread()
                    .range(..arrival.id)
                    .any(|(_, handle)| handle.as_ref().is_none_or(has_input));
                if !pending {
                    break;
                }
                read.await;
            }
            loop {
                let stored = self.stored.notified();
                tokio::pin!(stored);
                stored.as_mut().enable();
                if !self.running().contains_key(name) {
                    return;
                }
                stored.await;
            }
        };
        if tokio::time::timeout(UPLOAD_WAIT, wait).await.is_err() {
            tracing::info!(
                name,
                "answering while an earlier connection or an upload of the user is pending"
            );
        }
    }
}

/// A file connection's place in the order of arrival (see [`Uploads::arrive`]).
pub struct Arrival {
    uploads: Arc<Uploads>,
    id: u64,
    unread: bool,
}

impl Arrival {
    /// The connection's first request is read (an upload is counted as in progress first),
    /// or the connection is gone.
    pub fn read(&mut self) {
        if std::mem::take(&mut self.unread) {
            self.uploads.unread().remove(&self.id);
            self.uploads.read.notify_waiters();
        }
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        self.read();
    }
}

/// One upload in progress; dropping it ends it, stored or not.
pub struct Running {
    uploads: Arc<Uploads>,
    name: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self.uploads.running();
        if let Some(count) = running.get_mut(&self.name) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.name);
            }
        }
        drop(running);
        self.uploads.stored.notify_waiters();
    }
}

/// Whether the peer has sent bytes not read yet (without waiting, and without taking them).
pub fn has_input<S: std::os::fd::AsFd>(stream: &S) -> bool {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    // Tokio's sockets are non-blocking: nothing sent yet is WouldBlock; 0 is a closed peer.
    matches!(socket2::SockRef::from(stream).peek(&mut byte), Ok(n) if n > 0)
}
