use std::time::Duration;

/// Tunables of the messaging service.
#[derive(Debug, Clone)]
pub struct MessagingConfig {
    /// A user with neither a live stream nor a heartbeat for this long goes offline.
    pub presence_timeout: Duration,
    /// How long a sender may recall their own message.
    pub recall_window: Duration,
    /// How often an open stream re-reads its log: catches wake-ups the bus lost (or never
    /// carried, in a process whose bus is in-process while writers run elsewhere).
    pub poll_interval: Duration,
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
            poll_interval: Duration::from_secs(2),
            writer_lanes: 4,
        }
    }
}
