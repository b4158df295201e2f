//! W5/W6 alone at size N (for profiling): `cargo run --release --example w6_profile -- N [runs] [--trace]`;
//! `--trace` prints each sync message (time, sender thread, type, bytes); `--w5` stops after W5
//! (for callgrind: `--toggle-collect='*apply_mergeable_changes_json*' ... w6_profile 100000 1 --w5`).

use std::sync::Arc;
use std::time::{Duration, Instant};
use tinybase::sync::{local::LocalBus, SynchronizerOptions};
use tinybase::MergeableStore;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let trace = args.iter().any(|a| a == "--trace");
    let a = MergeableStore::with_clock(Some("bench"), || 1_700_000_000_000.0);
    a.transaction(|s| {
        for i in 0..n {
            s.set_cell(&format!("t{}", i % 10), &format!("r{}", i / 10), &format!("c{}", i % 3), format!("v{i}").as_str()).unwrap();
        }
    });
    let json = a.get_encoded_mergeable_content_json();
    for _ in 0..runs {
        let fresh = MergeableStore::with_clock(Some("fresh"), || 1_700_000_000_000.0);
        let t0 = Instant::now();
        fresh.apply_mergeable_changes_json(&json).unwrap();
        eprintln!("W5 {:.1} ms", t0.elapsed().as_secs_f64() * 1000.0);
    }
    if args.iter().any(|a| a == "--w5") {
        return;
    }
    for _ in 0..runs {
        let t0 = Instant::now();
        let options = || SynchronizerOptions {
            request_timeout: Duration::from_millis(200),
            on_send: trace.then(|| {
                Arc::new(move |to: Option<&str>, _id: Option<&str>, msg, body: &str| {
                    eprintln!("  {:8.1} ms to {:?} {msg:?} {} B", t0.elapsed().as_secs_f64() * 1000.0, to.map(|t| &t[..4]), body.len());
                }) as _
            }),
            ..Default::default()
        };
        let b = MergeableStore::with_clock(Some("b"), || 1_700_000_000_000.0);
        let bus = LocalBus::new();
        let sa = bus.create_synchronizer(&a, Some(options()));
        let sb = bus.create_synchronizer(&b, Some(options()));
        let (ra, rb) = (sa.start_sync_async(None), sb.start_sync_async(None));
        while a.get_mergeable_content_hashes() != b.get_mergeable_content_hashes() {
            std::thread::sleep(Duration::from_micros(100));
        }
        let equal = t0.elapsed().as_secs_f64() * 1000.0;
        let _ = (ra.recv(), rb.recv());
        eprintln!("W6 {:.1} ms (hashes equal at {equal:.1} ms)", t0.elapsed().as_secs_f64() * 1000.0);
        sa.destroy();
        sb.destroy();
    }
}
