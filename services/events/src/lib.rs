//! The seams between services. The social service publishes friend and group events and shows
//! presence in contact lists, but both belong to the messaging service: these traits are the
//! contract, implemented by messaging (durable per-user events, live presence) and, until it
//! runs in a process, by the inert implementations below.

use rosetta_kit::ApiResult;
use rosetta_proto::{messaging::v1::event::Kind, social::v1::Presence};

/// Delivers an event to users: stored durably for each recipient, then pushed to their live
/// `Subscribe` streams.
#[async_trait::async_trait]
pub trait EventSink: Send + Sync {
    async fn publish(&self, recipients: &[i64], kind: Kind) -> ApiResult<()>;

    /// Pushes a live-only event to every open stream of every user, wherever it runs (an
    /// announcement, stored by its sender, not per user). Best effort: a stream that misses
    /// it reads the stored announcements when it next re-reads. Without a messaging service
    /// there are no streams: dropped.
    async fn broadcast(&self, kind: Kind) {
        tracing::debug!(?kind, "broadcast discarded: no messaging service");
    }
}

/// Presence of users as a viewer may see it (invisible users appear offline to others).
#[async_trait::async_trait]
pub trait PresenceView: Send + Sync {
    async fn presence(&self, viewer: i64, users: &[i64]) -> ApiResult<Vec<Presence>>;
}

/// Drops events (logging them); for processes that run no messaging service.
pub struct DiscardEvents;

#[async_trait::async_trait]
impl EventSink for DiscardEvents {
    async fn publish(&self, recipients: &[i64], kind: Kind) -> ApiResult<()> {
        tracing::debug!(?recipients, ?kind, "event discarded: no messaging service");
        Ok(())
    }
}

/// Reports everybody offline; for processes that run no messaging service.
pub struct NoPresence;

#[async_trait::async_trait]
impl PresenceView for NoPresence {
    async fn presence(&self, _viewer: i64, users: &[i64]) -> ApiResult<Vec<Presence>> {
        Ok(users
            .iter()
            .map(|&user_id| Presence {
                user_id,
                status: rosetta_proto::social::v1::PresenceStatus::Offline.into(),
                ..Default::default()
            })
            .collect())
    }
}
