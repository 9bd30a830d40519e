//! Writing to the client from the connection's own task: each reply or push in its own write,
//! at least the configured gap after the previous one (the protocol has no framing), each
//! within a deadline. There is no writer task and no queue: a reply is written before the
//! connection reads on, so an idle connection holds nothing for its writes, and a client that
//! stops reading stalls only its own connection until the deadline closes it.

use std::{io, sync::Mutex, time::Duration};

use rosetta_bridge_kit::Counters;
use tokio::{io::AsyncWriteExt as _, net::TcpStream, time::Instant};

use crate::codec::Reply;

/// Longest a write may wait for the client to make room: a client that does not read is
/// disconnected instead of holding the connection (and its pushes) forever.
pub(crate) const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// The connection's socket, read through [`Self::stream`] and written through [`Self::send`].
pub(crate) struct Socket {
    stream: TcpStream,
    gap: Duration,
    /// When the previous write ended. A mutex (uncontended: one task) so that the handlers,
    /// which hold the connection shared, can write.
    last: Mutex<Option<Instant>>,
    counters: Counters,
}

impl Socket {
    pub(super) fn new(stream: TcpStream, gap: Duration, counters: Counters) -> Self {
        Self {
            stream,
            gap,
            last: Mutex::new(None),
            counters,
        }
    }

    pub(super) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `reply` on its own, at least the gap after the previous write; false when the
    /// write failed or missed [`WRITE_DEADLINE`] (the connection then closes).
    pub(crate) async fn send(&self, reply: &Reply) -> bool {
        let last = *self.last();
        if let Some(last) = last {
            tokio::time::sleep_until(last + self.gap).await;
        }
        let bytes = reply.to_bytes();
        match tokio::time::timeout(WRITE_DEADLINE, write_all(&self.stream, &bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::debug!(%err, "write failed; closing");
                return false;
            }
            Err(_) => {
                tracing::info!(deadline = ?WRITE_DEADLINE, "client does not read; closing");
                return false;
            }
        }
        self.counters.frame_out(reply.name());
        *self.last() = Some(Instant::now());
        true
    }

    /// Closes the sending side (within the deadline) before the socket is dropped.
    pub(super) async fn close(mut self) {
        if let Err(err) = tokio::time::timeout(WRITE_DEADLINE, self.stream.shutdown())
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
        {
            tracing::debug!(%err, "closing the socket failed");
        }
    }
}

/// `write_all` through a shared reference, so that the connection can wait for a read and
/// write on the same socket without splitting it (a split costs an allocation per connection).
async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
