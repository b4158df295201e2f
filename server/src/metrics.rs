//! Counters and gauges of a running server, served as `GET /metrics` in Prometheus' text
//! exposition format (version 0.0.4), every name prefixed `tinybase_`.
//!
//! The server updates the public atomics (relaxed ordering: each number is independent and a
//! scrape is a snapshot of roughly one moment) or calls the helpers, which keep gauges from
//! wrapping below zero.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Why a connection (or a multiplexed subscribe) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The auth hook said [`Access::Refuse`](crate::auth::Access::Refuse).
    Auth,
    /// `max_clients` connections were already open.
    MaxClients,
    /// `max_connections_per_ip` connections from that address were already open.
    MaxConnectionsPerIp,
    /// `max_rooms` rooms were already loaded and the request needed another one.
    MaxRooms,
    /// The server is shutting down.
    ShuttingDown,
}

impl Refusal {
    /// Every reason, in the order they are rendered.
    pub const ALL: [Refusal; 5] = [
        Refusal::Auth,
        Refusal::MaxClients,
        Refusal::MaxConnectionsPerIp,
        Refusal::MaxRooms,
        Refusal::ShuttingDown,
    ];

    /// The value of the `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Auth => "auth",
            Refusal::MaxClients => "max_clients",
            Refusal::MaxConnectionsPerIp => "max_connections_per_ip",
            Refusal::MaxRooms => "max_rooms",
            Refusal::ShuttingDown => "shutting_down",
        }
    }
}

/// The server's numbers. Share it in an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Metrics {
    /// Gauge: WebSocket connections open now.
    pub connections: AtomicU64,
    /// Counter: WebSocket connections accepted since start.
    pub connections_total: AtomicU64,
    /// Gauge: rooms loaded now (including idle ones kept for `room_idle`).
    pub rooms: AtomicU64,
    /// Counter: payloads received from clients (whole messages, after reassembly).
    pub messages_in: AtomicU64,
    /// Counter: payloads sent to clients (a broadcast to n clients counts n).
    pub messages_out: AtomicU64,
    /// Counter: bytes of WebSocket frames received.
    pub bytes_in: AtomicU64,
    /// Counter: bytes of WebSocket frames sent.
    pub bytes_out: AtomicU64,
    /// Counter: room files saved.
    pub saves: AtomicU64,
    /// Counter: room saves (or loads) that failed.
    pub save_errors: AtomicU64,
    /// Counter: connections closed for bad traffic or overload, and other errors logged.
    pub errors: AtomicU64,
    /// Counter: connections and subscribes refused, all reasons together. Code that knows the
    /// reason calls [`Metrics::refuse`]; what is added here directly is rendered as reason
    /// `other`.
    pub refused: AtomicU64,
    by_reason: [AtomicU64; Refusal::ALL.len()],
    started: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// All zero, uptime counted from now.
    pub fn new() -> Metrics {
        let zero = || AtomicU64::new(0);
        Metrics {
            connections: zero(),
            connections_total: zero(),
            rooms: zero(),
            messages_in: zero(),
            messages_out: zero(),
            bytes_in: zero(),
            bytes_out: zero(),
            saves: zero(),
            save_errors: zero(),
            errors: zero(),
            refused: zero(),
            by_reason: Refusal::ALL.map(|_| zero()),
            started: Instant::now(),
        }
    }

    /// A connection was accepted: the gauge and the total go up.
    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Relaxed);
        self.connections_total.fetch_add(1, Relaxed);
    }

    /// A connection closed.
    pub fn connection_closed(&self) {
        decrement(&self.connections);
    }

    /// A room was loaded.
    pub fn room_opened(&self) {
        self.rooms.fetch_add(1, Relaxed);
    }

    /// A room was unloaded.
    pub fn room_closed(&self) {
        decrement(&self.rooms);
    }

    /// A payload of `frame_bytes` bytes (all its frames) came in.
    pub fn message_in(&self, frame_bytes: usize) {
        self.messages_in.fetch_add(1, Relaxed);
        self.bytes_in.fetch_add(frame_bytes as u64, Relaxed);
    }

    /// A payload of `frame_bytes` bytes (all its frames) went out to one client.
    pub fn message_out(&self, frame_bytes: usize) {
        self.messages_out.fetch_add(1, Relaxed);
        self.bytes_out.fetch_add(frame_bytes as u64, Relaxed);
    }

    /// A save finished, successfully or not.
    pub fn saved(&self, ok: bool) {
        if ok { &self.saves } else { &self.save_errors }.fetch_add(1, Relaxed);
    }

    /// Something went wrong (a connection closed for bad traffic, an I/O error...).
    pub fn error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }

    /// A connection or subscribe was refused for `reason`.
    pub fn refuse(&self, reason: Refusal) {
        self.by_reason[reason as usize].fetch_add(1, Relaxed);
        self.refused.fetch_add(1, Relaxed);
    }

    /// How many refusals for `reason` so far.
    pub fn refusals(&self, reason: Refusal) -> u64 {
        self.by_reason[reason as usize].load(Relaxed)
    }

    /// The metrics in Prometheus' text exposition format (`text/plain; version=0.0.4`).
    pub fn render(&self) -> String {
        let get = |atomic: &AtomicU64| atomic.load(Relaxed);
        let labels: Vec<String> = Refusal::ALL
            .iter()
            .map(|r| format!("{{reason=\"{}\"}}", r.label()))
            .collect();
        let mut refused: Vec<(&str, u64)> = labels
            .iter()
            .zip(Refusal::ALL)
            .map(|(l, r)| (l.as_str(), self.refusals(r)))
            .collect();
        let named: u64 = refused.iter().map(|(_, n)| n).sum();
        refused.push((
            "{reason=\"other\"}",
            get(&self.refused).saturating_sub(named),
        ));
        let version = format!("{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"));
        let families: [Family; 13] = [
            (
                "connections",
                GAUGE,
                "WebSocket connections open now.",
                &[("", get(&self.connections))],
            ),
            (
                "connections_total",
                COUNTER,
                "WebSocket connections accepted.",
                &[("", get(&self.connections_total))],
            ),
            (
                "refused_total",
                COUNTER,
                "Connections and subscribes refused, by reason.",
                &refused,
            ),
            (
                "rooms",
                GAUGE,
                "Rooms loaded now.",
                &[("", get(&self.rooms))],
            ),
            (
                "messages_in_total",
                COUNTER,
                "Payloads received from clients.",
                &[("", get(&self.messages_in))],
            ),
            (
                "messages_out_total",
                COUNTER,
                "Payloads sent to clients.",
                &[("", get(&self.messages_out))],
            ),
            (
                "bytes_in_total",
                COUNTER,
                "Bytes of WebSocket frames received.",
                &[("", get(&self.bytes_in))],
            ),
            (
                "bytes_out_total",
                COUNTER,
                "Bytes of WebSocket frames sent.",
                &[("", get(&self.bytes_out))],
            ),
            (
                "saves_total",
                COUNTER,
                "Room files saved.",
                &[("", get(&self.saves))],
            ),
            (
                "save_errors_total",
                COUNTER,
                "Room saves or loads that failed.",
                &[("", get(&self.save_errors))],
            ),
            (
                "errors_total",
                COUNTER,
                "Bad traffic, overloads and other errors.",
                &[("", get(&self.errors))],
            ),
            (
                "uptime_seconds",
                GAUGE,
                "Seconds since the server started.",
                &[("", self.started.elapsed().as_secs())],
            ),
            (
                "build_info",
                GAUGE,
                "The server's version, as a label.",
                &[(&version, 1)],
            ),
        ];
        let mut out = String::with_capacity(2048);
        for (name, kind, help, samples) in families {
            let _ = writeln!(
                out,
                "# HELP tinybase_{name} {help}\n# TYPE tinybase_{name} {kind}"
            );
            for (labels, value) in samples {
                let _ = writeln!(out, "tinybase_{name}{labels} {value}");
            }
        }
        out
    }
}

