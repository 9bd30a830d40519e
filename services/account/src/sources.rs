//! Per-source limits: how many logins, registrations and code requests one network source may
//! make. They sit in front of the per-account throttles (`throttle.rs`, `codes.rs`): those stop
//! guessing one account's secret, these stop one source from spraying many accounts, creating
//! accounts in bulk or sending codes to many targets, and bound the argon2id work it can cause.
//!
//! A source is the caller's IP address (see `grpc.rs` for when a bridge's word about its
//! client's address is taken). IPv6 addresses count per /64, the block one subscriber gets,
//! so that walking through one's own block does not buy fresh budgets.

use std::{
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock as _};
use rosetta_auth::BridgeKey;
use rosetta_kit::{ApiError, ApiResult};
use rosetta_proto::metadata;
use tonic::Request;

use crate::AccountConfig;

/// Where a call comes from, and the limits each source is held to.
pub struct Sources {
    limits: SourceLimits,
    /// Callers presenting this key are bridges, whose word about their client's address is
    /// taken; without a key, every caller is counted by its own address.
    bridge_key: Option<BridgeKey>,
}

impl Sources {
    pub fn new(cfg: &AccountConfig, bridge_key: Option<BridgeKey>) -> Self {
        Self {
            limits: SourceLimits::new(
                cfg.source_login,
                cfg.source_register,
                cfg.source_code,
                cfg.source_max_tracked,
            ),
            bridge_key,
        }
    }

    /// Spends one `action` from the budget of the request's source.
    pub fn admit<T>(&self, action: Action, request: &Request<T>) -> ApiResult<()> {
        self.limits.check(action, self.source(request))
    }

    /// The request's source: the client address a bridge forwards, when the caller proves to
    /// be a bridge; else the caller's own address. A client that sets the address header
    /// without the key is counted by its own address, as if it had not.
    pub fn source<T>(&self, request: &Request<T>) -> IpAddr {
        // No peer address (not a TCP connection): all such callers share one budget.
        let peer = request
            .remote_addr()
            .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |addr| addr.ip());
        let Some(claimed) = request.metadata().get(metadata::CLIENT_ADDR) else {
            return peer;
        };
        let from_bridge = self
            .bridge_key
            .as_ref()
            .is_some_and(|key| key.verifies(request.metadata()));
        if !from_bridge {
            tracing::debug!(%peer, "client address without a valid bridge key: ignored");
            return peer;
        }
        match claimed
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            Some(client) => client,
            None => {
                tracing::warn!(%peer, ?claimed, "a bridge sent an unreadable client address");
                peer
            }
        }
    }
}

/// What a call spends from its source's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `Login`, `ExchangeLegacyToken`.
    Login,
    /// `Register`.
    Register,
    /// `SendVerificationCode`, `RecoverPassword`.
    Code,
}

/// One action's budget per source: `burst` calls at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLimit {
    pub burst: u32,
    /// Zero turns the limit off.
    pub per_minute: u32,
}

impl SourceLimit {
    pub const fn new(burst: u32, per_minute: u32) -> Self {
        Self { burst, per_minute }
    }

    /// No limit (benchmarks that drive a node from one address).
    pub const OFF: Self = Self::new(0, 0);

    fn quota(self) -> Option<Quota> {
        let per_minute = NonZeroU32::new(self.per_minute)?;
        let period = Duration::from_secs(60) / per_minute.get();
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Some(Quota::with_period(period)?.allow_burst(burst))
    }
}

/// Prune sources whose budget is full again every this many checks, so idle sources do not
/// stay in memory until the cap forces it.
const PRUNE_EVERY: u64 = 4096;

/// The limiters of the three actions.
pub struct SourceLimits {
    login: Option<Limiter>,
    register: Option<Limiter>,
    code: Option<Limiter>,
}

struct Limiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    max_tracked: usize,
    checks: AtomicU64,
}

impl SourceLimits {
    /// `max_tracked` bounds the sources each limiter remembers.
    pub fn new(
        login: SourceLimit,
        register: SourceLimit,
        code: SourceLimit,
        max_tracked: usize,
    ) -> Self {
        let limiter = |limit: SourceLimit| {
            limit.quota().map(|quota| Limiter {
                limiter: RateLimiter::keyed(quota),
                max_tracked: max_tracked.max(1),
                checks: AtomicU64::new(0),
            })
        };
        Self {
            login: limiter(login),
            register: limiter(register),
            code: limiter(code),
        }
    }

