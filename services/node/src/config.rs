//! Configuration from, in rising precedence: defaults, an optional TOML file, `ROSETTA_…`
//! environment variables, and command-line flags.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use rosetta_account::{AccountConfig, SourceLimit};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the embedded database, blobs and generated keys live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to a SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// gRPC listen address of this process.
    pub grpc_listen: SocketAddr,
    /// The longest a gRPC handler may take to answer (a unary call's handling, a stream's
    /// opening; not the life of a stream, nor an upload); 0 = callers' deadlines only.
    pub grpc_request_timeout_ms: u64,
    /// gRPC calls handled at once over all connections; more are refused at once with
    /// `UNAVAILABLE` (open streams and uploads do not count); 0 = no limit.
    pub grpc_max_concurrent_requests: usize,
    /// PEM file of the Ed25519 token signing key (account role). Defaults to a key generated
    /// into `data_dir` on first start.
    pub jwt_private_key_file: Option<PathBuf>,
    /// PEM file of the matching public key (every role).
    pub jwt_public_key_file: Option<PathBuf>,
    /// The bridge credential (64 hex digits): the account service trusts the legacy client
    /// address a bridge forwards only from callers holding it. Defaults to a key generated
    /// into `data_dir` (`bridge.key`) on first start of the account role; a separate
    /// `rosetta bridge` reads the same file (split deployments mount it as a secret).
    pub bridge_key_file: Option<PathBuf>,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    /// OTLP/gRPC endpoint (e.g. `http://127.0.0.1:4317`); traces are exported when set.
    pub otlp_endpoint: Option<String>,
    /// Prometheus scrape endpoint of this process (any path, e.g. `/metrics`), `host:port`;
    /// empty: no endpoint and no metrics recorded.
    pub metrics_listen: String,
    /// How often every role and bridge instance reports its status (`AdminService/GetStatus`),
    /// milliseconds; an instance is listed as stale after three intervals without a report.
    pub status_interval_ms: u64,
    /// NATS server (e.g. `nats://127.0.0.1:4222`) carrying events between processes; unset,
    /// events travel in-process only (right for `rosetta all`).
    pub nats_url: Option<String>,
    pub account: AccountSettings,
    pub messaging: MessagingSettings,
    pub social: SocialSettings,
    pub files: rosetta_files::FilesSettings,
    /// The legacy-protocol bridges and their listen addresses.
    pub bridges: rosetta_bridge_kit::settings::BridgesSettings,
    pub shutdown: ShutdownSettings,
    /// Where `rosetta all` serves the web client (Rosetta Web); empty: not served.
    pub web_listen: String,
    /// Browsers calling the gRPC listener (gRPC-Web).
    pub grpc_web: crate::web::GrpcWebSettings,
}

/// Bounds on each step of a graceful shutdown (SIGTERM, Ctrl-C), taken in this order. Each
/// step normally takes milliseconds; a bound only matters when a peer hangs, and then the
/// step's leftovers are dropped and the next step starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    /// The bridges stop accepting and their open sessions end their logins (OFFLINE, Logout)
    /// against the services, which still serve meanwhile.
    pub sessions_ms: u64,
    /// The gRPC listener closes, open event streams end with `UNAVAILABLE`, and in-flight
    /// calls finish.
    pub calls_ms: u64,
    /// Background tasks (presence keeper, event-bus receiver, SQLite writer) finish.
    pub tasks_ms: u64,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self {
            sessions_ms: 10_000,
            calls_ms: 10_000,
            tasks_ms: 5_000,
        }
    }
}

impl ShutdownSettings {
    pub fn sessions(&self) -> Duration {
        Duration::from_millis(self.sessions_ms)
    }

    pub fn calls(&self) -> Duration {
        Duration::from_millis(self.calls_ms)
    }

