//! Memory per cell (BENCHMARKS.md W3) must not grow: the live heap bytes a MergeableStore holds
//! after W1's writes, counted by this test binary's own allocator. The node sizes behind the
//! figure are pinned by `node_sizes_do_not_grow` in src/store/tree.rs.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{live_bytes, Counting};
use tinybase::MergeableStore;

// Counts live heap bytes of the whole process (this file holds one test, so nothing else runs).
#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes per cell held after W1 at 100k cells, just above the measured figure (see
/// docs/benchmarks/profiles/W1-W3.md). Raise it only with a reason written there.
const MAX_BYTES_PER_CELL: f64 = 122.0;

#[test]
fn w1_store_memory_per_cell_stays_bounded() {
    let n = 100_000;
    // BENCHMARKS.md's data: every row holds one cell.
    let ids: Vec<(String, String, String, String)> =
        (0..n).map(|i| (format!("t{}", i % 10), format!("r{}", i / 10), format!("c{}", i % 3), format!("v{i}"))).collect();
    let before = live_bytes();
    let store = MergeableStore::with_clock(Some("bench"), || 1_700_000_000_000.0);
    store.transaction(|s| {
        for (t, r, c, v) in &ids {
            s.set_cell(t, r, c, v.as_str()).unwrap();
        }
    });
    let held = live_bytes() - before;
    let per_cell = held as f64 / n as f64;
    eprintln!("W1 data at {n} cells: {per_cell:.1} live heap bytes per cell");
    assert!(per_cell <= MAX_BYTES_PER_CELL, "{per_cell:.1} bytes per cell, more than {MAX_BYTES_PER_CELL}");
    // The store still holds the data (the figure is not of an emptied store).
    assert_eq!(store.get_cell("t3", "r1", "c1"), Some("v13".into()));
    drop(store);
}
