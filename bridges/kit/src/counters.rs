//! The counters every bridge keeps, under the same names with a `bridge` label, recorded
//! through the `metrics` facade (whatever recorder the process installs exports them).

use metrics::{counter, describe_counter, describe_gauge, gauge};

/// Describes the counters to the installed recorder (their `# HELP` lines).
pub fn describe() {
    describe_counter!(
        "rosetta_bridge_connections_total",
        "Legacy-client connections accepted"
    );
    describe_gauge!(
        "rosetta_bridge_connections_open",
        "Legacy-client connections open now"
    );
    describe_counter!(
        "rosetta_bridge_frames_in_total",
        "Legacy frames received, by command"
    );
    describe_counter!(
        "rosetta_bridge_frames_out_total",
        "Legacy frames sent (replies and pushes), by command"
    );
    describe_counter!(
        "rosetta_bridge_errors_total",
        "Legacy frames refused or commands failed, by command"
    );
}

#[derive(Clone, Copy)]
pub struct Counters {
    bridge: &'static str,
}

impl Counters {
    pub const fn new(bridge: &'static str) -> Self {
        Self { bridge }
    }

    pub fn connection_opened(&self) {
        counter!("rosetta_bridge_connections_total", "bridge" => self.bridge).increment(1);
        gauge!("rosetta_bridge_connections_open", "bridge" => self.bridge).increment(1.0);
    }

    pub fn connection_closed(&self) {
        gauge!("rosetta_bridge_connections_open", "bridge" => self.bridge).decrement(1.0);
    }

    /// A connection refused over a cap (`reason`: `listener` or `address`).
    pub fn refused(&self, reason: &'static str) {
        counter!("bridge_connections_refused_total", "bridge" => self.bridge, "reason" => reason)
            .increment(1);
    }

    /// A connection closed for not logging in within the handshake timeout.
    pub fn handshake_timed_out(&self) {
        counter!("bridge_handshake_timeouts_total", "bridge" => self.bridge).increment(1);
    }

    /// A frame received, by command name.
    pub fn frame_in(&self, command: &'static str) {
        counter!("rosetta_bridge_frames_in_total", "bridge" => self.bridge, "command" => command)
            .increment(1);
    }

    /// A frame (reply or push) sent, by command name.
    pub fn frame_out(&self, command: &'static str) {
        counter!("rosetta_bridge_frames_out_total", "bridge" => self.bridge, "command" => command)
            .increment(1);
    }

    /// A frame refused or a command that failed, by command name.
    pub fn error(&self, command: &'static str) {
        counter!("rosetta_bridge_errors_total", "bridge" => self.bridge, "command" => command)
            .increment(1);
    }
}
