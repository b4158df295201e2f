//! Memory per cell (BENCHMARKS.md W3) must not grow: the live heap bytes a MergeableStore holds
//! after W1's writes, counted by this test binary's own allocator. The node sizes behind the
//! figure are pinned by `node_sizes_do_not_grow` in src/store/tree.rs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use tinybase::MergeableStore;

/// Counts live heap bytes of the whole process (this file holds one test, so nothing else runs).
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

/// Bytes per cell held after W1 at 100k cells, just above the measured figure (see
/// docs/benchmarks/profiles/W1-W3.md). Raise it only with a reason written there.
const MAX_BYTES_PER_CELL: f64 = 122.0;

#[test]
fn w1_store_memory_per_cell_stays_bounded() {
    let n = 100_000;
    // BENCHMARKS.md's data: every row holds one cell.
    let ids: Vec<(String, String, String, String)> =
        (0..n).map(|i| (format!("t{}", i % 10), format!("r{}", i / 10), format!("c{}", i % 3), format!("v{i}"))).collect();
    let before = LIVE.load(Ordering::Relaxed);
    let store = MergeableStore::with_clock(Some("bench"), || 1_700_000_000_000.0);
    store.transaction(|s| {
        for (t, r, c, v) in &ids {
            s.set_cell(t, r, c, v.as_str()).unwrap();
        }
    });
    let held = LIVE.load(Ordering::Relaxed) - before;
    let per_cell = held as f64 / n as f64;
    eprintln!("W1 data at {n} cells: {per_cell:.1} live heap bytes per cell");
    assert!(per_cell <= MAX_BYTES_PER_CELL, "{per_cell:.1} bytes per cell, more than {MAX_BYTES_PER_CELL}");
    // The store still holds the data (the figure is not of an emptied store).
    assert_eq!(store.get_cell("t3", "r1", "c1"), Some("v13".into()));
    drop(store);
}
