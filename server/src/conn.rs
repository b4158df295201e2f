//! One connection: a reader (this task: reassembly, validation, multiplex controls, relay) and
//! a writer task draining the connection's [`Outbox`].

use crate::auth::{Access, AuthKind, AuthRequest};
use crate::metrics::Refusal;
use crate::outbox::Outbox;
use crate::room::{Member, Room};
use crate::server::{Shared, Slot};
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use axum::http::HeaderMap;
use base64::Engine;
use futures_util::stream::SplitStream;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::net::SocketAddr;
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

/// An accepted upgrade, run once the socket is open.
pub(crate) struct Conn {
    pub(crate) shared: Arc<Shared>,
    pub(crate) remote: SocketAddr,
    /// The request's path (8.1): the room of a legacy client, the base path of a multiplexed one.
    pub(crate) path: String,
    pub(crate) mux: bool,
    pub(crate) access: Access,
    /// The upgrade request's headers and query, kept to authorize multiplexed subscribes.
    pub(crate) headers: Option<HeaderMap>,
    pub(crate) query: Option<String>,
    /// Held while the connection lives (its place under the connection limits).
    pub(crate) _slot: Slot,
}

/// A running connection's reading side.
pub(crate) struct Reader {
    conn: Conn,
    shared: Arc<Shared>,
    conn_id: u64,
    writer: tokio::task::JoinHandle<()>,
    started: Instant,
    id: Arc<str>,
    outbox: Arc<Outbox>,
    /// By channel id ("" for a legacy client's one room).
    rooms: HashMap<Arc<str>, Arc<Room>>,
    hello: bool,
    reassembler: Reassembler,
    messages: u64,
    /// Taken by [`Reader::run`].
    stream: Option<SplitStream<WebSocket>>,
}

impl Conn {
    /// Sets the connection up (its id, its writer task, its room for a legacy client); the
    /// returned reader's [`Reader::run`] reads until the connection ends. Split from the reading
    /// loop so that the long-lived future holds only what reading needs.
    pub(crate) fn start(self, socket: WebSocket) -> Reader {
        let shared = self.shared.clone();
        let (sink, stream) = socket.split();
        let id: Arc<str> = new_client_id().into();
        let outbox = Outbox::new(shared.options.max_message_bytes, shared.metrics.clone());
        let conn_id = shared.register(outbox.clone());
        shared.metrics.connection_opened();
        let writer = tokio::spawn(outbox.clone().write(sink));
        let mut reader = Reader {
            reassembler: Reassembler::new(shared.options.request_timeout),
            conn: self,
            shared,
            conn_id,
            writer,
            started: Instant::now(),
            id,
            outbox,
            rooms: HashMap::new(),
            hello: false,
            messages: 0,
            stream: Some(stream),
        };
        if !reader.conn.mux {
            let path = reader.conn.path.clone();
            if let Err(close) = reader.join("".into(), &path, reader.conn.access) {
                reader.close(close);
            }
        }
        reader
    }
}

impl Reader {
    /// Reads until the connection ends, then leaves its rooms and logs its line.
    pub(crate) async fn run(mut self) {
        let reader = &mut self;
        let Some(mut stream) = reader.stream.take() else { return };
        let mut peer_close = None;
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = reader.outbox.closed.notified(), if deadline.is_none() => {
                    deadline = Some(tokio::time::Instant::now() + CLOSE_GRACE);
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => break,
                message = stream.next() => match message {
                    None => break,
                    Some(Err(e)) => {
                        let too_long = matches!(
                            e.into_inner().downcast::<tungstenite::Error>().map(|e| *e),
                            Ok(tungstenite::Error::Capacity(_))
                        );
                        if !too_long || reader.outbox.is_closing() {
                            break;
                        }
                        reader.close(Close::overload("socket"));
                    }
                    Some(Ok(Message::Text(text))) => reader.on_text(text),
                    Some(Ok(Message::Binary(bytes))) => match Utf8Bytes::try_from(bytes) {
                        Ok(text) => reader.on_text(text),
                        Err(_) => reader.close(Close::malformed()),
                    },
                    Some(Ok(Message::Close(frame))) => {
                        peer_close = Some(frame.map(|f| (f.code, f.reason.to_string())).unwrap_or((1005, String::new())));
                    }
                    Some(Ok(_)) => {}
                },
            }
        }
        drop(stream);
        let shared = reader.shared.clone();
        let rooms: Vec<Arc<Room>> = reader.rooms.drain().map(|(_, r)| r).collect();
        for room in rooms {
            shared.leave(&room, &reader.id);
        }
        reader.outbox.finish();
        if tokio::time::timeout(CLOSE_GRACE, &mut reader.writer).await.is_err() {
            // Stuck on a peer that reads nothing: the socket goes with it.
            reader.writer.abort();
        }
        shared.unregister(reader.conn_id);
        shared.metrics.connection_closed();
        let (code, reason, by) = match (reader.outbox.close_reason(), peer_close) {
            (Some((c, r)), _) => (c, r, "server"),
            (None, Some((c, r))) => (c, r, "client"),
            (None, None) => (1006, String::new(), "lost"),
        };
        shared.log(&format!(
            "connection id={} remote={} path={:?}{} messages={} seconds={:.1} close={code}{}{reason} by={by}",
            reader.id,
            reader.conn.remote,
            reader.conn.path,
            if reader.conn.mux { " multiplexed" } else { "" },
            reader.messages,
            reader.started.elapsed().as_secs_f64(),
            if reason.is_empty() { "" } else { " " },
        ));
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
