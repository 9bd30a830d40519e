//! `grpc-idle`: many native gRPC clients, each on its own HTTP/2 connection, each holding a
//! `Subscribe` stream open and reading nothing; the server's resident memory before, after
//! the first half and after all of them tells what one idle client (connection + stream)
//! costs the server.
//!
//! A login runs argon2id on the server, so the clients do not log in one by one: `--users`
//! users are registered and logged in once each, and the clients use their access tokens
//! round-robin (client `i` streams as user `i % users`). A user with several streams costs the
//! server one user entry more than a stream does, so the marginal cost per client is that of
//! a connection and a stream; with `--users` equal to `--clients` it includes the user entry.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use futures::{FutureExt as _, StreamExt as _, stream};
use rosetta_proto::messaging::v1::{
    SubscribeRequest, SubscribeResponse, messaging_service_client::MessagingServiceClient,
    subscribe_response::Item,
};
use tonic::{
    Streaming,
    transport::{Channel, Endpoint, Uri},
};

use crate::{
    connect::source_for,
    grpc::{self, Endpoints},
    live,
    report::{Recorder, Report},
    soak::rss_kib,
};

/// Longest wait for one client's connection, or for its stream to be caught up.
const PATIENCE: Duration = Duration::from_secs(30);
/// Pause before each memory reading, for the server's allocations to settle.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Clients to open, each with its own HTTP/2 connection and `Subscribe` stream.
    #[arg(long, default_value_t = 10_000)]
    pub clients: usize,
    /// Users the clients stream as (each registered and logged in once; tokens shared).
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Source addresses 127.0.0.1 … 127.0.0.<n> the connections are spread over.
    #[arg(long, default_value_t = 8)]
    pub sources: usize,
    /// Process id of the server holding the streams (the messaging service's), for its RSS.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// How long to hold the clients once all are streaming.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    pub hold: Duration,
    /// Clients connecting at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Open the connections only, without a stream: the connection's share of the cost.
    #[arg(long)]
    pub connect_only: bool,
}

/// One idle client: its connection (inside the client) and its open stream, if any.
struct Held {
    _client: MessagingServiceClient<Channel>,
    stream: Option<Streaming<SubscribeResponse>>,
}

impl Held {
    /// Whether the stream is still open (nothing is expected on it while idle).
    fn is_open(&mut self) -> bool {
        let Some(stream) = &mut self.stream else {
            return true;
        };
        !matches!(stream.message().now_or_never(), Some(Ok(None) | Err(_)))
    }
}

/// Connects from `source`, subscribes with `token` and waits until the stream is caught up,
/// so that the server's side of it is complete when the memory is read.
async fn open(
    endpoint: &Endpoint,
    source: Option<IpAddr>,
    token: Option<&str>,
) -> anyhow::Result<Held> {
    let channel = endpoint
        .clone()
        .local_address(source)
        .connect()
        .await
        .context("cannot connect")?;
    let mut client = MessagingServiceClient::new(channel);
    let Some(token) = token else {
        return Ok(Held {
            _client: client,
            stream: None,
        });
    };
    let mut stream = tokio::time::timeout(
        PATIENCE,
        client.subscribe(grpc::authed(SubscribeRequest::default(), token)?),
    )
    .await
    .context("Subscribe not answered in time")?
    .context("Subscribe refused")?
    .into_inner();
    loop {
        let item = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .context("no CaughtUp in time")?
            .context("stream failed")?
            .context("stream ended before CaughtUp")?;
        if matches!(item.item, Some(Item::CaughtUp(_))) {
            return Ok(Held {
                _client: client,
                stream: Some(stream),
            });
        }
    }
}

/// The loopback address the messaging URL names, for spreading over source addresses.
fn target_addr(url: &str) -> Option<SocketAddr> {
    let uri: Uri = url.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = if host == "localhost" {
        IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse().ok()?
    };
    Some(SocketAddr::new(ip, uri.port_u16().unwrap_or(80)))
}

