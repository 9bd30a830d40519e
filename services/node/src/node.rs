//! A node is one process's share of Rosetta: the roles it runs, on one gRPC listener, over
//! one database connection pool and one token verifier.

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context as _;
use rosetta_account::{
    AccountGrpc, Accounts, AdminGrpc, CodeSender, HashPool, LogSender, NodeGrpc,
    admin::status::Process,
};
use rosetta_auth::{
    Authenticator, BridgeKey, KeyFiles, KeyPair, SessionGuard, SessionWatch, TokenVerifier,
};
use rosetta_db::sea_orm::DatabaseConnection;
use rosetta_events::{EventSink, PresenceView};
use rosetta_kit::{
    server::{self, ServiceSet},
    tasks::Tasks,
};
use rosetta_proto::account::v1::account_service_server::AccountServiceServer;
use rosetta_proto::admin::v1::{
    admin_service_server::AdminServiceServer, node_service_server::NodeServiceServer,
};
use rosetta_proto::files::v1::files_service_server::FilesServiceServer;
use rosetta_proto::messaging::v1::messaging_service_server::MessagingServiceServer;
use rosetta_proto::social::v1::social_service_server::SocialServiceServer;
use rosetta_social::{Social, SocialGrpc};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{Config, config::ShutdownSettings};

/// What a process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Every service in one process.
    All,
    Account,
    Social,
    Messaging,
    Files,
}

impl Role {
    fn runs(self, other: Role) -> bool {
        self == Role::All || self == other
    }
}

/// Replaceable parts of a node, for embedding and tests.
#[derive(Clone)]
pub struct Plugins {
    /// Delivers verification codes; logs them by default.
    pub code_sender: Arc<dyn CodeSender>,
    /// Runs password hashing; by default a pool sized by `account.hash_workers`/`hash_queue`.
    pub hash_pool: Option<Arc<HashPool>>,
}

impl Default for Plugins {
    fn default() -> Self {
        Self {
            code_sender: Arc::new(LogSender),
            hash_pool: None,
        }
    }
}

pub struct Node {
    pub db: DatabaseConnection,
    /// This process as its status reports name it (the bridges of `rosetta all` report under
    /// the same id).
    pub process: Process,
    services: ServiceSet,
    /// The `Subscribe` streams' pumps: told to stop when the server starts draining, since an
    /// open stream never ends by itself and would hold the drain to its bound.
    streams: Tasks,
    /// The presence keeper, the NATS receiver, the SQLite writer: stopped after the last
    /// call, which may still need them.
    background: Tasks,
    shutdown: ShutdownSettings,
}

impl Node {
    /// Connects to the database (running migrations) and assembles the services of `role`.
    pub async fn build(config: &Config, role: Role, plugins: Plugins) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let db = rosetta_db::connect(&config.database_url())
            .await
            .context("opening the database")?;
        let (private_pem, public_pem) = load_keys(config, role.runs(Role::Account))?;
        let verifier =
            TokenVerifier::new([public_pem.as_str()], &config.account.to_domain().issuer)?;
        let sessions = Arc::new(SessionGuard::new(
            db.clone(),
            Duration::from_secs(config.account.session_cache_secs),
        ));
        let auth = Authenticator::new(Arc::new(verifier), sessions.clone());

        // The seams between services: the messaging service's durable per-user event log and
        // its presence table. They need only the database and the bus, so they work in every
        // process (a split `rosetta social` publishes friend events through them too).
        let messaging_config = config.messaging.to_domain();
        let (streams, background) = (Tasks::new(), Tasks::new());
        crate::pool_metrics::sample(&db, &background);
        // One watch for every event stream of this process (none per stream).
        SessionWatch::start(
            sessions.clone(),
            messaging_config.session_check_interval,
            &background,
        );
        let bus = messaging_bus(config, role, &background).await?;
        let message_events = Arc::new(rosetta_messaging::Events::new(db.clone(), bus.clone()));
        let presences = Arc::new(rosetta_messaging::Presences::new(
            db.clone(),
            messaging_config.presence_timeout,
            message_events.clone(),
        ));
        let events: Arc<dyn EventSink> = message_events.clone();
        let presence: Arc<dyn PresenceView> = presences.clone();

