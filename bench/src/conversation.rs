//! Scenario 1: users hold `Subscribe` streams and send private and group messages over gRPC,
//! at a target rate or flat out; every message must reach every participant exactly once.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use rosetta_proto::messaging::v1::{
    MessageKind, SendMessageRequest, SubscribeRequest, event,
    messaging_service_client::MessagingServiceClient, send_message_request,
    subscribe_response::Item,
};
use tokio::{sync::mpsc, task::JoinSet};
use tonic::transport::Channel;

use crate::{
    grpc::{self, Endpoints, Services, User},
    ledger::Ledger,
    live,
    report::{Recorder, Report},
};

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Users taking part (paired into friends; grouped by --group-size).
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// Members per group; 0 sends private messages only.
    #[arg(long, default_value_t = 5)]
    pub group_size: usize,
    /// Share of sends that go to a group (0..=1).
    #[arg(long, default_value_t = 0.2)]
    pub group_share: f64,
    /// Stop after this many sends.
    #[arg(long, default_value_t = 2000)]
    pub messages: u64,
    /// Stop sending after this long (e.g. 30s, 2m).
    #[arg(long, default_value = "60s", value_parser = crate::parse_duration)]
    pub duration: Duration,
    /// Target sends per second over all users; 0 sends flat out.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Sends in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Bytes of text per message.
    #[arg(long, default_value_t = 64)]
    pub text_size: usize,
    /// How long to wait for the last deliveries after the last send.
    #[arg(long, default_value = "15s", value_parser = crate::parse_duration)]
    pub drain_timeout: Duration,
    /// A sender waits, after the acknowledgement, until its message reached the sender's peer
    /// (user `u ^ 1`, in a group too) before it sends again, and send-ack is measured to that
    /// moment: the way a client of a protocol without acknowledgements is driven.
    #[arg(long)]
    pub until_delivered: bool,
}

/// How long a sender waits for its message to reach the peer with `--until-delivered`.
const REACH_WAIT: Duration = Duration::from_secs(30);

/// Who sends what to whom: friend pairs (2k, 2k+1) and groups of consecutive users.
pub struct Plan {
    pub users: Vec<User>,
    /// Per user: the index of the group it belongs to, if any.
    pub group_of: Vec<Option<usize>>,
    /// Per group: its id and member indexes.
    pub groups: Vec<(i64, Vec<usize>)>,
}

impl Plan {
    /// Registers and logs in the users, makes the friendships and creates the groups.
    pub async fn build(
        services: &Services,
        users: usize,
        group_size: usize,
    ) -> anyhow::Result<Plan> {
        if users < 2 || !users.is_multiple_of(2) {
            bail!("--users must be even and at least 2");
        }
        let prefix = grpc::run_prefix();
        let users = grpc::register_users(&services.account, &prefix, users, true, 8).await?;
        let social = &services.social;
        let mut pairs = JoinSet::new();
        for (k, pair) in users.chunks(2).enumerate() {
            let channel = social[k % social.len()].clone();
            let (a, b) = (pair[0].clone(), pair[1].clone());
            pairs.spawn(async move { grpc::befriend(&channel, &a, &b).await });
        }
        while let Some(done) = pairs.join_next().await {
            done??;
        }
        let mut group_of = vec![None; users.len()];
        let mut groups = Vec::new();
        if group_size >= 2 {
            for (g, chunk) in (0..users.len())
                .collect::<Vec<_>>()
                .chunks(group_size)
                .enumerate()
            {
                if chunk.len() < 2 {
                    continue;
                }
                let owner = &users[chunk[0]];
                let members: Vec<grpc::User> =
                    chunk[1..].iter().map(|&i| users[i].clone()).collect();
                let channel = &social[g % social.len()];
                let id =
                    grpc::create_group(channel, &format!("{prefix}-g{g}"), owner, &members).await?;
                for &i in chunk {
                    group_of[i] = Some(groups.len());
                }
                groups.push((id, chunk.to_vec()));
            }
        }
        Ok(Plan {
            users,
            group_of,
            groups,
        })
    }

