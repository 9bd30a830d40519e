//! Each bridge's settings, in plain units for configuration files and environment variables
//! (`[bridges.pipe]` in TOML, `ROSETTA_BRIDGES__PIPE__LISTEN=…`). `rosetta all` starts every
//! enabled bridge; `rosetta bridge <name>` starts one whatever `enabled` says.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

const ANY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Limits on the connections of one listener (`[bridges.pipe.limits]`,
/// `ROSETTA_BRIDGES__PIPE__LIMITS__MAX_CONNECTIONS=…`). A connection over a cap is refused in
/// the protocol's own form (each bridge's README says which) and counted in
/// `bridge_connections_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionLimits {
    /// Most connections open at once on one listener. At start it is lowered to a quarter of
    /// the process's soft descriptor limit (logged), so that one bridge cannot take the
    /// descriptors the gRPC port, the database and the other bridges need.
    pub max_connections: usize,
    /// Most connections open at once from one IP address: room for many clients behind one
    /// NAT, but one host cannot take the whole bridge.
    pub max_per_address: usize,
    /// A connection that has not logged in this long after it opened is closed (0: never).
    pub handshake_timeout_ms: u64,
    /// HTTP and WebSocket bridges: a request head (the WebSocket handshake included) must have
    /// arrived this long after the connection opened or the previous request ended, so a
    /// half-sent header cannot hold a connection (0: never).
    pub header_timeout_ms: u64,
}

impl ConnectionLimits {
    /// The defaults, with the bridge's own handshake timeout.
    pub const fn with_handshake_timeout_ms(handshake_timeout_ms: u64) -> Self {
        Self {
            max_connections: 4_096,
            max_per_address: 1_024,
            handshake_timeout_ms,
            header_timeout_ms: 10_000,
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self::with_handshake_timeout_ms(300_000)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BridgesSettings {
    pub pipe: PipeSettings,
    pub dpc: DpcSettings,
    pub imps: ImpsSettings,
    pub ourchat: OurChatSettings,
    pub cloudchat: CloudChatSettings,
}

/// QtQQ's `cmd|field|…` text protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipeSettings {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Minimum gap between two messages written to one socket, in milliseconds. The protocol
    /// has no framing, so the client can only tell messages apart by their separate arrival.
    pub write_gap_ms: u64,
    /// Answer `get_group_info` in the seed document's layout
    /// (`groupinfo|gid|name|count|admin|…`) instead of the real server's
    /// (`group_detail_info|gid|<name><count>|admin|…`), for clients built from the document.
    pub group_info_doc_layout: bool,
    /// A message pushed live counts as read; its read mark is written off the push path,
    /// batched per conversation, this many milliseconds after the first push of a batch (and
    /// before the login ends).
    pub read_mark_flush_ms: u64,
    /// The QtQQ client has no heartbeat and the real server never closed a connection, so a
    /// logged-in client idles for as long as it likes; one that has not logged in within
    /// `handshake_timeout_ms` (default 5 minutes) is closed.
    pub limits: ConnectionLimits,
}

impl Default for PipeSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::new(ANY, 8263),
            write_gap_ms: 100,
            group_info_doc_layout: false,
            read_mark_flush_ms: 50,
            limits: ConnectionLimits::default(),
        }
    }
}

/// DPC's three servers. Loopback by default, as the original.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpcSettings {
    /// Whether `rosetta all` starts the bridge.
    pub enabled: bool,
    /// Auth server (login check, SMS code, register); the client dials 127.0.0.1:9999.
    pub auth_listen: SocketAddr,
    /// Chat server (the shared lobby); the client dials 127.0.0.1:9998.
    pub chat_listen: SocketAddr,
    /// File server (upload, listing, download); the client dials 127.0.0.1:9988.
    pub file_listen: SocketAddr,
    /// Applied to each of the three servers. The auth server answers one request per
    /// connection and the file server reads a request first, so a connection on either that
    /// has not sent its request within `handshake_timeout_ms` (default 30 s) is closed. The
    /// chat socket has no login (a window may only listen, for hours), so it has no handshake
    /// timeout, as on the original.
    pub limits: ConnectionLimits,
}

