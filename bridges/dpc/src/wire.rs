//! Reading frames and raw file bytes from a socket, and writing frames, with bounded buffers.

use std::{io, time::Duration};

use bytes::{Buf as _, Bytes, BytesMut};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::codec::{self, FrameError, HEADER_LEN};

/// Largest piece of raw file bytes read at once.
pub const RAW_CHUNK: usize = 64 * 1024;

/// A peer that does not take a frame within this time is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    Frame(FrameError),
    /// The peer closed in the middle of a frame.
    Truncated,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(err) => write!(f, "read failed: {err}"),
            Self::Frame(err) => write!(f, "bad frame: {err:?}"),
            Self::Truncated => f.write_str("connection closed mid-frame"),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(err: io::Error) -> Self {
        Self::Io(err)
    }
}

/// Frames and raw bytes from one connection. Cancel-safe: bytes read so far stay in the
/// buffer, which never holds more than one frame (at most [`codec::MAX_BODY`] plus a header)
/// or one raw chunk.
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
        }
    }

    /// The connection read from.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Whether bytes read from the peer are waiting here.
    pub fn buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next frame's JSON object; `None` when the peer closed between frames.
    pub async fn next(&mut self) -> Result<Option<Map<String, Value>>, ReadError> {
        loop {
            if let Some((used, map)) = codec::decode_frame(&self.buf).map_err(ReadError::Frame)? {
                self.buf.advance(used);
                // Do not keep a large frame's buffer for the rest of a long-lived connection.
                if self.buf.is_empty() && self.buf.capacity() > RAW_CHUNK {
                    self.buf = BytesMut::new();
                }
                return Ok(Some(map));
            }
            // Room for the rest of the header, or of the body once the header is known.
            let want = match self.buf.first_chunk::<HEADER_LEN>() {
                Some(header) => {
                    HEADER_LEN + codec::parse_header(header).map_err(ReadError::Frame)?
                }
                None => HEADER_LEN,
            };
            self.buf
                .reserve(want.saturating_sub(self.buf.len()).max(64));
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::Truncated)
                };
            }
        }
    }

    /// Up to `max` raw bytes following a frame; empty when the peer closed.
    pub async fn raw(&mut self, max: usize) -> io::Result<Bytes> {
        if self.buf.is_empty() {
            self.buf.reserve(max.min(RAW_CHUNK));
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return Ok(Bytes::new());
            }
        }
        let n = max.min(self.buf.len());
        Ok(self.buf.split_to(n).freeze())
    }

    /// Reads and drops exactly `size` raw bytes; false when the peer closed first.
    pub async fn discard(&mut self, mut size: u64) -> io::Result<bool> {
        while size > 0 {
            let chunk = self
                .raw(usize::try_from(size).unwrap_or(RAW_CHUNK).min(RAW_CHUNK))
                .await?;
            if chunk.is_empty() {
                return Ok(false);
            }
            size -= chunk.len() as u64;
        }
        Ok(true)
    }
}

/// Writes `bytes` (a whole frame, or raw file bytes) in one call, giving up on a peer that
/// stopped reading.
pub async fn send<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> io::Result<()> {
    match tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(bytes)).await {
        Ok(result) => result,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// Encodes `body` as a frame and writes it.
pub async fn send_frame<W: AsyncWrite + Unpin>(writer: &mut W, body: &Value) -> io::Result<()> {
    send(writer, &codec::frame(body)).await
}
