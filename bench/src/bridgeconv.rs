//! Scenario 2: the conversation workload through a legacy bridge, speaking its wire protocol,
//! next to the same workload over gRPC in the same run, so that the bridge's overhead is one
//! ratio. Private messages between friend pairs; each user sends one message at a time and
//! waits for the acknowledgement, as the legacy clients do. IMPS has no acknowledgement: there
//! a sender waits until its message reached the peer, so its send-ack is the push latency.
//! OurChat (JSON over WebSocket) has no acknowledgement for text either and is driven the same
//! way; CloudChat acknowledges each send (MESSAGE_RECEIVED_SELF) and is driven like pipe.
//! DPC has one room: every line goes to every user of the run, so its gRPC baseline sends
//! every message to one group of all the users. For the protocols without acknowledgements
//! the baseline's senders also wait until the peer has each message (`--until-delivered`),
//! so both sides run the same loop.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{sync::mpsc, task::JoinSet};

use crate::{
    cloudchat,
    connect::source_for,
    conversation::{self, Plan},
    dpc,
    grpc::{Endpoints, PASSWORD, Services},
    imps,
    ledger::Ledger,
    live, ourchat, pipe,
    report::{Recorder, Report},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Bridge {
    Pipe,
    Imps,
    Ourchat,
    Cloudchat,
    Dpc,
}

impl Bridge {
    pub fn name(self) -> &'static str {
        match self {
            Bridge::Pipe => "pipe",
            Bridge::Imps => "imps",
            Bridge::Ourchat => "ourchat",
            Bridge::Cloudchat => "cloudchat",
            Bridge::Dpc => "dpc",
        }
    }

    /// Whether the protocol acknowledges a send (pipe, CloudChat); a sender of the others
    /// waits until its message reached the peer.
    pub fn acknowledges(self) -> bool {
        matches!(self, Bridge::Pipe | Bridge::Cloudchat)
    }

    /// The protocol's port on loopback (DPC: its chat port).
    pub fn default_addr(self) -> &'static str {
        match self {
            Bridge::Pipe => "127.0.0.1:8263",
            Bridge::Imps => "127.0.0.1:1200",
            Bridge::Ourchat => "127.0.0.1:7777",
            Bridge::Cloudchat => "127.0.0.1:14514",
            Bridge::Dpc => "127.0.0.1:9998",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Which bridge to drive.
    #[arg(long, value_enum, default_value = "pipe")]
    pub bridge: Bridge,
    /// Bridge address (default: the protocol's port on 127.0.0.1; DPC: the chat port).
    #[arg(long)]
    pub addr: Option<String>,
    /// DPC only: the auth port users log in on before they open the chat connection.
    #[arg(long, default_value = "127.0.0.1:9999")]
    pub dpc_auth: SocketAddr,
    /// Users taking part (paired into friends); each holds one bridge connection.
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// Stop after this many sends (per side).
    #[arg(long, default_value_t = 2000)]
    pub messages: u64,
    /// Stop sending after this long (per side).
    #[arg(long, default_value = "60s", value_parser = crate::parse_duration)]
    pub duration: Duration,
    /// Target sends per second over all users; 0 sends flat out.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Bytes of text per message (at least the unique marker each message carries).
    #[arg(long, default_value_t = 16)]
    pub text_size: usize,
    /// How long to wait for the last deliveries after the last send.
    #[arg(long, default_value = "15s", value_parser = crate::parse_duration)]
    pub drain_timeout: Duration,
    /// Skip the gRPC run (no ratio).
    #[arg(long)]
    pub no_baseline: bool,
}

/// The text of message `n`: a unique marker padded to `size` bytes; it is the ledger key.
fn text(n: u64, size: usize) -> String {
    let mut text = format!("k{n}.");
    while text.len() < size {
        text.push('x');
    }
    text
}

async fn pipe_run(
    endpoints: &Endpoints,
    addr: SocketAddr,
    opts: &Options,
    quiet: bool,
) -> anyhow::Result<Report> {
    let services = Services::connect(endpoints, 2).await?;
    let plan = Plan::build(&services, opts.users, 0).await?;
    let ledger = Arc::new(Ledger::default());
    let mut conns = Vec::with_capacity(plan.users.len());
    for (i, user) in plan.users.iter().enumerate() {
        let (ledger, me) = (ledger.clone(), user.id);
        let on_push = Arc::new(move |push: pipe::Push| {
            // The bridge may echo one's own message to one's own socket: not a delivery.
            if push.from.parse::<i64>().ok() != Some(me) {
                ledger.deliver(me, &push.data);
            }
        });
        let source = source_for(i, 1, addr);
        conns.push(pipe::Conn::login(addr, source, &user.name, PASSWORD, on_push).await?);
    }

    let users = plan.users.len() as u64;
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let bar = live::line(Some(opts.messages), quiet);
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut senders = JoinSet::new();
    for (u, mut conn) in conns.into_iter().enumerate() {
        let me = plan.users[u].id;
        let peer = plan.users[u ^ 1].id;
        let (ledger, acked, errors, bar, opts) = (
            ledger.clone(),
            acked.clone(),
            errors.clone(),
            bar.clone(),
            opts.clone(),
        );
        senders.spawn(async move {
            let mut ack = Recorder::new();
            let mut first_error = None;
            let mut n = u as u64;
            while n < opts.messages {
                if opts.rate > 0.0 {
                    let due = start + Duration::from_secs_f64(n as f64 / opts.rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                if Instant::now() >= deadline {
                    break;
                }
                let key = text(n, opts.text_size);
                ledger.expect(key.clone(), me, &[peer]);
                let sent = Instant::now();
                match conn.send_private(peer, "20261122000000", &key).await {
                    Ok(()) => {
                        ack.record(sent.elapsed());
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(err) => {
                        ledger.failed(&key);
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert(format!("{err:#}"));
                    }
                }
                bar.inc(1);
                n += users;
            }
            // Keep the connection (and its pushes) until every sender is done.
            (ack, first_error, conn)
        });
    }
    let mut ack = Recorder::new();
    let mut first_error = None;
    let mut keep = Vec::new();
    while let Some(done) = senders.join_next().await {
        let (worker_ack, worker_error, conn) = done?;
        ack.merge(&worker_ack);
        first_error = first_error.or(worker_error);
        keep.push(conn);
    }
    let send_secs = start.elapsed().as_secs_f64();
    bar.set_message("draining");
    ledger.drain(opts.drain_timeout).await;
    let all_secs = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    drop(keep);

    Ok(side_report(
        "pipe",
        addr,
        &ledger,
        &ack,
        acked.load(Ordering::Relaxed),
        (send_secs, all_secs),
        errors.load(Ordering::Relaxed),
        first_error,
    ))
}

/// The counters of one side of the comparison.
#[allow(clippy::too_many_arguments)]
fn side_report(
    name: &str,
    addr: SocketAddr,
    ledger: &Ledger,
    ack: &Recorder,
    acked: u64,
    (send_secs, all_secs): (f64, f64),
    errors: u64,
    first_error: Option<String>,
) -> Report {
    let tally = ledger.tally();
    let mut report = Report::new(&format!("{name}-conversation"), &addr.to_string());
    report.counter("messages sent", acked as f64, "");
    report.counter("send rate", acked as f64 / send_secs.max(1e-9), "msg/s");
    report.counter("deliveries", tally.delivered as f64, "");
    report.counter(
        "delivery rate",
        tally.delivered as f64 / all_secs.max(1e-9),
        "push/s",
    );
    report.counter("send errors", errors as f64, "");
    report.counter("lost", tally.lost as f64, "");
    report.counter("duplicated", tally.duplicated as f64, "");
    report.latency("send-ack", ack);
    report.latency("send-push", &tally.push);
    if tally.lost > 0 {
        report.fail(format!(
            "{name}: {} deliveries lost ({})",
            tally.lost,
            tally.lost_examples.join(", ")
        ));
    }
    if tally.duplicated > 0 {
        report.fail(format!(
            "{name}: {} deliveries duplicated",
            tally.duplicated
        ));
    }
    if errors > 0 {
        report.fail(format!(
            "{name}: {errors} sends failed; first: {}",
            first_error.unwrap_or_default()
        ));
    }
    report
}

/// IMPS: the user name is the only address; a sender waits for its message to reach the peer
/// (the protocol acknowledges nothing), at most [`REACH_WAIT`].
async fn imps_run(
    endpoints: &Endpoints,
    addr: SocketAddr,
    opts: &Options,
    quiet: bool,
) -> anyhow::Result<Report> {
    let services = Services::connect(endpoints, 2).await?;
    let plan = Plan::build(&services, opts.users, 0).await?;
    let ledger = Arc::new(Ledger::default());
    // arrived[u] tells sender u that the peer received one of u's messages.
    let (arrived_tx, arrived_rx) = arrival_channels(plan.users.len());
    let mut conns = Vec::with_capacity(plan.users.len());
    for (i, user) in plan.users.iter().enumerate() {
        let (ledger, me, peer_name) = (ledger.clone(), user.id, plan.users[i ^ 1].name.clone());
        let to_sender = arrived_tx[i ^ 1].clone();
        let on_push = Arc::new(move |push: imps::Push| {
            ledger.deliver(me, &push.text);
            if push.from == peer_name {
                let _ = to_sender.send(push.text);
            }
        });
        conns.push(imps::Conn::login(addr, None, &user.name, PASSWORD, on_push).await?);
    }

    let users = plan.users.len() as u64;
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let bar = live::line(Some(opts.messages), quiet);
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut senders = JoinSet::new();
    for (u, (mut conn, mut arrived)) in conns.into_iter().zip(arrived_rx).enumerate() {
        let me = plan.users[u].id;
        let (peer, peer_name) = (plan.users[u ^ 1].id, plan.users[u ^ 1].name.clone());
        let (ledger, acked, errors, bar, opts) = (
            ledger.clone(),
            acked.clone(),
            errors.clone(),
            bar.clone(),
            opts.clone(),
        );
        senders.spawn(async move {
            let mut ack = Recorder::new();
            let mut first_error = None;
            let mut n = u as u64;
            while n < opts.messages {
                if opts.rate > 0.0 {
                    let due = start + Duration::from_secs_f64(n as f64 / opts.rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                if Instant::now() >= deadline {
                    break;
                }
                let key = text(n, opts.text_size);
                ledger.expect(key.clone(), me, &[peer]);
                let sent = Instant::now();
                let outcome = match conn.send(&peer_name, &key).await {
                    Ok(()) => {
                        if reached_peer(&mut arrived, &key).await {
                            Ok(())
                        } else {
                            Err(format!("{key} did not reach the peer within 30 s"))
                        }
                    }
                    Err(err) => {
                        ledger.failed(&key);
                        Err(format!("{err:#}"))
                    }
                };
                match outcome {
                    Ok(()) => {
                        ack.record(sent.elapsed());
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(err) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert(err);
                    }
                }
                bar.inc(1);
                n += users;
            }
            (ack, first_error, conn)
        });
    }
    let mut ack = Recorder::new();
    let mut first_error = None;
    let mut keep = Vec::new();
    while let Some(done) = senders.join_next().await {
        let (worker_ack, worker_error, conn) = done?;
        ack.merge(&worker_ack);
        first_error = first_error.or(worker_error);
        keep.push(conn);
    }
    let send_secs = start.elapsed().as_secs_f64();
    ledger.drain(opts.drain_timeout).await;
    let all_secs = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let refused: Vec<i32> = keep
        .iter_mut()
        .flat_map(imps::Conn::errors_received)
        .collect();
    drop(keep);
    let mut report = side_report(
        "imps",
        addr,
        &ledger,
        &ack,
        acked.load(Ordering::Relaxed),
        (send_secs, all_secs),
        errors.load(Ordering::Relaxed),
        first_error,
    );
    report.counter("S_ERROR received", refused.len() as f64, "");
    if !refused.is_empty() {
        report.fail(format!("imps: S_ERROR codes received: {refused:?}"));
    }
    Ok(report)
}

/// How long a sender of an unacknowledged protocol waits for its message to reach the peer.
const REACH_WAIT: Duration = Duration::from_secs(30);

/// One channel per user on which the peer's reader reports that user's texts as they
/// arrive: user `u`'s reader sends on `senders[u ^ 1]`, sender `u` waits on `receivers[u]`.
fn arrival_channels(
    users: usize,
) -> (
    Vec<mpsc::UnboundedSender<String>>,
    Vec<mpsc::UnboundedReceiver<String>>,
) {
    (0..users).map(|_| mpsc::unbounded_channel()).unzip()
}

/// Whether `key` arrived on `arrived` within [`REACH_WAIT`].
async fn reached_peer(arrived: &mut mpsc::UnboundedReceiver<String>, key: &str) -> bool {
    let wait = async {
        while let Some(got) = arrived.recv().await {
            if got == key {
                return true;
            }
        }
        false
    };
    matches!(tokio::time::timeout(REACH_WAIT, wait).await, Ok(true))
}

/// The outcome of a send on a protocol without acknowledgements: refused if the write
/// failed, late if the text did not reach the peer within [`REACH_WAIT`].
async fn delivered(
    sent: anyhow::Result<()>,
    arrived: &mut mpsc::UnboundedReceiver<String>,
    key: &str,
) -> Result<(), Missed> {
    if let Err(err) = sent {
        return Err(Missed::Refused(format!("{err:#}")));
    }
    if reached_peer(arrived, key).await {
        Ok(())
    } else {
        Err(Missed::Late("did not reach the peer within 30 s".into()))
    }
}

/// Why a send did not count.
enum Missed {
    /// Not stored (refused or not written): nothing is owed.
    Refused(String),
    /// Not confirmed in time: the delivery is still owed.
    Late(String),
}

/// One user's connection as the senders drive it.
trait Driver: Send + 'static {
    /// Sends `key` to the peer; `Ok` once the message counts as acknowledged.
    fn send_one(&mut self, key: &str) -> impl Future<Output = Result<(), Missed>> + Send;
}

/// What the senders of one side did.
struct Driven<D> {
    ack: Recorder,
    acked: u64,
    errors: u64,
    first_error: Option<String>,
    send_secs: f64,
    all_secs: f64,
    conns: Vec<D>,
}

/// Runs one sender per connection (user `u` sends to `u ^ 1`, one message in flight), then
/// waits for the last deliveries.
async fn drive<D: Driver>(
    conns: Vec<D>,
    plan: &Plan,
    ledger: &Arc<Ledger>,
    opts: &Options,
    quiet: bool,
) -> anyhow::Result<Driven<D>> {
    drive_to(conns, plan, ledger, opts, quiet, |u| {
        vec![plan.users[u ^ 1].id]
    })
    .await
}

/// [`drive`], with the users sender `u`'s messages are owed to given by `recipients`.
async fn drive_to<D: Driver>(
    conns: Vec<D>,
    plan: &Plan,
    ledger: &Arc<Ledger>,
    opts: &Options,
    quiet: bool,
    recipients: impl Fn(usize) -> Vec<i64>,
) -> anyhow::Result<Driven<D>> {
    let users = plan.users.len() as u64;
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let bar = live::line(Some(opts.messages), quiet);
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut senders = JoinSet::new();
    for (u, mut conn) in conns.into_iter().enumerate() {
        let me = plan.users[u].id;
        let owed = recipients(u);
        let (ledger, acked, errors, bar, opts) = (
            ledger.clone(),
            acked.clone(),
            errors.clone(),
            bar.clone(),
            opts.clone(),
        );
        senders.spawn(async move {
            let mut ack = Recorder::new();
            let mut first_error = None;
            let mut n = u as u64;
            while n < opts.messages {
                if opts.rate > 0.0 {
                    let due = start + Duration::from_secs_f64(n as f64 / opts.rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                if Instant::now() >= deadline {
                    break;
                }
                let key = text(n, opts.text_size);
                ledger.expect(key.clone(), me, &owed);
                let sent = Instant::now();
                match conn.send_one(&key).await {
                    Ok(()) => {
                        ack.record(sent.elapsed());
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(missed) => {
                        let why = match missed {
                            Missed::Refused(why) => {
                                ledger.failed(&key);
                                why
                            }
                            Missed::Late(why) => why,
                        };
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert(format!("{key}: {why}"));
                    }
                }
                bar.inc(1);
                n += users;
            }
            (ack, first_error, conn)
        });
    }
    let mut ack = Recorder::new();
    let mut first_error = None;
    let mut conns = Vec::new();
    while let Some(done) = senders.join_next().await {
        let (worker_ack, worker_error, conn) = done?;
        ack.merge(&worker_ack);
        first_error = first_error.or(worker_error);
        conns.push(conn);
    }
    let send_secs = start.elapsed().as_secs_f64();
    bar.set_message("draining");
    ledger.drain(opts.drain_timeout).await;
    let all_secs = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(Driven {
        ack,
        acked: acked.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        first_error,
        send_secs,
        all_secs,
        conns,
    })
}

impl<D> Driven<D> {
    fn report(self, name: &str, addr: SocketAddr, ledger: &Ledger) -> Report {
        side_report(
            name,
            addr,
            ledger,
            &self.ack,
            self.acked,
            (self.send_secs, self.all_secs),
            self.errors,
            self.first_error,
        )
    }
}

/// Adds the frames nobody asked for (error replies and the like) to a side's report.
fn report_unexpected(report: &mut Report, name: &str, unexpected: &[String]) {
    report.counter("unexpected frames", unexpected.len() as f64, "");
    if let Some(first) = unexpected.first() {
        report.fail(format!(
            "{name}: {} unexpected frames; first: {first}",
            unexpected.len()
        ));
    }
}

/// An OurChat user: the peer's ocid, and the texts of this user's that reached the peer.
struct OurchatSide {
    conn: ourchat::Conn,
    peer: String,
    arrived: mpsc::UnboundedReceiver<String>,
}

impl Driver for OurchatSide {
    async fn send_one(&mut self, key: &str) -> Result<(), Missed> {
        let sent = self.conn.send(&self.peer, key).await;
        delivered(sent, &mut self.arrived, key).await
    }
}

/// OurChat: users are addressed by ocid and log in with the SHA-256 hex of the password (an
/// account registered with a plain password has that verifier too); friendships come from
/// gRPC (the protocol has no friend command). Text is not acknowledged, so, as with IMPS, a
/// sender waits until its message reached the peer.
async fn ourchat_run(
    endpoints: &Endpoints,
    addr: SocketAddr,
    opts: &Options,
    quiet: bool,
) -> anyhow::Result<Report> {
    let services = Services::connect(endpoints, 2).await?;
    let plan = Plan::build(&services, opts.users, 0).await?;
    let ledger = Arc::new(Ledger::default());
    let (arrived_tx, arrived_rx) = arrival_channels(plan.users.len());
    let mut sides = Vec::with_capacity(plan.users.len());
    for ((i, user), arrived) in plan.users.iter().enumerate().zip(arrived_rx) {
        let (ledger, me, peer) = (ledger.clone(), user.id, plan.users[i ^ 1].ocid.clone());
        let (my_ocid, to_sender) = (user.ocid.clone(), arrived_tx[i ^ 1].clone());
        let peer_ocid = peer.clone();
        let on_push = Arc::new(move |push: ourchat::Push| {
            if push.from == my_ocid {
                return;
            }
            ledger.deliver(me, &push.msg);
            if push.from == peer_ocid {
                let _ = to_sender.send(push.msg);
            }
        });
        let conn = ourchat::Conn::login(addr, None, &user.ocid, PASSWORD, on_push).await?;
        sides.push(OurchatSide {
            conn,
            peer,
            arrived,
        });
    }
    let mut driven = drive(sides, &plan, &ledger, opts, quiet).await?;
    let unexpected: Vec<String> = driven
        .conns
        .iter_mut()
        .flat_map(|side| side.conn.unexpected())
        .collect();
    drop(std::mem::take(&mut driven.conns));
    let mut report = driven.report("ourchat", addr, &ledger);
    report_unexpected(&mut report, "ourchat", &unexpected);
    Ok(report)
}

/// A CloudChat user and the peer's user id.
struct CloudchatSide {
    conn: cloudchat::Conn,
    peer: i64,
}

impl Driver for CloudchatSide {
    async fn send_one(&mut self, key: &str) -> Result<(), Missed> {
        self.conn
            .send(self.peer, key)
            .await
            .map_err(|err| match err {
                cloudchat::SendError::Refused(why) => Missed::Refused(why),
                cloudchat::SendError::Late(why) => Missed::Late(why),
            })
    }
}

/// CloudChat: users log in by name with the plain password; the canonical user id is the
/// protocol's `userId`. A sender waits for MESSAGE_RECEIVED_SELF, as the web client does.
async fn cloudchat_run(
    endpoints: &Endpoints,
    addr: SocketAddr,
    opts: &Options,
    quiet: bool,
) -> anyhow::Result<Report> {
    let services = Services::connect(endpoints, 2).await?;
    let plan = Plan::build(&services, opts.users, 0).await?;
    let ledger = Arc::new(Ledger::default());
    let mut sides = Vec::with_capacity(plan.users.len());
    for (i, user) in plan.users.iter().enumerate() {
        let (ledger, me) = (ledger.clone(), user.id);
        let on_push = Arc::new(move |push: cloudchat::Push| {
            if push.sender_id != me {
                ledger.deliver(me, &push.content);
            }
        });
        let conn = cloudchat::Conn::login(addr, None, &user.name, PASSWORD, on_push).await?;
        if conn.user_id != me {
            anyhow::bail!(
                "CloudChat says {} is user {}, gRPC says {me}",
                user.name,
                conn.user_id
            );
        }
        sides.push(CloudchatSide {
            conn,
            peer: plan.users[i ^ 1].id,
        });
    }
    let mut driven = drive(sides, &plan, &ledger, opts, quiet).await?;
    let unexpected: Vec<String> = driven
        .conns
        .iter_mut()
        .flat_map(|side| side.conn.unexpected())
        .collect();
    drop(std::mem::take(&mut driven.conns));
    let mut report = driven.report("cloudchat", addr, &ledger);
    report_unexpected(&mut report, "cloudchat", &unexpected);
    Ok(report)
}

/// A DPC user: the lines of this user's that reached the peer (user `u ^ 1`).
struct DpcSide {
    conn: dpc::Conn,
    arrived: mpsc::UnboundedReceiver<String>,
}

impl Driver for DpcSide {
    async fn send_one(&mut self, key: &str) -> Result<(), Missed> {
        let sent = self.conn.send(key).await;
        delivered(sent, &mut self.arrived, key).await
    }
}

/// DPC: users log in on the auth port, hold a chat connection, and every line is broadcast
/// to every other user of the run (the ledger owes each line to all of them). Nothing is
/// acknowledged, so a sender waits until its line reached its peer, as with IMPS. Run it
/// against a fresh database: every DPC user who ever logged in is a lobby member, and each
/// line is written to every member's event log.
async fn dpc_run(
    endpoints: &Endpoints,
    addr: SocketAddr,
    opts: &Options,
    quiet: bool,
) -> anyhow::Result<Report> {
    let services = Services::connect(endpoints, 2).await?;
    let plan = Plan::build(&services, opts.users, 0).await?;
    let ledger = Arc::new(Ledger::default());
    let (arrived_tx, arrived_rx) = arrival_channels(plan.users.len());
    let mut sides = Vec::with_capacity(plan.users.len());
    for ((i, user), arrived) in plan.users.iter().enumerate().zip(arrived_rx) {
        let (ledger, me, my_name) = (ledger.clone(), user.id, user.name.clone());
        let (peer_name, to_sender) = (plan.users[i ^ 1].name.clone(), arrived_tx[i ^ 1].clone());
        let on_push = Arc::new(move |push: dpc::Push| {
            if push.from == my_name {
                return;
            }
            ledger.deliver(me, &push.text);
            if push.from == peer_name {
                let _ = to_sender.send(push.text);
            }
        });
        let source = source_for(i, 1, addr);
        let conn =
            dpc::Conn::login(opts.dpc_auth, addr, source, &user.name, PASSWORD, on_push).await?;
        sides.push(DpcSide { conn, arrived });
    }
    let others = |u: usize| {
        let users = plan.users.iter().enumerate();
        users
            .filter(|&(i, _)| i != u)
            .map(|(_, user)| user.id)
            .collect()
    };
    let mut driven = drive_to(sides, &plan, &ledger, opts, quiet, others).await?;
    let closed = driven
        .conns
        .iter()
        .filter(|side| !side.conn.is_open())
        .count();
    drop(std::mem::take(&mut driven.conns));
    let mut report = driven.report("dpc", addr, &ledger);
    report.counter("chat connections closed by the bridge", closed as f64, "");
    if closed > 0 {
        report.fail(format!("dpc: the bridge closed {closed} chat connections"));
    }
    Ok(report)
}

pub async fn run(
    endpoints: &Endpoints,
    addr: SocketAddr,
    opts: &Options,
    quiet: bool,
) -> anyhow::Result<Report> {
    let bridge = match opts.bridge {
        Bridge::Pipe => pipe_run(endpoints, addr, opts, quiet).await?,
        Bridge::Imps => imps_run(endpoints, addr, opts, quiet).await?,
        Bridge::Ourchat => ourchat_run(endpoints, addr, opts, quiet).await?,
        Bridge::Cloudchat => cloudchat_run(endpoints, addr, opts, quiet).await?,
        Bridge::Dpc => dpc_run(endpoints, addr, opts, quiet).await?,
    };
    let name = opts.bridge.name();
    let mut report = Report::new(
        "bridge-conversation",
        &format!("{} + {addr}", endpoints.label()),
    );
    report.param("bridge", name);
    report.param("users", opts.users);
    report.param("rate", opts.rate);
    report.param("text_size", opts.text_size);
    let baseline = if opts.no_baseline {
        None
    } else {
        // DPC's room is one group of everyone; the others talk in pairs.
        let room = opts.bridge == Bridge::Dpc;
        let grpc_opts = conversation::Options {
            users: opts.users,
            group_size: if room { opts.users } else { 0 },
            group_share: if room { 1.0 } else { 0.0 },
            messages: opts.messages,
            duration: opts.duration,
            rate: opts.rate,
            concurrency: opts.users,
            connections: 4,
            text_size: opts.text_size,
            drain_timeout: opts.drain_timeout,
            // Where the protocol acknowledges nothing, the bridge's senders wait for the
            // peer; the baseline then does too, or it would compare a longer loop with a
            // shorter one.
            until_delivered: !opts.bridge.acknowledges(),
        };
        Some(conversation::run(endpoints, &grpc_opts, quiet).await?)
    };
    let sides = std::iter::once((name, &bridge)).chain(baseline.iter().map(|b| ("grpc", b)));
    for (side, part) in sides {
        for c in &part.counters {
            report.counter(&format!("{side} {}", c.name), c.value, &c.unit);
        }
        for l in &part.latencies {
            let mut l = l.clone();
            l.name = format!("{side} {}", l.name);
            report.latencies.push(l);
        }
        report.failures.extend(part.failures.iter().cloned());
    }
    let grpc_rate = baseline
        .as_ref()
        .and_then(|b| b.get("send rate"))
        .filter(|r| *r > 0.0);
    if let (Some(grpc_rate), Some(rate)) = (grpc_rate, bridge.get("send rate")) {
        report.counter(
            &format!("throughput ratio {name}/grpc"),
            rate / grpc_rate,
            "",
        );
        report.counter("bridge overhead", (1.0 - rate / grpc_rate) * 100.0, "%");
    }
    Ok(report)
}
