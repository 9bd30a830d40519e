//! One watch per process over the sessions of its open event streams, instead of a timer per
//! stream: an idle stream costs the database nothing.
//!
//! Streams register their session id ([`SessionGuard::watch`]) and hold a [`WatchHandle`];
//! several streams of one session share one entry, which goes when the last handle is dropped.
//! One task ([`SessionWatch::start`]) asks the database, once per period and only while
//! something is watched, for the sessions that ended since its last run (revoked, or past
//! their refresh expiry): a range scan over two indexed columns whatever the number of streams.
//! A watched session found there is marked ended in the guard's cache and its handles fire.
//! A revocation in this process ([`SessionGuard::revoked`]) fires them at once.
//!
//! The window reaches back a margin before the last run: it covers clock skew between the
//! processes that write `revoked_at_ms` and this one, and a stream opened on a cached "live"
//! answer up to the cache's lifetime after its session ended elsewhere. Seeing a session
//! twice is harmless (its handles have already fired and left).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError, Weak},
    time::Duration,
};

use rosetta_db::entity::session;
use rosetta_kit::tasks::Tasks;
use sea_orm::{ColumnTrait as _, Condition, EntityTrait as _, QueryFilter as _, QuerySelect as _};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::SessionGuard;

/// Periods the window reaches back beyond the last run, besides the cache's lifetime.
const MARGIN_PERIODS: u32 = 3;
/// The longest one watch query may take; a slower one is abandoned and its window retried.
const QUERY_DEADLINE: Duration = Duration::from_secs(10);

/// The sessions watched in this process, each with what fires its streams' handles.
#[derive(Clone, Default)]
pub(crate) struct Watchers(Arc<Mutex<WatchMap>>);

#[derive(Default)]
struct WatchMap {
    sessions: HashMap<String, Entry>,
    /// Numbers entries, so that a handle of a fired (and replaced) entry leaves its successor.
    next: u64,
}

struct Entry {
    number: u64,
    fire: CancellationToken,
    holders: usize,
}

impl Watchers {
    fn lock(&self) -> MutexGuard<'_, WatchMap> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn register(&self, session_id: &str) -> WatchHandle {
        let mut map = self.lock();
        map.next += 1;
        let next = map.next;
        let entry = map
            .sessions
            .entry(session_id.to_owned())
            .or_insert_with(|| Entry {
                number: next,
                fire: CancellationToken::new(),
                holders: 0,
            });
        entry.holders += 1;
        WatchHandle {
            session_id: session_id.to_owned(),
            number: entry.number,
            fire: entry.fire.clone(),
            watchers: Arc::downgrade(&self.0),
        }
    }

    /// Fires the handles of `session_id`, if it is watched; it is watched no longer.
    pub(crate) fn fire(&self, session_id: &str) {
        if let Some(entry) = self.lock().sessions.remove(session_id) {
            entry.fire.cancel();
        }
    }

    pub(crate) fn is_watched(&self, session_id: &str) -> bool {
        self.lock().sessions.contains_key(session_id)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lock().sessions.is_empty()
    }
}

/// A stream's hold on its session's watch: [`WatchHandle::ended`] completes once the session
/// may have ended. Dropping it stops watching (for this stream).
pub struct WatchHandle {
    session_id: String,
    number: u64,
    fire: CancellationToken,
    watchers: Weak<Mutex<WatchMap>>,
}

impl WatchHandle {
    /// Completes when the session was seen to end (the caller confirms with
    /// [`SessionGuard::is_live`] and, if it still lives, watches anew).
    pub async fn ended(&self) {
        self.fire.cancelled().await;
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    pub(crate) fn fire_now(&self) {
        self.fire.cancel();
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        let Some(watchers) = self.watchers.upgrade() else {
            return;
        };
        let mut map = watchers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = map.sessions.get_mut(&self.session_id)
            && entry.number == self.number
        {
            entry.holders -= 1;
            if entry.holders == 0 {
                map.sessions.remove(&self.session_id);
            }
        }
    }
}

/// The process's one task that finds watched sessions ended by other processes.
pub struct SessionWatch;

impl SessionWatch {
    /// Runs the watch every `period` in `tasks` until they are told to stop.
    pub fn start(guard: Arc<SessionGuard>, period: Duration, tasks: &Tasks) {
        let stopping = tasks.stopping().clone();
        let margin = period * MARGIN_PERIODS + guard.ttl();
        let margin_ms = i64::try_from(margin.as_millis()).unwrap_or(i64::MAX);
        tasks.spawn(async move {
            let mut since = rosetta_db::now_ms();
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            tick.reset();
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stopping.cancelled() => return,
                }
                let now = rosetta_db::now_ms();
                if guard.watchers().is_empty() {
                    // Nothing to find: a session ended now is covered by the margin should a
                    // stream open on it before the next run.
                    since = now;
                    continue;
                }
                let run = tokio::time::timeout(
                    QUERY_DEADLINE,
                    ended_between(&guard, since.saturating_sub(margin_ms), now),
                );
                match run.await {
                    Ok(Ok(ended)) => {
                        guard.ended_elsewhere(&ended);
                        since = now;
                    }
                    // The window stays open: the next run covers it.
                    Ok(Err(err)) => tracing::warn!(%err, "session watch query failed"),
                    Err(_) => tracing::warn!(?QUERY_DEADLINE, "session watch query timed out"),
                }
            }
        });
    }
}

/// The ids of the sessions revoked at or after `from`, or whose refresh expiry fell in
/// `from..=now`: one query, a range scan of each indexed column (migration m0011).
async fn ended_between(
    guard: &SessionGuard,
    from: i64,
    now: i64,
) -> Result<Vec<String>, sea_orm::DbErr> {
    guard.count_watch_query();
    session::Entity::find()
        .select_only()
        .column(session::Column::Id)
        .filter(
            Condition::any()
                .add(session::Column::RevokedAtMs.gte(from))
                .add(
                    Condition::all()
                        .add(session::Column::RefreshExpiresAtMs.lte(now))
                        .add(session::Column::RefreshExpiresAtMs.gte(from)),
                ),
        )
        .into_tuple()
        .all(guard.db())
        .await
}
