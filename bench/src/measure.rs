//! What every workload reports, and the counting allocator behind the memory figures.

#[path = "../../tests/support/counting_alloc.rs"]
mod counting_alloc;

pub use counting_alloc::{live_bytes, Counting};

/// One figure of one run: `workload` ("W1"...) in `unit` ("cells/s", "bytes/cell", "ms"...).
#[derive(Clone, Debug, PartialEq)]
pub struct Measure {
    pub workload: &'static str,
    pub unit: &'static str,
    pub value: f64,
}

impl Measure {
    /// A figure.
    pub fn new(workload: &'static str, unit: &'static str, value: f64) -> Measure {
        Measure { workload, unit, value }
    }
}

/// The process's peak resident set (VmHWM), in bytes, where /proc tells it.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// BENCHMARKS.md's data: cell i is table `t{i%10}`, row `r{i/10}`, cell `c{i%3}`, value `v{i}`.
pub fn cell_ids(i: usize) -> (String, String, String) {
    (format!("t{}", i % 10), format!("r{}", i / 10), format!("c{}", i % 3))
}

/// Cells 0..n's ids and values (`{prefix}{i}`), made before a timed loop: W1 and W2 measure
/// the calls, not the formatting of their arguments (bench.mjs does the same for TinyBase).
pub fn prepared(n: usize, prefix: &str) -> Vec<(String, String, String, String)> {
    (0..n)
        .map(|i| {
            let (t, r, c) = cell_ids(i);
            (t, r, c, format!("{prefix}{i}"))
        })
        .collect()
}

/// W8's shape (crdt-benchmarks B3.1 with N = 6,000): 20 * sqrt(6000) = 1,549 stores.
pub const W8_STORES: usize = 1549;

/// W2's number of single calls.
pub const W2_CALLS: usize = 10_000;

/// (min, median, max) of a non-empty sample; the median is the upper one of an even count, as
/// bench.mjs's W7 takes `latencies[floor(len / 2)]`.
pub fn min_median_max(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2], v[v.len() - 1])
}