    pub fn tasks(&self) -> Duration {
        Duration::from_millis(self.tasks_ms)
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The account service's tunables, in plain units for files and environment variables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountSettings {
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub lockout_threshold: u32,
    pub lockout_base_secs: u64,
    pub lockout_max_secs: u64,
    pub code_ttl_secs: u64,
    pub code_resend_interval_secs: u64,
    pub code_max_per_hour: u32,
    pub require_phone_code: bool,
    pub require_email_code: bool,
    /// When not empty, every verification code is this value (test rigs and demos without an
    /// SMS or e-mail gateway; never in production). A warning is logged at start.
    pub fixed_verification_code: String,
    /// How long another process may keep trusting a session after it was revoked.
    pub session_cache_secs: u64,
    /// Per source address (a gRPC caller's, or the legacy client's a bridge forwards): logins
    /// and legacy-token exchanges at once, then per minute (0 = no limit).
    pub source_login_burst: u32,
    pub source_login_per_minute: u32,
    /// Registrations per source address: at once, then per minute (0 = no limit).
    pub source_register_burst: u32,
    pub source_register_per_minute: u32,
    /// Verification codes and password recoveries per source address: at once, then per
    /// minute (0 = no limit).
    pub source_code_burst: u32,
    pub source_code_per_minute: u32,
    /// Source addresses each limiter remembers at most; beyond them new sources are refused
    /// until others fall idle.
    pub source_max_tracked: usize,
    /// Password-hashing worker threads, each with one reused 19 MiB argon2 area; 0 = one per
    /// available core.
    pub hash_workers: usize,
    /// Password checks that may wait for a hashing worker; more are refused at once with
    /// `THROTTLED` + `RetryInfo`.
    pub hash_queue: usize,
}

impl Config {
    /// How often status is reported (at least every 100 ms).
    pub fn status_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.status_interval_ms.max(100))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./rosetta-data"),
            database_url: None,
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            grpc_request_timeout_ms: 30_000,
            grpc_max_concurrent_requests: 1024,
            jwt_private_key_file: None,
            jwt_public_key_file: None,
            bridge_key_file: None,
            log_format: LogFormat::Text,
            otlp_endpoint: None,
            metrics_listen: "127.0.0.1:9090".into(),
            status_interval_ms: 5_000,
            nats_url: None,
            account: AccountSettings::default(),
            messaging: MessagingSettings::default(),
            social: SocialSettings::default(),
            files: rosetta_files::FilesSettings::default(),
            bridges: Default::default(),
            shutdown: ShutdownSettings::default(),
            web_listen: "127.0.0.1:8080".into(),
            grpc_web: Default::default(),
        }
    }
}

impl Default for AccountSettings {
    fn default() -> Self {
        let d = AccountConfig::default();
        Self {
            access_token_ttl_secs: d.access_ttl.as_secs(),
            refresh_token_ttl_secs: d.refresh_ttl.as_secs(),
            lockout_threshold: d.lockout_threshold,
            lockout_base_secs: d.lockout_base.as_secs(),
            lockout_max_secs: d.lockout_max.as_secs(),
            code_ttl_secs: d.code_ttl.as_secs(),
            code_resend_interval_secs: d.code_resend_interval.as_secs(),
            code_max_per_hour: d.code_max_per_hour,
            require_phone_code: d.require_phone_code,
            require_email_code: d.require_email_code,
            fixed_verification_code: String::new(),
            session_cache_secs: 5,
            source_login_burst: d.source_login.burst,
            source_login_per_minute: d.source_login.per_minute,
            source_register_burst: d.source_register.burst,
            source_register_per_minute: d.source_register.per_minute,
            source_code_burst: d.source_code.burst,
            source_code_per_minute: d.source_code.per_minute,
            source_max_tracked: d.source_max_tracked,
            hash_workers: d.hash_workers,
            hash_queue: d.hash_queue,
        }
    }
}

/// The messaging service's tunables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MessagingSettings {
    /// Without a stream or a heartbeat for this long, a user goes offline.
    pub presence_timeout_ms: u64,
    /// How long senders may recall their messages.
    pub recall_window_secs: u64,
    /// How often the process's session watch looks for sessions ended by other processes
    /// (one query per period for all open streams); a stream whose session ended ends with
    /// `SESSION_REVOKED`.
    pub session_check_ms: u64,
    /// Events one stream may have waiting for a slow client before it drops them and re-reads
    /// its log instead; the queue allocates only for events actually waiting.
    pub stream_queue: usize,
    /// Ignored (0 = unset): streams are woken by the bus and no longer poll their log.
    /// Accepted so that configurations that set it still load; setting it logs a warning.
    pub poll_interval_ms: u64,
    /// NATS subject prefix of the event bus (one subject per user below it); deployments
    /// sharing a NATS server need distinct prefixes.
    pub bus_subject: String,
    /// PostgreSQL: concurrent writer lanes for sends (a conversation always uses the same
    /// one); 1..=64. SQLite always writes through one.
    pub writer_lanes: usize,
    /// Groups with more members than this are fanned out on read (a message is one row); 0
    /// fans every group out on write. At most [`MAX_FANOUT_ON_WRITE_MEMBERS`].
    pub group_fanout_max_members: usize,
}

