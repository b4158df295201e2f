//! A connection's outgoing queue: frames are queued without blocking (relays never wait for a
//! slow client) and written by the connection's writer task; the bytes queued are bounded, and a
//! client over the bound is closed with 1013 `tinybase:15:socket` (PROTOCOL.md 7.3).

use crate::metrics::Metrics;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

/// What the writer task is asked to do.
pub(crate) enum Out {
    Text(Utf8Bytes),
    Close(u16, String),
}

/// The sending side of one connection, shared by the rooms it is in.
pub(crate) struct Outbox {
    tx: mpsc::UnboundedSender<Out>,
    queued: AtomicUsize,
    limit: usize,
    closing: AtomicBool,
    /// The close this side asked for, for the log.
    close: Mutex<Option<(u16, String)>>,
    /// Wakes the reader when the connection is being closed from elsewhere.
    pub(crate) closed: Notify,
    metrics: Arc<Metrics>,
}

impl Outbox {
    /// An outbox and the receiving end its writer task drains.
    pub(crate) fn new(limit: usize, metrics: Arc<Metrics>) -> (Arc<Outbox>, mpsc::UnboundedReceiver<Out>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let outbox = Outbox {
            tx,
            queued: AtomicUsize::new(0),
            limit,
            closing: AtomicBool::new(false),
            close: Mutex::new(None),
            closed: Notify::new(),
            metrics,
        };
        (Arc::new(outbox), rx)
    }

    /// Queues a text frame; false when the connection is closing. Over the queue limit the
    /// connection is closed instead (the frame is dropped).
    pub(crate) fn send(&self, text: Utf8Bytes) -> bool {
        if self.closing.load(Ordering::Relaxed) {
            return false;
        }
        let n = text.len();
        if self.queued.fetch_add(n, Ordering::AcqRel) + n > self.limit {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            self.close(1013, "tinybase:15:socket");
            return false;
        }
        if self.tx.send(Out::Text(text)).is_err() {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Asks the writer to close the connection with `code` and `reason` (the first ask wins).
    pub(crate) fn close(&self, code: u16, reason: &str) {
        if self.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.close.lock() = Some((code, reason.to_string()));
        let _ = self.tx.send(Out::Close(code, reason.to_string()));
        self.closed.notify_one();
    }

    /// Whether a close was asked for.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// The close this side asked for, if any.
    pub(crate) fn close_reason(&self) -> Option<(u16, String)> {
        self.close.lock().clone()
    }

    /// The writer task: writes queued frames, flushing once per burst rather than per frame.
    pub(crate) async fn write(self: Arc<Self>, mut sink: SplitSink<WebSocket, Message>, mut rx: mpsc::UnboundedReceiver<Out>) {
        'outer: while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            while let Some(out) = next.take() {
                match out {
                    Out::Text(text) => {
                        let n = text.len();
                        let sent = sink.feed(Message::Text(text)).await;
                        self.queued.fetch_sub(n, Ordering::AcqRel);
                        if sent.is_err() {
                            break 'outer;
                        }
                        self.metrics.messages_out.fetch_add(1, Ordering::Relaxed);
                        self.metrics.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Out::Close(code, reason) => {
                        let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                        break 'outer;
                    }
                }
                next = rx.try_recv().ok();
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
        // Whatever is still queued is dropped with the channel.
        rx.close();
    }
}
