//! `rosetta`: one binary, one role (or all of them) per process.

mod admin;
mod bridges;
mod limits;
mod metrics;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use bridges::Bridge;
use clap::{Parser, Subcommand};
use rosetta_bridge_kit::{Backend, Endpoints};
use rosetta_node::{
    Config, Node, Role, config::Overrides, node::Plugins, telemetry, web::WebServer,
};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "rosetta",
    version,
    about = "A chat backend: canonical gRPC API and legacy protocol bridges"
)]
struct Cli {
    /// TOML configuration file; environment variables ROSETTA_<KEY> (nested keys joined by
    /// `__`) override it, and flags override both.
    #[arg(long, global = true, env = "ROSETTA_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every service and every enabled bridge in one process (SQLite and an in-process event
    /// bus by default).
    All,
    /// The account service: registration, login, tokens, profiles, verification codes.
    Account,
    /// The social service: friends, friend requests, groups, join requests.
    Social,
    /// The messaging service: messages, history, read state, event stream, presence.
    Messaging,
    /// The files service: chunked upload and download, folders, shared listings.
    Files,
    /// One legacy-protocol bridge, talking to the services over gRPC.
    Bridge {
        #[arg(value_enum)]
        name: Bridge,
        #[command(flatten)]
        services: ServiceEndpoints,
    },
    /// Operating Rosetta: grant the admin role, and the admin API for scripts.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Imports a legacy server's database into this node's database (legacy ids kept;
    /// idempotent: a second run changes nothing).
    Import {
        #[arg(value_enum)]
        system: rosetta_import::System,
        /// The legacy database, e.g. mysql://root@127.0.0.1:3306/QQ_Database.
        #[arg(long)]
        from: String,
        /// Where the legacy server kept uploaded files (systems that stored files).
        #[arg(long)]
        files_dir: Option<PathBuf>,
        /// Read, plan and count everything, then roll back.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Where a bridge finds the services.
#[derive(clap::Args)]
struct ServiceEndpoints {
    /// The gRPC endpoint of every service not given its own address below (e.g. a
    /// `rosetta all`, or a proxy routing by service name).
    #[arg(
        long,
        env = "ROSETTA_GRPC_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    grpc: String,
    /// The account service's endpoint, when it runs apart.
    #[arg(long, env = "ROSETTA_GRPC_ACCOUNT")]
    grpc_account: Option<String>,
    /// The social service's endpoint, when it runs apart.
    #[arg(long, env = "ROSETTA_GRPC_SOCIAL")]
    grpc_social: Option<String>,
    /// The messaging service's endpoint, when it runs apart.
    #[arg(long, env = "ROSETTA_GRPC_MESSAGING")]
    grpc_messaging: Option<String>,
    /// The files service's endpoint, when it runs apart.
    #[arg(long, env = "ROSETTA_GRPC_FILES")]
    grpc_files: Option<String>,
}

impl ServiceEndpoints {
    fn resolve(self) -> Endpoints {
        let or_default = |endpoint: Option<String>| endpoint.unwrap_or_else(|| self.grpc.clone());
        Endpoints {
            account: or_default(self.grpc_account.clone()),
            social: or_default(self.grpc_social.clone()),
            messaging: or_default(self.grpc_messaging.clone()),
            files: or_default(self.grpc_files.clone()),
        }
    }
}

/// jemalloc instead of glibc's malloc: a send allocates and frees dozens of small buffers on
/// two or more threads, and glibc's arenas spent about a sixth of the node's CPU on it (free
/// lists, consolidation); jemalloc's per-thread caches make the same work cheap (BENCHMARKS.md,
/// "The allocator").
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How long the runtime waits at exit for work a bounded shutdown step left behind (a
/// blocking call on a dead peer): the process exits rather than hang on it.
const LEFTOVERS: Duration = Duration::from_secs(1);

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(run());
    runtime.shutdown_timeout(LEFTOVERS);
    result
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref(), &cli.overrides)?;
    let role = match cli.command {
        Command::All => Role::All,
        Command::Account => Role::Account,
        Command::Social => Role::Social,
        Command::Messaging => Role::Messaging,
        Command::Files => Role::Files,
        Command::Bridge { name, services } => {
            let _telemetry =
                telemetry::init(&config, &format!("rosetta-bridge-{name:?}").to_lowercase())?;
            metrics::install(&config)?;
            limits::raise_descriptor_limit();
            let backend = with_bridge_key(
                Backend::connect_each(&services.resolve())?,
                rosetta_node::node::bridge_key(&config, false)?.map(|key| key.to_hex()),
            )?;
            let mut bridges = bridges::Running::new();
            bridges
                .start(name, &config.bridges, backend.clone())
                .await?;
            let process = rosetta_node::heartbeat::process(config.status_interval());
            bridges.report(backend, &process, config.status_interval());
            rosetta_kit::server::shutdown_signal().await;
            bridges.stop(config.shutdown.sessions()).await;
            tracing::info!("rosetta stopped");
            return Ok(());
        }
        Command::Admin(command) => return admin::run(command, &config).await,
        Command::Import {
            system,
            from,
            files_dir,
            dry_run,
        } => {
            let _telemetry = telemetry::init(&config, "rosetta-import")?;
            let summary = rosetta_import::run(&rosetta_import::Options {
                system,
                from,
                to: config.database_url(),
                store: Some(rosetta_files::open_store(
                    &config.files.store,
                    &config.data_dir,
                )?),
                files_dir,
                dry_run,
            })
            .await?;
            print!("{summary}");
            return Ok(());
        }
    };
    let _telemetry = telemetry::init(&config, &format!("rosetta-{role:?}").to_lowercase())?;
    metrics::install(&config)?;
    limits::raise_descriptor_limit();
    let node = Node::build(&config, role, Plugins::default()).await?;
    let listener = TcpListener::bind(config.grpc_listen).await?;
    let grpc_addr = listener.local_addr()?;
    tracing::info!(?role, addr = %grpc_addr, "rosetta starting");

    let mut bridges = bridges::Running::new();
    if role == Role::All {
        let backend = with_bridge_key(
            Backend::connect_lazy(&format!("http://{}", loopback(grpc_addr)))?,
            rosetta_node::node::bridge_key(&config, true)?.map(|key| key.to_hex()),
        )?;
        for bridge in Bridge::ALL
            .into_iter()
            .filter(|b| b.enabled(&config.bridges))
        {
            bridges
                .start(bridge, &config.bridges, backend.clone())
                .await?;
        }
        bridges.report(backend, &node.process, config.status_interval());
    }
    // The web client, served next to the services it calls.
    let web = match role {
        Role::All => WebServer::start(&config.web_listen, &config.grpc_web, grpc_addr).await?,
        _ => None,
    };
    // The services serve until the bridges have signed their users out; then the node drains
    // its calls and stops its background tasks.
    let sessions_grace = config.shutdown.sessions();
    let calls_grace = config.shutdown.calls();
    let shutdown = async move {
        rosetta_kit::server::shutdown_signal().await;
        if let Some(web) = web {
            web.stop(calls_grace).await;
        }
        bridges.stop(sessions_grace).await;
    };
    node.serve(listener, shutdown).await?;
    tracing::info!("rosetta stopped");
    Ok(())
}

/// `backend` sending the bridge credential, when there is one.
fn with_bridge_key(backend: Backend, key_hex: Option<String>) -> anyhow::Result<Backend> {
    match key_hex {
        Some(key) => Ok(backend.with_bridge_key(&key)?),
        None => {
            tracing::warn!(
                "no bridge key (bridge_key_file, or bridge.key in the data dir): the account \
                 service counts every client of this bridge as the bridge's own address"
            );
            Ok(backend)
        }
    }
}

/// The address to reach a listener bound to `addr` from this host.
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => ([127, 0, 0, 1], addr.port()).into(),
        ip if ip.is_unspecified() => (std::net::Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}