        let mut services = ServiceSet::new()
            .with_limits(config.server_limits())
            .with_allowed_origins(config.grpc_web.origins(&config.web_listen)?);
        if let Some(private_pem) = private_pem {
            let accounts = accounts(config, &db, &private_pem, public_pem, &sessions, plugins)?;
            add_account_services(
                &mut services,
                &auth,
                accounts,
                bridge_key(config, true)?,
                &events,
            );
        }
        if role.runs(Role::Social) {
            let social = Social::new(db.clone(), events.clone(), presence.clone())
                .configured(config.social.to_domain());
            let grpc = SocialServiceServer::new(SocialGrpc::new(Arc::new(social)));
            services.add(auth.protect(grpc, rosetta_social::PUBLIC_METHODS));
        }
        let process = crate::heartbeat::process(config.status_interval());
        let hub = role.runs(Role::Messaging).then(|| bus.hub().clone());
        crate::heartbeat::start(db.clone(), role, process.clone(), hub, &background);
        if role.runs(Role::Messaging) {
            presences.clone().keep(bus.hub().clone(), &background);
            let messaging = rosetta_messaging::Messaging::new(
                db.clone(),
                messaging_config,
                bus,
                message_events,
                presences,
                &background,
            );
            let grpc = rosetta_messaging::MessagingGrpc::new(Arc::new(messaging), streams.clone())
                .with_sessions(sessions.clone());
            let grpc = with_bridge_events(grpc, config, &auth)?;
            let grpc = MessagingServiceServer::new(grpc);
            services.add(auth.protect(grpc, rosetta_messaging::PUBLIC_METHODS));
        }
        if role.runs(Role::Files) {
            let store = rosetta_files::open_store(&config.files.store, &config.data_dir)?;
            let files = rosetta_files::Files::new(db.clone(), store, config.files.clone());
            let grpc = FilesServiceServer::new(rosetta_files::FilesGrpc::new(Arc::new(files)));
            services.add(auth.protect(grpc, &[]));
        }
        Ok(Self {
            db,
            process,
            services,
            streams,
            background,
            shutdown: config.shutdown.clone(),
        })
    }

    /// Serves until `shutdown` completes, then stops in order: the listener closes, open
    /// event streams end and in-flight calls finish (bounded by `shutdown.calls_ms`), then the
    /// background tasks finish (bounded by `shutdown.tasks_ms`).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let routes = self.services.into_routes().await?;
        let draining = CancellationToken::new();
        let server = server::serve(listener, routes, {
            let draining = draining.clone();
            async move {
                shutdown.await;
                draining.cancel();
            }
        });
        tokio::pin!(server);
        // Serving, until the shutdown begins (or the server fails).
        let ended = tokio::select! {
            served = &mut server => Some(served),
            () = draining.cancelled() => None,
        };
        let grace = self.shutdown.calls();
        let started = tokio::time::Instant::now();
        let (served, _) = tokio::join!(
            async {
                match ended {
                    Some(served) => Some(served),
                    None => tokio::time::timeout(grace, &mut server).await.ok(),
                }
            },
            // An open stream never ends by itself and would hold the drain to its bound.
            self.streams.stop("event streams", grace),
        );
        let served = served.unwrap_or_else(|| {
            tracing::warn!(
                ?grace,
                "gRPC calls still open at the shutdown bound; dropping them"
            );
            Ok(())
        });
        tracing::info!(took = ?started.elapsed(), "gRPC server stopped");
        self.background
            .stop("background tasks", self.shutdown.tasks())
            .await;
        served?;
        Ok(())
    }
}

/// The event bus: NATS when configured (split deployments), else in-process.
///
/// Streams are woken by the bus only (no poll), so a process that writes events for streams
/// in another process must share a NATS bus with it. A split `social` or `messaging` role
/// always does (social events reach messaging streams; messaging replicas write to each
/// other's users), so without `nats_url` it is refused rather than leaving streams silent.
/// `all` is one process by design; several `all` processes on one PostgreSQL database need
/// `nats_url` too, which the node cannot see, so it says so in its log.
async fn messaging_bus(
    config: &Config,
    role: Role,
    background: &Tasks,
) -> anyhow::Result<Arc<dyn rosetta_messaging::Bus>> {
    if config.messaging.poll_interval_ms != 0 {
        tracing::warn!(
            "messaging.poll_interval_ms is ignored: event streams are woken by the bus and \
             never poll"
        );
    }
    let queue = config.messaging.stream_queue.max(1);
    Ok(match &config.nats_url {
        Some(url) => Arc::new(
            rosetta_messaging::NatsBus::connect(
                url,
                &config.messaging.bus_subject,
                queue,
                background,
            )
            .await
            .map_err(|err| anyhow::anyhow!("connecting to NATS at {url}: {err}"))?,
        ),
        None if matches!(role, Role::Social | Role::Messaging) => anyhow::bail!(
            "the {} role runs apart from the other services and needs nats_url \
             (ROSETTA_NATS_URL): without it, events written by other processes never reach \
             this deployment's event streams; use `rosetta all` for a single process",
            if role == Role::Social {
                "social"
            } else {
                "messaging"
            }
        ),
        None => {
            if role == Role::Account {
                tracing::warn!(
                    "no nats_url: announcements sent here reach no open event stream of \
                     another process (users get them at their next login)"
                );
            }
            if role == Role::All && config.database_url().starts_with("postgres") {
                tracing::info!(
                    "in-process event bus: run one `rosetta all` per database, or set \
                     nats_url so that several share their events"
                );
            }
            Arc::new(rosetta_messaging::LocalBus::new(queue))
        }
    })
}

