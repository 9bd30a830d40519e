//! The bus of split deployments: core NATS, one subject per recipient (`<prefix>.<user id>`,
//! payload the encoded `Event`).
//!
//! A process subscribes to a user's subject only while the user has a stream in it (from the
//! first stream's opening to the last one's close), so it receives and decodes only its own
//! users' events; a process without streams (`rosetta social`) receives nothing. Its own
//! publications come back the same way, so there is one delivery path. Broadcasts (operator
//! announcements, rare) go to one subject every process listens to, `<prefix>.all` (user
//! subjects are numeric, so no user's subject is it).
//!
//! Large groups have a subject each (`<prefix>.g.<group id>`): a message there is published
//! once, and a process subscribes to it while one of its streams is linked to the group
//! (`Hub::link_group`), so it receives the message once however many members stream here.
//!
//! One task receives for every subscription (a `SelectAll` of them, each ending when its
//! user's last stream closes). Core NATS is at-most-once: a wake-up published while this
//! process's connection is down is lost. So when the connection comes back (or the client
//! reports a slow consumer, which drops messages), every local stream re-reads its log once.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures::{Stream, StreamExt as _, stream::SelectAll};
use prost::Message as _;
use rosetta_kit::{ApiError, ApiResult, tasks::Tasks};
use rosetta_proto::messaging::v1::Event;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::{
    bus::Bus,
    hub::{GroupLink, Hub, Listening, Subscription},
};

/// Longest a stream's opening waits for NATS to take (and confirm) its user's subscription.
/// Past it the stream is refused (no subscription) or goes on unconfirmed (the subscription
/// is registered in the client, which re-sends it on reconnect, and a resync follows).
/// Also bounds the confirmation before a resync.
const NATS_WAIT: Duration = Duration::from_secs(5);

/// Messages the client buffers per user subscription before it drops them and reports a
/// slow consumer (which triggers a resync); far above any one user's burst.
const SUBSCRIPTION_CAPACITY: usize = 4096;

/// New subscriptions on their way to the receiving task.
const HAND_OVER: usize = 256;

/// The subject after the prefix that every process listens to for broadcasts.
const BROADCAST: &str = "all";

pub struct NatsBus {
    client: async_nats::Client,
    prefix: String,
    hub: Arc<Hub>,
    hand_over: mpsc::Sender<KeySubscriber>,
    received: Arc<AtomicU64>,
    resyncs: Arc<AtomicU64>,
}

impl NatsBus {
    /// Connects and starts the receiving and resync tasks in `tasks`; stopping them
    /// unsubscribes and flushes this process's last publications. Each stream queues at
    /// most `queue_limit` events.
    pub async fn connect(
        url: &str,
        prefix: &str,
        queue_limit: usize,
        tasks: &Tasks,
    ) -> Result<Self, async_nats::Error> {
        let suspect = Arc::new(Notify::new());
        let options = async_nats::ConnectOptions::new()
            .subscription_capacity(SUBSCRIPTION_CAPACITY)
            .event_callback({
                let suspect = suspect.clone();
                move |event| {
                    // Connected follows every (re)connection; the first one finds no streams.
                    if matches!(
                        event,
                        async_nats::Event::Connected | async_nats::Event::SlowConsumer(_)
                    ) {
                        suspect.notify_one();
                    }
                    std::future::ready(())
                }
            });
        let client = options.connect(url).await?;
        let hub = Arc::new(Hub::new(queue_limit));
        let received = Arc::new(AtomicU64::new(0));
        let (hand_over, incoming) = mpsc::channel(HAND_OVER);
        let broadcasts = client.subscribe(format!("{prefix}.{BROADCAST}")).await?;
        // Listening once this returns: a broadcast right after is not missed.
        if let Err(err) = confirm(&client).await {
            tracing::warn!(%err, "NATS did not confirm the broadcast subscription");
        }
        tasks.spawn(receive(
            Receiver {
                client: client.clone(),
                hub: hub.clone(),
                received: received.clone(),
            },
            Incoming {
                users: incoming,
                broadcasts,
            },
            tasks.stopping().clone(),
        ));
        let resyncs = Arc::new(AtomicU64::new(0));
        tasks.spawn(resync(
            Resync {
                client: client.clone(),
                hub: hub.clone(),
                done: resyncs.clone(),
            },
            suspect,
            tasks.stopping().clone(),
        ));
        Ok(Self {
            client,
            prefix: prefix.to_owned(),
            hub,
            hand_over,
            received,
            resyncs,
        })
    }

