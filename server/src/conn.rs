//! One connection: a reader (this task: reassembly, validation, multiplex controls, relay) and
//! a writer task draining the connection's [`Outbox`].

use crate::auth::{Access, AuthKind, AuthRequest};
use crate::metrics::Refusal;
use crate::outbox::{Outbox, Sending};
use crate::room::{Member, Room};
use crate::server::{Shared, Slot};
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use axum::http::HeaderMap;
use base64::Engine;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tinybase::sync::ws::codec::{self, Close, Control, MuxFrame, Reassembler};

/// How long a connection being closed may take to finish the closing handshake.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A fresh client id: 16 bytes from the OS's CSPRNG in base64 (24 characters, the form of
/// TinyBase's ids, which are the client-chosen `Sec-WebSocket-Key`).
pub(crate) fn new_client_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back on the library's unpredictable (not cryptographic) bytes.
        bytes.copy_from_slice(&tinybase_random_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Unpredictable (not cryptographic) bytes from the process's random hasher keys, the clock and
/// a counter: only when the OS has no randomness to give.
fn tinybase_random_bytes() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut out = [0u8; 16];
    for half in out.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// An accepted upgrade request.
pub(crate) struct Conn {
    pub(crate) shared: Arc<Shared>,
    pub(crate) remote: SocketAddr,
    /// The request's path (8.1): the room of a legacy client, the base path of a multiplexed one.
    pub(crate) path: Box<str>,
    pub(crate) mux: bool,
    pub(crate) access: Access,
    /// The upgrade request's headers and query, kept to authorize multiplexed subscribes.
    pub(crate) headers: Option<Box<HeaderMap>>,
    pub(crate) query: Option<Box<str>>,
    /// Its place under the connection limits, held until the connection is over (released
    /// before the connections gauge goes down, so the gauge never shows a slot still taken
    /// as free).
    pub(crate) slot: Option<Slot>,
}

/// A connection's reading side, and what it holds in the server (its rooms, its outbox).
pub(crate) struct Reader {
    conn: Conn,
    conn_id: u64,
    started: Instant,
    id: Arc<str>,
    outbox: Arc<Outbox>,
    /// By channel id ("" for a legacy client's one room).
    rooms: HashMap<Arc<str>, Arc<Room>>,
    hello: bool,
    reassembler: Reassembler,
    messages: u64,
}

impl Conn {
    /// Sets the connection up before the upgrade's response goes out: its id, its outbox
    /// (frames wait there until the socket is open), and for a legacy client its room, so it is
    /// a member by the time it can see the socket open and misses no broadcast sent after that
    /// (as TinyBase's server). Err: the room could not be made (too many rooms).
    pub(crate) fn start(self) -> Result<Reader, Close> {
        let shared = self.shared.clone();
        let outbox = Outbox::new(shared.options.max_message_bytes, shared.metrics.clone());
        let mut reader = Reader {
            reassembler: Reassembler::new(shared.options.request_timeout),
            conn: self,
            conn_id: 0,
            started: Instant::now(),
            id: new_client_id().into(),
            outbox,
            rooms: HashMap::new(),
            hello: false,
            messages: 0,
        };
        if !reader.conn.mux {
            let path = reader.conn.path.clone();
            if let Err(close) = reader.join("".into(), &path, reader.conn.access) {
                // Refused before it counted as a connection: only its slot is given back.
                drop(reader.conn.slot.take());
                return Err(close);
            }
        }
        reader.conn_id = shared.register(reader.outbox.clone());
        shared.metrics.connection_opened();
        Ok(reader)
    }
}

impl Drop for Reader {
    /// Whatever way the connection ends (an upgrade that never completed included), it leaves
    /// its rooms and frees its slot.
    fn drop(&mut self) {
        self.leave_all();
        self.release();
    }
}

/// A running connection: one task reads and writes (see [`Sending`]) until the connection ends,
/// then leaves its rooms and logs its line.
///
/// Written by hand rather than as an `async fn`: a compiler-made future keeps room for every
/// argument and every local across its awaits (the socket twice, timers, the reader's fields),
/// which took some 1.6 KB per idle connection; this one holds each thing once, and the reader
/// (the state reading needs) behind a box moved in whole.
pub(crate) struct Running {
    reader: Box<Reader>,
    /// Taken (dropped) when the connection is over, before its slot is released.
    socket: Option<WebSocket>,
    sending: Sending,
    peer_close: Option<(u16, String)>,
    /// While a close is asked for: when reading gives up on the peer. Then, once reading is
    /// over: when writing the close does.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    reading: bool,
}

impl Reader {
    /// The connection's task, once the socket is open.
    pub(crate) fn run(self: Box<Self>, socket: WebSocket) -> Running {
        Running { reader: self, socket: Some(socket), sending: Sending::default(), peer_close: None, deadline: None, reading: true }
    }

    /// The connection's line in the log.
    fn log_end(&self, peer_close: Option<(u16, String)>) {
        let (code, reason, by) = match (self.outbox.close_reason(), peer_close) {
            (Some((c, r)), _) => (c, r, "server"),
            (None, Some((c, r))) => (c, r, "client"),
            (None, None) => (1006, String::new(), "lost"),
        };
        self.conn.shared.log(&format!(
            "connection id={} remote={} path={:?}{} messages={} seconds={:.1} close={code}{}{reason} by={by}",
            self.id,
            self.conn.remote,
            self.conn.path,
            if self.conn.mux { " multiplexed" } else { "" },
            self.messages,
            self.started.elapsed().as_secs_f64(),
            if reason.is_empty() { "" } else { " " },
        ));
    }

    /// Leaves every room; nothing more is queued for it (a close asked for still goes out).
    fn leave_all(&mut self) {
        let shared = self.conn.shared.clone();
        for (_, room) in self.rooms.drain() {
            shared.leave(&room, &self.id);
        }
        self.outbox.finish();
    }

    /// Unregisters the connection and frees its slot, then counts it closed (once).
    fn release(&mut self) {
        if let Some(slot) = self.conn.slot.take() {
            self.conn.shared.unregister(self.conn_id);
            drop(slot);
            self.conn.shared.metrics.connection_closed();
        }
    }

    fn close(&mut self, close: Close) {
        self.outbox.close(close.code, &close.reason);
    }

    fn join(&mut self, channel: Arc<str>, path: &str, access: Access) -> Result<(), Close> {
        let member = Member {
            outbox: self.outbox.clone(),
            channel: (!channel.is_empty()).then(|| channel.clone()),
            read_only: access == Access::ReadOnly,
        };
        let room = self.conn.shared.join(path, &self.id, member)?;
        self.rooms.insert(channel, room);
        Ok(())
    }

    fn on_text(&mut self, text: Utf8Bytes) {
        if self.outbox.is_closing() {
            return;
        }
        self.messages += 1;
        self.conn.shared.metrics.message_in(text.len());
        if text.len() > self.conn.shared.options.max_message_bytes {
            return self.close(Close::overload("socket"));
        }
        let result = if self.conn.mux { self.on_mux(&text) } else { self.on_payload("", &text) };
        if let Err(close) = result {
            self.conn.shared.metrics.error();
            self.conn.shared.log(&format!("connection id={} remote={}: closing {close}", self.id, self.conn.remote));
            self.close(close);
        }
    }

    fn on_payload(&mut self, channel: &str, frame: &str) -> Result<(), Close> {
        let Some(room) = self.rooms.get(channel) else { return Err(Close::malformed()) };
        match self.reassembler.push_channel(channel, frame, Instant::now())? {
            Some(payload) => room.relay(&self.id, payload),
            None => Ok(()),
        }
    }

    fn on_mux(&mut self, text: &Utf8Bytes) -> Result<(), Close> {
        match codec::parse_mux(text)? {
            MuxFrame::Data { channel_id, payload } => {
                if !self.hello {
                    return Err(Close::malformed());
                }
                self.on_payload(channel_id, payload)
            }
            MuxFrame::Control { control: Control::Hello, .. } => {
                self.hello = true;
                self.outbox.send(text.clone());
                Ok(())
            }
            // Before Hello, controls are ignored (7.4).
            MuxFrame::Control { .. } if !self.hello => Ok(()),
            MuxFrame::Control { control: Control::Subscribe, body, .. } => {
                let channel = body.as_str().unwrap_or_default();
                codec::check_channel_id(channel)?;
                if !self.rooms.contains_key(channel) {
                    if self.rooms.len() >= codec::MAX_CHANNELS {
                        return Err(Close::overload("channels"));
                    }
                    let path = codec::room_path(&self.conn.path, channel);
                    let access = self.authorize(&path);
                    // A channel the client may not open, or one more room than allowed, is not
                    // acknowledged: its subscribe times out at the client (`tinybase:4`) while
                    // the socket's other channels go on.
                    let refusal = if access == Access::Refuse {
                        Some(Refusal::Auth)
                    } else if !self.conn.shared.room_available(&path) {
                        Some(Refusal::MaxRooms)
                    } else {
                        None
                    };
                    if let Some(refusal) = refusal {
                        self.conn.shared.metrics.refuse(refusal);
                        self.conn.shared.log(&format!(
                            "connection id={} remote={}: subscribe to {path:?} refused ({})",
                            self.id,
                            self.conn.remote,
                            refusal.label()
                        ));
                        return Ok(());
                    }
                    if self.join(channel.into(), &path, access).is_err() {
                        self.conn.shared.metrics.refuse(Refusal::MaxRooms);
                        return Ok(());
                    }
                }
                self.outbox.send(text.clone());
                Ok(())
            }
            MuxFrame::Control { control: Control::Unsubscribe, body, .. } => {
                let channel = body.as_str().unwrap_or_default();
                if let Some(room) = self.rooms.remove(channel) {
                    self.reassembler.drop_channel(channel);
                    self.conn.shared.leave(&room, &self.id);
                }
                Ok(())
            }
        }
    }

    /// The access to a multiplexed channel's room: the connection's, narrowed by the auth hook.
    fn authorize(&self, path: &str) -> Access {
        let (Some(auth), Some(headers)) = (&self.conn.shared.options.auth, &self.conn.headers) else {
            return self.conn.access;
        };
        let access = auth(&AuthRequest { kind: AuthKind::Subscribe, path, headers, query: self.conn.query.as_deref(), remote: self.conn.remote });
        match (self.conn.access, access) {
            (_, Access::Refuse) => Access::Refuse,
            (Access::ReadOnly, _) | (_, Access::ReadOnly) => Access::ReadOnly,
            _ => Access::ReadWrite,
        }
    }
}

impl Future for Running {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        while this.reading {
            let Some(socket) = this.socket.as_mut() else { return Poll::Ready(()) };
            // Pending until there is something to write; its close, once sent, changes nothing
            // here (the peer's answering close, or the deadline, ends the reading).
            let _ = this.sending.poll(cx, &this.reader.outbox, socket);
            if this.deadline.is_none() && this.reader.outbox.is_closing() {
                this.deadline = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
            }
            if this.deadline.as_mut().is_some_and(|d| d.as_mut().poll(cx).is_ready()) {
                this.end();
                break;
            }
            let message = match socket.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.end();
                    break;
                }
                Poll::Ready(Some(message)) => message,
            };
            let reader = &mut this.reader;
            match message {
                Err(e) => {
                    let too_long = matches!(
                        e.into_inner().downcast::<tungstenite::Error>().map(|e| *e),
                        Ok(tungstenite::Error::Capacity(_))
                    );
                    if !too_long || reader.outbox.is_closing() {
                        this.end();
                        break;
                    }
                    reader.close(Close::overload("socket"));
                }
                Ok(Message::Text(text)) => reader.on_text(text),
                Ok(Message::Binary(bytes)) => match Utf8Bytes::try_from(bytes) {
                    Ok(text) => reader.on_text(text),
                    Err(_) => reader.close(Close::malformed()),
                },
                Ok(Message::Close(frame)) => {
                    this.peer_close = Some(frame.map(|f| (f.code, f.reason.to_string())).unwrap_or((1005, String::new())));
                }
                Ok(_) => {}
            }
        }
        let Some(socket) = this.socket.as_mut() else { return Poll::Ready(()) };
        // A close asked for and not yet written goes out, unless the peer reads nothing.
        let written = this.sending.poll(cx, &this.reader.outbox, socket).is_ready();
        if !written && !this.deadline.as_mut().is_some_and(|d| d.as_mut().poll(cx).is_ready()) {
            return Poll::Pending;
        }
        this.socket = None;
        this.reader.release();
        this.reader.log_end(this.peer_close.take());
        Poll::Ready(())
    }
}

impl Running {
    /// Reading is over: the connection leaves its rooms, and what is left to write (a close)
    /// has [`CLOSE_GRACE`] to go out.
    fn end(&mut self) {
        self.reading = false;
        self.reader.leave_all();
        self.deadline = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
    }
}
