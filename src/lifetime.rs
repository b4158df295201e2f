//! The release protocol of a shared object whose owners hold counted references while callbacks
//! on other threads may still use it (the C API's store handles): the last release waits for
//! the callbacks in flight, then the owner tears the object down; a last release made from
//! inside one of those callbacks does not wait (it would wait for itself, or for a callback that
//! waits for it) and the teardown falls to the last callback to leave.
//!
//! Built on `crate::prim`, so `scripts/loom.sh` model-checks it (the `loom_` tests below).

use crate::prim::{thread, Condvar, Mutex};

/// What the caller of [`Lifetime::release`] must do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Release {
    /// Other references remain: nothing.
    Kept,
    /// That was the last reference and no callback is in flight any more: tear down now.
    TearDown,
    /// The last reference, released from inside a callback on this thread: the teardown happens
    /// when the last callback in flight leaves ([`Lifetime::leave`] returns true there).
    Deferred,
}

#[derive(Debug)]
struct State {
    /// Owned references.
    refs: usize,
    /// One entry per callback in flight, by thread (a thread may nest callbacks).
    holders: Vec<thread::ThreadId>,
    /// The last reference was released: no callback may enter any more.
    closed: bool,
    /// Closed from inside a callback: the last holder to leave tears down.
    deferred: bool,
}

/// Owned references plus callbacks in flight, for one shared object.
#[derive(Debug)]
pub(crate) struct Lifetime {
    state: Mutex<State>,
    idle: Condvar,
}

impl Lifetime {
    /// One owned reference, no callback in flight.
    pub(crate) fn new() -> Self {
        Lifetime { state: Mutex::new(State { refs: 1, holders: Vec::new(), closed: false, deferred: false }), idle: Condvar::new() }
    }

    /// One more owned reference; false once the last one was released (the object is going).
    pub(crate) fn retain(&self) -> bool {
        let mut st = self.state.lock();
        if st.closed {
            return false;
        }
        st.refs += 1;
        true
    }

    /// Releases one owned reference. The last one closes the object to callbacks, then waits
    /// until the callbacks in flight on other threads have left, unless this thread is inside
    /// one of them (then the teardown is deferred to the last one to leave).
    pub(crate) fn release(&self) -> Release {
        let me = thread::current().id();
        let mut st = self.state.lock();
        if st.closed || st.refs == 0 {
            return Release::Kept;
        }
        st.refs -= 1;
        if st.refs > 0 {
            return Release::Kept;
        }
        st.closed = true;
        if st.holders.contains(&me) {
            st.deferred = true;
            return Release::Deferred;
        }
        while !st.holders.is_empty() {
            self.idle.wait(&mut st);
        }
        Release::TearDown
    }

    /// A callback is about to use the object on this thread; false (do not call) once closed.
    /// Every `true` must be paired with one [`Lifetime::leave`] on the same thread.
    pub(crate) fn enter(&self) -> bool {
        let mut st = self.state.lock();
        if st.closed {
            return false;
        }
        st.holders.push(thread::current().id());
        true
    }

    /// The callback entered on this thread returned. True when it was the last one in flight of
    /// an object whose last reference was released from inside a callback: the caller tears down.
    pub(crate) fn leave(&self) -> bool {
        let me = thread::current().id();
        let mut st = self.state.lock();
        if let Some(i) = st.holders.iter().rposition(|t| *t == me) {
            st.holders.swap_remove(i);
        }
        if !st.holders.is_empty() {
            return false;
        }
        self.idle.notify_all();
        std::mem::take(&mut st.deferred)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn references_count_and_close() {
        let l = Lifetime::new();
        assert!(l.retain());
        assert_eq!(l.release(), Release::Kept);
        assert_eq!(l.release(), Release::TearDown);
        assert!(!l.retain(), "no reference after the last release");
        assert!(!l.enter(), "no callback after the last release");
        assert_eq!(l.release(), Release::Kept, "a stray release does nothing");
    }

    #[test]
    fn release_inside_a_callback_defers_to_the_last_leave() {
        let l = Lifetime::new();
        assert!(l.enter());
        assert!(l.enter()); // nested
        assert_eq!(l.release(), Release::Deferred);
        assert!(!l.leave());
        assert!(l.leave());
    }
}

#[cfg(all(test, loom))]
mod tests {
    use super::*;
    use crate::prim::atomic::{AtomicUsize, Ordering};
    use crate::prim::Arc;

    /// What the model tracks: callbacks between enter and leave, and teardowns.
    struct Obj {
        life: Lifetime,
        running: AtomicUsize,
        torn: AtomicUsize,
    }

    impl Obj {
        fn teardown(&self) {
            assert_eq!(self.running.load(Ordering::SeqCst), 0, "torn down under a running callback");
            self.torn.fetch_add(1, Ordering::SeqCst);
        }
        /// A callback; `release_inside` frees the last reference from inside it.
        fn callback(&self, release_inside: bool) {
            if !self.life.enter() {
                return;
            }
            self.running.fetch_add(1, Ordering::SeqCst);
            assert_eq!(self.torn.load(Ordering::SeqCst), 0, "callback after teardown");
            if release_inside {
                assert_ne!(self.life.release(), Release::TearDown, "must not tear down under itself");
            }
            self.running.fetch_sub(1, Ordering::SeqCst);
            if self.life.leave() {
                self.teardown();
            }
        }
    }

    fn obj() -> Arc<Obj> {
        Arc::new(Obj { life: Lifetime::new(), running: AtomicUsize::new(0), torn: AtomicUsize::new(0) })
    }

    /// A callback thread holds the object while the owner frees the last reference: the free
    /// returns only once the callback has left (or it never entered), and the object is torn
    /// down exactly once, never under the callback. A lost wake-up would deadlock the model.
    #[test]
    fn loom_last_release_waits_for_callback() {
        loom::model(|| {
            let o = obj();
            let cb = o.clone();
            let t = thread::spawn(move || cb.callback(false));
            match o.life.release() {
                Release::TearDown => o.teardown(),
                other => panic!("the owner is in no callback: {other:?}"),
            }
            assert_eq!(o.running.load(Ordering::SeqCst), 0, "free returned while the callback ran");
            t.join().unwrap();
            assert_eq!(o.torn.load(Ordering::SeqCst), 1);
        });
    }

    /// The last reference released from inside a callback while another callback runs on a
    /// second thread: nobody waits (no deadlock) and the last callback to leave tears down.
    #[test]
    fn loom_release_inside_callback_defers() {
        loom::model(|| {
            let o = obj();
            let other = o.clone();
            let t = thread::spawn(move || other.callback(false));
            o.callback(true);
            t.join().unwrap();
            assert_eq!(o.torn.load(Ordering::SeqCst), 1);
        });
    }
}
