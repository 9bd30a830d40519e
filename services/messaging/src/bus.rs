//! Wake-ups. The database holds every durable event; the bus carries a copy of each event
//! (durable or live-only) to the processes where its recipient has open streams, and that
//! copy is what drives delivery: streams do not poll. A lost wake-up costs latency, never
//! data, as long as something re-reads the log afterwards: streams de-duplicate by seq and
//! re-read the log on a gap (the next event shows it), on an overflow of their queue, and
//! after the NATS connection comes back (every wake-up sent meanwhile may be lost).
//!
//! A process whose bus is in-process ([`LocalBus`]) sees only the events written in it, so
//! every process that writes events for another's streams must share a NATS bus with it; the
//! node refuses split roles without one.

use std::sync::Arc;

use rosetta_kit::ApiResult;
use rosetta_proto::messaging::v1::Event;

pub use crate::hub::{GroupLink, Hub, Subscription, Wake};
pub use crate::nats::NatsBus;

/// Carries events to the streams of their recipients, wherever they run.
#[async_trait::async_trait]
pub trait Bus: Send + Sync {
    /// Delivers each `(recipient, event)`; best effort (the log is the truth).
    async fn publish(&self, deliveries: Vec<(i64, Event)>);
    /// Delivers `event` to every open stream of every user, in every process; best effort.
    async fn broadcast(&self, event: Event);
    /// Registers a stream of `user` in this process's hub and returns once the bus carries
    /// the user's events to it: events published after this returns reach the subscription.
    /// So a stream subscribes BEFORE it reads its backlog.
    async fn subscribe(&self, user: i64) -> ApiResult<Subscription>;
    /// Delivers a large group's event (a message stored once, in its conversation) to the
    /// streams linked to the group, wherever they run: one publication, not one per member.
    async fn publish_group(&self, group: i64, event: Event);
    /// Links `stream` to the large `group` and returns once the bus carries the group's
    /// events to it (as [`Bus::subscribe`] does for the user's own).
    async fn link_group(&self, stream: &Subscription, group: i64) -> ApiResult<GroupLink>;
    /// This process's streams.
    fn hub(&self) -> &Arc<Hub>;
}

/// The bus of a single process (`rosetta all`): a direct hand-over to the local hub.
#[derive(Default)]
pub struct LocalBus {
    hub: Arc<Hub>,
}

impl LocalBus {
    /// A bus whose streams each queue at most `queue_limit` events.
    pub fn new(queue_limit: usize) -> Self {
        Self {
            hub: Arc::new(Hub::new(queue_limit)),
        }
    }
}

#[async_trait::async_trait]
impl Bus for LocalBus {
    async fn publish(&self, deliveries: Vec<(i64, Event)>) {
        for (user, event) in deliveries {
            self.hub.deliver(user, Arc::new(event));
        }
    }

    async fn broadcast(&self, event: Event) {
        self.hub.deliver_all(Arc::new(event));
    }

    async fn subscribe(&self, user: i64) -> ApiResult<Subscription> {
        Ok(self.hub.subscribe(user))
    }

    async fn publish_group(&self, group: i64, event: Event) {
        self.hub.deliver_group(group, Arc::new(event));
    }

    async fn link_group(&self, stream: &Subscription, group: i64) -> ApiResult<GroupLink> {
        Ok(self.hub.link_group(stream, group))
    }

    fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }
}
