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
    imps, live, ourchat, pipe, push_probe,
    report::{Recorder, Report},
    seed,
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
    /// Process id of the node behind a stand-alone bridge (`rosetta all`), for its RSS too.
    #[arg(long)]
    pub node_pid: Option<u32>,
    /// Connection counts at which to also read the RSS (e.g. `10000,50000`); the half and
    /// the whole are always read.
    #[arg(long, value_delimiter = ',')]
    pub checkpoints: Vec<usize>,
    /// Log in users `<prefix>-0 …` that `rosetta-bench seed --prefix <prefix>` wrote instead
    /// of registering fresh ones.
    #[arg(long, value_name = "PREFIX")]
    pub seeded: Option<String>,
    /// With --seeded: the first user's number (a soak process of a multi-process run takes
    /// its own range).
    #[arg(long, default_value_t = 0)]
    pub first: usize,
    /// Created once every connection is logged in (a multi-process run waits for it).
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<std::path::PathBuf>,
    /// The hold ends as soon as this file exists (--hold is then the longest it lasts).
    #[arg(long, value_name = "FILE")]
    pub hold_until_file: Option<std::path::PathBuf>,
    /// Pipe only: at the end of the hold, push this many private messages over gRPC to random
    /// idle users and time their arrival on the idle sockets.
    #[arg(long, default_value_t = 0)]
    pub pushes: usize,
    /// Pushes per second.
    #[arg(long, default_value_t = 20.0)]
    pub push_rate: f64,
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

/// Read buffer of each soak pipe connection (pushes to idle users are short).
const PIPE_READ_BUFFER: usize = 4 * 1024;

