//! How users appear on the IMPS wire. The client names everybody by a GB2312 user name; a
//! canonical user name GB2312 cannot hold (an emoji, a rare character from another protocol's
//! client) is shown as `#<numeric id>`, which the bridge accepts back wherever a name goes.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use rosetta_proto::account::v1::User;
use tokio::time::Instant;

use crate::codec::{decode_gb2312, encode_gb2312};

/// Names one connection keeps at most, each way; past that the stale ones go, then all (they
/// are cheap to learn again).
pub(crate) const MAX_NAMES: usize = 1_024;

/// The name an IMPS client sees for `user`.
pub fn display_name(user: &User) -> String {
    let fits = !user.username.is_empty()
        && decode_gb2312(&encode_gb2312(&user.username)).is_ok_and(|back| back == user.username);
    if fits {
        user.username.clone()
    } else {
        format!("#{}", user.id)
    }
}

/// The user id a `#<id>` alias names, if `name` is one.
pub fn alias_id(name: &str) -> Option<i64> {
    let digits = name.strip_prefix('#')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The users one connection has met, both ways: the IMPS name of each id (for pushes), and the
/// id behind each name the client may send to (so that a send to a friend needs no
/// `LookupUser`). Filled from what the services answer: the friend list, friend requests,
/// lookups and profiles.
///
/// A name can go stale: a user name can be changed (`UpdateProfile`), is freed by an account
/// deletion (renamed `deleted-<id>`) and can then be taken by someone else, and no event says
/// so. Hence:
/// - a name → id entry is trusted for `ttl` only after it was learned (the bridge's
///   `name_cache_ms`, as `session_cache_secs` bounds how long a revoked session is believed
///   live elsewhere);
/// - learning a user's new name drops their old one, and learning that a name now belongs to
///   someone else drops it from its former holder, so a refreshed friend list is the truth;
/// - an id is forgotten when the friendship ends (`friend_removed`), when a friend list read
///   afresh does not hold it, or when a call to it is refused in a way a stale name explains
///   (then the name is looked up afresh);
/// - only calls the services allow between friends only (text messages, call signals) take an
///   id from here, so a stale entry can only ever reach a current friend, one the client was
///   shown under that name.
pub(crate) struct NameBook {
    by_id: HashMap<i64, String>,
    by_name: HashMap<String, Learned>,
    ttl: Duration,
}

struct Learned {
    id: i64,
    at: Instant,
}

impl NameBook {
    /// A book trusting a name for `ttl` after it was learned (zero: never).
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            by_id: HashMap::new(),
            by_name: HashMap::new(),
            ttl,
        }
    }

    /// Records that user `id` goes by `name`, as the services said at `now`.
    pub(crate) fn learn(&mut self, id: i64, name: &str, now: Instant) {
        let new_name = !self.by_name.contains_key(name);
        let new_id = !self.by_id.contains_key(&id);
        if (new_name && self.by_name.len() >= MAX_NAMES)
            || (new_id && self.by_id.len() >= MAX_NAMES)
        {
            self.make_room(now);
        }
        if let Some(old) = self.by_id.insert(id, name.to_owned())
            && old != name
            && self.by_name.get(&old).is_some_and(|l| l.id == id)
        {
            // Renamed: the old name no longer leads to them.
            self.by_name.remove(&old);
        }
        let learned = Learned { id, at: now };
        if let Some(former) = self.by_name.insert(name.to_owned(), learned)
            && former.id != id
            && self.by_id.get(&former.id).is_some_and(|n| n == name)
        {
            // The name changed hands: its former holder goes by something else now.
            self.by_id.remove(&former.id);
        }
    }

    /// The IMPS name of `id`, if known.
    pub(crate) fn name(&self, id: i64) -> Option<&str> {
        self.by_id.get(&id).map(String::as_str)
    }

    /// The user `name` stands for, if learned within the ttl before `now`.
    pub(crate) fn id(&self, name: &str, now: Instant) -> Option<i64> {
        self.by_name
            .get(name)
            .filter(|l| now.saturating_duration_since(l.at) < self.ttl)
            .map(|l| l.id)
    }

    /// Forgets user `id` both ways.
    pub(crate) fn forget(&mut self, id: i64) {
        if let Some(name) = self.by_id.remove(&id)
            && self.by_name.get(&name).is_some_and(|l| l.id == id)
        {
            self.by_name.remove(&name);
        }
    }

    /// Keeps names → id only for `friends` (the whole friend list, just read): a name of
    /// someone who is no friend any more (or whose account is gone) is looked up again.
    pub(crate) fn keep_friends(&mut self, friends: &HashSet<i64>) {
        self.by_name.retain(|_, l| friends.contains(&l.id));
    }

    fn make_room(&mut self, now: Instant) {
        let ttl = self.ttl;
        self.by_name
            .retain(|_, l| now.saturating_duration_since(l.at) < ttl);
        if self.by_name.len() >= MAX_NAMES {
            self.by_name.clear();
        }
        if self.by_id.len() >= MAX_NAMES {
            self.by_id.clear();
        }
    }

    /// Entries held (names, ids).
    #[cfg(test)]
    pub(crate) fn sizes(&self) -> (usize, usize) {
        (self.by_name.len(), self.by_id.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, name: &str) -> User {
        User {
            id,
            username: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn names_gb2312_cannot_hold_become_aliases() {
        assert_eq!(display_name(&user(7, "alice")), "alice");
        assert_eq!(display_name(&user(7, "小明")), "小明");
        assert_eq!(display_name(&user(7, "smile😀")), "#7");
        assert_eq!(display_name(&user(7, "")), "#7");
        assert_eq!(alias_id("#7"), Some(7));
        assert_eq!(alias_id("#"), None);
        assert_eq!(alias_id("#-7"), None);
        assert_eq!(alias_id("#99999999999999999999"), None);
        assert_eq!(alias_id("bob"), None);
    }

    const TTL: Duration = Duration::from_secs(5);

    #[test]
    fn a_name_is_trusted_for_the_ttl() {
        let t0 = Instant::now();
        let mut book = NameBook::new(TTL);
        book.learn(7, "alice", t0);
        assert_eq!(book.id("alice", t0 + TTL / 2), Some(7));
        assert_eq!(book.id("alice", t0 + TTL), None, "stale: looked up again");
        assert_eq!(book.name(7), Some("alice"), "the display name stays");
        book.learn(7, "alice", t0 + TTL);
        assert_eq!(book.id("alice", t0 + TTL), Some(7), "learned afresh");
        assert_eq!(NameBook::new(Duration::ZERO).id("alice", t0), None);
    }

    #[test]
    fn renames_and_names_changing_hands_drop_the_old_entries() {
        let t0 = Instant::now();
        let mut book = NameBook::new(TTL);
        book.learn(7, "alice", t0);
        book.learn(7, "alice2", t0);
        assert_eq!(
            book.id("alice", t0),
            None,
            "her old name is not hers any more"
        );
        assert_eq!(book.id("alice2", t0), Some(7));
        book.learn(9, "alice2", t0);
        assert_eq!(book.id("alice2", t0), Some(9), "the name changed hands");
        assert_eq!(book.name(7), None, "and 7 goes by something else now");
        book.forget(9);
        assert_eq!((book.id("alice2", t0), book.name(9)), (None, None));
        book.learn(1, "bob", t0);
        book.learn(2, "carol", t0);
        book.keep_friends(&HashSet::from([1]));
        assert_eq!((book.id("bob", t0), book.id("carol", t0)), (Some(1), None));
    }

    #[test]
    fn stays_bounded() {
        let t0 = Instant::now();
        let mut book = NameBook::new(TTL);
        for id in 0..10_000 {
            book.learn(id, &format!("user{id}"), t0);
            let (names, ids) = book.sizes();
            assert!(names <= MAX_NAMES && ids <= MAX_NAMES);
        }
        assert_eq!(book.id("user9999", t0), Some(9_999), "the newest is kept");
    }
}
