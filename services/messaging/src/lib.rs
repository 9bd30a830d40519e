//! The messaging service: messages, history, read state, presence and the per-user event
//! stream.
//!
//! The database is the source of truth; the [`bus`] only wakes subscribers. Reading order:
//! [`bus`] (how a process learns of new events: the hub of its open streams, NATS subjects
//! per user) → [`log`] (the durable per-user event log and
//! the [`Events`] sink other services publish through) → [`presence`] and [`visibility`] (who
//! sees how much of a presence: friends all, group peers status only) → [`policy`] (who may
//! send where, answered from memory and confirmed inside each write) → [`conversations`] /
//! [`send`] / [`history`] (the domain, `impl Messaging`; [`commit`] writes sends in batches,
//! one transaction each) → [`fanout`] (large groups) → [`stream`] (`Subscribe`, with operator
//! announcements: stored once by the admin service, broadcast on the bus, delivered once per
//! user) → [`bridge_events`] (`BridgeEvents`: many users' `Subscribe` over one stream) →
//! [`grpc`] (thin handlers).
//!
//! # Storage trade-off: fan-out on write, and on read for large groups
//!
//! Every durable event (a message included) is written once per recipient into that
//! recipient's log (`user_events`, keyed by user and per-user seq). Replay after a disconnect
//! is then one primary-key range scan, per-user sequence numbers are exact, and offline
//! delivery costs nothing extra. The price is O(members) rows per group message: fine for
//! chat groups of tens to a few hundred members (the legacy systems' sizes), too much for
//! groups of thousands.
//!
//! So a group with more members than [`MessagingConfig::group_fanout_max_members`] (default
//! [`DEFAULT_GROUP_FANOUT_MAX_MEMBERS`]) is *large*, and its messages are fanned out on read
//! ([`fanout`]): the message row and the conversation-row update are all that is written (no
//! log row, no log head), the bus carries one wake-up per group (`Bus::publish_group`; with
//! NATS one subject per group, subscribed by a process while one of its streams follows the
//! group), the process confirms which of its linked users are still members in one read
//! before delivering, and each stream follows its large groups by conversation seq, resuming
//! from per-conversation cursors ([`Resume`]; the proto's `SubscribeRequest` documents the
//! client side). Membership changes, creation included, stay in the members' logs (O(n) rows
//! per change), and that is how a stream learns to follow or drop a group. Private chats and
//! small groups are unchanged.

mod bridge_events;
pub mod bus;
mod commit;
mod config;
mod conversations;
mod convert;
mod fanout;
mod grpc;
mod history;
mod hub;
mod live;
pub mod log;
mod meters;
mod nats;
mod policy;
pub mod presence;
mod send;
mod stream;
#[cfg(test)]
mod test_support;
pub mod visibility;

use std::sync::Arc;

pub use bridge_events::MAX_FEEDS as BRIDGE_STREAM_MAX_FEEDS;
pub use bus::{Bus, GroupLink, Hub, LocalBus, NatsBus, Subscription, Wake};
pub use config::{DEFAULT_GROUP_FANOUT_MAX_MEMBERS, MessagingConfig};
pub use grpc::{MessagingGrpc, PUBLIC_METHODS};
pub use history::Receipt;
pub use log::Events;
pub use meters::describe_metrics;
pub use presence::Presences;
use sea_orm::DatabaseConnection;
pub use stream::{Gone, Inbox, Outbox, Outgoing, Resume, SessionCheck, outbox};

/// The domain: every RPC of the service as a method returning `ApiResult`.
pub struct Messaging {
    db: DatabaseConnection,
    config: MessagingConfig,
    bus: Arc<dyn Bus>,
    events: Arc<Events>,
    presences: Arc<Presences>,
    /// Conversation ids and members by who they are between, for the send path.
    conversations: conversations::Cache,
    /// Who may send where, from memory; the writer confirms each send with it.
    policy: Arc<policy::Policy>,
    writer: commit::Writer,
    /// Users' announcement cursors moved by live deliveries, written in batches.
    live_cursors: stream::LiveCursors,
}

impl Messaging {
    /// The sends' writer lanes run in `background`; stopping it lets them finish the sends
    /// already queued.
    pub fn new(
        db: DatabaseConnection,
        config: MessagingConfig,
        bus: Arc<dyn Bus>,
        events: Arc<Events>,
        presences: Arc<Presences>,
        background: &rosetta_kit::tasks::Tasks,
    ) -> Self {
        let policy = Arc::new(policy::Policy::new(db.clone()));
        fanout::start_dispatcher(db.clone(), bus.hub(), background);
        Self {
            writer: commit::Writer::new(
                &db,
                events.clone(),
                policy.clone(),
                config.writer_lanes,
                config.group_fanout_max_members,
                background,
            ),
            live_cursors: stream::LiveCursors::start(db.clone(), background),
            conversations: conversations::Cache::default(),
            policy,
            db,
            config,
            bus,
            events,
            presences,
        }
    }
}
