//! Where the load goes: only loopback targets unless `--allow-remote`, so a stray command
//! cannot load someone else's server.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs as _};

use anyhow::{Context as _, bail};

/// Checks that `host` resolves only to loopback addresses (or anything with `allow_remote`).
pub fn check_host(host: &str, allow_remote: bool) -> anyhow::Result<()> {
    if allow_remote {
        return Ok(());
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => (host, 0)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {host}"))?
            .map(|a| a.ip())
            .collect(),
    };
    if addrs.is_empty() || addrs.iter().any(|ip| !ip.is_loopback()) {
        bail!("{host} is not a loopback address; pass --allow-remote to load it anyway");
    }
    Ok(())
}

/// Parses a gRPC target such as `http://127.0.0.1:50051` and checks its host.
pub fn grpc_target(url: &str, allow_remote: bool) -> anyhow::Result<String> {
    let uri: tonic::transport::Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
    let host = uri.host().with_context(|| format!("no host in {url}"))?;
    check_host(host, allow_remote)?;
    Ok(url.to_owned())
}

/// Parses a bridge address such as `127.0.0.1:8263` and checks it.
pub fn socket_target(addr: &str, allow_remote: bool) -> anyhow::Result<SocketAddr> {
    let parsed: SocketAddr = addr
        .to_socket_addrs()
        .with_context(|| format!("bad address {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to nothing"))?;
    check_host(&parsed.ip().to_string(), allow_remote)?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_by_default() {
        assert!(grpc_target("http://127.0.0.1:50051", false).is_ok());
        assert!(grpc_target("http://[::1]:50051", false).is_ok());
        assert!(grpc_target("http://127.0.0.9:50051", false).is_ok());
        assert!(grpc_target("http://10.0.0.1:50051", false).is_err());
        assert!(grpc_target("http://10.0.0.1:50051", true).is_ok());
        assert!(socket_target("192.168.1.1:8263", false).is_err());
        assert!(socket_target("127.0.0.1:8263", false).is_ok());
    }
}
