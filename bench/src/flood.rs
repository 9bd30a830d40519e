//! Scenario 5: a login flood. Measures the server's idle RSS, fires `--logins` password logins
//! all at once (unknown users and known users in turn), and reports the RSS growth and the
//! latency of a bystander's token-checked calls (`GetMyProfile` in a loop) during the flood.
//! Issue 18's target: RSS after the flood ≤ idle + hash workers × 20 MiB + 50 MiB, and the
//! bystander's p99 < 50 ms.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rosetta_proto::{
    Reason,
    account::v1::{
        GetMyProfileRequest, LoginRequest, account_service_client::AccountServiceClient,
    },
};
use tokio::task::JoinSet;
use tonic::transport::Channel;

use anyhow::Context as _;

use crate::{
    connect, grpc,
    report::{Recorder, Report},
    soak::rss_kib,
};

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Process id of the server (`rosetta all`), for its RSS.
    #[arg(long)]
    pub server_pid: u32,
    /// Logins fired at once.
    #[arg(long, default_value_t = 1000)]
    pub logins: usize,
    /// Registered users the known-user logins cycle through (every other login names an
    /// unknown user).
    #[arg(long, default_value_t = 16)]
    pub users: usize,
    /// HTTP/2 connections the flood is spread over (the bystander has its own).
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Source addresses 127.0.0.1 … 127.0.0.<n> the flood's connections are spread over
    /// (loopback only), for a server whose per-source login limit would otherwise refuse it.
    #[arg(long, default_value_t = 1)]
    pub sources: usize,
    /// The server's `account.hash_workers` (for the RSS target; default: this machine's cores).
    #[arg(long)]
    pub hash_workers: Option<usize>,
    /// Bystander p99 target.
    #[arg(long, default_value = "50ms", value_parser = crate::parse_duration)]
    pub p99_target: Duration,
}

/// How the flood's logins were answered.
#[derive(Default)]
struct Outcomes {
    ok: AtomicU64,
    bad_credentials: AtomicU64,
    throttled: AtomicU64,
    other: AtomicU64,
    first_other: std::sync::Mutex<Option<String>>,
}

impl Outcomes {
    fn count(&self, answer: Result<(), tonic::Status>) {
        let reason = answer.as_ref().err().and_then(Reason::of);
        let slot = match (&answer, reason) {
            (Ok(()), _) => &self.ok,
            (_, Some(Reason::BadCredentials)) => &self.bad_credentials,
            (_, Some(Reason::Throttled)) => &self.throttled,
            (Err(status), _) => {
                if let Ok(mut first) = self.first_other.lock() {
                    first.get_or_insert_with(|| status.to_string());
                }
                &self.other
            }
        };
        slot.fetch_add(1, Ordering::Relaxed);
    }
}

/// Calls `GetMyProfile` back to back until `stop`, recording each latency.
async fn bystander(channel: Channel, token: String, stop: Arc<AtomicBool>) -> (Recorder, u64) {
    let mut client = AccountServiceClient::new(channel);
    let (mut latency, mut errors) = (Recorder::new(), 0);
    while !stop.load(Ordering::Relaxed) {
        let Ok(request) = grpc::authed(GetMyProfileRequest::default(), &token) else {
            break;
        };
        let began = Instant::now();
        match client.get_my_profile(request).await {
            Ok(_) => latency.record(began.elapsed()),
            Err(_) => errors += 1,
        }
    }
    (latency, errors)
}

