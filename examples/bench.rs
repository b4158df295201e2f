//! BENCHMARKS.md workloads W1–W7 on this library, and the same workloads on TinyBase (node)
//! in the same run, printed as a table with ratios.
//!
//! `cargo run --release --example bench -- [N ...] [--runs R] [--no-node] [--only-w1] [--no-sync]`
//! (default N = 10000 100000 1000000, 3 runs; the node side needs `npm ci` in tests/interop).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;
use tinybase::MergeableStore;

/// Counts live heap bytes, for W3.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const W2_CALLS: usize = 10_000;

fn cell(i: usize) -> (String, String, String) {
    (format!("t{}", i % 10), format!("r{}", i / 10), format!("c{}", i % 3))
}

/// One round of W1–W5 at size n: (workload, unit) -> value. `only_w1` stops after W1/W3.
fn round(n: usize, only_w1: bool, sync: bool) -> Vec<((&'static str, &'static str), f64)> {
    let mut out = Vec::new();
    let ids: Vec<(String, String, String, String)> = (0..n)
        .map(|i| {
            let (t, r, c) = cell(i);
            (t, r, c, format!("v{i}"))
        })
        .collect();
    let before = LIVE.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let store = MergeableStore::with_clock(Some("bench"), || 1_700_000_000_000.0);
    store.transaction(|s| {
        for (t, r, c, v) in &ids {
            s.set_cell(t, r, c, v.as_str()).unwrap();
        }
    });
    let w1 = t0.elapsed().as_secs_f64();
    let held = LIVE.load(Ordering::Relaxed) - before;
    out.push((("W1", "cells/s"), n as f64 / w1));
    out.push((("W3", "bytes/cell"), held as f64 / n as f64));
    if only_w1 {
        return out;
    }

    let t0 = Instant::now();
    let json = store.get_encoded_mergeable_content_json();
    out.push((("W4", "ms"), t0.elapsed().as_secs_f64() * 1000.0));
    out.push((("W4", "bytes"), json.len() as f64));

    let fresh = MergeableStore::with_clock(Some("fresh"), || 1_700_000_000_000.0);
    let t0 = Instant::now();
    fresh.apply_mergeable_changes_json(&json).unwrap();
    out.push((("W5", "ms"), t0.elapsed().as_secs_f64() * 1000.0));
    assert_eq!(fresh.get_mergeable_content_hashes(), store.get_mergeable_content_hashes());
    drop(fresh);

    if sync {
        out.extend(sync_round(&store));
    }

    let t0 = Instant::now();
    for i in 0..W2_CALLS {
        let (t, r, c) = cell(i);
        store.set_cell(&t, &r, &c, format!("w{i}")).unwrap();
    }
    out.push((("W2", "calls/s"), W2_CALLS as f64 / t0.elapsed().as_secs_f64()));
    out
}

