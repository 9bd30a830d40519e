//! The per-user durable event log (fan-out on write, see the crate docs) and [`Events`], the
//! [`EventSink`] every service in a process with the database and the bus publishes through.
//!
//! A user's events get seqs 1, 2, 3 … from a counter row (`event_heads`) bumped in the same
//! transaction that stores the events: writers to one user's log are serialized, so seqs have
//! no gaps, and an event is visible in the log before the bus can announce it.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use prost::Message as _;
use rosetta_db::entity::messaging::{event_head, user_event};
use rosetta_events::EventSink;
use rosetta_kit::{ApiError, ApiResult};
use rosetta_proto::messaging::v1::{Event, event::Kind};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait as _, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait as _,
    QueryFilter as _, QueryOrder as _, QuerySelect as _,
    sea_query::{Alias, Expr, ExprTrait as _, InsertStatement, OnConflict, Query},
};

use crate::bus::Bus;

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
        let mut next_seq = reserve(tx, &counts).await?;
        let mut rows = Vec::new();
        let mut stored = Vec::new();
        for (users, kind) in events {
            let payload = Event {
                kind: Some(kind.clone()),
                ..Default::default()
            }
            .encode_to_vec();
            for user in users {
                let next = next_seq
                    .get_mut(&user)
                    .ok_or_else(|| DbErr::Custom(format!("no log head reserved for {user}")))?;
                let seq = *next;
                *next += 1;
                rows.push(user_event::ActiveModel {
                    user_id: Set(user),
                    seq: Set(seq),
                    at_ms: Set(at_ms),
                    payload: Set(payload.clone()),
                });
                stored.push((user, stored_event(seq, at_ms, kind.clone())));
            }
        }
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            user_event::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(tx)
                .await?;
        }
        Ok(stored)
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

/// Rows per multi-row statement, well below SQLite's and PostgreSQL's bound-parameter limits.
const ROWS_PER_STATEMENT: usize = 4096;

/// Moves each user's log head on by their count of new events; returns, per user, the first
/// seq reserved.
///
/// One upsert per chunk: new heads start at their count, existing ones count on. Its rows
/// are in user id order, and PostgreSQL locks the heads it updates in the order of its rows,
/// so two fan-outs over overlapping users lock them in the same order and cannot deadlock
/// (SQLite has a single writer). The locks are held to the commit; taking them in one
/// statement keeps that time short, as every writer to these users' logs waits on it.
async fn reserve<C: ConnectionTrait>(
    tx: &C,
    counts: &BTreeMap<i64, i64>,
) -> Result<HashMap<i64, i64>, DbErr> {
    let counts: Vec<(i64, i64)> = counts.iter().map(|(&user, &n)| (user, n)).collect();
    let mut heads = Vec::new();
    for chunk in counts.chunks(ROWS_PER_STATEMENT) {
        let mut upsert = heads_insert(chunk)?;
        upsert
            .on_conflict(
                OnConflict::column(event_head::Column::UserId)
                    .value(
                        event_head::Column::LastSeq,
                        Expr::col((event_head::Entity, event_head::Column::LastSeq)).add(
                            Expr::col((Alias::new("excluded"), event_head::Column::LastSeq)),
                        ),
                    )
                    .to_owned(),
            )
            .returning(
                Query::returning()
                    .columns([event_head::Column::UserId, event_head::Column::LastSeq]),
            );
        heads.extend(tx.query_all(&upsert).await?);
    }
    let counts: HashMap<i64, i64> = counts.into_iter().collect();
    heads
        .into_iter()
        .map(|row| {
            let user: i64 = row.try_get("", "user_id")?;
            let last: i64 = row.try_get("", "last_seq")?;
            Ok((user, last - counts.get(&user).copied().unwrap_or(1) + 1))
        })
        .collect()
}

/// `INSERT INTO event_heads (user_id, last_seq)`, one row per `(user, count)`, in order.
fn heads_insert(counts: &[(i64, i64)]) -> Result<InsertStatement, DbErr> {
    let mut insert = Query::insert();
    insert
        .into_table(event_head::Entity)
        .columns([event_head::Column::UserId, event_head::Column::LastSeq]);
    for &(user, n) in counts {
        insert
            .values([user.into(), n.into()])
            .map_err(|err| DbErr::Custom(err.to_string()))?;
    }
    Ok(insert)
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