/// Reads the server's RSS every 20 ms until `stop`; returns the highest reading (KiB).
async fn peak_rss(pid: u32, stop: Arc<AtomicBool>) -> u64 {
    let mut peak = 0;
    while !stop.load(Ordering::Relaxed) {
        peak = peak.max(rss_kib(pid).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    peak
}

/// The flood's connections, bound round-robin to `--sources` loopback source addresses.
async fn connect_from_sources(url: &str, opts: &Options) -> anyhow::Result<Vec<Channel>> {
    let target = url
        .trim_start_matches("http://")
        .parse::<std::net::SocketAddr>()
        .ok();
    let mut channels = Vec::new();
    for i in 0..opts.connections.max(1) {
        let source = target.and_then(|t| connect::source_for(i, opts.sources, t));
        let channel = Channel::from_shared(url.to_owned())?
            .tcp_nodelay(true)
            .local_address(source)
            .connect()
            .await
            .with_context(|| format!("cannot connect to {url} from {source:?}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

fn flood_request(n: usize, prefix: &str, users: &[grpc::User]) -> LoginRequest {
    if n.is_multiple_of(2) {
        grpc::login_request(&format!("{prefix}-nobody-{n}"))
    } else {
        grpc::login_request(&users[n / 2 % users.len()].name)
    }
}

pub async fn run(endpoints: &grpc::Endpoints, opts: &Options) -> anyhow::Result<Report> {
    let idle_kib = rss_kib(opts.server_pid)?;
    let channels = connect_from_sources(&endpoints.account, opts).await?;
    let prefix = grpc::run_prefix();
    let users =
        Arc::new(grpc::register_users(&channels, &prefix, opts.users.max(1), true, 2).await?);
    let registered_kib = rss_kib(opts.server_pid)?;

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = grpc::connect(&endpoints.account, 1).await?.remove(0);
    let bystanding = tokio::spawn(bystander(watcher, users[0].token.clone(), stop.clone()));
    let peak = tokio::spawn(peak_rss(opts.server_pid, stop.clone()));

    let outcomes = Arc::new(Outcomes::default());
    let began = Instant::now();
    let mut flood = JoinSet::new();
    for n in 0..opts.logins {
        let mut client = AccountServiceClient::new(channels[n % channels.len()].clone());
        let request = flood_request(n, &prefix, &users);
        let outcomes = outcomes.clone();
        flood.spawn(async move { outcomes.count(client.login(request).await.map(drop)) });
    }
    while flood.join_next().await.is_some() {}
    let flood_secs = began.elapsed().as_secs_f64();
    let after_kib = rss_kib(opts.server_pid)?;
    stop.store(true, Ordering::Relaxed);
    let (latency, bystander_errors) = bystanding.await?;
    let peak_kib = peak.await?.max(after_kib);

    let workers = opts
        .hash_workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let target_kib = idle_kib + workers as u64 * 20 * 1024 + 50 * 1024;
    let mut report = Report::new("login-flood", &endpoints.account);
    report.param("logins", opts.logins);
    report.param("known users", users.len());
    report.param("connections", opts.connections);
    report.param("sources", opts.sources.clamp(1, 254));
    report.param("hash workers", workers);
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    report.counter("logins ok", c(&outcomes.ok), "");
    report.counter("BAD_CREDENTIALS", c(&outcomes.bad_credentials), "");
    report.counter("THROTTLED", c(&outcomes.throttled), "");
    report.counter("other errors", c(&outcomes.other), "");
    report.counter("flood duration", flood_secs, "s");
    let mib = |kib: u64| kib as f64 / 1024.0;
    report.counter("RSS idle", mib(idle_kib), "MiB");
    report.counter("RSS after registering", mib(registered_kib), "MiB");
    report.counter("RSS peak in flood", mib(peak_kib), "MiB");
    report.counter("RSS after flood", mib(after_kib), "MiB");
    report.counter("RSS target", mib(target_kib), "MiB");
    report.counter("bystander errors", bystander_errors as f64, "");
    report.latency("bystander GetMyProfile", &latency);
    let p99 = latency.summary("").p99_ms;
    if after_kib > target_kib {
        report.fail(format!(
            "RSS after the flood {:.0} MiB > target {:.0} MiB",
            mib(after_kib),
            mib(target_kib)
        ));
    }
    if p99 >= opts.p99_target.as_secs_f64() * 1000.0 {
        report.fail(format!("bystander p99 {p99:.1} ms ≥ {:?}", opts.p99_target));
    }
    if bystander_errors > 0 || outcomes.other.load(Ordering::Relaxed) > 0 {
        let first = outcomes.first_other.lock().ok().and_then(|f| f.clone());
        report.fail(format!(
            "{bystander_errors} bystander call(s) and {} login(s) failed otherwise; first: {}",
            c(&outcomes.other),
            first.unwrap_or_default()
        ));
    }
    Ok(report)
}
