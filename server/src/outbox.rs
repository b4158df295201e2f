//! A connection's outgoing queue: frames are queued without blocking (relays never wait for a
//! slow client) and written by the connection's task; the bytes queued are bounded, and a
//! client over the bound is closed with 1013 `tinybase:15:socket` (PROTOCOL.md 7.3).
//!
//! A deque under a mutex rather than a channel: an idle connection's queue allocates nothing
//! (a channel preallocates a block of slots per connection), and the connection takes everything
//! queued in one go, writing a burst with one flush. The connection's one task both reads and
//! writes ([`Sending::poll`] beside the read), so a connection costs one task, and its socket is
//! not split (no shared lock around it).

use crate::metrics::Metrics;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::task::AtomicWaker;
use futures_util::Sink;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

struct Queue {
    frames: VecDeque<Utf8Bytes>,
    bytes: usize,
    /// The close asked for (the first ask wins); the writer sends it after the frames queued
    /// before it.
    close: Option<(u16, String)>,
    /// The connection is over: nothing more is written.
    done: bool,
}

/// The sending side of one connection, shared by the rooms it is in.
pub(crate) struct Outbox {
    queue: Mutex<Queue>,
    limit: usize,
    /// Wakes the connection's task when there is something to write or a close to make.
    waker: AtomicWaker,
    metrics: Arc<Metrics>,
}

impl Outbox {
    /// An outbox whose queue holds at most `limit` bytes.
    pub(crate) fn new(limit: usize, metrics: Arc<Metrics>) -> Arc<Outbox> {
        Arc::new(Outbox {
            queue: Mutex::new(Queue { frames: VecDeque::new(), bytes: 0, close: None, done: false }),
            limit,
            waker: AtomicWaker::new(),
            metrics,
        })
    }

    /// Queues a text frame; false when the connection is closing. Over the queue limit the
    /// connection is closed instead (the frame is dropped).
    pub(crate) fn send(&self, text: Utf8Bytes) -> bool {
        let mut q = self.queue.lock();
        if q.close.is_some() {
            return false;
        }
        if q.bytes + text.len() > self.limit {
            drop(q);
            self.close(1013, "tinybase:15:socket");
            return false;
        }
        q.bytes += text.len();
        let wake = q.frames.is_empty();
        q.frames.push_back(text);
        drop(q);
        if wake {
            self.waker.wake();
        }
        true
    }

    /// Asks the writer to close the connection with `code` and `reason` once what is queued
    /// has been written (the first ask wins).
    pub(crate) fn close(&self, code: u16, reason: &str) {
        {
            let mut q = self.queue.lock();
            if q.close.is_some() {
                return;
            }
            q.close = Some((code, reason.to_string()));
        }
        self.waker.wake();
    }

    /// Drops what is queued and queues nothing more (the connection is over); a close asked
    /// for still goes out.
    pub(crate) fn finish(&self) {
        let mut q = self.queue.lock();
        q.done = true;
        q.frames = VecDeque::new();
    }

    /// Whether a close was asked for.
    pub(crate) fn is_closing(&self) -> bool {
        self.queue.lock().close.is_some()
    }

    /// The close this side asked for, if any.
    pub(crate) fn close_reason(&self) -> Option<(u16, String)> {
        self.queue.lock().close.clone()
    }
}

/// How far the writing side has got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Written {
    #[default]
    Open,
    /// The close frame went out, or the socket failed: nothing more is written.
    Over,
}

/// The writing side of a connection: what was taken from its [`Outbox`] and not yet flushed.
#[derive(Default)]
pub(crate) struct Sending {
    frames: VecDeque<Utf8Bytes>,
    /// Bytes handed to the socket since the last flush (they count against the outbox's limit
    /// until flushed).
    unflushed: usize,
    flush: bool,
    close: Option<CloseFrame>,
    closing: bool,
    state: Written,
}

impl Sending {
    /// Writes what the outbox holds: each burst with one flush, then the close if one was asked
    /// for. Ready once the writing side is over (the close went out, or the socket failed);
    /// Pending otherwise, with the task woken when there is more to write.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>, outbox: &Outbox, socket: &mut WebSocket) -> Poll<()> {
        if self.state == Written::Over {
            return Poll::Ready(());
        }
        match self.drive(cx, outbox, socket) {
            Poll::Ready(()) => {
                self.state = Written::Over;
                self.frames = VecDeque::new();
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn drive(&mut self, cx: &mut Context<'_>, outbox: &Outbox, socket: &mut WebSocket) -> Poll<()> {
        /// Goes on when the socket is ready; a failed socket ends the writing side.
        macro_rules! ready_ok {
            ($poll:expr) => {
                match $poll {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Ready(Ok(())) => {}
                }
            };
        }
        let mut socket = Pin::new(socket);
        loop {
            if !self.frames.is_empty() || self.close.is_some() {
                ready_ok!(socket.as_mut().poll_ready(cx));
                let message = match self.frames.pop_front() {
                    Some(text) => {
                        let n = text.len();
                        self.unflushed += n;
                        outbox.metrics.message_out(n);
                        Message::Text(text)
                    }
                    None => {
                        self.closing = true;
                        Message::Close(self.close.take())
                    }
                };
                ready_ok!(Poll::Ready(socket.as_mut().start_send(message)));
                self.flush = true;
                continue;
            }
            if self.flush {
                ready_ok!(socket.as_mut().poll_flush(cx));
                self.flush = false;
                if self.closing {
                    return Poll::Ready(());
                }
                outbox.queue.lock().bytes -= std::mem::take(&mut self.unflushed);
            }
            // Registered before looking, so a frame queued meanwhile wakes the task.
            outbox.waker.register(cx.waker());
            let mut q = outbox.queue.lock();
            if q.done && q.close.is_none() {
                return Poll::Ready(());
            }
            self.frames = std::mem::take(&mut q.frames);
            if let Some((code, reason)) = &q.close {
                self.close = Some(CloseFrame { code: *code, reason: reason.clone().into() });
            }
            if self.frames.is_empty() && self.close.is_none() {
                return Poll::Pending;
            }
        }
    }
}
