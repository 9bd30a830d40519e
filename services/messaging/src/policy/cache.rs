//! The bounded memory of policy decisions: (sender, target) → (standing, the sender's epoch
//! when it was decided).
//!
//! Bound: at most `capacity` entries ([`CAPACITY`] by default, 100,000: about 6 MB at ~56
//! bytes an entry with the maps' overhead), whatever the traffic. The entries are spread over
//! [`SHARDS`] shards (one short lock each, never held across an await); each shard keeps two
//! generations. New entries go into the young one; when it is full it becomes the old one and
//! the former old one is dropped whole; an old entry that is read again moves back into the
//! young one. So what is dropped is what was not used for a generation: an LRU approximation
//! with O(1) work per call and no list to maintain.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
};

use super::rules::Standing;
use crate::conversations::Target;

/// Entries kept by default.
pub const CAPACITY: usize = 100_000;
/// Independent parts of the cache, each behind its own lock.
pub const SHARDS: usize = 16;

/// A cached decision: the standing, and the sender's policy epoch it was decided at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub standing: Standing,
    pub epoch: i64,
}

/// (sender, is a group, user or group id): `Target` itself is not `Hash`.
type Key = (i64, bool, i64);

fn key(sender: i64, target: Target) -> Key {
    match target {
        Target::User(user) => (sender, false, user),
        Target::Group(group) => (sender, true, group),
    }
}

pub struct Cache {
    shards: Box<[Mutex<Shard>]>,
    /// Entries one generation of a shard holds.
    generation: usize,
}

#[derive(Default)]
struct Shard {
    young: HashMap<Key, Entry>,
    old: HashMap<Key, Entry>,
}

impl Cache {
    /// A cache of at most `capacity` entries (rounded up to a whole number per generation of
    /// each shard, at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            generation: capacity.div_ceil(2 * SHARDS).max(1),
        }
    }

    /// The most entries this cache ever holds.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        SHARDS * 2 * self.generation
    }

    pub fn get(&self, sender: i64, target: Target) -> Option<Entry> {
        let key = key(sender, target);
        let mut shard = self.shard(key);
        if let Some(entry) = shard.young.get(&key) {
            return Some(*entry);
        }
        let entry = shard.old.remove(&key)?;
        shard.insert_young(key, entry, self.generation);
        Some(entry)
    }

    /// Stores a decision. Of two decisions racing for one key, the one made at the later
    /// epoch stays (the other would only cost a re-decision, but need not).
    pub fn put(&self, sender: i64, target: Target, entry: Entry) {
        let key = key(sender, target);
        let mut shard = self.shard(key);
        let known = shard.young.get(&key).or_else(|| shard.old.get(&key));
        if known.is_some_and(|known| known.epoch > entry.epoch) {
            return;
        }
        shard.old.remove(&key);
        shard.insert_young(key, entry, self.generation);
    }

    pub fn remove(&self, sender: i64, target: Target) {
        let key = key(sender, target);
        let mut shard = self.shard(key);
        shard.young.remove(&key);
        shard.old.remove(&key);
    }

    /// Entries held now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let shard = s.lock().unwrap_or_else(PoisonError::into_inner);
                shard.young.len() + shard.old.len()
            })
            .sum()
    }

    fn shard(&self, (sender, group, id): Key) -> MutexGuard<'_, Shard> {
        // A multiplicative mix of both ids, so that one sender's targets spread over shards.
        let mixed = (sender as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (id as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            ^ u64::from(group);
        let index = usize::try_from(mixed >> 32).unwrap_or(0) % self.shards.len();
        // The lock guards plain map operations that cannot leave a shard half-changed, so a
        // poisoned lock (a panic elsewhere while holding it) still holds a usable shard.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Shard {
    fn insert_young(&mut self, key: Key, entry: Entry, generation: usize) {
        if self.young.len() >= generation && !self.young.contains_key(&key) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(epoch: i64) -> Entry {
        Entry {
            standing: Standing::Friends,
            epoch,
        }
    }

    /// However many distinct decisions are stored, the cache holds at most its capacity.
    #[test]
    fn stays_bounded() {
        let cache = Cache::new(1_000);
        assert_eq!(
            cache.capacity(),
            1_024,
            "1000 rounded up to 16 shards × 2 × 32"
        );
        for sender in 0..200 {
            for to in 0..100 {
                cache.put(sender, Target::User(to), entry(1));
                cache.put(sender, Target::Group(to), entry(1));
            }
            assert!(cache.len() <= cache.capacity(), "{} entries", cache.len());
        }
        assert!(cache.len() > cache.capacity() / 4, "and it is used");
    }

    /// An entry read again survives the turnover of generations; one never read again goes.
    #[test]
    fn keeps_what_is_used() {
        let cache = Cache::new(2 * SHARDS * 8);
        let hot = Target::User(1);
        cache.put(7, hot, entry(3));
        for to in 100..10_000 {
            cache.put(8, Target::User(to), entry(1));
            assert_eq!(cache.get(7, hot), Some(entry(3)), "after {to}");
        }
        assert_eq!(
            cache.get(8, Target::User(100)),
            None,
            "the first cold one went"
        );
    }

    /// A decision made at an older epoch does not replace a newer one; removal is total.
    #[test]
    fn newer_epoch_wins_and_remove_forgets() {
        let cache = Cache::new(100);
        let to = Target::Group(5);
        cache.put(1, to, entry(4));
        cache.put(1, to, entry(2));
        assert_eq!(cache.get(1, to).map(|e| e.epoch), Some(4));
        cache.put(1, to, entry(6));
        assert_eq!(cache.get(1, to).map(|e| e.epoch), Some(6));
        assert_eq!(cache.get(1, Target::User(5)), None, "a user is not a group");
        cache.remove(1, to);
        assert_eq!(cache.get(1, to), None);
    }
}
