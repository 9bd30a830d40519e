//! The HarmonyOS client's HTTP logins. Its HTTP requests carry no token, only a user id, so a
//! login is remembered for the client's address and later requests (and HDL_INFO on its
//! WebSocket) from that address act as that user: the address is the only proof. Hence the
//! mode is off unless configured (`bridges.cloudchat.http_sessions`), and what it remembers
//! is bounded and ends: at LOGOUT, after an idle period, and beyond the caps.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use rosetta_bridge_kit::{UserSession, settings::CloudChatSettings};

/// Users remembered per client address, least recently used dropped first.
const PER_ADDRESS: usize = 16;
/// HTTP logins remembered by one bridge instance in all.
const MAX_SESSIONS: usize = 10_000;
/// How often remembering a login also drops every idle one (others are dropped when found).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Whether the bridge serves HTTP logins at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// HTTP requests that need a login find none; HTTP logins are refused.
    Off,
    /// HTTP logins are remembered and trusted by the client's address.
    AddressTrusted { idle: Duration },
}

/// A remembered login: a user's session, and whether something else still holds it.
pub(crate) trait Held: Clone {
    fn user_id(&self) -> i64;
    /// Held outside the map (a WebSocket bound to it with HDL_INFO, a request under way):
    /// such a session does not idle out.
    fn in_use(&self) -> bool;
}

impl Held for Arc<UserSession> {
    fn user_id(&self) -> i64 {
        UserSession::user_id(self)
    }

    fn in_use(&self) -> bool {
        // The map holds one reference; any other is a bound socket or a request.
        Arc::strong_count(self) > 1
    }
}

struct Entry<S> {
    session: S,
    last_used: Instant,
}

struct Store<S> {
    by_address: HashMap<IpAddr, Vec<Entry<S>>>,
    count: usize,
    last_sweep: Instant,
}

/// The HTTP logins of one bridge instance, by client address.
pub(crate) struct HttpSessions<S = Arc<UserSession>> {
    mode: Mode,
    store: Mutex<Store<S>>,
}

impl<S: Held> HttpSessions<S> {
    pub(crate) fn new(settings: &CloudChatSettings) -> Self {
        let mode = if settings.http_sessions {
            Mode::AddressTrusted {
                idle: Duration::from_millis(settings.http_session_idle_ms.max(1)),
            }
        } else {
            Mode::Off
        };
        Self {
            mode,
            store: Mutex::new(Store {
                by_address: HashMap::new(),
                count: 0,
                last_sweep: Instant::now(),
            }),
        }
    }

    /// Whether HTTP logins are served.
    pub(crate) fn enabled(&self) -> bool {
        matches!(self.mode, Mode::AddressTrusted { .. })
    }

    fn idle(&self) -> Option<Duration> {
        match self.mode {
            Mode::Off => None,
            Mode::AddressTrusted { idle } => Some(idle),
        }
    }

