//! Writing to the client: one frame at a time, each within [`WRITE_DEADLINE`], shrunk to fit
//! the client's buffer first.

use std::{net::SocketAddr, time::Duration};

use bytes::BytesMut;
use rosetta_bridge_kit::{Backend, Counters};
use tokio::{io::AsyncWriteExt as _, net::tcp::OwnedWriteHalf, time::Instant};
use tokio_util::codec::Encoder as _;

use super::Close;
use crate::codec::{CodecError, FrameCodec, MAX_FRAME, ServerMessage, cmd};

/// Longest wait for the client to take one frame: a client that stops reading would otherwise
/// hold its handler (and its pushes) forever once the socket's buffers are full.
pub(super) const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// The connection's outward side.
pub(super) struct Io {
    /// The services, acting for this client's address.
    pub backend: Backend,
    pub peer: SocketAddr,
    pub counters: Counters,
    /// Written frame by frame: a `FramedWrite` would keep an 8 KiB buffer per connection.
    write: OwnedWriteHalf,
    /// When a frame was last read or written, for the idle close.
    pub last_io: Instant,
}

impl Io {
    pub fn new(
        backend: Backend,
        peer: SocketAddr,
        counters: Counters,
        write: OwnedWriteHalf,
    ) -> Self {
        Self {
            backend,
            peer,
            counters,
            write,
            last_io: Instant::now(),
        }
    }

    /// Writes `message`; a write that fails or misses its deadline ends the connection, a
    /// frame the client could not hold is dropped.
    pub async fn send(&mut self, message: ServerMessage) -> Result<(), Close> {
        let frame = fit(message).encode();
        let name = cmd::name(frame.cmd);
        let mut bytes = BytesMut::new();
        if let Err(err) = FrameCodec.encode(frame, &mut bytes) {
            self.counters.error(name);
            tracing::warn!(%err, command = name, "push too large for the client, dropped");
            return Ok(());
        }
        match tokio::time::timeout(WRITE_DEADLINE, self.write.write_all(&bytes)).await {
            Ok(Ok(())) => {
                self.last_io = Instant::now();
                self.counters.frame_out(name);
                Ok(())
            }
            Ok(Err(err)) => {
                tracing::debug!(err = %CodecError::from(err), "write failed");
                Err(Close)
            }
            Err(_) => {
                self.counters.error(name);
                tracing::info!(command = name, "the client reads nothing; closing");
                Err(Close)
            }
        }
    }

    pub async fn error(&mut self, code: i32) -> Result<(), Close> {
        self.send(ServerMessage::Error { code, extra: None }).await
    }
}

/// Shrinks a push until the client's 10,240-byte buffer can hold it: long texts (other
/// protocols allow 16 KiB) are cut, long friend lists lose their last entries.
fn fit(mut message: ServerMessage) -> ServerMessage {
    loop {
        let over = message.encode().wire_len().saturating_sub(MAX_FRAME);
        if over == 0 {
            return message;
        }
        match &mut message {
            ServerMessage::Friends(friends) if !friends.is_empty() => {
                friends.pop();
            }
            ServerMessage::Message { text, .. } if !text.is_empty() => {
                let keep = text.chars().count().saturating_sub(over.div_ceil(2).max(1));
                *text = text.chars().take(keep).collect();
            }
            _ => return message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Friend, ONLINE};

    #[test]
    fn oversized_pushes_are_cut_to_the_client_buffer() {
        let long = ServerMessage::Message {
            from: "alice".into(),
            text: "你".repeat(8000),
            time: "2012-01-14 20:43:12".into(),
        };
        let cut = fit(long);
        let wire = cut.encode().wire_len();
        assert!(wire <= MAX_FRAME && wire > MAX_FRAME - 8, "{wire}");
        let friends = (0..500)
            .map(|i| Friend {
                name: format!("friend{i}"),
                status: ONLINE,
                email: String::new(),
                time: String::new(),
                lat_e6: 0.0,
                lon_e6: 0.0,
            })
            .collect();
        let ServerMessage::Friends(kept) = fit(ServerMessage::Friends(friends)) else {
            panic!("still a friend list");
        };
        assert!(kept.len() > 100 && kept.len() < 500, "{}", kept.len());
    }
}
