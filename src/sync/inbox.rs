//! The worker's inbox: a FIFO that any thread pushes to without blocking, bounded in count and
//! bytes for peers' payloads, closed once by destroy. Built on `crate::prim` so that
//! `scripts/loom.sh` model-checks it (`loom_inbox_*`).

use crate::prim::{Condvar, Mutex};
use std::collections::VecDeque;
use std::time::Instant;

/// Why a push was refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Closed by destroy: nothing is accepted any more.
    Closed,
    /// The bounded class is at its count or byte limit.
    Full,
}

/// What [`Inbox::pop`] found.
pub(super) enum Next<T> {
    Item(T),
    Timeout,
    /// Closed and drained.
    Closed,
}

struct State<T> {
    /// Items with the bytes they hold against the bound (None: not bounded).
    queue: VecDeque<(T, Option<usize>)>,
    /// Bounded items queued, and their bytes.
    count: usize,
    bytes: usize,
    closed: bool,
}

pub(super) struct Inbox<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    max_count: usize,
    max_bytes: usize,
}

impl<T> Inbox<T> {
    /// An open inbox holding at most `max_count` bounded items and `max_bytes` of them (one
    /// item is accepted whatever its size when no other bounded item is queued, so that a large
    /// payload still gets through).
    pub(super) fn new(max_count: usize, max_bytes: usize) -> Inbox<T> {
        Inbox {
            state: Mutex::new(State { queue: VecDeque::new(), count: 0, bytes: 0, closed: false }),
            ready: Condvar::new(),
            max_count: max_count.max(1),
            max_bytes,
        }
    }

    /// Queues work that is never refused while open (commands, local transactions).
    pub(super) fn push(&self, item: T) -> Result<(), Refusal> {
        self.push_as(item, None)
    }

    /// Queues a payload holding `bytes`, unless the bounds are reached.
    pub(super) fn push_bounded(&self, item: T, bytes: usize) -> Result<(), Refusal> {
        self.push_as(item, Some(bytes))
    }

    fn push_as(&self, item: T, bytes: Option<usize>) -> Result<(), Refusal> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(Refusal::Closed);
        }
        if let Some(b) = bytes {
            if state.count > 0 && (state.count >= self.max_count || state.bytes.saturating_add(b) > self.max_bytes) {
                return Err(Refusal::Full);
            }
            state.count += 1;
            state.bytes += b;
        }
        state.queue.push_back((item, bytes));
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Queues `last` and closes, at once: nothing is accepted after it.
    pub(super) fn close_with(&self, last: T) -> Result<(), Refusal> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(Refusal::Closed);
        }
        state.queue.push_back((last, None));
        state.closed = true;
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// The next item, waiting until `deadline` (for ever when None). Items queued before the
    /// close are still handed out; `Closed` once none is left.
    pub(super) fn pop(&self, deadline: Option<Instant>) -> Next<T> {
        let mut state = self.state.lock();
        loop {
            if let Some((item, bytes)) = state.queue.pop_front() {
                if let Some(b) = bytes {
                    state.count -= 1;
                    state.bytes -= b;
                }
                return Next::Item(item);
            }
            if state.closed {
                return Next::Closed;
            }
            match deadline {
                None => self.ready.wait(&mut state),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Next::Timeout;
                    }
                    if self.ready.wait_for(&mut state, d - now).timed_out() && state.queue.is_empty() {
                        return Next::Timeout;
                    }
                }
            }
        }
    }

    /// Bounded items queued and the bytes they hold.
    pub(super) fn queued(&self) -> (usize, usize) {
        let state = self.state.lock();
        (state.count, state.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_count_and_bytes_but_always_takes_one() {
        let inbox = Inbox::new(3, 10);
        assert_eq!(inbox.push_bounded(1, 100), Ok(())); // alone: taken whatever its size
        assert_eq!(inbox.push_bounded(2, 1), Err(Refusal::Full));
        assert!(matches!(inbox.pop(None), Next::Item(1)));
        assert_eq!(inbox.queued(), (0, 0));
        for i in 0..3 {
            assert_eq!(inbox.push_bounded(i, 3), Ok(()));
        }
        assert_eq!(inbox.push_bounded(9, 1), Err(Refusal::Full)); // count
        assert_eq!(inbox.push(7), Ok(())); // not bounded
        assert_eq!(inbox.queued(), (3, 9));
        assert_eq!(inbox.close_with(8), Ok(()));
        assert_eq!(inbox.push(9), Err(Refusal::Closed));
        assert_eq!(inbox.close_with(9), Err(Refusal::Closed));
        let mut seen = Vec::new();
        while let Next::Item(i) = inbox.pop(None) {
            seen.push(i);
        }
        assert_eq!(seen, vec![0, 1, 2, 7, 8]);
        assert_eq!(inbox.queued(), (0, 0));
        assert!(matches!(inbox.pop(Some(Instant::now())), Next::Closed));
    }

    #[test]
    fn pop_times_out_when_empty() {
        let inbox: Inbox<u8> = Inbox::new(1, 1);
        let start = Instant::now();
        assert!(matches!(inbox.pop(Some(start + std::time::Duration::from_millis(20))), Next::Timeout));
        assert!(start.elapsed() >= std::time::Duration::from_millis(20));
    }

    /// Two pushers (one bounded, one not) race a close while the worker pops: the worker is
    /// never left waiting (no lost wake-up), sees every accepted item exactly once, in order
    /// per pusher, nothing after the close marker, and the accounting returns to zero.
    #[cfg(loom)]
    #[test]
    fn loom_inbox_push_close_drain() {
        use crate::prim::{thread, Arc};
        loom::model(|| {
            let inbox = Arc::new(Inbox::new(1, 8));
            let pushers: Vec<_> = (0..2u8)
                .map(|p| {
                    let inbox = inbox.clone();
                    thread::spawn(move || {
                        let mut accepted = Vec::new();
                        for i in 0..2u8 {
                            let item = p * 10 + i;
                            let r = if p == 0 { inbox.push_bounded(item, 4) } else { inbox.push(item) };
                            if r.is_ok() {
                                accepted.push(item);
                            }
                        }
                        accepted
                    })
                })
                .collect();
            let closer = {
                let inbox = inbox.clone();
                thread::spawn(move || inbox.close_with(99).is_ok())
            };
            let mut seen = Vec::new();
            loop {
                match inbox.pop(None) {
                    Next::Item(i) => seen.push(i),
                    Next::Closed => break,
                    Next::Timeout => unreachable!("no deadline"),
                }
            }
            assert!(closer.join().unwrap());
            let accepted: Vec<Vec<u8>> = pushers.into_iter().map(|t| t.join().unwrap()).collect();
            assert_eq!(seen.last(), Some(&99));
            let mut expected: Vec<u8> = accepted.concat();
            expected.push(99);
            let mut got = seen.clone();
            got.sort_unstable();
            expected.sort_unstable();
            assert_eq!(got, expected);
            for a in &accepted {
                let order: Vec<u8> = seen.iter().copied().filter(|i| a.contains(i)).collect();
                assert_eq!(&order, a);
            }
            assert_eq!(inbox.queued(), (0, 0));
        });
    }
}