    fn store(&self) -> Option<MutexGuard<'_, Store<S>>> {
        self.idle()?;
        match self.store.lock() {
            Ok(store) => Some(store),
            Err(_) => {
                tracing::error!("HTTP session map poisoned");
                None
            }
        }
    }

    /// Remembers a login made over HTTP from `peer` (replacing that user's older one).
    pub(crate) fn remember(&self, peer: IpAddr, session: S) {
        self.remember_at(peer, session, Instant::now());
    }

    fn remember_at(&self, peer: IpAddr, session: S, now: Instant) {
        let (Some(idle), Some(mut store)) = (self.idle(), self.store()) else {
            return;
        };
        let user = session.user_id();
        store.drop_where(Some(peer), |e| e.session.user_id() == user);
        if store.count >= MAX_SESSIONS || now.duration_since(store.last_sweep) >= SWEEP_EVERY {
            store.drop_where(None, |e| e.idle_at(now, idle));
            store.last_sweep = now;
        }
        if store.count >= MAX_SESSIONS {
            store.drop_least_recent(None);
        }
        if store.by_address.get(&peer).map_or(0, Vec::len) >= PER_ADDRESS {
            store.drop_least_recent(Some(peer));
        }
        store.by_address.entry(peer).or_default().push(Entry {
            session,
            last_used: now,
        });
        store.count += 1;
    }

    /// The live login an HTTP client at `peer` made for `user` (or its most recently used
    /// one when the payload names no user); using it keeps it live.
    pub(crate) fn recall(&self, peer: IpAddr, user: Option<i64>) -> Option<S> {
        self.recall_at(peer, user, Instant::now())
    }

    fn recall_at(&self, peer: IpAddr, user: Option<i64>, now: Instant) -> Option<S> {
        let idle = self.idle()?;
        let mut store = self.store()?;
        store.drop_where(Some(peer), |e| e.idle_at(now, idle));
        let list = store.by_address.get_mut(&peer)?;
        let entry = match user {
            Some(id) => list.iter_mut().find(|e| e.session.user_id() == id),
            None => list.iter_mut().max_by_key(|e| e.last_used),
        }?;
        entry.last_used = now;
        Some(entry.session.clone())
    }

    /// Every live login HTTP clients at `peer` made, most recently used first.
    pub(crate) fn sessions_at(&self, peer: IpAddr) -> Vec<S> {
        let now = Instant::now();
        let (Some(idle), Some(mut store)) = (self.idle(), self.store()) else {
            return Vec::new();
        };
        store.drop_where(Some(peer), |e| e.idle_at(now, idle));
        let mut list: Vec<&Entry<S>> = store.by_address.get(&peer).into_iter().flatten().collect();
        list.sort_by_key(|e| std::cmp::Reverse(e.last_used));
        list.into_iter().map(|e| e.session.clone()).collect()
    }

    /// Ends `user`'s login from `peer` (LOGOUT).
    pub(crate) fn forget(&self, peer: IpAddr, user: i64) {
        if let Some(mut store) = self.store() {
            store.drop_where(Some(peer), |e| e.session.user_id() == user);
        }
    }
}

impl<S: Held> Entry<S> {
    fn idle_at(&self, now: Instant, idle: Duration) -> bool {
        now.duration_since(self.last_used) >= idle && !self.session.in_use()
    }
}

impl<S> Store<S> {
    /// Drops the entries of `peer` (or of every address) that `doomed` picks.
    fn drop_where(&mut self, peer: Option<IpAddr>, mut doomed: impl FnMut(&Entry<S>) -> bool) {
        let mut dropped = 0;
        let mut prune = |list: &mut Vec<Entry<S>>| {
            let before = list.len();
            list.retain(|e| !doomed(e));
            dropped += before - list.len();
            !list.is_empty()
        };
        match peer {
            Some(peer) => {
                if let Some(list) = self.by_address.get_mut(&peer)
                    && !prune(list)
                {
                    self.by_address.remove(&peer);
                }
            }
            None => self.by_address.retain(|_, list| prune(list)),
        }
        self.count -= dropped;
    }

