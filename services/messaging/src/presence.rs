//! Presence, kept in the database so that every messaging process sees the same thing.
//!
//! A user is present while `last_active_ms` is younger than the timeout: open streams refresh
//! it (each process refreshes the users of its own streams, see [`Presences::keep`]),
//! heartbeats refresh it. What contacts were last told is stored too (`announced`); a
//! conditional update of that column decides which process announces a change, so contacts
//! hear each change once even with several processes sweeping.

use std::{collections::HashMap, sync::Arc, time::Duration};

use rosetta_db::entity::{messaging::presence, social::friendship};
use rosetta_events::PresenceView;
use rosetta_kit::{ApiResult, tasks::Tasks};
use rosetta_proto::{
    common::v1::Location,
    messaging::v1::event::Kind,
    social::v1::{Presence, PresenceStatus},
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait as _, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait as _,
    QueryFilter as _, QuerySelect as _,
    sea_query::{Expr, ExprTrait as _, OnConflict, Query},
};

use crate::{
    bus::Hub,
    log::Events,
    visibility::{self, Sight},
};

const ONLINE: i16 = PresenceStatus::Online as i16;
const OFFLINE: i16 = PresenceStatus::Offline as i16;
const INVISIBLE: i16 = PresenceStatus::Invisible as i16;
/// Users whose activity one refresh statement updates.
const REFRESH_CHUNK: usize = 1000;
/// Users per presence read (bind parameters).
const USERS_PER_READ: usize = 4096;

/// What a send's answer needs of a presence row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    pub status: i16,
    pub last_active_ms: i64,
}

impl Liveness {
    fn of(row: &presence::Model) -> Self {
        Self {
            status: row.status,
            last_active_ms: row.last_active_ms,
        }
    }
}

