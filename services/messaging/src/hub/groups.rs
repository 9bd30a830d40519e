//! Large groups' wake-ups: which of this process's streams belong to which large group.
//!
//! A message in a large group is published once, for the group (not once per member), and
//! reaches this process once. The hub keeps, per large group, the local streams linked to it
//! (a stream links each of its user's large groups before it reads its backlog, and on a
//! join; it unlinks on a leave, a kick or a dissolution, or when it closes), so a wake-up
//! costs one map lookup plus one push per local member stream.
//!
//! Membership is confirmed before delivery: a dispatcher (see `crate::fanout`) reads which of
//! the linked users are members *now*, after the message committed, in one statement per
//! message and process. A member removed before the message was written does not get it even
//! if their stream has not yet learnt of the removal (that news travels on another subject
//! and may arrive later). A hub without a dispatcher (tests of the hub alone) delivers to
//! every linked stream.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, MutexGuard, PoisonError},
};

use rosetta_proto::messaging::v1::Event;
use tokio::sync::{OnceCell, mpsc};
use tokio_util::sync::CancellationToken;

use super::{Hub, Listening, Queue, Subscription};

/// One large group's wake-up, on its way to the dispatcher.
pub(crate) struct GroupWake {
    pub group: i64,
    pub event: Arc<Event>,
}

/// One large group's streams in this process.
pub(super) struct GroupStreams {
    /// (user, stream queue) of every linked stream.
    links: Vec<(i64, Arc<Queue>)>,
    generation: u64,
    /// Cancelled when the group's last link here goes: ends the bus's subscription.
    ended: CancellationToken,
    listening: Arc<OnceCell<()>>,
}

impl Hub {
    fn groups(&self) -> MutexGuard<'_, HashMap<i64, GroupStreams>> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Links `stream` to the large `group`: its wake-ups reach the stream's queue until the
    /// link is dropped. With a bus that listens per group (NATS), use `Bus::link_group`.
    pub fn link_group(self: &Arc<Self>, stream: &Subscription, group: i64) -> GroupLink {
        let mut groups = self.groups();
        let entry = groups.entry(group).or_insert_with(|| GroupStreams {
            links: Vec::with_capacity(1),
            generation: self.generation(),
            ended: CancellationToken::new(),
            listening: Arc::new(OnceCell::new()),
        });
        entry.links.push((stream.user(), stream.queue.clone()));
        GroupLink {
            hub: self.clone(),
            group,
            queue: stream.queue.clone(),
            listening: Listening {
                generation: entry.generation,
                ended: entry.ended.clone(),
                ready: entry.listening.clone(),
            },
        }
    }

    /// Large groups with a linked stream in this process.
    pub fn group_count(&self) -> usize {
        self.groups().len()
    }

    /// Sets the task that confirms membership before delivery (once; later calls are
    /// ignored and answer false).
    pub(crate) fn set_group_dispatch(&self, dispatch: mpsc::Sender<GroupWake>) -> bool {
        self.group_dispatch.set(dispatch).is_ok()
    }

    /// Hands a large group's event to the dispatcher (or, without one, to every linked
    /// stream). A dispatcher too far behind drops it and has the group's streams re-read.
    pub fn deliver_group(&self, group: i64, event: Arc<Event>) {
        if !self.groups().contains_key(&group) {
            return;
        }
        let Some(dispatch) = self.group_dispatch.get() else {
            self.push_group(group, &event, |_| true);
            return;
        };
        if dispatch.try_send(GroupWake { group, event }).is_err() {
            self.reread_group(group);
        }
    }

    /// Tells every stream linked to `group` here to re-read once.
    pub(crate) fn reread_group(&self, group: i64) {
        for (_, queue) in self.groups().get(&group).map_or(&[][..], |e| &e.links) {
            queue.reread();
        }
    }

    /// As [`Hub::deliver_group`], for an event from the bus subscription made for
    /// `generation` of the group's entry.
    pub(crate) fn deliver_group_from(&self, group: i64, generation: u64, event: Arc<Event>) {
        let current = self.groups().get(&group).map(|entry| entry.generation);
        if current == Some(generation) {
            self.deliver_group(group, event);
        }
    }