/// W6 (full sync of the W1 store into an empty one over the local bus) and W7 (latency of one
/// set_cell until the other side sees it, median of 100).
fn sync_round(a: &MergeableStore) -> Vec<((&'static str, &'static str), f64)> {
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    use tinybase::sync::{local::LocalBus, SynchronizerOptions};
    let messages = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let options = || {
        let (m, b) = (messages.clone(), bytes.clone());
        SynchronizerOptions {
            request_timeout: std::time::Duration::from_millis(200),
            on_send: Some(Arc::new(move |to: Option<&str>, id: Option<&str>, _msg, body: &str| {
                m.fetch_add(1, Ordering::Relaxed);
                b.fetch_add((body.len() + to.map_or(0, str::len) + id.map_or(0, str::len) + 8) as u64, Ordering::Relaxed);
            })),
            ..Default::default()
        }
    };
    let b = MergeableStore::with_clock(Some("b"), || 1_700_000_000_000.0);
    let bus = LocalBus::new();
    let t0 = Instant::now();
    let sa = bus.create_synchronizer(a, Some(options()));
    let sb = bus.create_synchronizer(&b, Some(options()));
    // Both start at once, as TinyBase's `Promise.all([a.startSync(), b.startSync()])`.
    let (ra, rb) = (sa.start_sync_async(None), sb.start_sync_async(None));
    while a.get_mergeable_content_hashes() != b.get_mergeable_content_hashes() {
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
    let _ = (ra.recv(), rb.recv());
    let w6 = t0.elapsed().as_secs_f64() * 1000.0;
    let (w6_messages, w6_bytes) = (messages.load(Ordering::Relaxed), bytes.load(Ordering::Relaxed));
    bus.wait_for_idle(std::time::Duration::from_secs(30));
    // B's cell listener reports the new value, as TinyBase's benchmark does.
    let (seen_tx, seen_rx) = crossbeam_channel::unbounded::<String>();
    let listener = b.add_cell_listener(Some("t0"), Some("r0"), Some("c0"), move |_, _, _, _, new, _| {
        if let Some(tinybase::Cell::String(v)) = new {
            let _ = seen_tx.send(v.clone());
        }
    });
    let mut latencies = Vec::new();
    for i in 0..100 {
        let value = format!("w7-{i}");
        let t0 = Instant::now();
        a.set_cell("t0", "r0", "c0", value.as_str()).unwrap();
        while seen_rx.recv_timeout(std::time::Duration::from_secs(10)).map(|v| v != value).unwrap_or(false) {}
        latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    b.del_listener(listener);
    sa.destroy();
    sb.destroy();
    vec![
        (("W6", "ms"), w6),
        (("W6", "messages"), w6_messages as f64),
        (("W6", "bytes"), w6_bytes as f64),
        (("W7", "ms"), stats(latencies).1),
    ]
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn node_figures(n: usize, runs: usize) -> BTreeMap<(String, String), (f64, f64, f64)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");
    let out = Command::new("node")
        .arg(format!("{dir}/bench.mjs"))
        .arg(n.to_string())
        .arg(runs.to_string())
        .env("BENCH_SKIP", std::env::var("BENCH_SKIP").unwrap_or_default())
        .output();
    let mut figures = BTreeMap::new();
    let Ok(out) = out else { return figures };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = tinybase::value::parse_json(line) else { continue };
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let f = |k: &str| v.get(k).and_then(|x| x.as_f64()).unwrap_or(f64::NAN);
        figures.insert((s("workload"), s("unit")), (f("min"), f("median"), f("max")));
    }
    figures
}

fn fmt(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

fn main() {
    let mut sizes = Vec::new();
    let mut runs = 3;
    let mut node = true;
    let mut only_w1 = false;
    let mut sync = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|r| r.parse().ok()).unwrap_or(3),
            "--no-node" => node = false,
            "--only-w1" => only_w1 = true,
            "--no-sync" => sync = false,
            _ => sizes.extend(a.parse::<usize>().ok()),
        }
    }
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000, 1_000_000];
    }
    println!("| workload | N | this library (min / median / max) | TinyBase (median) | ratio |");
    println!("|---|---|---|---|---|");
    for &n in &sizes {
        let mut ours: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
        for _ in 0..runs {
            for (k, v) in round(n, only_w1, sync) {
                ours.entry(k).or_default().push(v);
            }
        }
        let theirs = if node { node_figures(n, runs) } else { BTreeMap::new() };
        for ((w, unit), values) in ours {
            let (min, med, max) = stats(values);
            let tb = theirs.get(&(w.to_string(), unit.to_string())).map(|t| t.1).unwrap_or(f64::NAN);
            // Higher is better for rates; lower is better for time and size.
            let ratio = if unit.ends_with("/s") { med / tb } else { tb / med };
            println!(
                "| {w} {unit} | {n} | {} / {} / {} | {} | {}x |",
                fmt(min),
                fmt(med),
                fmt(max),
                fmt(tb),
                if ratio.is_nan() { "-".into() } else { format!("{ratio:.1}") }
            );
        }
    }
}
