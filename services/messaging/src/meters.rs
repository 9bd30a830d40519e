//! What the messaging service records through the `metrics` facade (whatever recorder the
//! process installs exports it). Names without labels, so each update is a lookup of a
//! static key and no allocation.

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

const SENT: &str = "rosetta_messages_sent_total";
const DELIVERED: &str = "rosetta_messages_delivered_total";
const USERS_ONLINE: &str = "rosetta_messaging_users_online";
const STREAMS_OPEN: &str = "rosetta_messaging_event_streams_open";
const BATCH_SIZE: &str = "rosetta_messaging_writer_batch_size";
const QUEUED: &str = "rosetta_messaging_writer_queue_depth";

/// Describes the service's metrics to the installed recorder (their `# HELP` lines).
pub fn describe_metrics() {
    describe_counter!(
        SENT,
        "Messages stored (retries of a stored send not counted)"
    );
    describe_counter!(DELIVERED, "Message events pushed onto event streams");
    describe_gauge!(
        USERS_ONLINE,
        "Users with an open event stream in this process"
    );
    describe_gauge!(STREAMS_OPEN, "Event streams open in this process");
    describe_histogram!(BATCH_SIZE, "Sends written per writer transaction");
    describe_gauge!(QUEUED, "Sends waiting for a writer lane");
}

pub(crate) fn messages_sent(count: usize) {
    counter!(SENT).increment(count as u64);
}

pub(crate) fn message_delivered() {
    counter!(DELIVERED).increment(1);
}

/// A stream opened (`+1`) or closed (`-1`); `user` when it was the user's first or last.
pub(crate) fn stream_changed(delta: f64, user: bool) {
    gauge!(STREAMS_OPEN).increment(delta);
    if user {
        gauge!(USERS_ONLINE).increment(delta);
    }
}

pub(crate) fn batch_written(sends: usize) {
    histogram!(BATCH_SIZE).record(sends as f64);
}

/// Sends queued for the lanes (`+1`) or taken by one (`-taken`).
pub(crate) fn queued(delta: f64) {
    gauge!(QUEUED).increment(delta);
}