/// The presence rows of `users` (those that have one), in one statement per chunk: read by
/// the writer inside a batch of sends for their answers.
pub async fn liveness_of<C: ConnectionTrait>(
    db: &C,
    users: &[i64],
) -> Result<HashMap<i64, Liveness>, DbErr> {
    let mut found = HashMap::with_capacity(users.len());
    for chunk in users.chunks(USERS_PER_READ) {
        let rows: Vec<(i64, i16, i64)> = presence::Entity::find()
            .select_only()
            .columns([
                presence::Column::UserId,
                presence::Column::Status,
                presence::Column::LastActiveMs,
            ])
            .filter(presence::Column::UserId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        for (user, status, last_active_ms) in rows {
            found.insert(
                user,
                Liveness {
                    status,
                    last_active_ms,
                },
            );
        }
    }
    Ok(found)
}

pub struct Presences {
    db: DatabaseConnection,
    timeout_ms: i64,
    events: Arc<Events>,
}

impl Presences {
    pub fn new(db: DatabaseConnection, timeout: Duration, events: Arc<Events>) -> Self {
        Self {
            db,
            timeout_ms: i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
            events,
        }
    }

    /// Marks `user` active now (a stream opened, a heartbeat), storing `location` if given;
    /// a user who had signed out comes back online.
    pub async fn touch(&self, user: i64, location: Option<&Location>) -> ApiResult<()> {
        let now = rosetta_db::now_ms();
        let mut row = presence::ActiveModel {
            user_id: Set(user),
            status: Set(ONLINE),
            last_active_ms: Set(now),
            announced: Set(OFFLINE),
            latitude: Set(None),
            longitude: Set(None),
            location_client_time: Set(None),
            location_at_ms: Set(None),
        };
        let mut update = vec![presence::Column::LastActiveMs];
        if let Some(loc) = location {
            row.latitude = Set(Some(loc.latitude));
            row.longitude = Set(Some(loc.longitude));
            row.location_client_time = Set(Some(loc.client_time.clone()));
            row.location_at_ms = Set(Some(now));
            update.extend([
                presence::Column::Latitude,
                presence::Column::Longitude,
                presence::Column::LocationClientTime,
                presence::Column::LocationAtMs,
            ]);
        }
        presence::Entity::insert(row)
            .on_conflict(
                OnConflict::column(presence::Column::UserId)
                    .update_columns(update)
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        presence::Entity::update_many()
            .col_expr(presence::Column::Status, Expr::value(ONLINE))
            .filter(presence::Column::UserId.eq(user))
            .filter(presence::Column::Status.eq(OFFLINE))
            .exec(&self.db)
            .await?;
        self.announce(user).await
    }

    /// Sets the status `user` chose (ONLINE, INVISIBLE, or OFFLINE to sign out).
    pub async fn set_status(&self, user: i64, status: PresenceStatus) -> ApiResult<()> {
        self.touch(user, None).await?;
        presence::Entity::update_many()
            .col_expr(presence::Column::Status, Expr::value(status as i16))
            .filter(presence::Column::UserId.eq(user))
            .exec(&self.db)
            .await?;
        self.announce(user).await
    }

    /// Whether `user` is actually reachable right now (invisible counts: signals still go).
    pub async fn is_present(&self, user: i64) -> ApiResult<bool> {
        let row = presence::Entity::find_by_id(user).one(&self.db).await?;
        Ok(self.raw(row.as_ref(), rosetta_db::now_ms()) != PresenceStatus::Offline)
    }

    /// Whether `user` shows as online to a friend (an invisible user shows as offline): one
    /// row read, for the send path, whose policy has just established the friendship.
    pub async fn online_to_friends(&self, user: i64) -> ApiResult<bool> {
        let row = presence::Entity::find_by_id(user).one(&self.db).await?;
        Ok(self.online_to_friends_by(row.as_ref().map(Liveness::of)))
    }

    /// The same from a row the writer read with the send ([`liveness_of`]).
    pub fn online_to_friends_by(&self, row: Option<Liveness>) -> bool {
        self.status_of(row, rosetta_db::now_ms()) == PresenceStatus::Online
    }

    /// Presence of `users` as `viewer` may see it: invisible shows as offline to others, and
    /// [`visibility`] decides how much of the rest (friends, group peers, nobody).
    pub async fn view(&self, viewer: i64, users: &[i64]) -> ApiResult<Vec<Presence>> {
        let sights = visibility::sights(&self.db, viewer, users).await?;
        let rows: HashMap<i64, presence::Model> = presence::Entity::find()
            .filter(presence::Column::UserId.is_in(users.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| (row.user_id, row))
            .collect();
        let now = rosetta_db::now_ms();
        Ok(users
            .iter()
            .map(|&user| {
                let sight = sights.get(&user).copied().unwrap_or(Sight::Nothing);
                visibility::apply(
                    self.shown(rows.get(&user), user, sight == Sight::Own, now),
                    sight,
                )
            })
            .collect())
    }

    /// The status a stored row means at `now`, before the invisibility rule.
    fn raw(&self, row: Option<&presence::Model>, now: i64) -> PresenceStatus {
        self.status_of(row.map(Liveness::of), now)
    }

    fn status_of(&self, row: Option<Liveness>, now: i64) -> PresenceStatus {
        match row {
            Some(row) if now - row.last_active_ms <= self.timeout_ms => match row.status {
                ONLINE => PresenceStatus::Online,
                INVISIBLE => PresenceStatus::Invisible,
                _ => PresenceStatus::Offline,
            },
            _ => PresenceStatus::Offline,
        }
    }

    fn shown(&self, row: Option<&presence::Model>, user: i64, own: bool, now: i64) -> Presence {
        let mut status = self.raw(row, now);
        if status == PresenceStatus::Invisible && !own {
            status = PresenceStatus::Offline;
        }
        let hidden = !own && row.is_some_and(|r| r.status == INVISIBLE);
        let location = row.filter(|_| !hidden).and_then(|r| {
            Some(Location {
                latitude: r.latitude?,
                longitude: r.longitude?,
                client_time: r.location_client_time.clone().unwrap_or_default(),
                received_at_ms: r.location_at_ms.unwrap_or_default(),
            })
        });
        Presence {
            user_id: user,
            status: status.into(),
            location,
            last_seen_ms: row.filter(|_| !hidden).map_or(0, |r| r.last_active_ms),
        }
    }

    /// Tells `user`'s contacts if what they see of `user` changed since they were last told.
    async fn announce(&self, user: i64) -> ApiResult<()> {
        let row = presence::Entity::find_by_id(user).one(&self.db).await?;
        let now = rosetta_db::now_ms();
        let shown = self.shown(row.as_ref(), user, false, now);
        let visible = if shown.status == PresenceStatus::Online as i32 {
            ONLINE
        } else {
            OFFLINE
        };
        let changed = presence::Entity::update_many()
            .col_expr(presence::Column::Announced, Expr::value(visible))
            .filter(presence::Column::UserId.eq(user))
            .filter(presence::Column::Announced.ne(visible))
            .exec(&self.db)
            .await?
            .rows_affected;
        if changed > 0 {
            self.tell_contacts(shown).await?;
        }
        Ok(())
    }

    /// Announces to friends only, who see all of it; group peers read status on demand.
    async fn tell_contacts(&self, shown: Presence) -> ApiResult<()> {
        let friends: Vec<i64> = friendship::Entity::find()
            .select_only()
            .column(friendship::Column::FriendId)
            .filter(friendship::Column::UserId.eq(shown.user_id))
            .into_tuple()
            .all(&self.db)
            .await?;
        let shown = visibility::apply(shown, Sight::Friend);
        self.events
            .publish_live(&friends, Kind::PresenceChanged(shown))
            .await;
        Ok(())
    }

    /// Keeps this process's streaming users present and announces users who timed out, in a
    /// task of `tasks` that ends when they are stopped.
    pub fn keep(self: Arc<Self>, hub: Arc<Hub>, tasks: &Tasks) {
        let period = Duration::from_millis(
            u64::try_from(self.timeout_ms / 3)
                .unwrap_or(1000)
                .clamp(50, 30_000),
        );
        let stopping = tasks.stopping().clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stopping.cancelled() => return,
                }
                hub.prune();
                if let Err(err) = self.refresh(&hub.live_users()).await {
                    tracing::warn!(%err, "presence refresh failed");
                }
                if let Err(err) = self.sweep().await {
                    tracing::warn!(%err, "presence sweep failed");
                }
            }
        });
    }

    /// Marks `users` active now, [`REFRESH_CHUNK`] at a time: one statement for every
    /// streaming user would pass SQLite's limit of 32,766 bound values, and hold its one writer
    /// for the whole list while sends wait.
    async fn refresh(&self, users: &[i64]) -> ApiResult<()> {
        let now = rosetta_db::now_ms();
        for chunk in users.chunks(REFRESH_CHUNK) {
            presence::Entity::update_many()
                .col_expr(presence::Column::LastActiveMs, Expr::value(now))
                .filter(presence::Column::UserId.is_in(chunk.iter().copied()))
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    /// Announces OFFLINE for every user shown online whose activity timed out.
    async fn sweep(&self) -> ApiResult<()> {
        let cutoff = rosetta_db::now_ms() - self.timeout_ms;
        let expired = Query::update()
            .table(presence::Entity)
            .value(presence::Column::Announced, OFFLINE)
            .and_where(Expr::col(presence::Column::Announced).eq(ONLINE))
            .and_where(Expr::col(presence::Column::LastActiveMs).lt(cutoff))
            .returning(Query::returning().columns([presence::Column::UserId]))
            .to_owned();
        for row in self.db.query_all(&expired).await? {
            let user: i64 = row.try_get("", "user_id")?;
            self.tell_contacts(Presence {
                user_id: user,
                status: PresenceStatus::Offline.into(),
                ..Default::default()
            })
            .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl PresenceView for Presences {
    async fn presence(&self, viewer: i64, users: &[i64]) -> ApiResult<Vec<Presence>> {
        self.view(viewer, users).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{bus::LocalBus, test_support::user};

    /// A process streaming more users than SQLite takes bound values in one statement still
    /// keeps every one of them present (one statement for all of them failed past 32,766).
    #[tokio::test]
    async fn refresh_covers_more_users_than_one_statement_may_name() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
        let db = rosetta_db::connect(&url).await.unwrap();
        let events = Arc::new(Events::new(db.clone(), Arc::new(LocalBus::default())));
        let presences = Presences::new(db.clone(), Duration::from_secs(60), events);
        let (first, last) = (user(&db, "first").await, user(&db, "last").await);
        presences.touch(first, None).await.unwrap();
        presences.touch(last, None).await.unwrap();
        let stale = rosetta_db::now_ms() - 3_600_000;
        presence::Entity::update_many()
            .col_expr(presence::Column::LastActiveMs, Expr::value(stale))
            .exec(&db)
            .await
            .unwrap();

        // The two real users at both ends of a list of 40,000 streaming users.
        let mut streaming: Vec<i64> = (1_000_000..1_040_000).collect();
        streaming[0] = first;
        streaming[39_999] = last;
        presences.refresh(&streaming).await.unwrap();

        for user in [first, last] {
            let row = presence::Entity::find_by_id(user).one(&db).await.unwrap();
            assert!(row.unwrap().last_active_ms > stale, "user {user} refreshed");
        }
    }
}
