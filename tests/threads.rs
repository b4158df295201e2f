//! One MergeableStore hammered from 8 threads: writers, readers, listeners and merges.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use tinybase::{Cell, MergeableStore};

const WRITES: usize = 300;

#[test]
fn eight_threads_lose_nothing_and_never_see_half_a_transaction() {
    let store = Arc::new(MergeableStore::new(Some("main")));
    let cell_events = Arc::new(AtomicUsize::new(0));
    let torn = Arc::new(AtomicUsize::new(0));
    {
        let events = cell_events.clone();
        store.add_cell_listener(Some("writers"), None, Some("a"), move |_, _, _, _, _, _| {
            events.fetch_add(1, Ordering::Relaxed);
        });
        // A listener that reads the store and writes to it (a nested transaction) must not deadlock.
        store.add_row_listener(Some("writers"), None, move |s, _, row| {
            let _ = s.get_row("writers", row);
            s.set_cell("listened", row, "seen", true).unwrap();
        });
    }
    let barrier = Arc::new(Barrier::new(8));
    let mut handles = Vec::new();
    // 4 writers: each transaction sets a and b of its row to the same number.
    for w in 0..4 {
        let (store, barrier) = (store.clone(), barrier.clone());
        handles.push(thread::spawn(move || {
            barrier.wait();
            for i in 0..WRITES {
                let row = format!("w{w}");
                store.transaction(|s| {
                    s.set_cell("writers", &row, "a", i as f64).unwrap();
                    s.set_cell("writers", &row, "b", i as f64).unwrap();
                });
                store.set_value(&format!("v{w}-{i}"), i as f64).unwrap();
            }
        }));
    }
    // 2 readers: a and b of a row are always equal.
    for _ in 0..2 {
        let (store, barrier, torn) = (store.clone(), barrier.clone(), torn.clone());
        handles.push(thread::spawn(move || {
            barrier.wait();
            for _ in 0..WRITES {
                for w in 0..4 {
                    let row = store.get_row("writers", &format!("w{w}"));
                    if row.get("a") != row.get("b") {
                        torn.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let _ = store.get_mergeable_content_hashes();
            }
        }));
    }
    // 2 peers: write their own content and merge both ways, repeatedly.
    let peers: Vec<MergeableStore> = (0..2).map(|p| MergeableStore::new(Some(&format!("peer{p}")))).collect();
    for (p, peer) in peers.iter().enumerate() {
        let (store, barrier, peer) = (store.clone(), barrier.clone(), peer.clone());
        handles.push(thread::spawn(move || {
            barrier.wait();
            for i in 0..WRITES / 10 {
                peer.set_cell(&format!("peer{p}"), &format!("r{i}"), "n", i as f64).unwrap();
                peer.merge(&store).unwrap();
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(torn.load(Ordering::Relaxed), 0, "a reader saw half a transaction");
    for w in 0..4 {
        let row = store.get_row("writers", &format!("w{w}"));
        assert_eq!(row.get("a"), Some(&Cell::Number((WRITES - 1) as f64)));
        assert_eq!(row.get("b"), Some(&Cell::Number((WRITES - 1) as f64)));
        for i in 0..WRITES {
            assert_eq!(store.get_value(&format!("v{w}-{i}")), Some(Cell::Number(i as f64)), "lost write v{w}-{i}");
        }
        assert_eq!(store.get_cell("listened", &format!("w{w}"), "seen"), Some(Cell::Bool(true)));
    }
    assert_eq!(cell_events.load(Ordering::Relaxed), 4 * WRITES);
    for peer in &peers {
        peer.merge(&store).unwrap();
    }
    for (p, _) in peers.iter().enumerate() {
        assert_eq!(store.get_row_count(&format!("peer{p}")), WRITES / 10);
    }
    assert_eq!(store.get_mergeable_content_hashes(), store.compute_content_hashes());
    for peer in &peers {
        assert_eq!(peer.get_mergeable_content_hashes(), store.get_mergeable_content_hashes());
        assert_eq!(peer.get_encoded_mergeable_content_json().len(), store.get_encoded_mergeable_content_json().len());
    }
}

#[test]
fn start_and_finish_transaction_hold_other_threads_off() {
    let store = Arc::new(MergeableStore::new(Some("s")));
    store.start_transaction();
    store.set_cell("t", "r", "a", 1.0).unwrap();
    let reader = {
        let store = store.clone();
        thread::spawn(move || store.get_cell("t", "r", "b"))
    };
    thread::sleep(std::time::Duration::from_millis(50));
    store.set_cell("t", "r", "b", 2.0).unwrap();
    store.finish_transaction(false).unwrap();
    assert_eq!(reader.join().unwrap(), Some(Cell::Number(2.0)));
    assert!(store.finish_transaction(false).is_err());
}
