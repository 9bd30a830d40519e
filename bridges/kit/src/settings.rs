//! Each bridge's settings, in plain units for configuration files and environment variables
//! (`[bridges.pipe]` in TOML, `ROSETTA_BRIDGES__PIPE__LISTEN=…`). `rosetta all` starts every
//! enabled bridge; `rosetta bridge <name>` starts one whatever `enabled` says.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

const ANY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

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
}

impl Default for PipeSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::new(ANY, 8263),
            write_gap_ms: 100,
            group_info_doc_layout: false,
            read_mark_flush_ms: 50,
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
}

impl Default for DpcSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            auth_listen: SocketAddr::new(LOOPBACK, 9999),
            chat_listen: SocketAddr::new(LOOPBACK, 9998),
            file_listen: SocketAddr::new(LOOPBACK, 9988),
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
}

impl Default for ImpsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::new(ANY, 1200),
            heartbeat_timeout_ms: 300_000,
            idle_close_ms: 120_000,
            name_cache_ms: 5_000,
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
}

impl Default for OurChatSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::new(ANY, 7777),
            pushes: false,
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
}

impl Default for CloudChatSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::new(ANY, 14514),
            http_sessions: false,
            http_session_idle_ms: 1_800_000,
        }
    }
}
