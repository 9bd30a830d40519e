//! This process's open streams and their queues.
//!
//! Each open stream has a queue of its own that the bus fills and the stream drains. A queue
//! allocates nothing until an event arrives, grows with what is waiting, gives its memory back
//! once drained, and holds at most [`DEFAULT_QUEUE_LIMIT`] events (configurable): a stream
//! further behind than that drops what is queued and re-reads its log instead (the log holds
//! every durable event; live-only ones — presence, typing, signals — are lost, as they would
//! be to a client that was offline). So an idle online user costs a few hundred bytes, not a
//! preallocated buffer, and a slow client costs at most its bound.
//!
//! A queue also carries one other wake-up, [`Wake::Reread`]: "re-read your log", sent when the
//! queue overflowed or when the bus may have lost events (a NATS reconnect, see `nats.rs`).
//!
//! Large groups' messages reach streams through a second index, by group ([`groups`]).

mod groups;

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use rosetta_proto::messaging::v1::Event;
use tokio::sync::{Notify, OnceCell};

pub use self::groups::GroupLink;
pub(crate) use self::groups::GroupWake;
use tokio_util::sync::CancellationToken;

/// Events a stream may fall behind the bus before it re-reads its log instead.
pub const DEFAULT_QUEUE_LIMIT: usize = 1024;

/// A drained queue whose buffer grew past this many slots gives the buffer back, so a burst
/// does not pin memory for as long as the stream stays open.
const KEEP_CAPACITY: usize = 16;

/// What a stream is woken for.
#[derive(Debug)]
pub enum Wake {
    /// The next event the bus carried for this stream's user.
    Event(Arc<Event>),
    /// Events may have been missed (the queue overflowed, or the bus may have lost some):
    /// re-read the log from the last seq sent.
    Reread,
}

/// Per-process registry of live streams, keyed by user.
pub struct Hub {
    users: Mutex<HashMap<i64, UserStreams>>,
    queue_limit: usize,
    /// Numbers each user entry, so that a bus subscription left over from a user's previous
    /// streams cannot deliver into the entry of their next ones.
    next_generation: Mutex<u64>,
    /// Large groups' linked streams, by group.
    groups: Mutex<HashMap<i64, groups::GroupStreams>>,
    /// Confirms membership before a large group's event is delivered (set by the service).
    group_dispatch: std::sync::OnceLock<tokio::sync::mpsc::Sender<GroupWake>>,
}

/// One user's streams in this process.
struct UserStreams {
    queues: Vec<Arc<Queue>>,
    generation: u64,
    /// Cancelled when the user's last stream here closes: ends the bus's subscription.
    ended: CancellationToken,
    /// Set once the bus listens for this user (see [`Subscription::listening`]).
    listening: Arc<OnceCell<()>>,
}

/// One stream's wake-ups.
struct Queue {
    state: Mutex<QueueState>,
    wake: Notify,
}

#[derive(Default)]
struct QueueState {
    events: VecDeque<Arc<Event>>,
    reread: bool,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new(DEFAULT_QUEUE_LIMIT)
    }
}

impl Hub {
    /// A hub whose streams each queue at most `queue_limit` events (at least 1).
    pub fn new(queue_limit: usize) -> Self {
        Self {
            users: Mutex::new(HashMap::new()),
            queue_limit: queue_limit.max(1),
            next_generation: Mutex::new(0),
            groups: Mutex::new(HashMap::new()),
            group_dispatch: std::sync::OnceLock::new(),
        }
    }

    /// A fresh entry number (user and group entries share the counter).
    fn generation(&self) -> u64 {
        let mut next = self
            .next_generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *next += 1;
        *next
    }

