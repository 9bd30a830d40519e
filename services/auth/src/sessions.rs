//! Whether a session is still live, checked against the shared database and cached briefly so
//! the hot path of a token-checked call does not touch the database every time. Open event
//! streams do not ask it on a timer: they watch their session ([`SessionGuard::watch`], see
//! [`crate::SessionWatch`]) and ask only when the watch fires.

use std::{
    collections::HashMap,
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rosetta_db::entity::session;
use rosetta_kit::ApiError;
use sea_orm::{DatabaseConnection, EntityTrait};

use crate::session_watch::{WatchHandle, Watchers};

/// Sessions the cache holds at most; past it, it sheds entries (see [`Cache::make_room`]).
const MAX_CACHED: usize = 100_000;
/// What shedding brings the cache down to, so that it does not shed on every insert.
const SHED_TO: usize = MAX_CACHED / 10 * 9;

/// The database queries a guard made, for measurement and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionQueries {
    /// Lookups of one session ([`SessionGuard::is_live`] past the cache).
    pub lookups: u64,
    /// Runs of the process's session watch (one query each).
    pub watch_runs: u64,
}

pub struct SessionGuard {
    db: DatabaseConnection,
    ttl: Duration,
    cache: Mutex<Cache>,
    watchers: Watchers,
    lookups: AtomicU64,
    watch_runs: AtomicU64,
}

impl SessionGuard {
    /// `ttl`: how long a "live" answer is trusted; a revocation by another process takes
    /// effect here within that time (for a watched session, within the watch's period).
    /// Revocations in this process take effect at once.
    pub fn new(db: DatabaseConnection, ttl: Duration) -> Self {
        Self {
            db,
            ttl,
            cache: Mutex::new(Cache::default()),
            watchers: Watchers::default(),
            lookups: AtomicU64::new(0),
            watch_runs: AtomicU64::new(0),
        }
    }

    pub async fn is_live(&self, session_id: &str) -> Result<bool, ApiError> {
        if let Some(live) = self.cached(session_id) {
            return Ok(live);
        }
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let now = rosetta_db::now_ms();
        let live = session::Entity::find_by_id(session_id.to_owned())
            .one(&self.db)
            .await?
            .is_some_and(|s| s.revoked_at_ms.is_none() && s.refresh_expires_at_ms > now);
        self.cache().insert(session_id, live, self.ttl);
        Ok(live)
    }

    /// Records that a session ended (logout, account deletion, refresh-token reuse); the
    /// streams watching it are told at once.
    pub fn revoked(&self, session_id: &str) {
        self.cache().insert(session_id, false, self.ttl);
        self.watchers.fire(session_id);
    }

    /// Watches `session_id` for its end. A session already known to have ended fires the
    /// handle at once.
    pub fn watch(&self, session_id: &str) -> WatchHandle {
        // Registered before the cache is read: a concurrent `revoked` either fires this
        // handle or is seen in the cache.
        let handle = self.watchers.register(session_id);
        if self.cached(session_id) == Some(false) {
            handle.fire_now();
        }
        handle
    }

    /// The database queries this guard has made so far.
    pub fn queries(&self) -> SessionQueries {
        SessionQueries {
            lookups: self.lookups.load(Ordering::Relaxed),
            watch_runs: self.watch_runs.load(Ordering::Relaxed),
        }
    }

    /// Sessions the watch found ended in the database: known dead here from now on, and
    /// their streams told. Sessions neither watched nor cached are not remembered.
    pub(crate) fn ended_elsewhere(&self, ended: &[String]) {
        for id in ended {
            let known = self.watchers.is_watched(id) || self.cache().contains(id);
            if known {
                self.revoked(id);
            }
        }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub(crate) fn watchers(&self) -> &Watchers {
        &self.watchers
    }

    pub(crate) fn count_watch_query(&self) {
        self.watch_runs.fetch_add(1, Ordering::Relaxed);
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cached(&self, session_id: &str) -> Option<bool> {
        let cache = self.cache();
        let (live, at) = cache.entries.get(session_id)?;
        // A dead session never comes back; a live one is re-checked after the ttl.
        (!live || at.elapsed() < self.ttl).then_some(*live)
    }
}

/// Session id → (live, when it was learnt).
#[derive(Default)]
struct Cache {
    entries: HashMap<String, (bool, Instant)>,
}

impl Cache {
    fn contains(&self, session_id: &str) -> bool {
        self.entries.contains_key(session_id)
    }

    fn insert(&mut self, session_id: &str, live: bool, ttl: Duration) {
        if self.entries.len() >= MAX_CACHED && !self.entries.contains_key(session_id) {
            self.make_room(ttl);
        }
        self.entries
            .insert(session_id.to_owned(), (live, Instant::now()));
    }

    /// Sheds down to [`SHED_TO`] entries: first the live answers past their ttl (they would be
    /// asked again anyway), then the oldest answers. Never the whole cache at once, which
    /// would send every cached session to the database together.
    fn make_room(&mut self, ttl: Duration) {
        self.entries
            .retain(|_, (live, at)| !*live || at.elapsed() < ttl);
        let excess = self.entries.len().saturating_sub(SHED_TO);
        if excess == 0 {
            return;
        }
        let mut ages: Vec<Instant> = self.entries.values().map(|(_, at)| *at).collect();
        let (_, cutoff, _) = ages.select_nth_unstable(excess - 1);
        let cutoff = *cutoff;
        let mut shed = 0;
        self.entries.retain(|_, (_, at)| {
            let keep = shed >= excess || *at > cutoff;
            if !keep {
                shed += 1;
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_cache_sheds_stale_and_oldest_entries_not_everything() {
        let ttl = Duration::from_secs(60);
        let mut cache = Cache::default();
        let old = Instant::now() - Duration::from_secs(120);
        // A tenth are live answers past their ttl; the rest fresh.
        for i in 0..MAX_CACHED {
            let at = if i % 10 == 0 { old } else { Instant::now() };
            cache.entries.insert(format!("s{i}"), (true, at));
        }
        cache.insert("new", true, ttl);
        assert!(cache.contains("new"));
        // Only the stale tenth went.
        assert_eq!(cache.entries.len(), MAX_CACHED - MAX_CACHED / 10 + 1);
        assert!(!cache.contains("s0") && cache.contains("s1"));

        // Full of fresh answers: the oldest are shed down to SHED_TO, not all.
        while cache.entries.len() < MAX_CACHED {
            let n = cache.entries.len();
            cache
                .entries
                .insert(format!("f{n}"), (false, Instant::now()));
        }
        cache.insert("newer", true, ttl);
        assert_eq!(cache.entries.len(), SHED_TO + 1);
        assert!(cache.contains("newer") && cache.contains("new"));
    }
}
