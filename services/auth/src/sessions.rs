//! Whether a session is still live, checked against the shared database and cached briefly so
//! the hot path of a token-checked call does not touch the database every time.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use rosetta_db::entity::session;
use rosetta_kit::ApiError;
use sea_orm::{DatabaseConnection, EntityTrait};

/// Cache entries beyond this many are dropped wholesale (they are cheap to reload).
const MAX_CACHED: usize = 100_000;

pub struct SessionGuard {
    db: DatabaseConnection,
    ttl: Duration,
    cache: Mutex<HashMap<String, (bool, Instant)>>,
}

impl SessionGuard {
    /// `ttl`: how long a "live" answer is trusted; a revocation by another process takes
    /// effect here within that time. Revocations in this process take effect at once.
    pub fn new(db: DatabaseConnection, ttl: Duration) -> Self {
        Self {
            db,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn is_live(&self, session_id: &str) -> Result<bool, ApiError> {
        if let Some(live) = self.cached(session_id) {
            return Ok(live);
        }
        let now = rosetta_db::now_ms();
        let live = session::Entity::find_by_id(session_id.to_owned())
            .one(&self.db)
            .await?
            .is_some_and(|s| s.revoked_at_ms.is_none() && s.refresh_expires_at_ms > now);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(session_id.to_owned(), (live, Instant::now()));
        Ok(live)
    }

    /// Records that a session ended (logout, account deletion, refresh-token reuse).
    pub fn revoked(&self, session_id: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(session_id.to_owned(), (false, Instant::now()));
    }

    fn cached(&self, session_id: &str) -> Option<bool> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (live, at) = cache.get(session_id)?;
        // A dead session never comes back; a live one is re-checked after the ttl.
        (!live || at.elapsed() < self.ttl).then_some(*live)
    }
}