    fn users(&self) -> MutexGuard<'_, HashMap<i64, UserStreams>> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Receives `user`'s events from now on, until the subscription is dropped. Call BEFORE
    /// reading the backlog. With a bus that listens per user (NATS), use `Bus::subscribe`,
    /// which also waits until the bus listens.
    pub fn subscribe(self: &Arc<Self>, user: i64) -> Subscription {
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState::default()),
            wake: Notify::new(),
        });
        let mut users = self.users();
        let first = !users.contains_key(&user);
        let entry = users.entry(user).or_insert_with(|| UserStreams {
            queues: Vec::with_capacity(1),
            generation: self.generation(),
            ended: CancellationToken::new(),
            listening: Arc::new(OnceCell::new()),
        });
        entry.queues.push(queue.clone());
        crate::meters::stream_changed(1.0, first);
        let listening = Listening {
            generation: entry.generation,
            ended: entry.ended.clone(),
            ready: entry.listening.clone(),
        };
        Subscription {
            hub: self.clone(),
            user,
            queue,
            listening,
        }
    }

    /// Forgets users whose streams all closed. Nothing to do: a user's entry leaves with
    /// their last stream (kept for the presence keeper, which calls it each round).
    pub fn prune(&self) {}

    /// Users with an open stream in this process.
    pub fn live_users(&self) -> Vec<i64> {
        self.users().keys().copied().collect()
    }

    /// Whether `user` has an open stream in this process.
    pub fn is_live(&self, user: i64) -> bool {
        self.users().contains_key(&user)
    }

    /// Open streams in this process.
    pub fn stream_count(&self) -> usize {
        self.users().values().map(|entry| entry.queues.len()).sum()
    }

    /// Hands `event` to `user`'s open streams in this process, if any.
    pub fn deliver(&self, user: i64, event: Arc<Event>) {
        if let Some(entry) = self.users().get(&user) {
            for queue in &entry.queues {
                queue.push(event.clone(), self.queue_limit);
            }
        }
    }

    /// Hands `event` to every open stream in this process (a broadcast: announcements).
    pub fn deliver_all(&self, event: Arc<Event>) {
        for entry in self.users().values() {
            for queue in &entry.queues {
                queue.push(event.clone(), self.queue_limit);
            }
        }
    }

    /// As [`Hub::deliver`], for an event that came through the bus subscription made for
    /// `generation` of the user's entry: a subscription that outlived the streams it was made
    /// for delivers nothing (the entry's own subscription carries the same events).
    pub(crate) fn deliver_from(&self, user: i64, generation: u64, event: Arc<Event>) {
        if let Some(entry) = self.users().get(&user)
            && entry.generation == generation
        {
            for queue in &entry.queues {
                queue.push(event.clone(), self.queue_limit);
            }
        }
    }

    /// Tells every open stream here to re-read its log once: the bus may have lost events.
    pub fn resync(&self) {
        for entry in self.users().values() {
            for queue in &entry.queues {
                queue.reread();
            }
        }
    }

    /// Event streams open in this process, and the users they belong to (the status an
    /// operator reads, `AdminService/GetStatus`).
    pub fn counts(&self) -> (usize, usize) {
        let users = self.users();
        (users.values().map(|u| u.queues.len()).sum(), users.len())
    }

    fn remove(&self, user: i64, queue: &Arc<Queue>) {
        let mut users = self.users();
        let Some(entry) = users.get_mut(&user) else {
            return;
        };
        let before = entry.queues.len();
        entry.queues.retain(|q| !Arc::ptr_eq(q, queue));
        if entry.queues.len() < before {
            crate::meters::stream_changed(-1.0, entry.queues.is_empty());
        }
        if entry.queues.is_empty()
            && let Some(entry) = users.remove(&user)
        {
            entry.ended.cancel();
            // The map keeps its peak size otherwise; halving it at a quarter full is amortised
            // O(1) per removal.
            if users.capacity() > 64 && users.len() < users.capacity() / 4 {
                let keep = users.len() * 2;
                users.shrink_to(keep);
            }
        }
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, event: Arc<Event>, limit: usize) {
        {
            let mut state = self.lock();
            if state.events.len() >= limit {
                // Too far behind: the log has every durable event; free the queue now.
                state.events = VecDeque::new();
                state.reread = true;
            } else {
                state.events.push_back(event);
            }
        }
        // One consumer per queue: a stored permit wakes it even if it is not waiting yet.
        self.wake.notify_one();
    }

    fn reread(&self) {
        self.lock().reread = true;
        self.wake.notify_one();
    }

    fn take(&self) -> Option<Wake> {
        let mut state = self.lock();
        if state.reread {
            // Events still queued stay: the stream drops the durable ones it re-read by seq.
            state.reread = false;
            return Some(Wake::Reread);
        }
        let event = state.events.pop_front()?;
        if state.events.is_empty() && state.events.capacity() > KEEP_CAPACITY {
            state.events = VecDeque::new();
        }
        Some(Wake::Event(event))
    }
}

/// What the bus needs to listen for a user on behalf of their streams here.
#[derive(Clone)]
pub(crate) struct Listening {
    /// The user entry's number, for [`Hub::deliver_from`].
    pub generation: u64,
    /// Cancelled when the user's last stream here closes.
    pub ended: CancellationToken,
    /// Initialised once the bus listens for the user; every stream of the user waits for it.
    pub ready: Arc<OnceCell<()>>,
}

/// One open stream's place in the hub; dropping it leaves the hub (and, with the user's last
/// stream here, ends the bus's subscription for the user).
pub struct Subscription {
    hub: Arc<Hub>,
    user: i64,
    queue: Arc<Queue>,
    listening: Listening,
}

impl Subscription {
    /// The next wake-up, waiting for one if none is queued.
    pub async fn recv(&mut self) -> Wake {
        loop {
            if let Some(wake) = self.queue.take() {
                return wake;
            }
            self.queue.wake.notified().await;
        }
    }

