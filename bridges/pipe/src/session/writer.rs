//! The connection's writer: each queued reply or push in its own write, at least the
//! configured gap after the previous one (the protocol has no framing), each within a deadline.

use std::time::Duration;

use rosetta_bridge_kit::Counters;
use tokio::{io::AsyncWriteExt as _, net::tcp::OwnedWriteHalf, sync::mpsc, time::Instant};

use crate::codec::Reply;

/// Longest a write may wait for the client to make room: a client that does not read is
/// disconnected instead of holding the connection's queue (and its pushes) forever.
pub(crate) const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// Writes each queued message with its own write, at least `gap` after the previous one.
/// Ends when the queue closes or a write fails or misses its deadline; the connection then
/// closes too.
pub(super) async fn write_loop(
    mut write: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Box<Reply>>,
    gap: Duration,
    counters: Counters,
) {
    let mut last: Option<Instant> = None;
    while let Some(reply) = queue.recv().await {
        if let Some(last) = last {
            tokio::time::sleep_until(last + gap).await;
        }
        match tokio::time::timeout(WRITE_DEADLINE, write.write_all(&reply.to_bytes())).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::debug!(%err, "write failed; closing");
                return;
            }
            Err(_) => {
                tracing::info!(deadline = ?WRITE_DEADLINE, "client does not read; closing");
                return;
            }
        }
        counters.frame_out(reply.name());
        last = Some(Instant::now());
    }
    if let Err(err) = tokio::time::timeout(WRITE_DEADLINE, write.shutdown())
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
    {
        tracing::debug!(%err, "closing the socket failed");
    }
}
