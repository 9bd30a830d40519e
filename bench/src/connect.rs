//! TCP connections from a chosen loopback source address, so that one run can hold more
//! connections than one source address has ephemeral ports.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context as _;
use tokio::net::{TcpSocket, TcpStream};

/// Connects to `addr`, bound to `source` first when given.
pub async fn connect_from(addr: SocketAddr, source: Option<IpAddr>) -> anyhow::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(source) = source {
        socket
            .bind(SocketAddr::new(source, 0))
            .with_context(|| format!("cannot bind source address {source}"))?;
    }
    socket
        .connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))
}

/// The `i`-th of `count` source addresses 127.0.0.1 … 127.0.0.<count> (loopback targets
/// only; `None` leaves the choice to the kernel).
pub fn source_for(i: usize, count: usize, target: SocketAddr) -> Option<IpAddr> {
    if count <= 1 || !target.ip().is_loopback() || !target.is_ipv4() {
        return None;
    }
    let host = (i % count.min(254)) as u8 + 1;
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_over_loopback_sources() {
        let target: SocketAddr = "127.0.0.1:8263".parse().unwrap();
        assert_eq!(
            source_for(0, 4, target),
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)))
        );
        assert_eq!(
            source_for(5, 4, target),
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        );
        assert_eq!(source_for(5, 1, target), None);
    }
}
