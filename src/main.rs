//! `rosetta`: one binary, one role (or all of them) per process.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use rosetta::{Config, Node, Role, config::Overrides, node::Plugins, telemetry};
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
    /// Every service in one process (SQLite and an in-process event bus by default).
    All,
    /// The account service: registration, login, tokens, profiles, verification codes.
    Account,
    /// The social service: friends, friend requests, groups, join requests.
    Social,
    /// The messaging service: messages, history, read state, event stream, presence.
    Messaging,
    /// The files service: chunked upload and download, folders, shared listings.
    Files,
}

impl Command {
    fn role(&self) -> Role {
        match self {
            Command::All => Role::All,
            Command::Account => Role::Account,
            Command::Social => Role::Social,
            Command::Messaging => Role::Messaging,
            Command::Files => Role::Files,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref(), &cli.overrides)?;
    let role = cli.command.role();
    let _telemetry = telemetry::init(&config, &format!("rosetta-{role:?}").to_lowercase())?;
    let node = Node::build(&config, role, Plugins::default()).await?;
    let listener = TcpListener::bind(config.grpc_listen).await?;
    tracing::info!(?role, addr = %config.grpc_listen, "rosetta starting");
    node.serve(listener, rosetta_kit::server::shutdown_signal())
        .await?;
    tracing::info!("rosetta stopped");
    Ok(())
}