/// The account service as this node's configuration and plugins make it.
fn accounts(
    config: &Config,
    db: &DatabaseConnection,
    private_pem: &str,
    public_pem: String,
    sessions: &Arc<SessionGuard>,
    plugins: Plugins,
) -> anyhow::Result<Arc<Accounts>> {
    if !config.account.fixed_verification_code.trim().is_empty() {
        tracing::warn!(
            "account.fixed_verification_code is set: every verification code is the same known \
             value (test rigs and demos only)"
        );
    }
    let accounts = Accounts::new(
        db.clone(),
        config.account.to_domain(),
        private_pem,
        vec![public_pem],
        sessions.clone(),
        plugins.code_sender,
    )?;
    Ok(Arc::new(match plugins.hash_pool {
        Some(pool) => accounts.with_hash_pool(pool),
        None => accounts,
    }))
}

/// The account role's faces: the account service, the admin service (every RPC needs a
/// token; the admin role is checked by the service itself) and the node service (bridges'
/// status reports, checked against the bridge key by the service, and the public server
/// status).
fn add_account_services(
    services: &mut ServiceSet,
    auth: &Authenticator,
    accounts: Arc<Accounts>,
    bridge_key: Option<BridgeKey>,
    events: &Arc<dyn EventSink>,
) {
    let grpc = AccountServiceServer::new(AccountGrpc::new(accounts.clone(), bridge_key.clone()));
    services.add(auth.protect(grpc, rosetta_account::PUBLIC_METHODS));
    let admin =
        AdminServiceServer::new(AdminGrpc::new(accounts.clone()).with_events(events.clone()));
    services.add(auth.protect(admin, &[]));
    let node = NodeServiceServer::new(NodeGrpc::new(accounts, bridge_key));
    services.add(auth.protect(node, rosetta_account::NODE_PUBLIC_METHODS));
}

/// BridgeEvents needs the bridge credential: `all` has it (its account role made it), a split
/// messaging role reads the file mounted for it; without it bridges fall back to one
/// `Subscribe` per connection.
fn with_bridge_events(
    grpc: rosetta_messaging::MessagingGrpc,
    config: &Config,
    auth: &Authenticator,
) -> anyhow::Result<rosetta_messaging::MessagingGrpc> {
    Ok(match bridge_key(config, false)? {
        Some(key) => grpc.with_bridges(key, auth.clone()),
        None => {
            tracing::warn!(
                "no bridge key (bridge_key_file): BridgeEvents is refused, bridges fall back to \
                 one Subscribe per connection"
            );
            grpc
        }
    })
}

/// The bridge credential: the configured file, or `bridge.key` in the data dir, generated
/// there first when `generate` (the account role, which must hold it) and it is missing.
/// `None` only for a process that neither generates nor finds one.
pub fn bridge_key(config: &Config, generate: bool) -> anyhow::Result<Option<BridgeKey>> {
    let path = match &config.bridge_key_file {
        Some(path) => {
            return Ok(Some(
                BridgeKey::read(path).context("reading bridge_key_file")?,
            ));
        }
        None => BridgeKey::default_path(&config.data_dir),
    };
    if generate {
        return Ok(Some(
            BridgeKey::load_or_generate(&path).context("bridge key")?,
        ));
    }
    if path.exists() {
        return Ok(Some(BridgeKey::read(&path)?));
    }
    Ok(None)
}

/// The token key pair: configured files, or a pair generated into the data dir.
fn load_keys(config: &Config, need_private: bool) -> anyhow::Result<(Option<String>, String)> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    match (&config.jwt_private_key_file, &config.jwt_public_key_file) {
        (None, None) => {
            let pair = KeyPair::load_or_generate(&KeyFiles::in_dir(&config.data_dir))?;
            Ok((need_private.then_some(pair.private_pem), pair.public_pem))
        }
        (private, Some(public)) => {
            let private = match (need_private, private) {
                (true, Some(path)) => Some(read(path)?),
                (true, None) => anyhow::bail!("the account role needs jwt_private_key_file"),
                (false, _) => None,
            };
            Ok((private, read(public)?))
        }
        (Some(_), None) => anyhow::bail!("jwt_private_key_file needs jwt_public_key_file"),
    }
}
