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
}

impl Default for PipeSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::new(ANY, 8263),
        }
    }
}

/// DPC's three servers. Loopback by default, as the original.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpcSettings {
    pub enabled: bool,
    pub auth_listen: SocketAddr,
    pub chat_listen: SocketAddr,
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
    pub enabled: bool,
    pub listen: SocketAddr,
}

impl Default for ImpsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::new(ANY, 1200),
        }
    }
}

/// OurChat's WebSocket JSON protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OurChatSettings {
    pub enabled: bool,
    pub listen: SocketAddr,
}

impl Default for OurChatSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::new(ANY, 7777),
        }
    }
}

/// CloudChat's WebSocket + HTTP JSON protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudChatSettings {
    pub enabled: bool,
    pub listen: SocketAddr,
}

impl Default for CloudChatSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::new(ANY, 14514),
        }
    }
}