impl Default for MessagingSettings {
    fn default() -> Self {
        let d = rosetta_messaging::MessagingConfig::default();
        Self {
            presence_timeout_ms: u64::try_from(d.presence_timeout.as_millis()).unwrap_or(u64::MAX),
            recall_window_secs: d.recall_window.as_secs(),
            session_check_ms: u64::try_from(d.session_check_interval.as_millis())
                .unwrap_or(u64::MAX),
            stream_queue: d.stream_queue,
            poll_interval_ms: 0,
            bus_subject: "rosetta.events".into(),
            writer_lanes: d.writer_lanes,
            group_fanout_max_members: d.group_fanout_max_members,
        }
    }
}

/// The largest `group_fanout_max_members`: one below the member limit of a group, up to which
/// a system group's (the DPC lobby's) joins are told to every member; past it they reach only
/// the joiner, and members' open streams could not learn that the group turned large.
pub const MAX_FANOUT_ON_WRITE_MEMBERS: usize =
    rosetta_social::limits::MAX_GROUP_MEMBERS as usize - 1;

impl MessagingSettings {
    pub fn to_domain(&self) -> rosetta_messaging::MessagingConfig {
        rosetta_messaging::MessagingConfig {
            presence_timeout: Duration::from_millis(self.presence_timeout_ms),
            recall_window: Duration::from_secs(self.recall_window_secs),
            // A watch period of zero would spin.
            session_check_interval: Duration::from_millis(self.session_check_ms.max(10)),
            stream_queue: self.stream_queue.max(1),
            writer_lanes: self.writer_lanes,
            // A system group's membership changes reach every member only up to the social
            // limit (see `MAX_FANOUT_ON_WRITE_MEMBERS`): it must turn large before.
            group_fanout_max_members: self
                .group_fanout_max_members
                .min(MAX_FANOUT_ON_WRITE_MEMBERS),
        }
    }
}

impl AccountSettings {
    pub fn to_domain(&self) -> AccountConfig {
        let secs = Duration::from_secs;
        AccountConfig {
            access_ttl: secs(self.access_token_ttl_secs),
            refresh_ttl: secs(self.refresh_token_ttl_secs),
            lockout_threshold: self.lockout_threshold,
            lockout_base: secs(self.lockout_base_secs),
            lockout_max: secs(self.lockout_max_secs),
            code_ttl: secs(self.code_ttl_secs),
            code_resend_interval: secs(self.code_resend_interval_secs),
            code_max_per_hour: self.code_max_per_hour,
            require_phone_code: self.require_phone_code,
            require_email_code: self.require_email_code,
            fixed_code: Some(self.fixed_verification_code.trim().to_owned())
                .filter(|code| !code.is_empty()),
            source_login: SourceLimit::new(self.source_login_burst, self.source_login_per_minute),
            source_register: SourceLimit::new(
                self.source_register_burst,
                self.source_register_per_minute,
            ),
            source_code: SourceLimit::new(self.source_code_burst, self.source_code_per_minute),
            source_max_tracked: self.source_max_tracked,
            hash_workers: self.hash_workers,
            hash_queue: self.hash_queue,
            ..AccountConfig::default()
        }
    }
}

/// The social service's tunables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocialSettings {
    /// Slugs of the system-owned public groups JoinPublicGroup may create (the DPC bridge
    /// needs `dpc-lobby`); any other slug that does not exist yet is NOT_FOUND.
    pub public_slugs: Vec<String>,
    /// Groups one user may create per rolling hour.
    pub groups_per_hour: u64,
}

impl Default for SocialSettings {
    fn default() -> Self {
        let d = rosetta_social::SocialConfig::default();
        Self {
            public_slugs: d.public_slugs,
            groups_per_hour: d.groups_per_hour,
        }
    }
}

