//! Wake-ups. The database holds every durable event; the bus carries a copy of each event
//! (durable or live-only) to the processes where its recipient has open streams, so streams
//! need not poll. A lost wake-up costs latency, never data: streams de-duplicate by seq and
//! re-read the log on a gap, a lag, or a periodic tick.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use futures::StreamExt as _;
use prost::Message as _;
use rosetta_kit::tasks::Tasks;
use rosetta_proto::messaging::v1::Event;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Per-process registry of live streams: one broadcast channel per user with open streams.
#[derive(Default)]
pub struct Hub {
    users: Mutex<HashMap<i64, broadcast::Sender<Arc<Event>>>>,
}

/// How many events a slow stream may fall behind before it re-reads the log.
const STREAM_BUFFER: usize = 1024;

impl Hub {
    /// Receives `user`'s events from now on. Call BEFORE reading the backlog.
    pub fn subscribe(&self, user: i64) -> broadcast::Receiver<Arc<Event>> {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users
            .entry(user)
            .or_insert_with(|| broadcast::channel(STREAM_BUFFER).0)
            .subscribe()
    }

    /// Forgets users whose streams all closed.
    pub fn prune(&self) {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users.retain(|_, tx| tx.receiver_count() > 0);
    }

    /// Users with an open stream in this process.
    pub fn live_users(&self) -> Vec<i64> {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users
            .iter()
            .filter(|(_, tx)| tx.receiver_count() > 0)
            .map(|(user, _)| *user)
            .collect()
    }

    /// Whether `user` has an open stream in this process.
    pub fn is_live(&self, user: i64) -> bool {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users.get(&user).is_some_and(|tx| tx.receiver_count() > 0)
    }

    /// Hands `event` to `user`'s open streams in this process, if any.
    pub fn deliver(&self, user: i64, event: Arc<Event>) {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = users.get(&user) {
            let _ = tx.send(event);
        }
    }
}

/// Carries events to the streams of their recipients, wherever they run.
#[async_trait::async_trait]
pub trait Bus: Send + Sync {
    /// Delivers each `(recipient, event)`; best effort (the log is the truth).
    async fn publish(&self, deliveries: Vec<(i64, Event)>);
    /// This process's streams.
    fn hub(&self) -> &Arc<Hub>;
}

/// The bus of a single process (`rosetta all`): a direct hand-over to the local hub.
#[derive(Default)]
pub struct LocalBus {
    hub: Arc<Hub>,
}

#[async_trait::async_trait]
impl Bus for LocalBus {
    async fn publish(&self, deliveries: Vec<(i64, Event)>) {
        for (user, event) in deliveries {
            self.hub.deliver(user, Arc::new(event));
        }
    }

    fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }
}

/// The bus of split deployments: core NATS, one subject per recipient
/// (`<prefix>.<user id>`, payload the encoded `Event`). Every process subscribes to
/// `<prefix>.*` once and hands events for its own streams to its hub; its own publications
/// come back the same way, so there is one delivery path.
pub struct NatsBus {
    client: async_nats::Client,
    prefix: String,
    hub: Arc<Hub>,
}

impl NatsBus {
    /// Connects and starts the receiving task in `tasks`; stopping them unsubscribes and
    /// flushes this process's last publications.
    pub async fn connect(
        url: &str,
        prefix: &str,
        tasks: &Tasks,
    ) -> Result<Self, async_nats::Error> {
        let client = async_nats::connect(url).await?;
        let subscriber = client.subscribe(format!("{prefix}.*")).await?;
        let hub = Arc::new(Hub::default());
        tasks.spawn(receive(
            client.clone(),
            subscriber,
            hub.clone(),
            tasks.stopping().clone(),
        ));
        // The subscription must be registered before the first publish can be missed.
        client.flush().await?;
        Ok(Self {
            client,
            prefix: prefix.to_owned(),
            hub,
        })
    }
}

/// Hands each bus message to the local hub until `stopping` or the subscription ends.
async fn receive(
    client: async_nats::Client,
    mut subscriber: async_nats::Subscriber,
    hub: Arc<Hub>,
    stopping: CancellationToken,
) {
    loop {
        let msg = tokio::select! {
            msg = subscriber.next() => msg,
            () = stopping.cancelled() => break,
        };
        let Some(msg) = msg else {
            tracing::warn!("NATS subscription ended; streams fall back to polling");
            return;
        };
        let user = msg
            .subject
            .rsplit('.')
            .next()
            .and_then(|id| id.parse::<i64>().ok());
        match (user, Event::decode(msg.payload)) {
            (Some(user), Ok(event)) => hub.deliver(user, Arc::new(event)),
            _ => tracing::warn!(subject = %msg.subject, "malformed bus message"),
        }
    }
    if let Err(err) = subscriber.unsubscribe().await {
        tracing::debug!(%err, "NATS unsubscribe at shutdown failed");
    }
    // Wake-ups published by the last calls must leave before the process does.
    if let Err(err) = client.flush().await {
        tracing::warn!(%err, "NATS flush at shutdown failed; those wake-ups are lost (the log has the events)");
    }
}

#[async_trait::async_trait]
impl Bus for NatsBus {
    async fn publish(&self, deliveries: Vec<(i64, Event)>) {
        for (user, event) in deliveries {
            let subject = format!("{}.{user}", self.prefix);
            let payload = bytes::Bytes::from(event.encode_to_vec());
            if let Err(err) = self.client.publish(subject, payload).await {
                tracing::warn!(%err, user, "bus publish failed; the stream's poll catches up");
            }
        }
    }

    fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }
}