    /// Drops the least recently used entry of `peer` (or of every address).
    fn drop_least_recent(&mut self, peer: Option<IpAddr>) {
        let oldest = |list: &Vec<Entry<S>>| list.iter().map(|e| e.last_used).min();
        let target = match peer {
            Some(peer) => self
                .by_address
                .get(&peer)
                .and_then(oldest)
                .map(|used| (peer, used)),
            None => self
                .by_address
                .iter()
                .filter_map(|(address, list)| oldest(list).map(|used| (*address, used)))
                .min_by_key(|(_, used)| *used),
        };
        if let Some((address, used)) = target {
            let mut first = true;
            self.drop_where(Some(address), |e| {
                let hit = first && e.last_used == used;
                first &= !hit;
                hit
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    /// A session of `user`; `in_use` while a clone of it is held elsewhere.
    #[derive(Clone)]
    struct Fake(Arc<i64>);

    impl Held for Fake {
        fn user_id(&self) -> i64 {
            *self.0
        }
        fn in_use(&self) -> bool {
            Arc::strong_count(&self.0) > 1
        }
    }

    fn fake(user: i64) -> Fake {
        Fake(Arc::new(user))
    }

    fn on(idle_ms: u64) -> HttpSessions<Fake> {
        HttpSessions::new(&CloudChatSettings {
            http_sessions: true,
            http_session_idle_ms: idle_ms,
            ..CloudChatSettings::default()
        })
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    fn users(sessions: &HttpSessions<Fake>, peer: IpAddr) -> Vec<i64> {
        sessions
            .sessions_at(peer)
            .iter()
            .map(Held::user_id)
            .collect()
    }

    #[test]
    fn off_remembers_nothing() {
        let sessions = HttpSessions::<Fake>::new(&CloudChatSettings::default());
        assert!(!sessions.enabled());
        sessions.remember(ip(1), fake(7));
        assert!(sessions.recall(ip(1), Some(7)).is_none());
        assert!(sessions.recall(ip(1), None).is_none());
        assert!(sessions.sessions_at(ip(1)).is_empty());
    }

    #[test]
    fn a_login_is_found_only_from_its_address_and_until_logout() {
        let sessions = on(60_000);
        sessions.remember(ip(1), fake(7));
        assert_eq!(
            sessions.recall(ip(1), Some(7)).map(|s| s.user_id()),
            Some(7)
        );
        assert!(sessions.recall(ip(2), Some(7)).is_none());
        assert!(sessions.recall(ip(1), Some(8)).is_none());
        sessions.forget(ip(1), 7);
        assert!(sessions.recall(ip(1), Some(7)).is_none());
    }

    #[test]
    fn idle_logins_end_unless_used_or_held() {
        let sessions = on(1_000);
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        sessions.remember_at(ip(1), fake(1), t0);
        sessions.remember_at(ip(1), fake(2), t0);
        sessions.remember_at(ip(1), fake(3), t0);
        let held = sessions.recall_at(ip(1), Some(3), t0).expect("live");
        // Used just before its idle period ends: live for another period.
        assert!(
            sessions
                .recall_at(ip(1), Some(2), t0 + second / 2)
                .is_some()
        );
        let later = t0 + second + second / 4;
        assert!(
            sessions.recall_at(ip(1), Some(1), later).is_none(),
            "idled out"
        );
        assert!(sessions.recall_at(ip(1), Some(2), later).is_some());
        assert!(sessions.recall_at(ip(1), Some(3), later).is_some(), "held");
        drop(held);
        assert!(
            sessions
                .recall_at(ip(1), Some(3), later + 2 * second)
                .is_none()
        );
    }

    #[test]
    fn an_address_keeps_its_most_recently_used_logins() {
        let sessions = on(60_000);
        let t0 = Instant::now();
        for user in 0..PER_ADDRESS as i64 {
            sessions.remember_at(ip(1), fake(user), t0 + Duration::from_millis(user as u64));
        }
        // User 0 is used again, so user 1 is the least recently used when one more logs in.
        sessions.recall_at(ip(1), Some(0), t0 + Duration::from_secs(1));
        sessions.remember_at(ip(1), fake(99), t0 + Duration::from_secs(2));
        let mut kept = users(&sessions, ip(1));
        assert_eq!(kept.len(), PER_ADDRESS);
        assert_eq!(kept[0], 99, "most recent first");
        kept.sort_unstable();
        assert!(kept.contains(&0) && !kept.contains(&1));
        // A second login of the same user replaces the first.
        sessions.remember_at(ip(1), fake(99), t0 + Duration::from_secs(3));
        assert_eq!(users(&sessions, ip(1)).len(), PER_ADDRESS);
    }

    #[test]
    fn the_instance_keeps_a_bounded_number_of_logins() {
        let sessions = on(3_600_000);
        let t0 = Instant::now();
        for n in 0..=MAX_SESSIONS as u32 {
            sessions.remember_at(ip(n), fake(n.into()), t0 + Duration::from_micros(n.into()));
        }
        let store = sessions.store().expect("on");
        assert_eq!(store.count, MAX_SESSIONS);
        let total: usize = store.by_address.values().map(Vec::len).sum();
        assert_eq!(total, MAX_SESSIONS);
        assert!(!store.by_address.contains_key(&ip(0)), "the oldest went");
    }
}
