//! The per-user durable event log (fan-out on write, see the crate docs) and [`Events`], the
//! [`EventSink`] every service in a process with the database and the bus publishes through.
//!
//! A user's events get seqs 1, 2, 3 … from a counter row (`event_heads`) bumped in the same
//! transaction that stores the events: writers to one user's log are serialized, so seqs have
//! no gaps, and an event is visible in the log before the bus can announce it.

use std::{collections::BTreeMap, sync::Arc};

use prost::Message as _;
use rosetta_db::entity::messaging::{event_head, user_event};
use rosetta_events::EventSink;
use rosetta_kit::{ApiError, ApiResult};
use rosetta_proto::messaging::v1::{Event, event::Kind};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait as _,
    QueryFilter as _, QueryOrder as _, QuerySelect as _,
};

use crate::bus::Bus;

mod heads;

/// Durable events and live-only ones, handed to the log and the bus.
pub struct Events {
    db: DatabaseConnection,
    bus: Arc<dyn Bus>,
}

/// Live-only events are never stored and carry seq 0.
pub fn is_live_only(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::PresenceChanged(_) | Kind::Signal(_) | Kind::Typing(_) | Kind::Announcement(_)
    )
}

impl Events {
    pub fn new(db: DatabaseConnection, bus: Arc<dyn Bus>) -> Self {
        Self { db, bus }
    }

    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    /// Stores `kind` in each recipient's log (inside the caller's transaction `tx`) and returns
    /// the stored events, to [`Events::wake`] after the commit.
    pub async fn append<C: ConnectionTrait>(
        tx: &C,
        recipients: &[i64],
        kind: &Kind,
        at_ms: i64,
    ) -> Result<Vec<(i64, Event)>, DbErr> {
        Self::append_all(tx, &[(recipients, kind)], at_ms).await
    }

    /// Stores several events, in order, each in its recipients' logs, with one counter update
    /// per user however many of the events reach that user, and the log rows in multi-row
    /// inserts. Returns the stored events in the same order, to wake after the commit.
    pub async fn append_all<C: ConnectionTrait>(
        tx: &C,
        events: &[(&[i64], &Kind)],
        at_ms: i64,
    ) -> Result<Vec<(i64, Event)>, DbErr> {
        let events: Vec<(Vec<i64>, &Kind)> = events
            .iter()
            .map(|&(recipients, kind)| {
                let mut users = recipients.to_vec();
                users.sort_unstable();
                users.dedup();
                (users, kind)
            })
            .collect();
        let mut counts = BTreeMap::<i64, i64>::new();
        for user in events.iter().flat_map(|(users, _)| users) {
            *counts.entry(*user).or_default() += 1;
        }
        let payloads: Vec<Vec<u8>> = events
            .iter()
            .map(|(_, kind)| {
                Event {
                    kind: Some((*kind).clone()),
                    ..Default::default()
                }
                .encode_to_vec()
            })
            .collect();
        // One log row per (recipient, event), in the order their seqs are given out.
        let rows: Vec<heads::Row> = events
            .iter()
            .enumerate()
            .flat_map(|(event, (users, _))| users.iter().map(move |&user| (user, event)))
            .collect();
        let mut next_seq = heads::append_rows(tx, &counts, &rows, &payloads, at_ms).await?;
        rows.iter()
            .map(|&(user, event)| {
                let next = next_seq
                    .get_mut(&user)
                    .ok_or_else(|| DbErr::Custom(format!("no log head reserved for {user}")))?;
                let seq = *next;
                *next += 1;
                Ok((user, stored_event(seq, at_ms, events[event].1.clone())))
            })
            .collect()
    }

    /// Hands committed events (or live-only ones) to the bus.
    pub async fn wake(&self, deliveries: Vec<(i64, Event)>) {
        if !deliveries.is_empty() {
            self.bus.publish(deliveries).await;
        }
    }

    /// Hands committed large-group messages to the bus, one publication per message.
    pub async fn wake_groups(&self, deliveries: Vec<(i64, Event)>) {
        for (group, event) in deliveries {
            self.bus.publish_group(group, event).await;
        }
    }

    /// Stores `kind` for `recipients` in a transaction of its own, then wakes them.
    pub async fn publish_durable(&self, recipients: &[i64], kind: Kind) -> ApiResult<()> {
        let tx = rosetta_db::begin_write(&self.db).await?;
        let stored = Self::append(&*tx, recipients, &kind, rosetta_db::now_ms()).await?;
        tx.commit().await?;
        self.wake(stored).await;
        Ok(())
    }

    /// Pushes a live-only event (seq 0) to the recipients' open streams.
    pub async fn publish_live(&self, recipients: &[i64], kind: Kind) {
        let at_ms = rosetta_db::now_ms();
        let deliveries = recipients
            .iter()
            .map(|&user| (user, stored_event(0, at_ms, kind.clone())))
            .collect();
        self.wake(deliveries).await;
    }

    /// Up to `limit` of `user`'s durable events with seq > `after`, oldest first.
    pub async fn read_after(&self, user: i64, after: u64, limit: u64) -> ApiResult<Vec<Event>> {
        let rows = user_event::Entity::find()
            .filter(user_event::Column::UserId.eq(user))
            .filter(user_event::Column::Seq.gt(to_i64(after)))
            .order_by_asc(user_event::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                let decoded = Event::decode(row.payload.as_slice()).map_err(ApiError::internal)?;
                Ok(Event {
                    seq: to_u64(row.seq),
                    at_ms: row.at_ms,
                    kind: decoded.kind,
                })
            })
            .collect()
    }

    /// `user`'s newest durable event seq (0 before the first).
    pub async fn head(&self, user: i64) -> ApiResult<u64> {
        Ok(event_head::Entity::find_by_id(user)
            .one(&self.db)
            .await?
            .map_or(0, |head| to_u64(head.last_seq)))
    }
}

#[async_trait::async_trait]
impl EventSink for Events {
    async fn publish(&self, recipients: &[i64], kind: Kind) -> ApiResult<()> {
        if is_live_only(&kind) {
            self.publish_live(recipients, kind).await;
            Ok(())
        } else {
            self.publish_durable(recipients, kind).await
        }
    }

    async fn broadcast(&self, kind: Kind) {
        let event = stored_event(0, rosetta_db::now_ms(), kind);
        self.bus.broadcast(event).await;
    }
}

fn stored_event(seq: i64, at_ms: i64, kind: Kind) -> Event {
    Event {
        seq: to_u64(seq),
        at_ms,
        kind: Some(kind),
    }
}

/// Seqs are stored as BIGINT and never negative.
pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
