//! Announcements on a stream: an operator's message to every user, stored once (by the admin
//! service), not in every user's log.
//!
//! Every stream open when one is sent gets it live (the bus broadcasts it to every stream);
//! a user's cursor (`announcement_cursors`, the newest id delivered to them) moves with each
//! delivery. A stream that opens later, or re-reads after the bus may have lost wake-ups,
//! delivers the active announcements past the cursor after `CaughtUp`, each one only if it
//! wins the cursor's conditional update: so a user who logs in again, or twice at once, gets
//! a stored announcement once. Live delivery is per stream (every device online at the
//! moment shows it, as with a message), and a stream never sends one twice.

use std::collections::BTreeMap;

use rosetta_db::{
    entity::{announcement, announcement_cursor},
    now_ms,
};
use rosetta_kit::{ApiResult, tasks::Tasks};
use rosetta_proto::messaging::v1::{Announcement, Event, event, subscribe_response::Item};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _,
    QueryOrder as _, QuerySelect as _,
    sea_query::{Alias, Expr, ExprTrait as _, OnConflict, Query},
};
use tokio::sync::mpsc;

use super::{Outbox, send};
use crate::Messaging;

/// Announcements read per check: the admin service keeps at most this many in their
/// lifetime at once.
const MAX_ACTIVE: u64 = 16;

/// The newest announcement this stream has sent.
#[derive(Default)]
pub(super) struct Announced {
    last: i64,
}

impl Messaging {
    /// Sends the active announcements no stream of `me` has delivered yet, claiming each on
    /// the user's cursor first. `false` when the client went away.
    pub(super) async fn send_pending(
        &self,
        me: i64,
        out: &Outbox,
        announced: &mut Announced,
    ) -> ApiResult<bool> {
        let active = announcement::Entity::find()
            .filter(announcement::Column::ExpiresAtMs.gt(now_ms()))
            .filter(announcement::Column::Id.gt(announced.last))
            .order_by_asc(announcement::Column::Id)
            .limit(MAX_ACTIVE)
            .all(&self.db)
            .await?;
        if active.is_empty() {
            return Ok(true);
        }
        let cursor = announcement_cursor::Entity::find_by_id(me)
            .one(&self.db)
            .await?
            .map_or(0, |row| row.last_id);
        for row in active.into_iter().filter(|row| row.id > cursor) {
            // Lost to another stream of the user (or to a newer one delivered live).
            if !self.advance(me, row.id).await? {
                continue;
            }
            announced.last = row.id;
            if !send(out, Item::Event(event_of(announcement_of(row)))).await {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Sends an announcement the bus broadcast, unless this stream sent it already or it
    /// expired on the way; moves the user's cursor so later logins skip it. `false` when the
    /// client went away.
    pub(super) async fn send_live(
        &self,
        me: i64,
        announcement: &Announcement,
        out: &Outbox,
        announced: &mut Announced,
    ) -> ApiResult<bool> {
        if announcement.id <= announced.last || announcement.expires_at_ms <= now_ms() {
            return Ok(true);
        }
        announced.last = announcement.id;
        if !self.live_cursors.record(me, announcement.id) {
            self.advance(me, announcement.id).await?;
        }
        Ok(send(out, Item::Event(event_of(announcement.clone()))).await)
    }

    /// Moves `me`'s cursor to `id` if it is behind it, in one statement; whether it moved.
    async fn advance(&self, me: i64, id: i64) -> ApiResult<bool> {
        use announcement_cursor::Column;
        let upsert = Query::insert()
            .into_table(announcement_cursor::Entity)
            .columns([Column::UserId, Column::LastId])
            .values_panic([me.into(), id.into()])
            .on_conflict(
                OnConflict::column(Column::UserId)
                    .update_column(Column::LastId)
                    .action_and_where(
                        Expr::col((announcement_cursor::Entity, Column::LastId)).lt(id),
                    )
                    .to_owned(),
            )
            .to_owned();
        Ok(self.db.execute(&upsert).await?.rows_affected() > 0)
    }
}

/// Cursor moves of live deliveries, written together. A broadcast wakes every open stream at
/// once: one upsert per stream would queue as many single-row writes (on SQLite, one writer
/// at a time) in front of the sends. A user who logs in again within the batch's few
/// milliseconds may be shown a live announcement a second time; no other effect.
pub(crate) struct LiveCursors {
    queue: mpsc::Sender<(i64, i64)>,
}

/// Cursor moves waiting; past this a stream writes its own.
const LIVE_QUEUE: usize = 65_536;
/// Rows per statement, far below both databases' bound-parameter limits.
const ROWS: usize = 4096;

impl LiveCursors {
    /// The writer runs in `background` until it stops, writing what is queued then.
    pub(crate) fn start(db: DatabaseConnection, background: &Tasks) -> Self {
        let (queue, mut moves) = mpsc::channel(LIVE_QUEUE);
        let stopping = background.stopping().clone();
        background.spawn(async move {
            let mut batch = Vec::with_capacity(ROWS);
            loop {
                tokio::select! {
                    got = moves.recv_many(&mut batch, ROWS) => if got == 0 { return },
                    () = stopping.cancelled() => {
                        moves.close();
                        while moves.recv_many(&mut batch, ROWS).await > 0 {
                            write(&db, &mut batch).await;
                        }
                        return;
                    }
                }
                write(&db, &mut batch).await;
            }
        });
        Self { queue }
    }

    /// Queues `user`'s cursor move to `id`; `false` when the queue is full or stopped (the
    /// caller then writes it itself).
    fn record(&self, user: i64, id: i64) -> bool {
        self.queue.try_send((user, id)).is_ok()
    }
}

/// Writes a batch of cursor moves (the newest per user) in one statement; a failure is
/// logged (those users may be shown a live announcement again at their next login).
async fn write(db: &DatabaseConnection, batch: &mut Vec<(i64, i64)>) {
    use announcement_cursor::Column;
    let newest: BTreeMap<i64, i64> = batch.drain(..).fold(BTreeMap::new(), |mut m, (u, id)| {
        let slot = m.entry(u).or_insert(id);
        *slot = Ord::max(*slot, id);
        m
    });
    let mut upsert = Query::insert();
    upsert
        .into_table(announcement_cursor::Entity)
        .columns([Column::UserId, Column::LastId]);
    for (user, id) in &newest {
        upsert.values_panic([(*user).into(), (*id).into()]);
    }
    upsert.on_conflict(
        OnConflict::column(Column::UserId)
            .update_column(Column::LastId)
            .action_and_where(
                Expr::col((announcement_cursor::Entity, Column::LastId))
                    .lt(Expr::col((Alias::new("excluded"), Column::LastId))),
            )
            .to_owned(),
    );
    if let Err(err) = db.execute(&upsert).await {
        tracing::warn!(%err, users = newest.len(), "announcement cursors not moved");
    }
}

fn announcement_of(row: announcement::Model) -> Announcement {
    Announcement {
        id: row.id,
        text: row.text,
        sent_at_ms: row.created_at_ms,
        expires_at_ms: row.expires_at_ms,
    }
}

fn event_of(announcement: Announcement) -> Event {
    Event {
        seq: 0,
        at_ms: announcement.sent_at_ms,
        kind: Some(event::Kind::Announcement(announcement)),
    }
}