    /// The participants of send number `n`'s conversation (sender included), and its target.
    pub fn pick(&self, n: u64, group_share: f64, roll: f64) -> (usize, Target, Vec<i64>) {
        let sender = (n % self.users.len() as u64) as usize;
        if let Some(g) = self.group_of[sender].filter(|_| roll < group_share) {
            let (id, members) = &self.groups[g];
            let ids = members.iter().map(|&i| self.users[i].id).collect();
            (sender, Target::Group(*id), ids)
        } else {
            let peer = sender ^ 1;
            let ids = vec![self.users[sender].id, self.users[peer].id];
            (sender, Target::User(peer), ids)
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// A user, by index in the plan.
    User(usize),
    /// A group, by id.
    Group(i64),
}

/// Keeps `user`'s `Subscribe` stream open, resuming after the last seq on a break, and ticks
/// every message event off in `ledger`. Sends one `()` on `ready` at the first `CaughtUp`.
async fn subscriber(
    channel: Channel,
    user: User,
    ledger: Arc<Ledger>,
    ready: mpsc::Sender<()>,
    reconnects: Arc<AtomicU64>,
) {
    let mut client = MessagingServiceClient::new(channel);
    let mut after: Option<u64> = None;
    let mut ready = Some(ready);
    loop {
        let stream = match grpc::authed(
            SubscribeRequest {
                after_seq: after,
                ..Default::default()
            },
            &user.token,
        ) {
            Ok(request) => client.subscribe(request).await,
            Err(_) => return,
        };
        if let Ok(stream) = stream {
            let mut stream = stream.into_inner();
            while let Ok(Some(item)) = stream.message().await {
                match item.item {
                    Some(Item::CaughtUp(caught_up)) => {
                        after = Some(after.unwrap_or(0).max(caught_up.head_seq));
                        if let Some(ready) = ready.take() {
                            let _ = ready.send(()).await;
                        }
                    }
                    Some(Item::Event(ev)) => {
                        if ev.seq > 0 {
                            after = Some(ev.seq);
                        }
                        if let Some(event::Kind::Message(message)) = ev.kind {
                            ledger.deliver(user.id, &message.client_message_id);
                        }
                    }
                    None => {}
                }
            }
        }
        reconnects.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens every user's stream and waits until all of them caught up.
pub async fn subscribe_all(
    channels: &[Channel],
    users: &[User],
    ledger: &Arc<Ledger>,
    reconnects: &Arc<AtomicU64>,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    let (ready_tx, mut ready_rx) = mpsc::channel(users.len().max(1));
    for (i, user) in users.iter().enumerate() {
        tasks.spawn(subscriber(
            channels[i % channels.len()].clone(),
            user.clone(),
            ledger.clone(),
            ready_tx.clone(),
            reconnects.clone(),
        ));
    }
    drop(ready_tx);
    for _ in users {
        tokio::time::timeout(Duration::from_secs(30), ready_rx.recv())
            .await
            .context("streams did not catch up within 30 s")?
            .context("a stream ended before catching up")?;
    }
    Ok(())
}

pub async fn run(endpoints: &Endpoints, opts: &Options, quiet: bool) -> anyhow::Result<Report> {
    let services = Services::connect(endpoints, opts.connections).await?;
    let plan = Arc::new(Plan::build(&services, opts.users, opts.group_size).await?);
    let channels = &services.messaging;
    let ledger = Arc::new(Ledger::default());
    let reconnects = Arc::new(AtomicU64::new(0));
    let mut subscribers = JoinSet::new();
    subscribe_all(
        channels,
        &plan.users,
        &ledger,
        &reconnects,
        &mut subscribers,
    )
    .await?;

    let text = "x".repeat(opts.text_size);
    let issued = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let bar = live::line(Some(opts.messages), quiet);
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut senders = JoinSet::new();
    for w in 0..opts.concurrency.max(1) {
        let (plan, ledger, issued, acked, errors, bar) = (
            plan.clone(),
            ledger.clone(),
            issued.clone(),
            acked.clone(),
            errors.clone(),
            bar.clone(),
        );
        let channel = channels[w % channels.len()].clone();
        let (text, opts) = (text.clone(), opts.clone());
        senders.spawn(async move {
            let mut client = MessagingServiceClient::new(channel);
            let mut ack = Recorder::new();
            let mut first_error = None;
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= opts.messages {
                    break;
                }
                if opts.rate > 0.0 {
                    tokio::time::sleep_until(
                        (start + Duration::from_secs_f64(n as f64 / opts.rate)).into(),
                    )
                    .await;
                }
                if Instant::now() >= deadline {
                    break;
                }
                let (sender, target, participants) =
                    plan.pick(n, opts.group_share, rand::random::<f64>());
                let key = format!("m{n}");
                let to = match target {
                    Target::User(peer) => send_message_request::To::ToUserId(plan.users[peer].id),
                    Target::Group(id) => send_message_request::To::ToGroupId(id),
                };
                let request = SendMessageRequest {
                    to: Some(to),
                    kind: MessageKind::Text as i32,
                    text: text.clone(),
                    client_message_id: key.clone(),
                    ..Default::default()
                };
                let user = &plan.users[sender];
                let peer = plan.users[sender ^ 1].id;
                let reached = if opts.until_delivered {
                    Some(ledger.expect_watched(key.clone(), user.id, &participants, peer))
                } else {
                    ledger.expect(key.clone(), user.id, &participants);
                    None
                };
                let sent = Instant::now();
                let result = match grpc::authed(request, &user.token) {
                    Ok(request) => client
                        .send_message(request)
                        .await
                        .map_err(|s| s.to_string()),
                    Err(err) => Err(err.to_string()),
                };
                let result = match (result, reached) {
                    (Ok(_), Some(reached)) => {
                        match tokio::time::timeout(REACH_WAIT, reached).await {
                            Ok(Ok(())) => Ok(()),
                            _ => Err(format!("{key} did not reach the peer within 30 s")),
                        }
                    }
                    (result, _) => result.map(drop),
                };
                match result {
                    Ok(_) => {
                        ack.record(sent.elapsed());
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(err) => {
                        ledger.failed(&key);
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert(err);
                    }
                }
                bar.inc(1);
            }
            (ack, first_error)
        });
    }
    let ticker = {
        let (ledger, acked, errors, bar) =
            (ledger.clone(), acked.clone(), errors.clone(), bar.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let secs = start.elapsed().as_secs_f64().max(1e-3);
                bar.set_message(format!(
                    "{:.0} msg/s  delivered {}  owed {}  errors {}",
                    acked.load(Ordering::Relaxed) as f64 / secs,
                    ledger.delivered(),
                    ledger.outstanding(),
                    errors.load(Ordering::Relaxed),
                ));
            }
        })
    };
    let mut ack = Recorder::new();
    let mut first_error = None;
    while let Some(done) = senders.join_next().await {
        let (worker_ack, worker_error) = done?;
        ack.merge(&worker_ack);
        if first_error.is_none() {
            first_error = worker_error;
        }
    }
    let send_secs = start.elapsed().as_secs_f64();
    ledger.drain(opts.drain_timeout).await;
    let all_secs = start.elapsed().as_secs_f64();
    ticker.abort();
    bar.finish_and_clear();
    subscribers.abort_all();

    let tally = ledger.tally();
    let acked = acked.load(Ordering::Relaxed);
    let errors = errors.load(Ordering::Relaxed);
    let mut report = Report::new("grpc-conversation", &endpoints.label());
    report.param("users", plan.users.len());
    report.param("groups", plan.groups.len());
    report.param("group_size", opts.group_size);
    report.param("group_share", opts.group_share);
    report.param("rate", opts.rate);
    report.param("concurrency", opts.concurrency);
    report.param("connections", opts.connections);
    report.param("text_size", opts.text_size);
    report.param("until_delivered", opts.until_delivered);
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
    report.counter(
        "stream reconnects",
        reconnects.load(Ordering::Relaxed) as f64,
        "",
    );
    report.counter("send phase", send_secs, "s");
    report.latency("send-ack", &ack);
    report.latency("send-push", &tally.push);
    if tally.lost > 0 {
        report.fail(format!("{} deliveries lost", tally.lost));
    }
    if tally.duplicated > 0 {
        report.fail(format!("{} deliveries duplicated", tally.duplicated));
    }
    if errors > 0 {
        report.fail(format!(
            "{errors} sends failed; first: {}",
            first_error.unwrap_or_default()
        ));
    }
    Ok(report)
}