    /// The users with a stream linked to `group` here, each once.
    pub(crate) fn group_users(&self, group: i64) -> Vec<i64> {
        let groups = self.groups();
        let mut users: Vec<i64> = groups
            .get(&group)
            .map(|entry| entry.links.iter().map(|(user, _)| *user).collect())
            .unwrap_or_default();
        users.sort_unstable();
        users.dedup();
        users
    }

    /// Pushes `event` to the streams linked to `group` whose user is in `members`.
    pub(crate) fn deliver_confirmed(&self, group: i64, event: &Arc<Event>, members: &HashSet<i64>) {
        self.push_group(group, event, |user| members.contains(&user));
    }

    fn push_group(&self, group: i64, event: &Arc<Event>, admit: impl Fn(i64) -> bool) {
        if let Some(entry) = self.groups().get(&group) {
            for (user, queue) in &entry.links {
                if admit(*user) {
                    queue.push(event.clone(), self.queue_limit);
                }
            }
        }
    }

    fn unlink_group(&self, group: i64, queue: &Arc<Queue>) {
        let mut groups = self.groups();
        let Some(entry) = groups.get_mut(&group) else {
            return;
        };
        if let Some(at) = entry.links.iter().position(|(_, q)| Arc::ptr_eq(q, queue)) {
            entry.links.swap_remove(at);
        }
        if entry.links.is_empty()
            && let Some(entry) = groups.remove(&group)
        {
            entry.ended.cancel();
            if groups.capacity() > 64 && groups.len() < groups.capacity() / 4 {
                let keep = groups.len() * 2;
                groups.shrink_to(keep);
            }
        }
    }
}

/// One stream's link to a large group; dropping it unlinks (and, with the group's last link
/// here, ends the bus's subscription for the group).
pub struct GroupLink {
    hub: Arc<Hub>,
    group: i64,
    queue: Arc<Queue>,
    listening: Listening,
}

impl GroupLink {
    pub fn group(&self) -> i64 {
        self.group
    }

    pub(crate) fn listening(&self) -> &Listening {
        &self.listening
    }
}

impl Drop for GroupLink {
    fn drop(&mut self) {
        self.hub.unlink_group(self.group, &self.queue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Wake;

    fn event(seq: u64) -> Arc<Event> {
        Arc::new(Event {
            seq,
            ..Default::default()
        })
    }

    #[test]
    fn a_group_wake_reaches_linked_streams_only_until_unlinked() {
        let hub = Arc::new(Hub::new(8));
        let (mut a, mut b, mut c) = (hub.subscribe(1), hub.subscribe(2), hub.subscribe(3));
        let (link_a, _link_b) = (hub.link_group(&a, 10), hub.link_group(&b, 10));
        hub.deliver_group(10, event(1));
        assert!(matches!(a.try_recv(), Some(Wake::Event(e)) if e.seq == 1));
        assert!(matches!(b.try_recv(), Some(Wake::Event(e)) if e.seq == 1));
        assert!(c.try_recv().is_none(), "not linked");
        drop(link_a);
        hub.deliver_group(10, event(2));
        assert!(a.try_recv().is_none(), "unlinked");
        assert!(matches!(b.try_recv(), Some(Wake::Event(e)) if e.seq == 2));
        assert_eq!(hub.group_users(10), vec![2]);
    }

    #[test]
    fn the_last_unlink_ends_the_group_entry() {
        let hub = Arc::new(Hub::new(8));
        let a = hub.subscribe(1);
        let link = hub.link_group(&a, 10);
        let ended = link.listening().ended.clone();
        assert_eq!(hub.group_count(), 1);
        drop(link);
        assert!(ended.is_cancelled());
        assert_eq!(hub.group_count(), 0);
        // A leftover bus subscription of the old entry delivers nothing.
        let mut a = a;
        let again = hub.link_group(&a, 10);
        hub.deliver_group_from(10, again.listening().generation + 1000, event(3));
        assert!(a.try_recv().is_none());
    }

    #[test]
    fn a_full_dispatcher_has_the_group_streams_reread() {
        let hub = Arc::new(Hub::new(8));
        let (dispatch, _inbox) = mpsc::channel(1);
        assert!(hub.set_group_dispatch(dispatch));
        let mut a = hub.subscribe(1);
        let _link = hub.link_group(&a, 10);
        hub.deliver_group(10, event(1));
        assert!(a.try_recv().is_none(), "waits for the dispatcher");
        hub.deliver_group(10, event(2));
        assert!(matches!(a.try_recv(), Some(Wake::Reread)));
    }
}