    /// The next wake-up if one is queued.
    pub fn try_recv(&mut self) -> Option<Wake> {
        self.queue.take()
    }

    pub fn user(&self) -> i64 {
        self.user
    }

    pub(crate) fn listening(&self) -> &Listening {
        &self.listening
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(self.user, &self.queue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> Arc<Event> {
        Arc::new(Event {
            seq,
            ..Default::default()
        })
    }

    fn seq(wake: Option<Wake>) -> Option<u64> {
        match wake {
            Some(Wake::Event(event)) => Some(event.seq),
            Some(Wake::Reread) => Some(u64::MAX),
            None => None,
        }
    }

    #[test]
    fn delivers_in_order_to_every_stream_of_the_user_only() {
        let hub = Arc::new(Hub::new(8));
        let (mut a1, mut a2, mut b) = (hub.subscribe(1), hub.subscribe(1), hub.subscribe(2));
        hub.deliver(1, event(1));
        hub.deliver(1, event(2));
        for sub in [&mut a1, &mut a2] {
            assert_eq!(seq(sub.try_recv()), Some(1));
            assert_eq!(seq(sub.try_recv()), Some(2));
            assert_eq!(seq(sub.try_recv()), None);
        }
        assert_eq!(seq(b.try_recv()), None);
        assert_eq!(hub.stream_count(), 3);
    }

    #[test]
    fn a_broadcast_reaches_every_stream_of_every_user() {
        let hub = Arc::new(Hub::new(8));
        let (mut a1, mut a2, mut b) = (hub.subscribe(1), hub.subscribe(1), hub.subscribe(2));
        hub.deliver_all(event(0));
        for sub in [&mut a1, &mut a2, &mut b] {
            assert_eq!(seq(sub.try_recv()), Some(0));
            assert_eq!(seq(sub.try_recv()), None);
        }
    }

    #[test]
    fn overflow_frees_the_queue_and_asks_for_a_reread_once() {
        let hub = Arc::new(Hub::new(3));
        let mut sub = hub.subscribe(1);
        for s in 1..=4 {
            hub.deliver(1, event(s));
        }
        assert_eq!(
            seq(sub.try_recv()),
            Some(u64::MAX),
            "re-read after overflow"
        );
        assert_eq!(seq(sub.try_recv()), None, "the overflowed events are gone");
        hub.deliver(1, event(5));
        assert_eq!(seq(sub.try_recv()), Some(5), "and the queue works on");
    }

    #[test]
    fn resync_reaches_every_stream_and_keeps_queued_events() {
        let hub = Arc::new(Hub::new(8));
        let (mut a, mut b) = (hub.subscribe(1), hub.subscribe(2));
        hub.deliver(1, event(7));
        hub.resync();
        assert_eq!(seq(a.try_recv()), Some(u64::MAX));
        assert_eq!(seq(a.try_recv()), Some(7));
        assert_eq!(seq(b.try_recv()), Some(u64::MAX));
        assert_eq!(seq(b.try_recv()), None);
    }

    #[test]
    fn last_stream_closing_ends_the_entry_and_its_listening() {
        let hub = Arc::new(Hub::new(8));
        let (a1, a2) = (hub.subscribe(1), hub.subscribe(1));
        let first = a1.listening().clone();
        assert_eq!(first.generation, a2.listening().generation);
        drop(a1);
        assert!(hub.is_live(1) && !first.ended.is_cancelled());
        drop(a2);
        assert!(!hub.is_live(1) && first.ended.is_cancelled());
        assert!(hub.live_users().is_empty());

        // A leftover subscription of the old entry delivers nothing to the new one.
        let mut again = hub.subscribe(1);
        assert_ne!(again.listening().generation, first.generation);
        hub.deliver_from(1, first.generation, event(1));
        assert_eq!(seq(again.try_recv()), None);
        hub.deliver_from(1, again.listening().generation, event(2));
        assert_eq!(seq(again.try_recv()), Some(2));
    }

    #[test]
    fn a_drained_queue_gives_its_buffer_back() {
        let hub = Arc::new(Hub::new(1024));
        let mut sub = hub.subscribe(1);
        for s in 1..=100 {
            hub.deliver(1, event(s));
        }
        while sub.try_recv().is_some() {}
        assert_eq!(sub.queue.lock().events.capacity(), 0);
    }

    #[tokio::test]
    async fn recv_waits_for_a_delivery() {
        let hub = Arc::new(Hub::new(8));
        let mut sub = hub.subscribe(1);
        let waiting = tokio::spawn(async move { seq(Some(sub.recv().await)) });
        // Whether or not the task waits yet, the notification is kept for it.
        hub.deliver(1, event(3));
        assert_eq!(waiting.await.unwrap(), Some(3));
    }
}