impl SocialSettings {
    pub fn to_domain(&self) -> rosetta_social::SocialConfig {
        rosetta_social::SocialConfig {
            public_slugs: self.public_slugs.clone(),
            groups_per_hour: self.groups_per_hour,
        }
    }
}

/// Values given on the command line; unset ones leave lower layers alone.
#[derive(Debug, Default, Clone, Serialize, clap::Args)]
pub struct Overrides {
    /// Data directory (database file, blobs, generated keys) [default: ./rosetta-data]
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://FILE or postgres://USER@HOST/DB [default: SQLite in the data dir]
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// gRPC listen address [default: 127.0.0.1:50051]
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_listen: Option<SocketAddr>,
    /// Log line format: text or json [default: text]
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// OTLP/gRPC endpoint to export traces to, e.g. http://127.0.0.1:4317 [default: off]
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
}

impl clap::ValueEnum for LogFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &[LogFormat::Text, LogFormat::Json]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }))
    }
}

/// The `admin` subcommands' server and token (`ROSETTA_ADMIN_SERVER`, `ROSETTA_TOKEN`): flags
/// with environment fallbacks, not configuration keys.
const ADMIN_FLAGS: [&str; 2] = ["admin_server", "token"];

/// The `bridge` subcommand's service addresses (`ROSETTA_GRPC_ENDPOINT`, …): flags with
/// environment fallbacks, not configuration keys.
const BRIDGE_FLAGS: [&str; 5] = [
    "grpc_endpoint",
    "grpc_account",
    "grpc_social",
    "grpc_messaging",
    "grpc_files",
];

impl Config {
    /// Layers defaults, `file` (if given), the environment and `overrides`.
    pub fn load(
        file: Option<&std::path::Path>,
        overrides: &Overrides,
    ) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            .merge(
                Env::prefixed("ROSETTA_")
                    // ROSETTA_CONFIG names the file itself; BRIDGE_FLAGS are read by the
                    // `bridge` subcommand; ROSETTA_TEST_* and ROSETTA_PYTHON configure the test
                    // suite, whose child processes inherit them.
                    .filter(|key| {
                        key != "config"
                            && key != "python"
                            && !key.starts_with("test_")
                            && !BRIDGE_FLAGS.iter().any(|flag| key == *flag)
                            && !ADMIN_FLAGS.iter().any(|flag| key == *flag)
                    })
                    .split("__"),
            )
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(Box::new)
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("rosetta.db").display()
            )
        })
    }

    /// Where to serve Prometheus metrics; `None` when `metrics_listen` is empty.
    pub fn metrics_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        let value = self.metrics_listen.trim();
        if value.is_empty() {
            return Ok(None);
        }
        value.parse().map(Some).map_err(|err| {
            anyhow::anyhow!("metrics_listen: {value:?} is not an address (host:port): {err}")
        })
    }

    /// The gRPC server's time and concurrency limits; 0 turns either off.
    pub fn server_limits(&self) -> rosetta_kit::server::Limits {
        rosetta_kit::server::Limits {
            request_timeout: (self.grpc_request_timeout_ms > 0)
                .then(|| Duration::from_millis(self.grpc_request_timeout_ms)),
            max_concurrent_requests: (self.grpc_max_concurrent_requests > 0)
                .then_some(self.grpc_max_concurrent_requests),
        }
    }
}

