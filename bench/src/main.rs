//! `rosetta-bench`: load scenarios against a running rosetta (gRPC and the legacy bridges),
//! with latency distributions, an exactly-once delivery check, a live line, a summary table,
//! `--json` output and an SVG chart of the latencies (`--plot`). Only loopback targets unless
//! `--allow-remote`.

mod bridgeconv;
mod cloudchat;
mod connect;
mod conversation;
mod dpc;
mod flood;
mod grpc;
mod grpc_idle;
mod imps;
mod ledger;
mod live;
mod login;
mod ourchat;
mod pipe;
mod plot;
mod push_probe;
mod report;
mod seed;
mod soak;
mod target;
mod ws;

use std::{process::ExitCode, time::Duration};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

use crate::report::Report;

#[derive(Debug, Parser)]
#[command(
    name = "rosetta-bench",
    about = "Load scenarios and measurements for rosetta"
)]
struct Cli {
    /// gRPC endpoint of the node (or the node serving account/messaging in a split set-up).
    #[arg(long, global = true, default_value = "http://127.0.0.1:50051")]
    grpc: String,
    /// The account service, when it runs apart (default: --grpc).
    #[arg(long, global = true)]
    grpc_account: Option<String>,
    /// The social service, when it runs apart (default: --grpc).
    #[arg(long, global = true)]
    grpc_social: Option<String>,
    /// The messaging service, when it runs apart (default: --grpc).
    #[arg(long, global = true)]
    grpc_messaging: Option<String>,
    /// Allow targets that are not loopback addresses.
    #[arg(long, global = true)]
    allow_remote: bool,
    /// Print the report as JSON on stdout instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// No live line on stderr.
    #[arg(long, global = true)]
    quiet: bool,
    /// Also write the run's latency distributions as an SVG chart to this file.
    #[arg(long, global = true, value_name = "FILE")]
    plot: Option<std::path::PathBuf>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Scenario 1: private and group messages over gRPC with Subscribe streams.
    Conversation(conversation::Options),
    /// Scenario 2: the conversation through a legacy bridge, against gRPC in the same run.
    BridgeConversation(bridgeconv::Options),
    /// Scenario 3: idle logged-in legacy connections and the server's RSS per connection.
    Soak(soak::Options),
    /// Scenario 4: password logins/s and token-authenticated calls/s.
    LoginStorm(login::Options),
    /// Scenario 5: 1,000 logins at once; the server's RSS growth and a bystander's p99.
    LoginFlood(flood::Options),
    /// Idle native gRPC clients, one HTTP/2 connection and Subscribe each; RSS per client.
    GrpcIdle(grpc_idle::Options),
    /// Bench-only: writes users straight into a node's database with cheap verifiers, for
    /// `soak --seeded` (never on a database real users share).
    Seed(seed::Options),
}

/// Parses `500ms`, `30s`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?}"))?;
    let secs = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("bad duration unit in {text:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("bad duration {text:?}"))
}

/// The service endpoints, each checked against the loopback rule.
fn endpoints(cli: &Cli) -> anyhow::Result<grpc::Endpoints> {
    let check = |url: &Option<String>| {
        target::grpc_target(url.as_ref().unwrap_or(&cli.grpc), cli.allow_remote)
    };
    Ok(grpc::Endpoints {
        account: check(&cli.grpc_account)?,
        social: check(&cli.grpc_social)?,
        messaging: check(&cli.grpc_messaging)?,
    })
}

async fn run(cli: &Cli) -> anyhow::Result<Report> {
    let hidden = cli.json || cli.quiet;
    let services = endpoints(cli)?;
    match &cli.scenario {
        Scenario::Conversation(opts) => conversation::run(&services, opts, hidden).await,
        Scenario::BridgeConversation(opts) => {
            let addr = opts
                .addr
                .as_deref()
                .unwrap_or_else(|| opts.bridge.default_addr());
            let addr = target::socket_target(addr, cli.allow_remote)?;
            target::socket_target(&opts.dpc_auth.to_string(), cli.allow_remote)?;
            bridgeconv::run(&services, addr, opts, hidden).await
        }
        Scenario::Soak(opts) => {
            let addr = opts
                .addr
                .as_deref()
                .unwrap_or_else(|| opts.bridge.default_addr());
            let addr = target::socket_target(addr, cli.allow_remote)?;
            target::socket_target(&opts.dpc_auth.to_string(), cli.allow_remote)?;
            soak::run(&services, addr, opts, hidden).await
        }
        Scenario::LoginStorm(opts) => login::run(&services, opts, hidden).await,
        Scenario::LoginFlood(opts) => flood::run(&services, opts).await,
        Scenario::GrpcIdle(opts) => grpc_idle::run(&services, opts, hidden).await,
        Scenario::Seed(opts) => seed::run(opts, hidden).await,
    }
}

fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).context("cannot encode the report")?
        );
    } else {
        report.print_table();
    }
    Ok(())
}

/// The node's allocator (see the `rosetta` binary), so that the load generator sharing its
/// cores costs what a well-built client would.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("rosetta-bench: cannot start the runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(async {
        let report = run(&cli).await?;
        print(&report, cli.json)?;
        if let Some(path) = &cli.plot {
            std::fs::write(path, plot::svg(&report))
                .with_context(|| format!("cannot write the plot to {}", path.display()))?;
        }
        if !report.failures.is_empty() {
            bail!("{} check(s) failed", report.failures.len());
        }
        anyhow::Ok(())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rosetta-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
