use std::time::Duration;

use crate::hub::DEFAULT_QUEUE_LIMIT;

/// Tunables of the messaging service.
#[derive(Debug, Clone)]
pub struct MessagingConfig {
    /// A user with neither a live stream nor a heartbeat for this long goes offline.
    pub presence_timeout: Duration,
    /// How long a sender may recall their own message.
    pub recall_window: Duration,
    /// How often an open stream checks that its session is still live. The check reads the
    /// session cache (a revocation in this process shows at once, one elsewhere within the
    /// cache's lifetime), not the log: streams are woken by the bus, never polled.
    pub session_check_interval: Duration,
    /// Events one stream may have waiting between the bus and its client before it drops
    /// them and re-reads its log instead (the bus is built with it, see `Hub::new`).
    pub stream_queue: usize,
    /// PostgreSQL: how many writer lanes write sends concurrently, each in batches of one
    /// transaction; a conversation's sends always go to the same lane (`id % lanes`), so they
    /// keep their order. More lanes overlap more transactions' round trips, at the cost of one
    /// busy connection each. Clamped to 1..=64. SQLite admits one writer and always uses one.
    pub writer_lanes: usize,
}

impl Default for MessagingConfig {
    fn default() -> Self {
        Self {
            presence_timeout: Duration::from_secs(300),
            recall_window: Duration::from_secs(120),
            session_check_interval: Duration::from_secs(2),
            stream_queue: DEFAULT_QUEUE_LIMIT,
            writer_lanes: 4,
        }
    }
}