    /// Bus messages this process has received (each one decoded for a stream of its own).
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Resyncs done: one after the first connection, one after each reconnection or
    /// dropped message.
    pub fn resyncs(&self) -> u64 {
        self.resyncs.load(Ordering::Relaxed)
    }

    /// Subscribes the subject of `key` (a user's or a large group's), hands it to the
    /// receiving task, and waits until the server has it, so that nothing published
    /// afterwards is missed.
    async fn listen(&self, key: Key, listening: &Listening) -> ApiResult<()> {
        let subject = self.subject(key);
        let subscriber = tokio::time::timeout(NATS_WAIT, self.client.subscribe(subject))
            .await
            .map_err(|_| unavailable("timed out"))?
            .map_err(|err| unavailable(&err.to_string()))?;
        let ended = listening.ended.clone().cancelled_owned();
        let handed = KeySubscriber {
            key,
            generation: listening.generation,
            subscriber,
            ended: Box::pin(ended),
        };
        self.hand_over
            .send(handed)
            .await
            .map_err(|_| unavailable("the bus is stopping"))?;
        if let Err(err) = confirm(&self.client).await {
            tracing::warn!(%err, ?key, "NATS did not confirm a subscription");
        }
        Ok(())
    }

    fn subject(&self, key: Key) -> String {
        match key {
            Key::User(user) => format!("{}.{user}", self.prefix),
            Key::Group(group) => format!("{}.g.{group}", self.prefix),
        }
    }

    async fn publish_to(&self, key: Key, event: &Event) {
        let payload = bytes::Bytes::from(event.encode_to_vec());
        if let Err(err) = self.client.publish(self.subject(key), payload).await {
            tracing::warn!(%err, ?key, "bus publish failed; the event stays in the log");
        }
    }
}

/// Whose subject: a user's, or a large group's.
#[derive(Debug, Clone, Copy)]
enum Key {
    User(i64),
    Group(i64),
}

/// Returns once the server has taken every command this client sent before (a subscription),
/// bounded by [`NATS_WAIT`]. The client's `flush` only writes to the socket, so: a message to
/// a fresh inbox of this client's own, which the server routes back only after processing
/// the commands sent before it on the same connection.
async fn confirm(client: &async_nats::Client) -> Result<(), async_nats::Error> {
    let round_trip = async {
        let inbox = client.new_inbox();
        let mut probe = client.subscribe(inbox.clone()).await?;
        client.publish(inbox, bytes::Bytes::new()).await?;
        client.flush().await?;
        match probe.next().await {
            Some(_) => Ok(()),
            None => Err("the probe subscription ended".into()),
        }
    };
    tokio::time::timeout(NATS_WAIT, round_trip)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

fn unavailable(why: &str) -> ApiError {
    ApiError::unavailable(format!("the event bus cannot listen: {why}"))
}

#[async_trait::async_trait]
impl Bus for NatsBus {
    async fn publish(&self, deliveries: Vec<(i64, Event)>) {
        for (user, event) in deliveries {
            self.publish_to(Key::User(user), &event).await;
        }
    }

    async fn broadcast(&self, event: Event) {
        let subject = format!("{}.{BROADCAST}", self.prefix);
        let payload = bytes::Bytes::from(event.encode_to_vec());
        if let Err(err) = self.client.publish(subject, payload).await {
            tracing::warn!(%err, "bus broadcast failed; streams read it when they next re-read");
        }
    }

    async fn subscribe(&self, user: i64) -> ApiResult<Subscription> {
        let subscription = self.hub.subscribe(user);
        // The user's first stream here subscribes; the others (even concurrent ones) wait
        // for it; if it fails, the next one tries again.
        let listening = subscription.listening().clone();
        listening
            .ready
            .get_or_try_init(|| self.listen(Key::User(user), &listening))
            .await?;
        Ok(subscription)
    }

    async fn publish_group(&self, group: i64, event: Event) {
        self.publish_to(Key::Group(group), &event).await;
    }

    async fn link_group(&self, stream: &Subscription, group: i64) -> ApiResult<GroupLink> {
        let link = self.hub.link_group(stream, group);
        let listening = link.listening().clone();
        listening
            .ready
            .get_or_try_init(|| self.listen(Key::Group(group), &listening))
            .await?;
        Ok(link)
    }

    fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }
}

