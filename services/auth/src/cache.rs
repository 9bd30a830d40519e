//! Access tokens already verified, so that the calls of a session after its first skip the
//! Ed25519 signature check and the claim decoding (~38 µs a call; a cache hit is a SHA-256 of
//! the token and a map lookup).
//!
//! - **Key**: the SHA-256 of the whole token. Only a token whose signature, issuer and expiry
//!   were checked is ever stored, so finding an entry means these exact bytes were verified; a
//!   second preimage of SHA-256 would be needed to borrow an entry (a weaker hash would make a
//!   collision an authentication bypass).
//! - **Expiry**: an entry is used while its token's `exp` has not passed, by the same rule as
//!   the decoder (`exp < now` is expired, to the second); after that the token is refused as
//!   expired, exactly as without the cache.
//! - **Bound**: at most [`DEFAULT_CAPACITY`] entries (≈ 150 bytes each: ≈ 10 MB at most), in
//!   [`SHARDS`] independently locked shards. A full shard first drops its expired entries, then
//!   the entry that expires first. Invalid tokens are never stored, so a flood of bogus tokens
//!   costs its verifications and evicts nothing; only tokens the account service issued (after
//!   a login, which is throttled) can take places.
//! - **Revocation** is not this cache's business: the session-liveness check
//!   ([`crate::SessionGuard`]) runs on every call, cached or not.

use std::{collections::HashMap, sync::Mutex};

use sha2::{Digest, Sha256};

use crate::Caller;

/// Entries kept at most by default.
pub const DEFAULT_CAPACITY: usize = 65_536;
/// Independently locked parts of the cache, so that concurrent calls rarely wait on each
/// other; a key's shard is its first byte (uniform: the key is a hash).
const SHARDS: usize = 16;

type Key = [u8; 32];

struct Entry {
    caller: Caller,
    /// The token's `exp`, Unix seconds.
    exp: u64,
}

/// What the cache knows of a token.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Cached {
    /// Verified and not expired: its caller.
    Valid(Caller),
    /// Verified once, expired since (dropped now).
    Expired,
    /// Not here: verify it.
    Unknown,
}

pub(crate) struct TokenCache {
    shards: Vec<Mutex<HashMap<Key, Entry>>>,
    per_shard: usize,
}

impl TokenCache {
    /// A cache of at most `capacity` entries (rounded down to a multiple of the shard count);
    /// 0 turns caching off.
    pub(crate) fn new(capacity: usize) -> Self {
        let per_shard = capacity / SHARDS;
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard,
        }
    }

    pub(crate) fn key(token: &str) -> Key {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The cached verdict on the token whose key is `key`, at `now` (Unix seconds).
    pub(crate) fn get(&self, key: &Key, now: u64) -> Cached {
        if self.per_shard == 0 {
            return Cached::Unknown;
        }
        let mut shard = self.shard(key);
        match shard.get(key) {
            None => Cached::Unknown,
            Some(entry) if entry.exp >= now => Cached::Valid(entry.caller.clone()),
            Some(_) => {
                shard.remove(key);
                Cached::Expired
            }
        }
    }

    /// Remembers a token just verified at `now` that names `caller` and expires at `exp`.
    pub(crate) fn insert(&self, key: Key, caller: Caller, exp: u64, now: u64) {
        if self.per_shard == 0 || exp < now {
            return;
        }
        let mut shard = self.shard(&key);
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.retain(|_, entry| entry.exp >= now);
            if shard.len() >= self.per_shard {
                // Still full of live tokens: the one that would expire first goes.
                let first = shard.iter().min_by_key(|(_, e)| e.exp).map(|(k, _)| *k);
                if let Some(first) = first {
                    shard.remove(&first);
                }
            }
        }
        shard.insert(key, Entry { caller, exp });
    }

    /// Entries held (expired ones not yet dropped included).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    fn shard(&self, key: &Key) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        lock(&self.shards[usize::from(key[0]) % SHARDS])
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(n: i64) -> Caller {
        Caller {
            user_id: n,
            session_id: format!("s{n}"),
        }
    }

    #[test]
    fn an_entry_lives_until_its_exp_then_is_dropped() {
        let cache = TokenCache::new(64);
        let key = TokenCache::key("t");
        cache.insert(key, caller(1), 100, 90);
        assert_eq!(cache.get(&key, 99), Cached::Valid(caller(1)));
        // The decoder's rule: expired once `exp < now`.
        assert_eq!(cache.get(&key, 100), Cached::Valid(caller(1)));
        assert_eq!(cache.get(&key, 101), Cached::Expired);
        assert_eq!(
            cache.get(&key, 99),
            Cached::Unknown,
            "dropped when found expired"
        );
        cache.insert(key, caller(1), 100, 101);
        assert_eq!(cache.len(), 0, "an expired token is not stored");
    }

    #[test]
    fn stays_bounded_and_evicts_what_expires_first() {
        let capacity = 16 * SHARDS;
        let cache = TokenCache::new(capacity);
        for n in 0..10_000u64 {
            let key = TokenCache::key(&format!("token-{n}"));
            cache.insert(key, caller(n as i64), 1_000 + n, 0);
            assert!(cache.len() <= capacity);
        }
        // The newest (latest-expiring) tokens are the ones kept.
        let newest = TokenCache::key("token-9999");
        assert_eq!(cache.get(&newest, 0), Cached::Valid(caller(9_999)));
        let oldest = TokenCache::key("token-0");
        assert_eq!(cache.get(&oldest, 0), Cached::Unknown);
        // Expired entries make room before live ones are evicted.
        let cache = TokenCache::new(SHARDS);
        let (a, b) = (TokenCache::key("a"), TokenCache::key("b"));
        let mut b_same_shard = b;
        b_same_shard[0] = a[0];
        cache.insert(a, caller(1), 10, 0);
        cache.insert(b_same_shard, caller(2), 50, 20);
        assert_eq!(cache.get(&b_same_shard, 20), Cached::Valid(caller(2)));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = TokenCache::new(0);
        let key = TokenCache::key("t");
        cache.insert(key, caller(1), 100, 0);
        assert_eq!(cache.get(&key, 0), Cached::Unknown);
    }
}
