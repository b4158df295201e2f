//! Soundness of transactions and listeners under misuse and across threads: what a caller can
//! do wrong from safe code (or from C through the same paths) is refused or repaired, never
//! undefined behaviour or a store locked forever.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use tinybase::{Cell, Error, Store};

/// Runs `f` on another thread and fails the test if it does not return within 10 s (a hang is a
/// regression, not a stuck suite).
fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("{what}: no answer within 10 s (deadlock)"))
}

#[test]
fn finish_transaction_inside_transaction_is_refused_and_leaves_it_intact() {
    let s = Store::new();
    s.transaction(|s| {
        s.set_value("a", 1).unwrap();
        assert!(matches!(s.finish_transaction(false), Err(Error::InvalidState(_))));
        // Still inside the transaction: the change is not committed yet, and more may be made.
        s.set_value("b", 2).unwrap();
        assert_eq!(s.get_transaction_changes_json(), r#"[{},{"a":1,"b":2},1]"#);
    });
    assert_eq!(s.get_value("a"), Some(Cell::Number(1.0)));
    assert_eq!(s.get_value("b"), Some(Cell::Number(2.0)));
    // The lock is whole: another thread can write and read.
    let t = s.clone();
    within_deadline("write from another thread", move || t.set_value("c", 3).unwrap());
    assert_eq!(s.get_value("c"), Some(Cell::Number(3.0)));
}

#[test]
fn finish_transaction_from_transaction_listeners_is_refused() {
    let s = Store::new();
    let (tx, rx) = mpsc::channel::<bool>();
    let (t1, t2) = (tx.clone(), tx);
    s.add_start_transaction_listener(move |s| t1.send(s.finish_transaction(false).is_err()).unwrap());
    s.add_will_finish_transaction_listener(move |s| t2.send(s.finish_transaction(true).is_err()).unwrap());
    // Through start/finish: neither listener may end the transaction for its owner.
    s.start_transaction();
    s.set_value("a", 1).unwrap();
    s.finish_transaction(false).unwrap();
    // And through transaction().
    s.transaction(|s| s.set_value("b", 2).unwrap());
    let refused: Vec<bool> = rx.try_iter().collect();
    assert_eq!(refused, vec![true, true, true, true]);
    assert_eq!(s.get_values_json(), r#"{"a":1,"b":2}"#);
    // A finish with nothing started is refused too, and the store stays usable elsewhere.
    assert!(matches!(s.finish_transaction(false), Err(Error::InvalidState(_))));
    let t = s.clone();
    within_deadline("write from another thread", move || t.set_value("c", 3).unwrap());
}

#[test]
fn nested_start_transactions_are_counted() {
    let s = Store::new();
    s.start_transaction();
    s.start_transaction();
    s.set_value("a", 1).unwrap();
    s.finish_transaction(false).unwrap();
    // Still in the outer one.
    assert_eq!(s.get_transaction_changes_json(), r#"[{},{"a":1},1]"#);
    s.finish_transaction(false).unwrap();
    assert!(matches!(s.finish_transaction(false), Err(Error::InvalidState(_))));
    // start_transaction on one thread is not finished from another.
    s.start_transaction();
    let t = s.clone();
    let other = within_deadline("finish from another thread", move || t.finish_transaction(false));
    assert!(matches!(other, Err(Error::InvalidState(_))));
    s.finish_transaction(false).unwrap();
}

#[test]
fn a_thread_that_ends_inside_start_transaction_is_rolled_back() {
    let s = Store::new();
    s.set_value("kept", 1).unwrap();
    let t = s.clone();
    thread::spawn(move || {
        t.start_transaction();
        t.set_value("lost", 2).unwrap();
        t.del_value("kept");
        // The thread ends with its transaction open.
    })
    .join()
    .unwrap();
    let t = s.clone();
    within_deadline("write after the thread ended", move || t.set_value("after", 3).unwrap());
    assert_eq!(s.get_values_json(), r#"{"kept":1,"after":3}"#);
    assert_eq!(s.get_abandoned_transaction_count(), 1);
}

#[test]
fn listener_ids_are_never_reused() {
    let s = Store::new();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let old = s.add_values_listener(|_| {});
    assert!(s.del_listener(old));
    let c = calls.clone();
    let new = s.add_values_listener(move |_| {
        c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    assert_ne!(old, new);
    // A stale id (an old handle's) removes nothing.
    assert!(!s.del_listener(old));
    s.set_value("a", 1).unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(s.get_listener_count(), 1);
}

#[test]
fn del_listener_returns_after_runs_on_other_threads_end() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let s = Store::new();
    let running = Arc::new(AtomicUsize::new(0));
    let removed = Arc::new(AtomicBool::new(false));
    let late_calls = Arc::new(AtomicUsize::new(0));
    let (entered_tx, entered_rx) = mpsc::channel();
    let entered_tx = std::sync::Mutex::new(entered_tx);
    let (r, rm, late) = (running.clone(), removed.clone(), late_calls.clone());
    let id = s.add_values_listener(move |_| {
        if rm.load(Ordering::SeqCst) {
            late.fetch_add(1, Ordering::SeqCst);
        }
        r.fetch_add(1, Ordering::SeqCst);
        let _ = entered_tx.lock().unwrap().send(());
        thread::sleep(Duration::from_millis(100));
        r.fetch_sub(1, Ordering::SeqCst);
    });
    let t = s.clone();
    let writer = thread::spawn(move || {
        for i in 0..5 {
            t.set_value("v", i).unwrap();
        }
    });
    entered_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(s.del_listener(id));
    // Synchronous: no run of it is in progress any more, and none starts later.
    assert_eq!(running.load(Ordering::SeqCst), 0);
    removed.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert_eq!(late_calls.load(Ordering::SeqCst), 0);
}

#[test]
fn listeners_removing_each_other_on_two_threads_do_not_deadlock() {
    use std::sync::{Arc, Barrier, OnceLock};
    within_deadline("mutual removal", || {
        let s = Store::new();
        let barrier = Arc::new(Barrier::new(2));
        let ids: Arc<[OnceLock<u64>; 2]> = Arc::new([OnceLock::new(), OnceLock::new()]);
        for (me, other) in [(0, 1), (1, 0)] {
            let (b, ids2) = (barrier.clone(), ids.clone());
            let id = s.add_value_listener(Some(["x", "y"][me]), move |s, _, _, _| {
                b.wait();
                s.del_listener(*ids2[other].get().unwrap());
            });
            ids[me].set(id).unwrap();
        }
        let (a, b) = (s.clone(), s.clone());
        let ta = thread::spawn(move || a.set_value("x", 1).unwrap());
        let tb = thread::spawn(move || b.set_value("y", 1).unwrap());
        ta.join().unwrap();
        tb.join().unwrap();
        assert_eq!(s.get_listener_count(), 0);
    });
}

#[test]
fn listener_writes_nest_to_a_bound_then_fail_without_a_change() {
    use std::sync::{Arc, Mutex};
    // On a small stack (a mobile thread's): the bound must hold long before it overflows.
    let result = thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(|| {
            let s = Store::new();
            let errors = Arc::new(Mutex::new(Vec::new()));
            let e = errors.clone();
            s.add_value_listener(Some("n"), move |s, _, new, _| {
                if let Some(Cell::Number(n)) = new {
                    if let Err(err) = s.set_value("n", n + 1.0) {
                        e.lock().unwrap().push(err);
                    }
                }
            });
            s.set_value("n", 0).unwrap();
            let errors = errors.lock().unwrap().clone();
            (s.get_value("n"), errors)
        })
        .unwrap()
        .join()
        .unwrap();
    let (n, errors) = result;
    // The outer write, then one nested write per level below the bound.
    assert_eq!(n, Some(Cell::Number((tinybase::store::MAX_LISTENER_NESTING - 1) as f64)));
    assert_eq!(errors.len(), 1);
    assert!(matches!(&errors[0], Error::InvalidState(m) if m.contains("nest")), "{errors:?}");
}

#[test]
fn buffered_listeners_queue_events_and_removal_discards_them() {
    use tinybase::{EventQueue, ListenerKind};
    let notified = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = notified.clone();
    let q = EventQueue::new(Some(Box::new(move || {
        n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    })));
    let s = Store::new();
    let a = s.add_buffered_listener(&q, ListenerKind::Value, &[Some("a")]).unwrap();
    let b = s.add_buffered_listener(&q, ListenerKind::Value, &[None]).unwrap();
    assert!(s.add_buffered_listener(&q, ListenerKind::Value, &[]).is_err());
    s.set_value("a", 1).unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!(notified.load(std::sync::atomic::Ordering::SeqCst), 1);
    let (id, e) = q.poll().unwrap();
    assert_eq!((id, e.ids.clone(), e.new_cell.clone()), (a, vec!["a".to_string()], Some(Cell::Number(1.0))));
    s.set_value("b", 2).unwrap();
    assert_eq!(q.len(), 2);
    assert!(s.del_listener(b));
    // b's queued events went with it.
    assert_eq!(q.len(), 0);
    let t = q.clone();
    let waiter = thread::spawn(move || t.wait(Duration::from_secs(10)));
    thread::sleep(Duration::from_millis(50));
    q.close();
    assert!(waiter.join().unwrap().is_none());
}
