//! The exactly-once check: every message a run sends is entered here with the users that must
//! receive it; each push is ticked off, so lost and duplicated deliveries are counted exactly.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::oneshot;

use crate::report::Recorder;

struct Entry {
    sent_at: Instant,
    sender: i64,
    /// Deliveries seen so far per expected recipient.
    received: HashMap<i64, u32>,
    /// The send failed: its deliveries are no longer owed (but any that arrive still count).
    failed: bool,
    /// Told when this recipient first receives the message.
    watch: Option<(i64, oneshot::Sender<()>)>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Pushes for a message this run never sent, or to a user who was not a recipient.
    unexpected: u64,
    push: Option<Recorder>,
}

/// Shared by the senders and every subscriber of a run.
#[derive(Default)]
pub struct Ledger {
    inner: Mutex<Inner>,
    /// Deliveries owed and not yet seen.
    outstanding: AtomicU64,
    delivered: AtomicU64,
}

/// What the ledger holds at the end of a run.
pub struct Tally {
    pub messages: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// The first few lost deliveries in key order (for the report).
    pub lost_examples: Vec<String>,
    /// Send→push latency to recipients other than the sender.
    pub push: Recorder,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters for counting, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Enters a message under `key` just before it is sent.
    pub fn expect(&self, key: String, sender: i64, recipients: &[i64]) {
        self.enter(key, sender, recipients, None);
    }

    /// [`Self::expect`], and the answer tells when `watch` first received the message.
    pub fn expect_watched(
        &self,
        key: String,
        sender: i64,
        recipients: &[i64],
        watch: i64,
    ) -> oneshot::Receiver<()> {
        let (tell, told) = oneshot::channel();
        self.enter(key, sender, recipients, Some((watch, tell)));
        told
    }

    fn enter(
        &self,
        key: String,
        sender: i64,
        recipients: &[i64],
        watch: Option<(i64, oneshot::Sender<()>)>,
    ) {
        let received = recipients
            .iter()
            .map(|&r| (r, 0))
            .collect::<HashMap<_, _>>();
        self.outstanding
            .fetch_add(received.len() as u64, Ordering::Relaxed);
        self.lock().entries.insert(
            key,
            Entry {
                sent_at: Instant::now(),
                sender,
                received,
                failed: false,
                watch,
            },
        );
    }

    /// The send of `key` failed: stop waiting for its deliveries.
    pub fn failed(&self, key: &str) {
        let mut inner = self.lock();
        if let Some(entry) = inner.entries.get_mut(key) {
            entry.failed = true;
            let owed = entry.received.values().filter(|&&n| n == 0).count() as u64;
            self.outstanding.fetch_sub(owed, Ordering::Relaxed);
        }
    }

    /// A push of `key` reached `user`.
    pub fn deliver(&self, user: i64, key: &str) {
        let now = Instant::now();
        let mut inner = self.lock();
        let Inner {
            entries,
            unexpected,
            push,
        } = &mut *inner;
        let Some(entry) = entries.get_mut(key) else {
            *unexpected += 1;
            return;
        };
        let Some(count) = entry.received.get_mut(&user) else {
            *unexpected += 1;
            return;
        };
        *count += 1;
        if *count == 1 {
            if entry
                .watch
                .as_ref()
                .is_some_and(|(watched, _)| *watched == user)
                && let Some((_, tell)) = entry.watch.take()
            {
                let _ = tell.send(());
            }
            self.delivered.fetch_add(1, Ordering::Relaxed);
            if !entry.failed {
                self.outstanding.fetch_sub(1, Ordering::Relaxed);
            }
            if user != entry.sender {
                push.get_or_insert_with(Recorder::new)
                    .record(now.duration_since(entry.sent_at));
            }
        }
    }

    pub fn outstanding(&self) -> u64 {
        self.outstanding.load(Ordering::Relaxed)
    }

    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Waits until every owed delivery arrived or `timeout` passed.
    pub async fn drain(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.outstanding() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn tally(&self) -> Tally {
        let inner = self.lock();
        let mut tally = Tally {
            messages: 0,
            delivered: self.delivered(),
            lost: 0,
            duplicated: inner.unexpected,
            lost_examples: Vec::new(),
            push: Recorder::new(),
        };
        let mut lost = Vec::new();
        if let Some(push) = &inner.push {
            tally.push.merge(push);
        }
        for (key, entry) in &inner.entries {
            if !entry.failed {
                tally.messages += 1;
            }
            for (&user, &n) in &entry.received {
                if n == 0 && !entry.failed {
                    tally.lost += 1;
                    lost.push((key.as_str(), entry.sender, user));
                }
                tally.duplicated += u64::from(n.saturating_sub(1));
            }
        }
        lost.sort_unstable();
        tally.lost_examples = lost
            .into_iter()
            .take(5)
            .map(|(key, sender, user)| format!("{key} from user {sender} to {user}"))
            .collect();
        tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lost_duplicated_and_unexpected() {
        let ledger = Ledger::default();
        ledger.expect("a".into(), 1, &[1, 2]);
        ledger.expect("b".into(), 1, &[1, 2]);
        ledger.expect("c".into(), 2, &[1, 2]);
        ledger.deliver(1, "a");
        ledger.deliver(2, "a");
        ledger.deliver(2, "a");
        ledger.deliver(1, "b");
        ledger.deliver(3, "b");
        ledger.deliver(1, "zzz");
        ledger.failed("c");
        assert_eq!(ledger.outstanding(), 1);
        let t = ledger.tally();
        assert_eq!(t.messages, 2);
        assert_eq!(t.delivered, 3);
        assert_eq!(t.lost, 1, "b never reached 2");
        assert_eq!(t.lost_examples, vec!["b from user 1 to 2".to_owned()]);
        assert_eq!(
            t.duplicated, 3,
            "a twice to 2, b to a non-recipient, an unknown key"
        );
        assert_eq!(t.push.len(), 1, "only the push to a non-sender is timed");
    }
}