#[cfg(test)]
// figment's Jail fixes the closures' error type to figment::Error.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn server_limits_come_from_the_environment_and_zero_turns_them_off() {
        figment::Jail::expect_with(|jail| {
            let defaults = Config::default().server_limits();
            assert_eq!(defaults.request_timeout, Some(Duration::from_secs(30)));
            assert_eq!(defaults.max_concurrent_requests, Some(1024));
            jail.set_env("ROSETTA_GRPC_REQUEST_TIMEOUT_MS", "0");
            jail.set_env("ROSETTA_GRPC_MAX_CONCURRENT_REQUESTS", "8");
            let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            let limits = config.server_limits();
            assert_eq!(limits.request_timeout, None);
            assert_eq!(limits.max_concurrent_requests, Some(8));
            Ok(())
        });
    }

    #[test]
    fn large_groups_start_below_the_member_limit() {
        let mut settings = MessagingSettings::default();
        assert_eq!(settings.to_domain().group_fanout_max_members, 200);
        settings.group_fanout_max_members = 5_000;
        assert_eq!(settings.to_domain().group_fanout_max_members, 1_999);
        settings.group_fanout_max_members = 0;
        assert_eq!(settings.to_domain().group_fanout_max_members, 0);
    }

    #[test]
    fn layers_in_order_and_ignores_test_suite_variables() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "rosetta.toml",
                "grpc_listen = \"127.0.0.1:1\"\n[account]\nlockout_threshold = 7\n",
            )?;
            jail.set_env("ROSETTA_GRPC_LISTEN", "127.0.0.1:2");
            jail.set_env("ROSETTA_ACCOUNT__LOCKOUT_BASE_SECS", "9");
            jail.set_env("ROSETTA_TEST_POSTGRES_URL", "postgres://elsewhere");
            jail.set_env("ROSETTA_PYTHON", "python3");
            jail.set_env("ROSETTA_CONFIG", "rosetta.toml");
            jail.set_env("ROSETTA_GRPC_ACCOUNT", "http://127.0.0.1:3");
            let flags = Overrides {
                database_url: Some("sqlite://x".into()),
                ..Overrides::default()
            };
            let config = Config::load(Some(std::path::Path::new("rosetta.toml")), &flags)
                .map_err(|e| e.to_string())?;
            assert_eq!(
                config.grpc_listen,
                SocketAddr::from(([127, 0, 0, 1], 2)),
                "env beats the file"
            );
            assert_eq!(
                config.account.lockout_threshold, 7,
                "the file beats defaults"
            );
            assert_eq!(
                config.account.lockout_base_secs, 9,
                "nested keys join with __"
            );
            assert_eq!(
                config.database_url.as_deref(),
                Some("sqlite://x"),
                "flags beat everything"
            );
            Ok(())
        });
    }

    #[test]
    fn cloudchat_http_sessions_are_off_unless_configured() {
        figment::Jail::expect_with(|jail| {
            let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert!(!config.bridges.cloudchat.http_sessions);
            jail.set_env("ROSETTA_BRIDGES__CLOUDCHAT__HTTP_SESSIONS", "true");
            jail.set_env("ROSETTA_BRIDGES__CLOUDCHAT__HTTP_SESSION_IDLE_MS", "60000");
            let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert!(config.bridges.cloudchat.http_sessions);
            assert_eq!(config.bridges.cloudchat.http_session_idle_ms, 60_000);
            Ok(())
        });
    }

    #[test]
    fn source_limits_and_bridge_key_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ROSETTA_ACCOUNT__SOURCE_LOGIN_BURST", "7");
            jail.set_env("ROSETTA_ACCOUNT__SOURCE_CODE_PER_MINUTE", "0");
            jail.set_env("ROSETTA_BRIDGE_KEY_FILE", "/run/secrets/bridge_key");
            let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            let account = config.account.to_domain();
            assert_eq!(account.source_login, SourceLimit::new(7, 300));
            assert_eq!(account.source_code.per_minute, 0, "0 turns a limit off");
            assert_eq!(
                account.source_register,
                AccountConfig::default().source_register
            );
            assert_eq!(
                config.bridge_key_file.as_deref(),
                Some(std::path::Path::new("/run/secrets/bridge_key"))
            );
            Ok(())
        });
    }

    #[test]
    fn metrics_listen_defaults_to_loopback_and_empty_turns_it_off() {
        figment::Jail::expect_with(|jail| {
            let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(
                config.metrics_addr().map_err(|e| e.to_string())?,
                Some(SocketAddr::from(([127, 0, 0, 1], 9090)))
            );
            jail.set_env("ROSETTA_METRICS_LISTEN", "");
            let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.metrics_addr().map_err(|e| e.to_string())?, None);
            jail.set_env("ROSETTA_METRICS_LISTEN", "0.0.0.0:9100");
            let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(
                config.metrics_addr().map_err(|e| e.to_string())?,
                Some(SocketAddr::from(([0, 0, 0, 0], 9100)))
            );
            jail.set_env("ROSETTA_METRICS_LISTEN", "nowhere");
            let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert!(config.metrics_addr().is_err());
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ROSETTA_GRPC_LISTN", "127.0.0.1:2");
            assert!(Config::load(None, &Overrides::default()).is_err());
            Ok(())
        });
    }
}
