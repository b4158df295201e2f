//! BENCHMARKS.md's workloads W1-W7 on this library (moved from the former `examples/bench.rs`;
//! the definitions are unchanged). One call of [`round`] is one child process's round.

use crate::measure::{live_bytes, min_median_max, prepared, Measure, W2_CALLS};
use std::sync::atomic::Ordering;
use std::time::Instant;
use tinybase::MergeableStore;

/// One round of W1-W7 at size n. `sync` false skips W6/W7 (W9's script needs only W1/W2).
pub fn round(n: usize, sync: bool) -> Vec<Measure> {
    let mut out = Vec::new();
    let ids = prepared(n, "v");
    let before = live_bytes();
    let t0 = Instant::now();
    let store = MergeableStore::with_clock(Some("bench"), || 1_700_000_000_000.0);
    store.transaction(|s| {
        for (t, r, c, v) in &ids {
            s.set_cell(t, r, c, v.as_str()).unwrap();
        }
    });
    let w1 = t0.elapsed().as_secs_f64();
    let held = live_bytes() - before;
    out.push(Measure::new("W1", "cells/s", n as f64 / w1));
    out.push(Measure::new("W3", "bytes/cell", held as f64 / n as f64));

    let t0 = Instant::now();
    let json = store.get_encoded_mergeable_content_json();
    out.push(Measure::new("W4", "ms", t0.elapsed().as_secs_f64() * 1000.0));
    out.push(Measure::new("W4", "bytes", json.len() as f64));

    let fresh = MergeableStore::with_clock(Some("fresh"), || 1_700_000_000_000.0);
    let t0 = Instant::now();
    fresh.apply_mergeable_changes_json(&json).unwrap();
    out.push(Measure::new("W5", "ms", t0.elapsed().as_secs_f64() * 1000.0));
    assert_eq!(fresh.get_mergeable_content_hashes(), store.get_mergeable_content_hashes());
    drop(fresh);

    if sync {
        out.extend(sync_round(&store, n));
    }

    let calls = prepared(W2_CALLS, "w");
    let t0 = Instant::now();
    for (t, r, c, v) in &calls {
        store.set_cell(t, r, c, v).unwrap();
    }
    out.push(Measure::new("W2", "calls/s", W2_CALLS as f64 / t0.elapsed().as_secs_f64()));
    out
}

/// W6 (full sync of the W1 store into an empty one over the local bus) and W7 (latency of one
/// set_cell until the other side sees it, median of 100).
fn sync_round(a: &MergeableStore, n: usize) -> Vec<Measure> {
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    use tinybase::sync::{local::LocalBus, SynchronizerOptions};
    let messages = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    // A request that times out is not retried (as in TinyBase), so the one big table diff must
    // be written within the timeout: at 1M cells and more that takes longer than 200 ms.
    let timeout = std::time::Duration::from_millis(200).max(std::time::Duration::from_micros(n as u64 * 2));
    let options = || {
        let (m, b) = (messages.clone(), bytes.clone());
        SynchronizerOptions {
            request_timeout: timeout,
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
        Measure::new("W6", "ms", w6),
        Measure::new("W6", "messages", w6_messages as f64),
        Measure::new("W6", "bytes", w6_bytes as f64),
        Measure::new("W7", "ms", min_median_max(latencies).1),
    ]
}