impl Default for DpcSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            auth_listen: SocketAddr::new(LOOPBACK, 9999),
            chat_listen: SocketAddr::new(LOOPBACK, 9998),
            file_listen: SocketAddr::new(LOOPBACK, 9988),
            limits: ConnectionLimits::with_handshake_timeout_ms(30_000),
        }
    }
}

/// SysOfIMPS's binary protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImpsSettings {
    /// Started by `rosetta all`.
    pub enabled: bool,
    /// TCP address of the binary protocol (the client is built for port 1200).
    pub listen: SocketAddr,
    /// A logged-in client that sends no heartbeat for this long is declared offline and its
    /// friends are told (the legacy server's 5 minutes); its next heartbeat brings it back.
    pub heartbeat_timeout_ms: u64,
    /// A connection with no frame read or written for this long is closed (the legacy
    /// server's `bothOverTime`, 2 minutes); a live client's 20 s heartbeat keeps it open.
    pub idle_close_ms: u64,
    /// How long a connection sends to a friend's name without looking it up again (names can
    /// change hands and no event says so; see the bridge's README). 0 looks up every send.
    pub name_cache_ms: u64,
    /// A message pushed live counts as read (the next login must not deliver it again); its
    /// read mark is written off the push path, batched per conversation, this many
    /// milliseconds after the first push of a batch (and before the login ends).
    pub read_mark_flush_ms: u64,
    /// The client logs in right after it connects (registration uses its own connection,
    /// which `idle_close_ms` closes anyway); one not logged in within `handshake_timeout_ms`
    /// (default 2 minutes) is closed.
    pub limits: ConnectionLimits,
}

impl Default for ImpsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::new(ANY, 1200),
            heartbeat_timeout_ms: 300_000,
            idle_close_ms: 120_000,
            name_cache_ms: 5_000,
            read_mark_flush_ms: 50,
            limits: ConnectionLimits::with_handshake_timeout_ms(120_000),
        }
    }
}

/// OurChat's WebSocket JSON protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OurChatSettings {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Push incoming messages and new sessions to every connection from its login on. Off by
    /// default: the real (2024-07-31) client aborts on any frame it did not ask for, so only
    /// connections that opt in (document-form login, `"push": true`) get pushes.
    pub pushes: bool,
    /// The WebSocket handshake must arrive within `header_timeout_ms` (10 s) and the login
    /// within `handshake_timeout_ms` (5 minutes: verification by e-mail code and registration
    /// happen on the same connection first). No idle timeout: the client has no heartbeat
    /// (newer `websockets` releases ping, and pings are answered).
    pub limits: ConnectionLimits,
}

impl Default for OurChatSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::new(ANY, 7777),
            pushes: false,
            limits: ConnectionLimits::default(),
        }
    }
}

/// CloudChat's WebSocket + HTTP JSON protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudChatSettings {
    /// Started by `rosetta all`.
    pub enabled: bool,
    /// WebSocket and plain HTTP on one port, as the original (14514 on all interfaces).
    pub listen: SocketAddr,
    /// Serve the HarmonyOS client's HTTP requests. Its HTTP requests carry no token, so an
    /// HTTP login is trusted for later requests by the client's address alone: anyone behind
    /// the same address (NAT, proxy, shared host) acts as that user. Off by default; turn it
    /// on only where each user has their own address (a private network).
    pub http_sessions: bool,
    /// An HTTP login is forgotten after this long without an HTTP request from its address,
    /// unless a WebSocket bound to it with HDL_INFO is still open.
    pub http_session_idle_ms: u64,
    /// A request head must arrive within `header_timeout_ms` (10 s). A connection is closed
    /// `handshake_timeout_ms` (5 minutes) after it opened unless a WebSocket on it has logged
    /// in (an HTTP connection never does: the HarmonyOS client's requests are one-shot). No
    /// idle timeout: neither side pings and idle WebSockets stayed open on the original.
    pub limits: ConnectionLimits,
}

impl Default for CloudChatSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::new(ANY, 14514),
            http_sessions: false,
            http_session_idle_ms: 1_800_000,
            limits: ConnectionLimits::default(),
        }
    }
}
