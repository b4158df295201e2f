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
