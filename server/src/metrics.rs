//! Placeholder of the metrics contract (owned by ws-ops; replaced by their version on merge).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters and gauges.
#[derive(Default, Debug)]
pub struct Metrics {
    /// Open connections.
    pub connections: AtomicU64,
    /// Connections accepted so far.
    pub connections_total: AtomicU64,
    /// Rooms with clients.
    pub rooms: AtomicU64,
    /// Messages received.
    pub messages_in: AtomicU64,
    /// Messages sent.
    pub messages_out: AtomicU64,
    /// Bytes received.
    pub bytes_in: AtomicU64,
    /// Bytes sent.
    pub bytes_out: AtomicU64,
    /// Room saves.
    pub saves: AtomicU64,
    /// Failed room saves.
    pub save_errors: AtomicU64,
    /// Errors.
    pub errors: AtomicU64,
    /// Refused connections.
    pub refused: AtomicU64,
}

impl Metrics {
    /// Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, v) in [
            ("connections", &self.connections),
            ("connections_total", &self.connections_total),
            ("rooms", &self.rooms),
            ("messages_in", &self.messages_in),
            ("messages_out", &self.messages_out),
            ("bytes_in", &self.bytes_in),
            ("bytes_out", &self.bytes_out),
            ("saves", &self.saves),
            ("save_errors", &self.save_errors),
            ("errors", &self.errors),
            ("refused", &self.refused),
        ] {
            out.push_str(&format!("tinybase_{name} {}\n", v.load(Ordering::Relaxed)));
        }
        out
    }
}
