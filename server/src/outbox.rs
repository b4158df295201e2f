//! A connection's outgoing queue: frames are queued without blocking (relays never wait for a
//! slow client) and written by the connection's writer task; the bytes queued are bounded, and a
//! client over the bound is closed with 1013 `tinybase:15:socket` (PROTOCOL.md 7.3).
//!
//! A deque under a mutex rather than a channel: an idle connection's queue allocates nothing
//! (a channel preallocates a block of slots per connection), and the writer takes everything
//! queued in one go, writing a burst with one flush.

use crate::metrics::Metrics;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::Notify;

struct Queue {
    frames: VecDeque<Utf8Bytes>,
    bytes: usize,
    /// The close asked for (the first ask wins); the writer sends it after the frames queued
    /// before it.
    close: Option<(u16, String)>,
    /// The reader has finished: the writer stops.
    done: bool,
}

/// The sending side of one connection, shared by the rooms it is in.
pub(crate) struct Outbox {
    queue: Mutex<Queue>,
    limit: usize,
    /// Wakes the writer.
    ready: Notify,
    /// Wakes the reader when the connection is being closed from elsewhere.
    pub(crate) closed: Notify,
    metrics: Arc<Metrics>,
}

impl Outbox {
    /// An outbox whose queue holds at most `limit` bytes.
    pub(crate) fn new(limit: usize, metrics: Arc<Metrics>) -> Arc<Outbox> {
        Arc::new(Outbox {
            queue: Mutex::new(Queue { frames: VecDeque::new(), bytes: 0, close: None, done: false }),
            limit,
            ready: Notify::new(),
            closed: Notify::new(),
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
            self.ready.notify_one();
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
        self.ready.notify_one();
        self.closed.notify_one();
    }

    /// Stops the writer (the connection is over).
    pub(crate) fn finish(&self) {
        self.queue.lock().done = true;
        self.ready.notify_one();
    }

    /// Whether a close was asked for.
    pub(crate) fn is_closing(&self) -> bool {
        self.queue.lock().close.is_some()
    }

    /// The close this side asked for, if any.
    pub(crate) fn close_reason(&self) -> Option<(u16, String)> {
        self.queue.lock().close.clone()
    }

    /// The writer task: writes what is queued, one flush per burst, then the close if asked.
    /// Once the reader has finished, only a close it asked for still goes out.
    pub(crate) async fn write(self: Arc<Self>, mut sink: SplitSink<WebSocket, Message>) {
        loop {
            self.ready.notified().await;
            let (frames, close, done) = {
                let mut q = self.queue.lock();
                let frames = if q.done { VecDeque::new() } else { std::mem::take(&mut q.frames) };
                (frames, q.close.clone(), q.done)
            };
            // The frames count against the limit until they are written.
            let mut written = 0;
            for text in frames {
                let n = text.len();
                if sink.feed(Message::Text(text)).await.is_err() {
                    return;
                }
                written += n;
                self.metrics.message_out(n);
            }
            if let Some((code, reason)) = close {
                let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                return;
            }
            if done || sink.flush().await.is_err() {
                return;
            }
            self.queue.lock().bytes -= written;
        }
    }
}