/// One user's (or large group's) NATS subscription, ending when the last stream here that
/// needs it closes or unlinks (it is then dropped, which unsubscribes).
struct KeySubscriber {
    key: Key,
    generation: u64,
    subscriber: async_nats::Subscriber,
    ended: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl Stream for KeySubscriber {
    type Item = (Key, u64, async_nats::Message);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        let (key, generation) = (self.key, self.generation);
        self.subscriber
            .poll_next_unpin(cx)
            .map(|msg| msg.map(|msg| (key, generation, msg)))
    }
}

struct Receiver {
    client: async_nats::Client,
    hub: Arc<Hub>,
    received: Arc<AtomicU64>,
}

impl Receiver {
    fn deliver(&self, key: Key, generation: u64, msg: async_nats::Message) {
        self.received.fetch_add(1, Ordering::Relaxed);
        match Event::decode(msg.payload) {
            Ok(event) => match key {
                Key::User(user) => self.hub.deliver_from(user, generation, Arc::new(event)),
                Key::Group(group) => {
                    self.hub
                        .deliver_group_from(group, generation, Arc::new(event))
                }
            },
            Err(_) => tracing::warn!(subject = %msg.subject, "malformed bus message"),
        }
    }

    fn deliver_all(&self, msg: async_nats::Message) {
        self.received.fetch_add(1, Ordering::Relaxed);
        match Event::decode(msg.payload) {
            Ok(event) => self.hub.deliver_all(Arc::new(event)),
            Err(_) => tracing::warn!(subject = %msg.subject, "malformed bus broadcast"),
        }
    }
}

/// What the receiving task listens to: the user and group subscriptions as they are handed
/// over, and the broadcast subject.
struct Incoming {
    users: mpsc::Receiver<KeySubscriber>,
    broadcasts: async_nats::Subscriber,
}

/// Hands each bus message to the local hub until `stopping`; then unsubscribes every user
/// and flushes this process's last publications.
async fn receive(receiver: Receiver, mut incoming: Incoming, stopping: CancellationToken) {
    let mut subscribers = SelectAll::new();
    loop {
        tokio::select! {
            Some(subscriber) = incoming.users.recv() => subscribers.push(subscriber),
            Some((key, generation, msg)) = subscribers.next(), if !subscribers.is_empty() => {
                receiver.deliver(key, generation, msg);
            }
            Some(msg) = incoming.broadcasts.next() => receiver.deliver_all(msg),
            () = stopping.cancelled() => break,
        }
    }
    if let Err(err) = incoming.broadcasts.unsubscribe().await {
        tracing::debug!(%err, "NATS unsubscribe at shutdown failed");
    }
    for subscriber in subscribers.iter_mut() {
        if let Err(err) = subscriber.subscriber.unsubscribe().await {
            tracing::debug!(%err, "NATS unsubscribe at shutdown failed");
        }
    }
    // Wake-ups published by the last calls must leave before the process does.
    if let Err(err) = receiver.client.flush().await {
        tracing::warn!(%err, "NATS flush at shutdown failed; those wake-ups are lost (the log has the events)");
    }
}

/// What the resync task needs.
struct Resync {
    client: async_nats::Client,
    hub: Arc<Hub>,
    done: Arc<AtomicU64>,
}

/// After each (re)connection or dropped message, tells every local stream to re-read its log
/// once, after the server has taken the subscriptions the client re-sent, so that a wake-up
/// lost meanwhile costs latency, not the event.
async fn resync(resync: Resync, suspect: Arc<Notify>, stopping: CancellationToken) {
    loop {
        tokio::select! {
            () = suspect.notified() => {}
            () = stopping.cancelled() => return,
        }
        // The client re-sent its subscriptions on reconnecting; events published before the
        // server takes them are in the logs the streams now re-read.
        if let Err(err) = confirm(&resync.client).await {
            // Re-read anyway: a subscription taken late costs one more resync later.
            tracing::warn!(%err, "NATS did not confirm the subscriptions before a resync");
        }
        let streams = resync.hub.stream_count();
        if streams > 0 {
            tracing::info!(
                streams,
                "NATS may have lost wake-ups; streams re-read their logs"
            );
        }
        // Counted first: a stream woken by it sees the count.
        resync.done.fetch_add(1, Ordering::Relaxed);
        resync.hub.resync();
    }
}