/// One metric family: its name after `tinybase_`, its type, its help, its samples (labels, value).
type Family<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, u64)]);

const GAUGE: &str = "gauge";
const COUNTER: &str = "counter";

/// Decrements a gauge, stopping at zero: a bookkeeping slip must not make it 18 quintillion.
fn decrement(gauge: &AtomicU64) {
    let _ = gauge.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
}

/// Parses a Prometheus text exposition strictly enough to catch what a scraper would reject: every
/// sample belongs to a family announced by `# TYPE` (counter or gauge, once per name) right before
/// it, counter names end in `_total`, names and labels are well formed, values are numbers.
/// Returns the samples, keyed `name` or `name{labels}` as written. For tests (and `ops.rs`).
pub fn parse_exposition(text: &str) -> Result<BTreeMap<String, f64>, String> {
    fn is_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    fn check_labels(labels: &str) -> Result<(), String> {
        // Only the label values this server writes: no escapes, no commas inside values.
        for pair in labels.split(',') {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("label {pair:?}"))?;
            let inner = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
            if !is_name(name) || inner.is_none_or(|v| v.contains(['"', '\\', '\n'])) {
                return Err(format!("label {pair:?}"));
            }
        }
        Ok(())
    }
    let mut samples = BTreeMap::new();
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (number, line) in text.lines().enumerate() {
        let fail = |what: &str| format!("line {}: {what}: {line:?}", number + 1);
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.trim_start().splitn(3, ' ').collect();
            match words.as_slice() {
                ["TYPE", name, kind] => {
                    if !is_name(name) || !matches!(*kind, "counter" | "gauge") {
                        return Err(fail("bad TYPE"));
                    }
                    if *kind == "counter" && !name.ends_with("_total") {
                        return Err(fail("counter without _total"));
                    }
                    if typed.insert(name.to_string(), kind.to_string()).is_some() {
                        return Err(fail("family announced twice"));
                    }
                    current = Some(name.to_string());
                }
                ["HELP", name, _] if is_name(name) => {}
                _ => return Err(fail("bad comment")),
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or_else(|| fail("no value"))?;
        let name = match series.split_once('{') {
            Some((name, rest)) => {
                let labels = rest
                    .strip_suffix('}')
                    .ok_or_else(|| fail("unclosed labels"))?;
                check_labels(labels).map_err(|e| fail(&e))?;
                name
            }
            None => series,
        };
        if !is_name(name) || current.as_deref() != Some(name) {
            return Err(fail("sample outside its family"));
        }
        let value: f64 = value.parse().map_err(|_| fail("bad value"))?;
        if samples.insert(series.to_string(), value).is_some() {
            return Err(fail("duplicate sample"));
        }
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_valid_exposition_that_moves() {
        let metrics = Metrics::new();
        let before = parse_exposition(&metrics.render()).unwrap();
        for name in [
            "connections",
            "connections_total",
            "rooms",
            "messages_in_total",
            "messages_out_total",
            "bytes_in_total",
            "bytes_out_total",
            "saves_total",
            "save_errors_total",
            "errors_total",
        ] {
            assert_eq!(before[&format!("tinybase_{name}")], 0.0, "{name}");
        }
        assert_eq!(
            before["tinybase_refused_total{reason=\"max_connections_per_ip\"}"],
            0.0
        );

        metrics.connection_opened();
        metrics.connection_opened();
        metrics.connection_closed();
        metrics.room_opened();
        metrics.message_in(10);
        metrics.message_out(7);
        metrics.message_out(7);
        metrics.saved(true);
        metrics.saved(false);
        metrics.error();
        metrics.refuse(Refusal::Auth);
        metrics.refuse(Refusal::Auth);
        metrics.refuse(Refusal::MaxRooms);
        metrics.refused.fetch_add(1, Relaxed);
        let after = parse_exposition(&metrics.render()).unwrap();
        let expected = [
            ("tinybase_connections", 1.0),
            ("tinybase_connections_total", 2.0),
            ("tinybase_rooms", 1.0),
            ("tinybase_messages_in_total", 1.0),
            ("tinybase_bytes_in_total", 10.0),
            ("tinybase_messages_out_total", 2.0),
            ("tinybase_bytes_out_total", 14.0),
            ("tinybase_saves_total", 1.0),
            ("tinybase_save_errors_total", 1.0),
            ("tinybase_errors_total", 1.0),
            ("tinybase_refused_total{reason=\"auth\"}", 2.0),
            ("tinybase_refused_total{reason=\"max_rooms\"}", 1.0),
            ("tinybase_refused_total{reason=\"max_clients\"}", 0.0),
            ("tinybase_refused_total{reason=\"other\"}", 1.0),
        ];
        for (series, value) in expected {
            assert_eq!(after[series], value, "{series}");
        }
        assert_eq!(after["tinybase_build_info{version=\"0.1.0\"}"], 1.0);
    }

    #[test]
    fn gauges_stop_at_zero() {
        let metrics = Metrics::new();
        metrics.connection_closed();
        metrics.room_closed();
        assert_eq!(metrics.connections.load(Relaxed), 0);
        assert_eq!(metrics.rooms.load(Relaxed), 0);
    }

    #[test]
    fn the_checker_rejects_what_scrapers_reject() {
        let good = "# HELP tinybase_x_total X.\n# TYPE tinybase_x_total counter\ntinybase_x_total{a=\"b\"} 3\n";
        assert!(parse_exposition(good).is_ok());
        for bad in [
            "tinybase_x 1\n",                                        // no TYPE
            "# TYPE tinybase_x counter\ntinybase_x 1\n",             // counter without _total
            "# TYPE tinybase_x gauge\ntinybase_y 1\n",               // other family
            "# TYPE tinybase_x gauge\ntinybase_x one\n",             // value
            "# TYPE tinybase_x gauge\ntinybase_x{a=b} 1\n",          // unquoted label
            "# TYPE tinybase_x gauge\ntinybase_x{a=\"b\" 1\n",       // unclosed
            "# TYPE tinybase_x gauge\n# TYPE tinybase_x gauge\n",    // twice
            "# TYPE tinybase_x gauge\ntinybase_x 1\ntinybase_x 2\n", // duplicate
            "# TYPE 1x gauge\n",                                     // name
            "# TYPE tinybase_x histogram\n", // kind this server never writes
            "# nonsense\n",                  // comment
        ] {
            assert!(parse_exposition(bad).is_err(), "{bad:?}");
        }
    }
}