pub async fn run(endpoints: &Endpoints, opts: &Options, quiet: bool) -> anyhow::Result<Report> {
    if opts.clients == 0 || opts.users == 0 {
        bail!("--clients and --users must be at least 1");
    }
    let url = endpoints.messaging.clone();
    let endpoint = Endpoint::from_shared(url.clone())
        .with_context(|| format!("bad URL {url}"))?
        .tcp_nodelay(true)
        .connect_timeout(PATIENCE);
    let target = target_addr(&url);
    let channels = grpc::connect(&endpoints.account, 4).await?;
    let prefix = grpc::run_prefix();
    let users = grpc::register_users(&channels, &prefix, opts.users, true, 8).await?;
    drop(channels);
    tokio::time::sleep(SETTLE).await;
    let rss_before = opts.server_pid.map(rss_kib).transpose()?;

    let bar = live::line(Some(opts.clients as u64), quiet);
    bar.set_message("subscribing");
    let errors = Arc::new(AtomicU64::new(0));
    let mut opening = Recorder::new();
    let mut held: Vec<Held> = Vec::with_capacity(opts.clients);
    // Two halves with a reading after each: the second half's growth is the marginal cost,
    // free of one-off growth (pools, the allocator's arenas) under the first connections.
    let half = opts.clients / 2;
    let mut readings = Vec::new();
    for range in [0..half, half..opts.clients] {
        let opened: Vec<(Held, Duration)> = stream::iter(range)
            .map(|i| {
                let source = target.and_then(|t| source_for(i, opts.sources, t));
                let token = users[i % users.len()].token.clone();
                let (bar, errors, endpoint) = (bar.clone(), errors.clone(), &endpoint);
                async move {
                    let began = Instant::now();
                    let token = (!opts.connect_only).then_some(token.as_str());
                    let result = open(endpoint, source, token).await;
                    bar.inc(1);
                    match result {
                        Ok(held) => Some((held, began.elapsed())),
                        Err(err) => {
                            if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                                bar.println(format!("first failure: {err:#}"));
                            }
                            None
                        }
                    }
                }
            })
            .buffer_unordered(opts.concurrency.max(1))
            .filter_map(|x| async move { x })
            .collect()
            .await;
        for (client, took) in opened {
            opening.record(took);
            held.push(client);
        }
        tokio::time::sleep(SETTLE).await;
        readings.push((held.len(), opts.server_pid.map(rss_kib).transpose()?));
    }
    bar.set_message("holding");
    tokio::time::sleep(opts.hold).await;
    let rss_end = opts.server_pid.map(rss_kib).transpose()?;
    let alive = held
        .iter_mut()
        .map(Held::is_open)
        .filter(|open| *open)
        .count();
    bar.finish_and_clear();
    let run = Run {
        streaming: held.len(),
        alive,
        errors: errors.load(Ordering::Relaxed),
        opening,
        rss_before,
        readings,
        rss_end,
    };
    Ok(run.report(opts, &url))
}

/// What one run measured.
struct Run {
    streaming: usize,
    alive: usize,
    errors: u64,
    opening: Recorder,
    rss_before: Option<u64>,
    /// Clients streaming and the server's RSS, after each half.
    readings: Vec<(usize, Option<u64>)>,
    rss_end: Option<u64>,
}

impl Run {
    fn report(&self, opts: &Options, url: &str) -> Report {
        let Run {
            streaming,
            alive,
            errors,
            ref opening,
            rss_before,
            ref readings,
            rss_end,
        } = *self;
        let mut report = Report::new("grpc-idle", url);
        report.param("clients", opts.clients);
        report.param("users", opts.users);
        report.param("sources", opts.sources.clamp(1, 254));
        report.param("hold_s", opts.hold.as_secs_f64());
        report.param("connect_only", opts.connect_only);
        report.counter("streaming", streaming as f64, "");
        report.counter("alive after hold", alive as f64, "");
        if let (Some(before), [(n1, Some(mid)), (n2, Some(after))]) = (rss_before, &readings[..]) {
            report.counter("server RSS before", before as f64, "KiB");
            report.counter("server RSS after 1st half", *mid as f64, "KiB");
            report.counter("server RSS after all", *after as f64, "KiB");
            let whole = (*after as f64 - before as f64) / (*n2).max(1) as f64;
            report.counter("RSS per client, all", whole, "KiB");
            let marginal = (*after as f64 - *mid as f64) / n2.saturating_sub(*n1).max(1) as f64;
            report.counter("RSS per client, 2nd half", marginal, "KiB");
        }
        if let Some(end) = rss_end {
            report.counter("server RSS after hold", end as f64, "KiB");
        }
        report.latency("connect + subscribe", opening);
        if errors > 0 {
            report.fail(format!("{errors} clients failed to subscribe"));
        }
        if alive < streaming {
            report.fail(format!("{} streams ended while idle", streaming - alive));
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets_are_found() {
        assert_eq!(
            target_addr("http://127.0.0.1:51290"),
            Some("127.0.0.1:51290".parse().unwrap())
        );
        assert_eq!(
            target_addr("http://localhost:51290"),
            Some("127.0.0.1:51290".parse().unwrap())
        );
        assert_eq!(target_addr("http://example.com:1"), None);
    }
}
