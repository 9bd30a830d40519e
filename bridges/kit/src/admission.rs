//! Who gets in: the per-listener and per-address connection caps, the refusal a connection
//! over a cap gets, and the back-off after a failed accept.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use crate::settings::ConnectionLimits;

/// What a connection over a cap gets before its socket is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The protocol has no error the client reads before it logs in: the socket is closed.
    Close,
    /// These bytes (the protocol's own refusal), then the close.
    Reply(&'static [u8]),
}

/// HTTP's refusal, for the bridges on HTTP or a WebSocket handshake.
pub const HTTP_UNAVAILABLE: Refusal = Refusal::Reply(
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
);

/// Why a connection was refused (the `reason` label of `bridge_connections_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    Listener,
    Address,
}

impl Over {
    pub const fn label(self) -> &'static str {
        match self {
            Over::Listener => "listener",
            Over::Address => "address",
        }
    }
}

/// The connections one listener holds, in total and per address.
pub(crate) struct Admission {
    max_connections: usize,
    max_per_address: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl Admission {
    pub(crate) fn new(bridge: &'static str, limits: &ConnectionLimits) -> Arc<Self> {
        let max_connections = within_descriptors(bridge, limits.max_connections);
        Arc::new(Self {
            max_connections,
            max_per_address: limits.max_per_address,
            open: Mutex::new(Open::default()),
        })
    }

    /// A place for a connection from `ip`, held until the [`Slot`] drops.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Over> {
        let ip = address_key(ip);
        let mut open = self.lock();
        if open.total >= self.max_connections {
            return Err(Over::Listener);
        }
        let from_ip = open.by_address.entry(ip).or_default();
        if *from_ip >= self.max_per_address {
            return Err(Over::Address);
        }
        *from_ip += 1;
        open.total += 1;
        Ok(Slot {
            admission: self.clone(),
            ip,
        })
    }

    /// Connections admitted and still open.
    pub(crate) fn open(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What one "address" is for the per-address cap: an IPv4 client on a dual-stack socket counts
/// as its IPv4 address, and an IPv6 client as its /64, which one host commonly holds whole (or
/// it could take the bridge by counting through its own prefix).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

/// One admitted connection's place; given back when its task ends (or is aborted).
pub(crate) struct Slot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.admission.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_address.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.by_address.remove(&self.ip);
            }
        }
    }
}

/// How many descriptors a process may hold, or `None` where it cannot be read.
pub fn soft_descriptor_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (read == 0).then_some(limit.rlim_cur)
}

/// `max` lowered to a quarter of the soft descriptor limit: the rest stays for the gRPC port,
/// the database, the other bridges and the connections' own gRPC streams.
fn within_descriptors(bridge: &'static str, max: usize) -> usize {
    let Some(soft) = soft_descriptor_limit() else {
        return max;
    };
    let share = usize::try_from(soft / 4).unwrap_or(usize::MAX);
    if max > share {
        tracing::warn!(
            bridge,
            configured = max,
            lowered_to = share,
            descriptor_limit = soft,
            "max_connections lowered to a quarter of the descriptor limit"
        );
        return share;
    }
    max
}

/// How long a refused connection may take to read its refusal.
const REFUSAL_LINGER: Duration = Duration::from_secs(2);
/// Refusals being written at once; past this a refused connection is closed at once.
pub(crate) const MAX_REFUSING: usize = 64;

/// Writes the refusal, then reads until the client closes (bounded by [`REFUSAL_LINGER`]):
/// closing with the client's request unread would reset the connection, and a reset can
/// discard the refusal before the client reads it.
pub(crate) async fn refuse(mut stream: TcpStream, reply: &'static [u8]) {
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        stream.write_all(reply).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 256];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// The pause after a failed accept (out of descriptors, mostly): it doubles from
/// [`Backoff::FIRST`] up to [`Backoff::MAX`] while accepts keep failing and starts again at
/// the first success, so the loop neither spins nor stays slow once the node recovers.
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(crate) const FIRST: Duration = Duration::from_millis(50);
    pub(crate) const MAX: Duration = Duration::from_secs(1);

    pub(crate) const fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// The pause after one more failure.
    pub(crate) fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        pause
    }

    pub(crate) fn succeeded(&mut self) {
        self.next = Self::FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize, max_per_address: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections,
            max_per_address,
            ..ConnectionLimits::default()
        }
    }

    #[test]
    fn caps_count_open_slots_and_free_them_on_drop() {
        let admission = Admission::new("test", &limits(3, 2));
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let first = admission.admit(a).expect("first");
        let _second = admission.admit(a).expect("second");
        assert_eq!(admission.admit(a).err(), Some(Over::Address));
        let _third = admission.admit(b).expect("another address");
        assert_eq!(admission.admit(b).err(), Some(Over::Listener));
        drop(first);
        assert!(admission.admit(a).is_ok(), "a closed slot is free again");
    }

    #[test]
    fn a_mapped_ipv4_address_counts_as_the_ipv4_address() {
        let admission = Admission::new("test", &limits(10, 1));
        let _v4 = admission.admit([10, 0, 0, 1].into()).expect("v4");
        let mapped: IpAddr = std::net::Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped().into();
        assert_eq!(admission.admit(mapped).err(), Some(Over::Address));
    }

    #[test]
    fn an_ipv6_host_counts_by_its_64_prefix() {
        let admission = Admission::new("test", &limits(10, 1));
        let host = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]);
        let _first = admission
            .admit(host(1))
            .expect("first address of the prefix");
        assert_eq!(admission.admit(host(2)).err(), Some(Over::Address));
        let other: IpAddr = [0x2001, 0xdb8, 0, 2, 0, 0, 0, 1].into();
        assert!(
            admission.admit(other).is_ok(),
            "another /64 is another address"
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_bound_and_resets_on_success() {
        let mut backoff = Backoff::new();
        let pauses: Vec<_> = (0..7).map(|_| backoff.failed().as_millis()).collect();
        assert_eq!(pauses, [50, 100, 200, 400, 800, 1000, 1000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(), Backoff::FIRST);
    }
}
