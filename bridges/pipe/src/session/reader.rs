//! Reading commands off the socket: one read is one command (or the few a client wrote back
//! to back), a command cut short waits briefly for its rest.
//!
//! Reads go into one buffer per worker thread, reused for every read of every connection
//! there: a read is taken and parsed without awaiting, and what comes out (typed requests,
//! and the start of a command cut short) is owned. So an idle connection holds no read
//! buffer, and no read allocates one.

use std::{cell::RefCell, time::Duration};

use tokio::{net::TcpStream, time::Instant};

use crate::codec::{self, ParseError, Request};

/// Largest read taken as one command. The real server read up to 1 MiB at once but copied
/// each field into 1 KiB, so real commands are far smaller; a longer write arrives as several
/// reads, each handled (and usually refused) on its own.
pub(crate) const MAX_READ: usize = 64 * 1024;
/// How long the start of a command that looks cut short ([`codec::Piece::incomplete`]) waits
/// for its rest: the second half of a long command split by the network follows within a
/// round trip or a retransmission.
const PARTIAL_WAIT: Duration = Duration::from_millis(300);

thread_local! {
    /// The read buffer of this worker thread: at most a held start plus one read.
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The start of a command whose rest has not arrived yet, and until when it waits for it.
#[derive(Default)]
pub(super) struct Partial {
    held: Option<(Vec<u8>, Instant)>,
}

impl Partial {
    /// Completes when the held start has waited long enough; never when nothing is held.
    pub(super) async fn due(&self) {
        match &self.held {
            // Boxed: only a connection holding a start pays for the timer.
            Some((_, due)) => Box::pin(tokio::time::sleep_until(*due)).await,
            None => std::future::pending().await,
        }
    }

    /// The held start, to be answered as it is.
    pub(super) fn take_due(&mut self) -> Vec<Result<Request, ParseError>> {
        match self.held.take() {
            Some((bytes, _)) => parse_all(&bytes),
            None => Vec::new(),
        }
    }
}

/// What one read brought.
pub(super) enum Read {
    /// The client closed (or the socket failed).
    Closed,
    /// Spurious readiness: nothing to read yet.
    NotReady,
    /// `alone`: a held start the read did not continue, answered first as it is.
    Commands {
        alone: Vec<Result<Request, ParseError>>,
        commands: Vec<Result<Request, ParseError>>,
    },
}

/// Takes what the socket has (after readiness) and parses it in one pass.
pub(super) fn take(read: &TcpStream, partial: &mut Partial) -> Read {
    BUFFER.with_borrow_mut(|buffer| {
        buffer.clear();
        let held = partial.held.take();
        if let Some((bytes, _)) = &held {
            buffer.extend_from_slice(bytes);
        }
        let start = buffer.len();
        buffer.resize(start + MAX_READ, 0);
        let got = read.try_read(&mut buffer[start..]);
        let n = match got {
            Ok(0) => return Read::Closed,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                partial.held = held;
                return Read::NotReady;
            }
            Err(err) => {
                tracing::debug!(%err, "read failed; closing");
                return Read::Closed;
            }
        };
        buffer.truncate(start + n);
        // A held start is continued by the read unless the read begins a command of its own.
        let (alone, from) = if start > 0 && codec::starts_with_command(&buffer[start..]) {
            (parse_all(&buffer[..start]), start)
        } else {
            (Vec::new(), 0)
        };
        let bytes = &buffer[from..];
        let mut pieces = codec::commands(bytes);
        if bytes.len() < MAX_READ && pieces.last().is_some_and(codec::Piece::incomplete) {
            let cut = pieces.pop().map(|piece| piece.bytes.to_vec());
            partial.held = cut.map(|bytes| (bytes, Instant::now() + PARTIAL_WAIT));
        }
        let commands = pieces.into_iter().map(|piece| piece.parsed).collect();
        Read::Commands { alone, commands }
    })
}

/// Every command in `bytes`, parsed.
fn parse_all(bytes: &[u8]) -> Vec<Result<Request, ParseError>> {
    codec::commands(bytes)
        .into_iter()
        .map(|piece| piece.parsed)
        .collect()
}
