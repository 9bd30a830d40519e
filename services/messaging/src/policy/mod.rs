//! Who may send where, answered from memory and correct under concurrent change.
//!
//! [`Policy::admit`] answers a send from a bounded cache of decisions ([`cache`]), each tagged
//! with the sender's *policy epoch* (`rosetta_db::entity::policy_epoch`), a counter the social
//! service moves in the same transaction as every change to whom a user may message: their
//! friendships, blocks either way, memberships, roles, mutes, their groups' dissolution. On a
//! miss it reads the epoch FIRST, then decides from the tables ([`rules`]): a change committed
//! in between leaves the decision tagged with an older epoch, never the reverse.
//!
//! Memory alone is not enough: the change may have happened in another process, and the bus
//! is at-most-once. So the message writer calls [`Policy::confirm`] first thing in its write
//! transaction: one statement reads the senders' epochs (on PostgreSQL `FOR SHARE`, so a
//! concurrent change waits until the send commits; on SQLite the writer holds the database's
//! write lock), and any admission whose epoch moved is decided again inside the transaction.
//! Either the message commits before the change, or the send sees it: a block, unfriend,
//! removal, dissolution or mute binds the next send in every process, with or without events.
//!
//! Only decisions that let the sender send are answered from memory without a database read;
//! a refusal is never cached (unblock and befriend take effect at once), except that a mute
//! is kept with its end time and is answered only after reading that the epoch is unchanged.

pub mod cache;
mod rules;
#[cfg(test)]
mod tests;

use rosetta_db::entity::policy_epoch;
use rosetta_kit::ApiResult;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};

pub use rules::{group_members, groups_of, is_moderator, membership};

use self::cache::{Cache, Entry};
use crate::conversations::Target;

/// A send the policy let through: who, to whom, and the sender's epoch the decision was made
/// at. The writer passes it back to [`Policy::confirm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub sender: i64,
    pub target: Target,
    pub epoch: i64,
}

/// The messaging service's policy: decisions cached in memory, confirmed in each write.
pub struct Policy {
    db: DatabaseConnection,
    cache: Cache,
}

impl Policy {
    /// A policy remembering up to [`cache::CAPACITY`] decisions.
    pub fn new(db: DatabaseConnection) -> Self {
        Self::with_capacity(db, cache::CAPACITY)
    }

    pub fn with_capacity(db: DatabaseConnection, capacity: usize) -> Self {
        Self {
            db,
            cache: Cache::new(capacity),
        }
    }

    /// May `sender` send to `target` at `now_ms`? Answered from memory when a decision that
    /// admits it is cached (the write confirms it), from the tables otherwise.
    pub async fn admit(&self, sender: i64, target: Target, now_ms: i64) -> ApiResult<Admission> {
        rules::not_to_self(sender, target)?;
        if let Some(known) = self.cache.get(sender, target) {
            match known.standing.admits(now_ms) {
                Ok(()) => return Ok(admission(sender, target, known)),
                // Muted: a refusal, answered from memory only while the epoch is unchanged.
                Err(refusal) => {
                    if self.epoch(sender).await? == known.epoch {
                        return Err(refusal);
                    }
                }
            }
        }
        let decided = self.decide(sender, target).await?;
        decided.standing.admits(now_ms)?;
        Ok(admission(sender, target, decided))
    }

    /// The same question for what is not written (signals, typing) and so gets no
    /// [`confirm`](Self::confirm): a cached decision is used only after reading that the
    /// sender's epoch is unchanged (one primary-key read instead of two or three).
    pub async fn verify(&self, sender: i64, target: Target, now_ms: i64) -> ApiResult<()> {
        rules::not_to_self(sender, target)?;
        if let Some(known) = self.cache.get(sender, target)
            && self.epoch(sender).await? == known.epoch
        {
            return known.standing.admits(now_ms);
        }
        self.decide(sender, target).await?.standing.admits(now_ms)
    }

    /// Checks `admissions` again inside the writer's transaction `tx`, before it writes
    /// anything: one statement reads (and on PostgreSQL share-locks) the senders' epochs, and
    /// each admission whose sender's epoch moved is decided again inside `tx`. One answer per
    /// admission, in order; the writer must not write the refused ones.
    ///
    /// `tx` is any connection inside the write transaction. On SQLite that transaction must
    /// already hold the write lock (`BEGIN IMMEDIATE`, as `rosetta_db::begin_write` does), so
    /// that no change can commit between this read and the commit.
    pub async fn confirm<C: ConnectionTrait>(
        &self,
        tx: &C,
        admissions: &[Admission],
    ) -> Result<Vec<ApiResult<()>>, DbErr> {
        let mut senders: Vec<i64> = admissions.iter().map(|a| a.sender).collect();
        senders.sort_unstable();
        senders.dedup();
        let current = policy_epoch::read(tx, &senders, true).await?;
        let now_ms = rosetta_db::now_ms();
        let mut verdicts = Vec::with_capacity(admissions.len());
        for admission in admissions {
            let epoch = current.get(&admission.sender).copied().unwrap_or(0);
            if epoch == admission.epoch {
                verdicts.push(Ok(()));
                continue;
            }
            let (sender, target) = (admission.sender, admission.target);
            // The epochs are locked (or the database is) until `tx` ends: this decision holds
            // at `epoch` for as long as the cache may use it.
            let verdict = match rules::decide(tx, sender, target).await? {
                Ok(standing) => {
                    self.cache.put(sender, target, Entry { standing, epoch });
                    standing.admits(now_ms)
                }
                Err(refusal) => {
                    self.cache.remove(sender, target);
                    Err(refusal)
                }
            };
            verdicts.push(verdict);
        }
        Ok(verdicts)
    }

    /// Decides from the tables and remembers an admitting standing (a refusal is forgotten).
    async fn decide(&self, sender: i64, target: Target) -> ApiResult<Entry> {
        let epoch = self.epoch_with_row(sender).await?;
        match rules::decide(&self.db, sender, target).await? {
            Ok(standing) => {
                let entry = Entry { standing, epoch };
                self.cache.put(sender, target, entry);
                Ok(entry)
            }
            Err(refusal) => {
                self.cache.remove(sender, target);
                Err(refusal)
            }
        }
    }

    async fn epoch(&self, user: i64) -> ApiResult<i64> {
        Ok(policy_epoch::of(&self.db, user).await?.unwrap_or(0))
    }

    /// `user`'s epoch, creating their row first if they have none: `confirm` locks the row,
    /// and a missing row could not make a concurrent first change wait for the send.
    async fn epoch_with_row(&self, user: i64) -> ApiResult<i64> {
        if let Some(epoch) = policy_epoch::of(&self.db, user).await? {
            return Ok(epoch);
        }
        let tx = rosetta_db::begin_write(&self.db).await?;
        policy_epoch::ensure(&*tx, user).await?;
        let epoch = policy_epoch::of(&*tx, user).await?.unwrap_or(0);
        tx.commit().await?;
        Ok(epoch)
    }
}

fn admission(sender: i64, target: Target, entry: Entry) -> Admission {
    Admission {
        sender,
        target,
        epoch: entry.epoch,
    }
}