    /// Spends one call of `action` from `source`'s budget, or says when to retry. The spend is
    /// one atomic step, so concurrent calls from a source never get past the budget together.
    pub fn check(&self, action: Action, source: IpAddr) -> ApiResult<()> {
        let limiter = match action {
            Action::Login => &self.login,
            Action::Register => &self.register,
            Action::Code => &self.code,
        };
        match limiter {
            Some(limiter) => limiter.check(action, source_key(source)),
            None => Ok(()),
        }
    }
}

impl Limiter {
    fn check(&self, action: Action, key: IpAddr) -> ApiResult<()> {
        let checks = self.checks.fetch_add(1, Ordering::Relaxed) + 1;
        if checks.is_multiple_of(PRUNE_EVERY) || self.limiter.len() >= self.max_tracked {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
            // Still full: as many sources as the cap are busy at once. Memory stays bounded
            // and a flood from that many addresses is refused rather than let through.
            if self.limiter.len() >= self.max_tracked {
                tracing::warn!(
                    ?action,
                    tracked = self.limiter.len(),
                    "per-source limiter full"
                );
                return Err(ApiError::throttled(Duration::from_secs(1)));
            }
        }
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            tracing::debug!(?action, source = %key, "per-source limit reached");
            ApiError::throttled(wait.max(Duration::from_secs(1)))
        })
    }
}

/// The key a source is counted under: IPv4 (also IPv4-mapped IPv6) as is, IPv6 by its /64.
pub fn source_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

#[cfg(test)]
mod tests {
    use rosetta_kit::Reason;

    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_key(a), source_key(b));
        assert_ne!(source_key(a), source_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(source_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_burst_then_refusal_per_source_and_action() {
        let limits = SourceLimits::new(
            SourceLimit::new(3, 1),
            SourceLimit::OFF,
            SourceLimit::new(1, 1),
            100,
        );
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let two: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            limits.check(Action::Login, one).unwrap();
        }
        let err = limits.check(Action::Login, one).unwrap_err();
        assert_eq!(err.reason, Reason::Throttled);
        assert!(err.retry_after.unwrap() >= Duration::from_secs(1));
        limits.check(Action::Login, two).unwrap();
        limits.check(Action::Code, one).unwrap();
        assert!(limits.check(Action::Code, one).is_err());
        for _ in 0..100 {
            limits.check(Action::Register, one).unwrap();
        }
    }

    /// A request from `peer` carrying `headers`.
    fn request(peer: &str, headers: &[(&'static str, &str)]) -> Request<()> {
        let mut request = Request::new(());
        request
            .extensions_mut()
            .insert(tonic::transport::server::TcpConnectInfo {
                local_addr: None,
                remote_addr: Some(peer.parse().unwrap()),
            });
        for (name, value) in headers {
            request.metadata_mut().insert(*name, value.parse().unwrap());
        }
        request
    }

    #[test]
    fn the_client_address_counts_only_with_the_bridge_key() {
        let key = BridgeKey::generate();
        let sources = Sources::new(&AccountConfig::default(), Some(key.clone()));
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let client: IpAddr = "198.51.100.9".parse().unwrap();
        let claim = (metadata::CLIENT_ADDR, "198.51.100.9");
        assert_eq!(sources.source(&request("192.0.2.1:5000", &[])), peer);
        assert_eq!(sources.source(&request("192.0.2.1:5000", &[claim])), peer);
        let wrong = BridgeKey::generate().to_hex();
        let forged = request("192.0.2.1:5000", &[claim, (metadata::BRIDGE_KEY, &wrong)]);
        assert_eq!(sources.source(&forged), peer);
        let right = key.to_hex();
        let bridged = request("192.0.2.1:5000", &[claim, (metadata::BRIDGE_KEY, &right)]);
        assert_eq!(sources.source(&bridged), client);
        let keyless = Sources::new(&AccountConfig::default(), None);
        assert_eq!(
            keyless.source(&bridged),
            peer,
            "no key configured: nobody is a bridge"
        );
    }

    #[test]
    fn memory_is_bounded_by_the_cap() {
        let limits = SourceLimits::new(
            SourceLimit::new(1, 1),
            SourceLimit::OFF,
            SourceLimit::OFF,
            10,
        );
        let refused = (0..50u8)
            .filter(|i| {
                limits
                    .check(Action::Login, IpAddr::from([192, 0, 2, *i]))
                    .is_err()
            })
            .count();
        assert_eq!(
            refused, 40,
            "sources beyond the cap are refused while the others are busy"
        );
        assert!(limits.login.as_ref().unwrap().limiter.len() <= 10);
    }
}
