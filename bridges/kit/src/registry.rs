//! One login per user on a bridge instance, as the legacy servers had it: a new login of a
//! user takes the place of the older one, whose connection is told to go in its protocol's
//! own words (IMPS error 7, pipe's `relogin`, …) when [`Registered::kicked`] fires.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio_util::sync::CancellationToken;

/// The current login of each user. Cheap to clone: clones share the table.
#[derive(Clone, Default)]
pub struct LoginRegistry {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    current: Mutex<HashMap<i64, (u64, CancellationToken)>>,
    next_id: AtomicU64,
}

impl LoginRegistry {
    /// Makes this the user's login; their previous one, if any, is kicked.
    pub fn register(&self, user: i64) -> Registered {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let kick = CancellationToken::new();
        let previous = self.lock().insert(user, (id, kick.clone()));
        if let Some((_, previous)) = previous {
            previous.cancel();
        }
        Registered {
            registry: self.clone(),
            user,
            id,
            kick,
        }
    }

    /// How many users have a login here.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (u64, CancellationToken)>> {
        self.inner.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A login's place in the registry, given up when dropped (unless a newer login took it).
pub struct Registered {
    registry: LoginRegistry,
    user: i64,
    id: u64,
    kick: CancellationToken,
}

impl Registered {
    /// Completes when a newer login of the same user takes this one's place.
    pub async fn kicked(&self) {
        self.kick.cancelled().await;
    }

    pub fn is_kicked(&self) -> bool {
        self.kick.is_cancelled()
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut current = self.registry.lock();
        if current
            .get(&self.user)
            .is_some_and(|(id, _)| *id == self.id)
        {
            current.remove(&self.user);
        }
    }
}

/// Completes when `login` is kicked, or never without a login: for a `select!` arm.
pub async fn kicked(login: Option<&Registered>) {
    match login {
        Some(login) => login.kicked().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_login_kicks_the_first() {
        let registry = LoginRegistry::default();
        let first = registry.register(7);
        let other_user = registry.register(8);
        assert!(!first.is_kicked());
        let second = registry.register(7);
        first.kicked().await;
        assert!(!second.is_kicked() && !other_user.is_kicked());
        drop(first);
        assert_eq!(
            registry.len(),
            2,
            "the kicked login leaves the newer one in place"
        );
        drop(second);
        drop(other_user);
        assert!(registry.is_empty());
    }
}
