//! W2 alone (BENCHMARKS.md): after W1 at N cells, 10,000 single set_cell calls, each its own
//! transaction. For profilers: `valgrind --tool=callgrind --toggle-collect=w2_profile::w2
//! target/release/examples/w2_profile 100000`. With a third argument `w1` the W1 build loop
//! is profiled instead: `--toggle-collect=w2_profile::w1 ... w2_profile 100000 0 w1`.

use std::hint::black_box;
use tinybase::MergeableStore;

fn cell(i: usize) -> (String, String, String) {
    (format!("t{}", i % 10), format!("r{}", i / 10), format!("c{}", i % 3))
}

/// W1: N set_cell calls in one transaction (kept out of line so callgrind can toggle on it).
#[inline(never)]
fn w1(store: &MergeableStore, ids: &[(String, String, String, String)]) {
    store.transaction(|s| {
        for (t, r, c, v) in ids {
            s.set_cell(t, r, c, v.as_str()).unwrap();
        }
    });
}

#[inline(never)]
fn w2(store: &MergeableStore, ids: &[(String, String, String, String)]) {
    for (t, r, c, v) in ids {
        store.set_cell(t, r, c, v.as_str()).unwrap();
    }
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let calls: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let store = MergeableStore::with_clock(Some("bench"), || 1_700_000_000_000.0);
    let build: Vec<_> = (0..n).map(|i| {
        let (t, r, c) = cell(i);
        (t, r, c, format!("v{i}"))
    }).collect();
    let t0 = std::time::Instant::now();
    w1(&store, black_box(&build));
    let s = t0.elapsed().as_secs_f64();
    println!("W1: {n} cells in {:.2} ms: {:.0} ns/cell", s * 1e3, s * 1e9 / n as f64);
    if std::env::args().nth(3).as_deref() == Some("w1") {
        return;
    }
    let ids: Vec<_> = (0..calls).map(|i| {
        let (t, r, c) = cell(i % n);
        (t, r, c, format!("w{i}"))
    }).collect();
    let t0 = std::time::Instant::now();
    w2(&store, black_box(&ids));
    let s = t0.elapsed().as_secs_f64();
    println!("W2: {calls} calls in {:.2} ms: {:.0} calls/s, {:.0} ns/call", s * 1e3, calls as f64 / s, s * 1e9 / calls as f64);
}