/// Opens and logs in one connection of the bridge; pipe pushes go to `on_push`.
async fn open(
    opts: &Options,
    addr: SocketAddr,
    source: Option<std::net::IpAddr>,
    user: &User,
    on_push: Arc<dyn Fn(pipe::Push) + Send + Sync>,
) -> anyhow::Result<Held> {
    let name = user.name.as_str();
    Ok(match opts.bridge {
        Bridge::Pipe => Held::Pipe(
            pipe::Conn::login_with_buffer(addr, source, name, PASSWORD, on_push, PIPE_READ_BUFFER)
                .await?,
        ),
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

/// How long allocations settle before a reading.
const SETTLE: Duration = Duration::from_secs(2);

/// The users to log in: seeded ones, or fresh registrations.
async fn users(endpoints: &Endpoints, opts: &Options) -> anyhow::Result<Vec<User>> {
    if let Some(prefix) = &opts.seeded {
        return Ok((opts.first..opts.first + opts.connections)
            .map(|i| User {
                id: 0,
                name: seed::name(prefix, i),
                ocid: seed::ocid(prefix, i),
                token: String::new(),
            })
            .collect());
    }
    let channels = grpc::connect(&endpoints.account, 4).await?;
    let prefix = grpc::run_prefix();
    grpc::register_users(&channels, &prefix, opts.connections, false, 8).await
}

/// The RSS of the bridge and the node with `connections` held.
struct Reading {
    connections: usize,
    server: Option<u64>,
    node: Option<u64>,
}

fn read(opts: &Options, connections: usize) -> anyhow::Result<Reading> {
    Ok(Reading {
        connections,
        server: opts.server_pid.map(rss_kib).transpose()?,
        node: opts.node_pid.map(rss_kib).transpose()?,
    })
}

/// Connection counts to read the RSS at: the checkpoints below `n`, the half and `n`.
fn boundaries(n: usize, checkpoints: &[usize]) -> Vec<usize> {
    let mut out: Vec<usize> = checkpoints
        .iter()
        .copied()
        .filter(|&c| c < n)
        .chain([n / 2, n])
        .filter(|&c| c > 0)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// What opening a part of the connections shares.
struct Opener<'a> {
    opts: &'a Options,
    addr: SocketAddr,
    bar: indicatif::ProgressBar,
    errors: Arc<AtomicU64>,
    on_push: Arc<dyn Fn(pipe::Push) + Send + Sync>,
}

impl Opener<'_> {
    /// Opens and logs in `part` (user `offset` first), `--concurrency` at a time.
    async fn open(&self, part: &[User], offset: usize) -> Vec<(Held, Duration)> {
        stream::iter(part.iter().enumerate())
            .map(|(i, user)| {
                let source = source_for(offset + i, self.opts.sources, self.addr);
                async move {
                    let began = Instant::now();
                    let held = open(self.opts, self.addr, source, user, self.on_push.clone()).await;
                    self.bar.inc(1);
                    match held {
                        Ok(held) => Some((held, began.elapsed())),
                        Err(err) => {
                            if self.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                                self.bar.println(format!("first failure: {err:#}"));
                            }
                            None
                        }
                    }
                }
            })
            .buffer_unordered(self.opts.concurrency.max(1))
            .filter_map(|x| async move { x })
            .collect()
            .await
    }
}

fn check(opts: &Options) -> anyhow::Result<()> {
    if opts.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if opts.pushes > 0 && opts.bridge != Bridge::Pipe {
        bail!("--pushes is measured on pipe connections only");
    }
    if opts.first > 0 && opts.seeded.is_none() {
        bail!("--first numbers seeded users: it needs --seeded");
    }
    if opts.pushes > opts.connections {
        bail!("--pushes cannot exceed --connections (one push per idle user)");
    }
    Ok(())
}

pub async fn run(
    endpoints: &Endpoints,
    addr: SocketAddr,
    opts: &Options,
    quiet: bool,
) -> anyhow::Result<Report> {
    check(opts)?;
    let users = users(endpoints, opts).await?;
    let probe = push_probe::Probe::new();
    let opener = Opener {
        opts,
        addr,
        bar: live::line(Some(opts.connections as u64), quiet),
        errors: Arc::new(AtomicU64::new(0)),
        on_push: probe.on_push(),
    };
    opener
        .bar
        .set_message(format!("{} logins", opts.bridge.name()));
    let mut login = Recorder::new();
    let mut held: Vec<Held> = Vec::with_capacity(users.len());
    // Readings at the boundaries; the growth over the second half is the marginal cost of a
    // connection, free of the allocator's one-off growth under the login storm (argon2id
    // buffers of 19 MiB each, kept by the allocator after the first logins).
    let mut readings = vec![read(opts, 0)?];
    let bounds = boundaries(users.len(), &opts.checkpoints);
    let start = Instant::now();
    let mut from = 0;
    for &to in &bounds {
        for (conn, took) in opener.open(&users[from..to], from).await {
            login.record(took);
            held.push(conn);
        }
        // Let allocations settle before reading.
        tokio::time::sleep(SETTLE).await;
        readings.push(read(opts, held.len())?);
        from = to;
    }
    let login_secs = start.elapsed().as_secs_f64() - SETTLE.as_secs_f64() * bounds.len() as f64;
    if let Some(path) = &opts.ready_file {
        std::fs::write(path, format!("{}\n", held.len()))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }

    let mut report = Report::new(&format!("{}-soak", opts.bridge.name()), &addr.to_string());
    opener.bar.set_message("holding");
    hold(endpoints, opts, &mut held, &probe, &mut report).await?;
    let rss_end = read(opts, held.len())?;
    let alive = held.iter().filter(|h| h.is_open()).count();
    opener.bar.finish_and_clear();

    report.param("connections", opts.connections);
    report.param("sources", opts.sources.clamp(1, 254));
    report.param("hold_s", opts.hold.as_secs_f64());
    report.param("seeded", opts.seeded.is_some());
    let errors = opener.errors.load(Ordering::Relaxed);
    report.counter("logged in", held.len() as f64, "");
    report.counter("login errors", errors as f64, "");
    let rate = held.len() as f64 / login_secs.max(1e-9);
    report.counter("login rate", rate, "login/s");
    report.counter("alive after hold", alive as f64, "");
    let half = bounds
        .iter()
        .position(|&b| b == users.len() / 2)
        .map(|i| i + 1);
    report_readings(&mut report, &readings, half);
    if let Some(end) = rss_end.server {
        report.counter("server RSS after hold", end as f64, "KiB");
    }
    if let Some(end) = rss_end.node {
        report.counter("node RSS after hold", end as f64, "KiB");
    }
    report.latency("login", &login);
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

/// Holds the connections for `--hold` (or until `--hold-until-file` exists), then pushes the
/// probes (after the holder's readings: the probe's set-up hashes passwords). IMPS clients heartbeat every 20 s, as the real client does, so that the
/// bridge keeps them online.
async fn hold(
    endpoints: &Endpoints,
    opts: &Options,
    held: &mut [Held],
    probe: &Arc<push_probe::Probe>,
    report: &mut Report,
) -> anyhow::Result<()> {
    const HEARTBEAT: Duration = Duration::from_secs(20);
    const LOOK_FOR_FILE: Duration = Duration::from_millis(500);
    let hold_end = Instant::now() + opts.hold;
    let mut next_heartbeat = Instant::now() + HEARTBEAT;
    loop {
        let now = Instant::now();
        if now >= hold_end || opts.hold_until_file.as_ref().is_some_and(|f| f.exists()) {
            break;
        }
        let mut step = hold_end.min(next_heartbeat).saturating_duration_since(now);
        if opts.hold_until_file.is_some() {
            step = step.min(LOOK_FOR_FILE);
        }
        tokio::time::sleep(step).await;
        if opts.bridge == Bridge::Imps && Instant::now() >= next_heartbeat {
            next_heartbeat += HEARTBEAT;
            for conn in held.iter_mut() {
                if let Held::Imps(conn) = conn {
                    // A failed heartbeat shows up in the alive count.
                    let _ = conn.heartbeat().await;
                }
            }
        }
    }
    if opts.pushes > 0 {
        let targets = push_targets(held, opts.pushes)?;
        push_probe::run(endpoints, probe, &targets, opts.push_rate, report).await?;
    }
    Ok(())
}

/// `count` distinct pipe users picked at random among the held connections.
fn push_targets(held: &[Held], count: usize) -> anyhow::Result<Vec<i64>> {
    let ids: Vec<i64> = held
        .iter()
        .filter_map(|h| match h {
            Held::Pipe(conn) => conn.uid.parse().ok(),
            _ => None,
        })
        .collect();
    if ids.len() < count {
        bail!("{} pipe users held, {count} pushes asked", ids.len());
    }
    let mut rng = rand::rng();
    Ok(rand::seq::index::sample(&mut rng, ids.len(), count)
        .into_iter()
        .map(|i| ids[i])
        .collect())
}

/// The RSS at every reading, the growth per connection between readings, and the whole and
/// second-half figures (`half`: the index of the reading at half the connections).
fn report_readings(report: &mut Report, readings: &[Reading], half: Option<usize>) {
    for (name, pick) in [
        (
            "server",
            (|r: &Reading| r.server) as fn(&Reading) -> Option<u64>,
        ),
        ("node", |r: &Reading| r.node),
    ] {
        let Some(before) = readings.first().and_then(pick) else {
            continue;
        };
        report.counter(&format!("{name} RSS before"), before as f64, "KiB");
        for pair in readings.windows(2) {
            let (Some(a), Some(b)) = (pick(&pair[0]), pick(&pair[1])) else {
                continue;
            };
            let n = pair[1].connections;
            report.counter(&format!("{name} RSS at {n}"), b as f64, "KiB");
            let added = n.saturating_sub(pair[0].connections).max(1);
            let per = (b as f64 - a as f64) / added as f64;
            let label = format!("{name} KiB/conn {}..{n}", pair[0].connections);
            report.counter(&label, per, "KiB");
        }
        let last = readings.last().expect("a reading before and one after");
        if let Some(after) = pick(last) {
            let whole = (after as f64 - before as f64) / last.connections.max(1) as f64;
            report.counter(&format!("{name} KiB per connection, all"), whole, "KiB");
        }
        if let Some((mid, after)) = half
            .and_then(|i| readings.get(i))
            .and_then(|r| Some((r, pick(r)?)))
            .zip(pick(last))
        {
            let added = last.connections.saturating_sub(mid.0.connections).max(1);
            let marginal = (after as f64 - mid.1 as f64) / added as f64;
            report.counter(
                &format!("{name} KiB per connection, 2nd half"),
                marginal,
                "KiB",
            );
        }
    }
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

    #[test]
    fn readings_at_checkpoints_half_and_whole() {
        assert_eq!(boundaries(100, &[10, 50, 500]), vec![10, 50, 100]);
        assert_eq!(boundaries(100, &[]), vec![50, 100]);
        assert_eq!(boundaries(1, &[]), vec![1]);
    }
}
