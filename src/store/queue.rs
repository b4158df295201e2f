//! Buffered delivery: listener events queued for a thread of the host's choosing.

use super::listeners::{Callback, ListenerEvent, ListenerId};
use crate::prim::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A queue of listener events that buffered listeners ([`crate::Store::add_buffered_listener`])
/// fill and any thread drains. Shared by `Arc`: the queue lives while its owner or one of its
/// buffered listeners holds it.
pub struct EventQueue {
    state: Mutex<QueueState>,
    ready: Condvar,
    notify: Option<Box<dyn Fn() + Send + Sync>>,
}

struct QueueState {
    events: VecDeque<(ListenerId, ListenerEvent)>,
    closed: bool,
}

impl EventQueue {
    /// A new queue. `notify`, if given, is called whenever the queue goes from empty to
    /// non-empty, on the thread that queued the event, with no lock held.
    pub fn new(notify: Option<Box<dyn Fn() + Send + Sync>>) -> Arc<EventQueue> {
        Arc::new(EventQueue { state: Mutex::new(QueueState { events: VecDeque::new(), closed: false }), ready: Condvar::new(), notify })
    }

    pub(crate) fn push(&self, id: ListenerId, event: ListenerEvent) {
        let was_empty = {
            let mut st = self.state.lock();
            if st.closed {
                return;
            }
            st.events.push_back((id, event));
            self.ready.notify_all();
            st.events.len() == 1
        };
        if let (true, Some(notify)) = (was_empty, &self.notify) {
            notify()
        }
    }

    /// Discards the events of one listener (when it is removed).
    fn purge(&self, id: ListenerId) {
        let gone: Vec<_> = {
            let mut st = self.state.lock();
            let (gone, kept): (Vec<_>, Vec<_>) = st.events.drain(..).partition(|e| e.0 == id);
            st.events = kept.into();
            gone
        };
        drop(gone);
    }

    /// The oldest event (with the id of the listener that queued it), without waiting.
    pub fn poll(&self) -> Option<(ListenerId, ListenerEvent)> {
        self.state.lock().events.pop_front()
    }

    /// The oldest event, waiting up to `timeout` for one; None on timeout or once closed.
    pub fn wait(&self, timeout: Duration) -> Option<(ListenerId, ListenerEvent)> {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock();
        while st.events.is_empty() && !st.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.ready.wait_for(&mut st, left).timed_out() {
                break;
            }
        }
        st.events.pop_front()
    }

    /// The number of events waiting.
    pub fn len(&self) -> usize {
        self.state.lock().events.len()
    }

    /// Whether no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Discards the queued events, stops queueing new ones and wakes every waiter (their
    /// [`EventQueue::wait`] returns None).
    pub fn close(&self) {
        let gone: Vec<_> = {
            let mut st = self.state.lock();
            st.closed = true;
            self.ready.notify_all();
            st.events.drain(..).collect()
        };
        drop(gone);
    }
}

/// A buffered listener's callback: queues its events; its end discards those still queued.
struct Sink {
    queue: Arc<EventQueue>,
    id: ListenerId,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.queue.purge(self.id);
    }
}

pub(crate) fn sink(queue: Arc<EventQueue>, id: ListenerId) -> Callback {
    let sink = Sink { queue, id };
    Arc::new(move |_, event| sink.queue.push(sink.id, event.clone()))
}
