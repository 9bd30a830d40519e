use std::time::Duration;

use crate::hub::DEFAULT_QUEUE_LIMIT;

/// Up to 200 members a group message is fanned out on write: one log row and one log-head
/// update per member, in two multi-row statements of the send's batch, and replay stays one
/// range scan (BENCHMARKS.md, "Large groups": ~3 ms per message at 201 members on SQLite,
/// 80 ms at 2,000). The legacy systems' groups (pipe, IMPS, OurChat) hold tens to a few
/// hundred members, so they keep exact per-user seqs. Above it the per-message cost would grow
/// with the group; fan-out on read keeps it at one row.
pub const DEFAULT_GROUP_FANOUT_MAX_MEMBERS: usize = 200;

impl MessagingConfig {
    /// Whether a group of `members` members is large (its messages are fanned out on read).
    pub fn is_large(&self, members: usize) -> bool {
        self.group_fanout_max_members > 0 && members > self.group_fanout_max_members
    }
}

/// Tunables of the messaging service.
#[derive(Debug, Clone)]
pub struct MessagingConfig {
    /// A user with neither a live stream nor a heartbeat for this long goes offline.
    pub presence_timeout: Duration,
    /// How long a sender may recall their own message.
    pub recall_window: Duration,
    /// How often the process's session watch (rosetta-auth `SessionWatch`, started by the node)
    /// looks in the database for sessions ended by other processes; a revocation in this
    /// process ends its streams at once. One query per period for the whole process, none per
    /// stream: streams are woken by the bus and the watch, never polled.
    pub session_check_interval: Duration,
    /// Events one stream may have waiting between the bus and its client before it drops
    /// them and re-reads its log instead (the bus is built with it, see `Hub::new`).
    pub stream_queue: usize,
    /// PostgreSQL: how many writer lanes write sends concurrently, each in batches of one
    /// transaction. Under a light load (fewer than 64 jobs in the writer) one lane writes them
    /// all; above it a conversation's jobs go to lane `id % lanes`. More lanes overlap more
    /// transactions' round trips, at the cost of one busy connection each. Clamped to
    /// 1..=64. SQLite admits one writer and always uses one.
    /// Default [`DEFAULT_WRITER_LANES`].
    pub writer_lanes: usize,
    /// Groups with more members than this are *large*: a message there is one row in the
    /// conversation's log (`messages`) and no row in the members' logs; their streams read it
    /// by cursor (fan-out on read, see the crate docs). Smaller groups and private chats are
    /// fanned out on write into each member's log. 0 turns fan-out on read off.
    pub group_fanout_max_members: usize,
}

/// Writer lanes on PostgreSQL. Measured (BENCHMARKS.md, "PostgreSQL writer lanes"): 16 lanes
/// wrote 2× the sends of 4 on two cores, and 32 or 64 no more than 16; each lane holds one of
/// the pool's 32 connections while it writes.
pub const DEFAULT_WRITER_LANES: usize = 16;

impl Default for MessagingConfig {
    fn default() -> Self {
        Self {
            presence_timeout: Duration::from_secs(300),
            recall_window: Duration::from_secs(120),
            session_check_interval: Duration::from_secs(2),
            stream_queue: DEFAULT_QUEUE_LIMIT,
            writer_lanes: DEFAULT_WRITER_LANES,
            group_fanout_max_members: DEFAULT_GROUP_FANOUT_MAX_MEMBERS,
        }
    }
}
