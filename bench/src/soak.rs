//! Scenario 3: many logged-in, idle legacy connections; the server's resident memory before
//! and after tells the cost of one connection.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use futures::{StreamExt as _, stream};

use crate::{
    bridgeconv::Bridge,
    cloudchat,
    connect::source_for,
    dpc,
    grpc::{self, Endpoints, PASSWORD, User},
    imps, live, ourchat, pipe,
    report::{Recorder, Report},
};

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Which bridge to load.
    #[arg(long, value_enum)]
    pub bridge: Bridge,
    /// Bridge address (default: the protocol's port on 127.0.0.1; DPC: the chat port).
    #[arg(long)]
    pub addr: Option<String>,
    /// DPC only: the auth port users log in on before they open the chat connection.
    #[arg(long, default_value = "127.0.0.1:9999")]
    pub dpc_auth: SocketAddr,
    /// Idle connections to open and log in.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Source addresses 127.0.0.1 … 127.0.0.<n> the connections are spread over.
    #[arg(long, default_value_t = 8)]
    pub sources: usize,
    /// Process id of the server holding the connections (the bridge's process), for its RSS.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// How long to hold the connections open once all are logged in.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    pub hold: Duration,
    /// Logins in flight at once (each runs argon2id on the server).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

/// `VmRSS` of `pid` in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    parse_rss(&status).with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Opens and logs in one connection of the bridge.
async fn open(
    opts: &Options,
    addr: SocketAddr,
    source: Option<std::net::IpAddr>,
    user: &User,
) -> anyhow::Result<Held> {
    let name = user.name.as_str();
    Ok(match opts.bridge {
        Bridge::Pipe => {
            Held::Pipe(pipe::Conn::login(addr, source, name, PASSWORD, Arc::new(|_| {})).await?)
        }
        Bridge::Imps => {
            Held::Imps(imps::Conn::login(addr, source, name, PASSWORD, Arc::new(|_| {})).await?)
        }
        Bridge::Ourchat => Held::Ourchat(
            ourchat::Conn::login(addr, source, &user.ocid, PASSWORD, Arc::new(|_| {})).await?,
        ),
        Bridge::Cloudchat => Held::Cloudchat(
            cloudchat::Conn::login(addr, source, name, PASSWORD, Arc::new(|_| {})).await?,
        ),
        Bridge::Dpc => Held::Dpc(
            dpc::Conn::login(
                opts.dpc_auth,
                addr,
                source,
                name,
                PASSWORD,
                Arc::new(|_| {}),
            )
            .await?,
        ),
    })
}

/// A held connection of any protocol.
enum Held {
    Pipe(pipe::Conn),
    Imps(imps::Conn),
    Ourchat(ourchat::Conn),
    Cloudchat(cloudchat::Conn),
    Dpc(dpc::Conn),
}

impl Held {
    fn is_open(&self) -> bool {
        match self {
            Held::Pipe(c) => c.is_open(),
            Held::Imps(c) => c.is_open(),
            Held::Ourchat(c) => c.is_open(),
            Held::Cloudchat(c) => c.is_open(),
            Held::Dpc(c) => c.is_open(),
        }
    }
}

pub async fn run(
    endpoints: &Endpoints,
    addr: SocketAddr,
    opts: &Options,
    quiet: bool,
) -> anyhow::Result<Report> {
    if opts.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let channels = grpc::connect(&endpoints.account, 4).await?;
    let prefix = grpc::run_prefix();
    let users = grpc::register_users(&channels, &prefix, opts.connections, false, 8).await?;
    let rss_before = opts.server_pid.map(rss_kib).transpose()?;

    let bar = live::line(Some(opts.connections as u64), quiet);
    bar.set_message(format!("{} logins", opts.bridge.name()));
    let errors = Arc::new(AtomicU64::new(0));
    let mut login = Recorder::new();
    let mut held: Vec<Held> = Vec::with_capacity(users.len());
    // Two equal halves with a reading after each: the second half's growth is the marginal
    // cost of a connection, free of the allocator's one-off growth under the login storm
    // (argon2id buffers of 19 MiB each, kept by the allocator after the first logins).
    let half = users.len() / 2;
    let mut readings = Vec::new();
    let start = Instant::now();
    for (offset, part) in [(0, &users[..half]), (half, &users[half..])] {
        let opened: Vec<(Held, Duration)> = stream::iter(part.iter().enumerate())
            .map(|(i, user)| {
                let source = source_for(offset + i, opts.sources, addr);
                let (bar, errors) = (bar.clone(), errors.clone());
                async move {
                    let began = Instant::now();
                    let held = open(opts, addr, source, user).await;
                    bar.inc(1);
                    match held {
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
        for (conn, took) in opened {
            login.record(took);
            held.push(conn);
        }
        // Let allocations settle before reading.
        tokio::time::sleep(Duration::from_secs(2)).await;
        readings.push((held.len(), opts.server_pid.map(rss_kib).transpose()?));
    }
    let login_secs = start.elapsed().as_secs_f64() - 2.0 * 2.0;

    // Hold; IMPS clients heartbeat every 20 s, as the real client does, so that the bridge
    // keeps them online.
    bar.set_message("holding");
    let hold_end = Instant::now() + opts.hold;
    while Instant::now() < hold_end {
        let step = hold_end
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(20));
        tokio::time::sleep(step).await;
        if opts.bridge == Bridge::Imps {
            for conn in &mut held {
                if let Held::Imps(conn) = conn {
                    // A failed heartbeat shows up in the alive count below.
                    let _ = conn.heartbeat().await;
                }
            }
        }
    }
    let rss_end = opts.server_pid.map(rss_kib).transpose()?;
    let alive = held.iter().filter(|h| h.is_open()).count();
    bar.finish_and_clear();

    let mut report = Report::new(&format!("{}-soak", opts.bridge.name()), &addr.to_string());
    report.param("connections", opts.connections);
    report.param("sources", opts.sources.clamp(1, 254));
    report.param("hold_s", opts.hold.as_secs_f64());
    report.counter("logged in", held.len() as f64, "");
    report.counter("login errors", errors.load(Ordering::Relaxed) as f64, "");
    report.counter(
        "login rate",
        held.len() as f64 / login_secs.max(1e-9),
        "login/s",
    );
    report.counter("alive after hold", alive as f64, "");
    if let (Some(before), [(n1, Some(mid)), (n2, Some(after))]) = (rss_before, &readings[..]) {
        report.counter("server RSS before", before as f64, "KiB");
        report.counter("server RSS after 1st half", *mid as f64, "KiB");
        report.counter("server RSS after all", *after as f64, "KiB");
        let whole = (*after as f64 - before as f64) / (*n2).max(1) as f64;
        report.counter("RSS per connection, all", whole, "KiB");
        let marginal = (*after as f64 - *mid as f64) / n2.saturating_sub(*n1).max(1) as f64;
        report.counter("RSS per connection, 2nd half", marginal, "KiB");
    }
    if let Some(end) = rss_end {
        report.counter("server RSS after hold", end as f64, "KiB");
    }
    report.latency("login", &login);
    let errors = errors.load(Ordering::Relaxed);
    if errors > 0 {
        report.fail(format!("{errors} logins failed"));
    }
    if alive < held.len() {
        report.fail(format!(
            "{} connections dropped while idle",
            held.len() - alive
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vmrss() {
        let status = "Name:\trosetta\nVmPeak:\t  200 kB\nVmRSS:\t   123456 kB\nThreads: 4\n";
        assert_eq!(parse_rss(status), Some(123_456));
        assert_eq!(parse_rss("Name: x\n"), None);
    }
}
