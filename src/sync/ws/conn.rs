//! One WebSocket connection and its I/O thread, shared by the synchronizers ("channels") that use
//! it: one legacy channel, or any number of multiplexed ones (7.4).
//!
//! Threads: each synchronizer's worker queues outgoing frames here (`send`, never blocking on
//! the network) and wakes the I/O thread through a pipe; the I/O thread connects (blocking,
//! bounded), then runs a poll(2) loop on the nonblocking socket and the pipe: write what is
//! queued, read until the socket would block, ping, expire, sleep until the next event. What
//! arrives goes to each synchronizer's [`Inlet`] (never blocks, never keeps a synchronizer
//! alive), so a destroy can always join this thread.

use super::codec::{self, Close, Control, MuxFrame, Reassembler, MAX_PAYLOAD_BYTES, MAX_QUEUE};
use super::connect::{tcp_of, Socket, Target};
use super::poll::Waker;
use crate::sync::{ConnectionState, Inlet, TransportEvent};
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message as WsMessage;

/// How long a closing handshake (ours: destroy, malformed traffic, overflow) may take before
/// the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Housekeeping period (incomplete fragments, expired queued payloads).
const TICK: Duration = Duration::from_millis(250);

/// Connection settings shared by every channel of a connection.
#[derive(Clone, Debug)]
pub(super) struct Settings {
    pub(super) fragment_size: Option<usize>,
    pub(super) reconnect: bool,
    pub(super) reconnect_min: Duration,
    pub(super) reconnect_max: Duration,
    pub(super) ping_interval: Duration,
    pub(super) connect_timeout: Duration,
}

/// A payload queued for the socket: its frames (fragments, each in the multiplex envelope when
/// multiplexed) and, while the channel is not open, when it expires.
struct Out {
    frames: Vec<String>,
    bytes: usize,
    deadline: Option<Instant>,
}

struct Channel {
    /// None: the legacy channel.
    id: Option<String>,
    inlet: Option<Inlet>,
    /// The synchronizer's request timeout: queued payloads expire after it, fragments too, and
    /// a multiplex control echo is awaited that long.
    timeout: Duration,
    /// Messages flow (legacy: the socket is open; multiplexed: the Subscribe was echoed).
    ready: bool,
    /// A connection attempt (or subscription) has come to an end since the channel joined:
    /// what a new synchronizer waits for.
    settled: bool,
    queue: VecDeque<Out>,
}

impl Channel {
    fn event(&self, event: TransportEvent) {
        if let Some(inlet) = &self.inlet {
            inlet.transport_event(event);
        }
    }
}

struct State {
    /// The socket's state (a multiplexed channel is Connecting until subscribed).
    connection: ConnectionState,
    channels: Vec<Channel>,
    /// Payloads and bytes in every channel's queue (bounded like TinyBase's client).
    queued_payloads: usize,
    queued_bytes: usize,
    /// Multiplex control frames to send before anything else (Unsubscribe).
    control: Vec<String>,
    /// Channels that left while the socket was open: late data for them is not an error.
    left: HashSet<String>,
    /// The queue overflowed while the socket was open (backpressure): close 1013.
    overflow: bool,
    /// The last channel left: close the socket and end the I/O thread.
    shutdown: bool,
    /// A channel joined while waiting to reconnect: try now.
    retry_now: bool,
    /// Reconnect is off and the connection ended: nothing is queued any more.
    ended: bool,
}

impl State {
    fn channel(&self, id: Option<&str>) -> Option<&Channel> {
        self.channels.iter().find(|c| c.id.as_deref() == id)
    }

    fn channel_mut(&mut self, id: Option<&str>) -> Option<&mut Channel> {
        self.channels.iter_mut().find(|c| c.id.as_deref() == id)
    }

    fn unqueue(&mut self, out: &Out) {
        self.queued_payloads -= 1;
        self.queued_bytes -= out.bytes;
    }

    /// Drops queued payloads whose time is up (never sent: their requests time out anyway).
    fn expire(&mut self, now: Instant) {
        let (mut payloads, mut bytes) = (0, 0);
        for c in &mut self.channels {
            c.queue.retain(|o| {
                let keep = o.deadline.is_none_or(|d| d > now);
                if !keep {
                    payloads += 1;
                    bytes += o.bytes;
                }
                keep
            });
        }
        self.queued_payloads -= payloads;
        self.queued_bytes -= bytes;
    }

    fn events(&self, event: &TransportEvent) {
        for c in &self.channels {
            c.event(event.clone());
        }
    }
}

/// A connection shared by its channels.
pub(super) struct Conn {
    target: Target,
    settings: Settings,
    state: Mutex<State>,
    /// Signalled when a channel settles and when a channel joins or the last leaves.
    changed: Condvar,
    waker: Waker,
    /// Tells a connect in progress to give up (destroy).
    stop: AtomicBool,
    /// The I/O thread; started and joined under this lock only.
    io: Mutex<Option<JoinHandle<()>>>,
}

fn closed(code: u16, reason: impl Into<String>) -> ConnectionState {
    ConnectionState::Closed { code, reason: reason.into() }
}

/// The message number of a payload `[requestId, n, body]` that this library wrote (request ids
/// from its own alphabet, or null), without parsing the body.
fn message_number(payload: &str) -> Option<u8> {
    let rest = payload.strip_prefix('[')?;
    let rest = if let Some(r) = rest.strip_prefix("null,") {
        r
    } else {
        let r = rest.strip_prefix('"')?;
        let end = r.find('"')?;
        r[end + 1..].strip_prefix(',')?
    };
    let digits = rest.split(',').next()?;
    digits.parse().ok()
}

impl Conn {
    /// A connection that opens when its first channel joins.
    pub(super) fn new(target: Target, settings: Settings) -> std::io::Result<Arc<Conn>> {
        Ok(Arc::new(Conn {
            target,
            settings,
            state: Mutex::new(State {
                connection: ConnectionState::Connecting,
                channels: Vec::new(),
                queued_payloads: 0,
                queued_bytes: 0,
                control: Vec::new(),
                left: HashSet::new(),
                overflow: false,
                shutdown: false,
                retry_now: false,
                ended: false,
            }),
            changed: Condvar::new(),
            waker: Waker::new()?,
            stop: AtomicBool::new(false),
            io: Mutex::new(None),
        }))
    }

    pub(super) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The shortest request timeout of the channels: how long the Hello echo is awaited
    /// (TinyBase's rule) and incomplete fragmented messages are kept (TinyBase: the
    /// synchronizer's; here one reassembler serves the whole socket).
    fn shortest_timeout(&self) -> Duration {
        self.state.lock().channels.iter().map(|c| c.timeout).min().unwrap_or(Duration::from_secs(1))
    }

    /// Reserves a channel (None: legacy) before its synchronizer exists.
    /// Err: TinyBase's error for an invalid (6) or duplicate (7) channel id, or too many (15).
    pub(super) fn reserve(&self, id: Option<&str>, timeout: Duration) -> Result<(), String> {
        let mut st = self.state.lock();
        if let Some(id) = id {
            if let Err(close) = codec::check_channel_id(id) {
                return Err(if close.code == 1013 { close.reason } else { format!("tinybase:6:{id}") });
            }
            if st.channels.len() >= codec::MAX_CHANNELS {
                return Err("tinybase:15:channels".into());
            }
        }
        if st.channel(id).is_some() {
            return Err(format!("tinybase:7:{}", id.unwrap_or("")));
        }
        st.channels.push(Channel { id: id.map(str::to_string), inlet: None, timeout, ready: false, settled: false, queue: VecDeque::new() });
        if let Some(id) = id {
            st.left.remove(id);
        }
        Ok(())
    }

    /// Gives a reserved channel its synchronizer's inlet and makes sure the I/O thread runs
    /// (it subscribes the channel when multiplexed).
    pub(super) fn attach(self: &Arc<Self>, id: Option<&str>, inlet: Inlet) {
        let mut io = self.io.lock();
        {
            let mut st = self.state.lock();
            if let Some(c) = st.channel_mut(id) {
                c.inlet = Some(inlet);
            }
            st.shutdown = false;
            st.retry_now = true;
            if io.as_ref().is_some_and(JoinHandle::is_finished) {
                // Ended by itself (reconnect off): start afresh.
                st.ended = false;
            }
        }
        if io.as_ref().is_some_and(JoinHandle::is_finished) {
            if let Some(h) = io.take() {
                let _ = h.join();
            }
        }
        if io.is_none() {
            self.stop.store(false, Ordering::Release);
            let conn = self.clone();
            match std::thread::Builder::new().name("tinybase-ws".into()).spawn(move || conn.run()) {
                Ok(h) => *io = Some(h),
                Err(e) => {
                    let mut st = self.state.lock();
                    st.connection = closed(1006, format!("cannot start the I/O thread: {e}"));
                    for c in &mut st.channels {
                        c.settled = true;
                    }
                }
            }
        }
        self.changed.notify_all();
        self.waker.wake();
    }

    /// Waits until the channel's first connection attempt (or subscription) has come to an
    /// end, at most `timeout`; true if the channel is open.
    pub(super) fn wait_settled(&self, id: Option<&str>, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock();
        loop {
            match st.channel(id) {
                None => return false,
                Some(c) if c.settled || c.ready => return c.ready,
                Some(_) => {}
            }
            if self.changed.wait_until(&mut st, deadline).timed_out() {
                return st.channel(id).is_some_and(|c| c.ready);
            }
        }
    }

    /// The state a channel sees.
    pub(super) fn channel_state(&self, id: Option<&str>) -> ConnectionState {
        let st = self.state.lock();
        match (&st.connection, st.channel(id)) {
            (ConnectionState::Open, Some(c)) if !c.ready => ConnectionState::Connecting,
            (state, _) => state.clone(),
        }
    }

    /// The socket's state.
    pub(super) fn socket_state(&self) -> ConnectionState {
        self.state.lock().connection.clone()
    }

    /// The multiplexed channels joined.
    pub(super) fn channel_ids(&self) -> Vec<String> {
        self.state.lock().channels.iter().filter_map(|c| c.id.clone()).collect()
    }

    /// Queues a payload of channel `id` for client `to` (None: broadcast). Runs on the
    /// synchronizer's worker; never waits for the network.
    pub(super) fn send(&self, id: Option<&str>, to: Option<&str>, payload: &str) {
        // A broadcast ContentHashes or ContentDiff while away is coalesced: the save
        // (ContentHashes) that follows the reopening announces the same (8.5, 12.5).
        let coalesced = to.is_none() && matches!(message_number(payload), Some(2 | 3));
        let ready = |st: &State| st.channel(id).is_some_and(|c| c.ready);
        if coalesced && !ready(&self.state.lock()) {
            return;
        }
        if payload.len() > MAX_PAYLOAD_BYTES {
            // The server would close the socket for it (7.3): refused here instead.
            self.report(id, "tinybase:15:socket");
            return;
        }
        // Framed without the lock: the I/O thread needs it between every two frames it reads.
        let frames = codec::fragment(to.unwrap_or(""), payload, self.settings.fragment_size);
        let frames: Vec<String> = match id {
            Some(channel) => frames.iter().map(|f| codec::data_frame(channel, f)).collect(),
            None => frames,
        };
        let bytes = frames.iter().map(String::len).sum();
        let now = Instant::now();
        let mut st = self.state.lock();
        if st.ended || st.shutdown {
            return;
        }
        let ready = ready(&st);
        if coalesced && !ready {
            return;
        }
        if !ready {
            st.expire(now);
        }
        let full = st.queued_payloads >= MAX_QUEUE || st.queued_bytes + bytes > MAX_PAYLOAD_BYTES;
        if full && !ready {
            drop(st);
            self.report(id, "tinybase:15:client");
            return;
        }
        let Some(ch) = st.channel_mut(id) else { return };
        let deadline = (!ready).then(|| now + ch.timeout);
        ch.queue.push_back(Out { frames, bytes, deadline });
        st.queued_payloads += 1;
        st.queued_bytes += bytes;
        if ready {
            // Open but not draining (backpressure) beyond the bounds: TinyBase's client closes
            // 1013 tinybase:15:client; the reopening's load and save repair what is dropped.
            st.overflow |= full;
            drop(st);
            self.waker.wake();
        }
    }

    /// Reports an error to one channel's synchronizer.
    fn report(&self, id: Option<&str>, error: &str) {
        if let Some(c) = self.state.lock().channel(id) {
            c.event(TransportEvent::Error(error.to_string()));
        }
    }

    /// A channel's synchronizer is destroyed: Unsubscribe (multiplexed), and when it was the
    /// last channel, close the socket (1000) and join the I/O thread.
    pub(super) fn leave(&self, id: Option<&str>) {
        let mut io = self.io.lock();
        let last = {
            let mut st = self.state.lock();
            let Some(index) = st.channels.iter().position(|c| c.id.as_deref() == id) else { return };
            let channel = st.channels.remove(index);
            for out in &channel.queue {
                st.unqueue(out);
            }
            if let Some(id) = &channel.id {
                if st.connection == ConnectionState::Open {
                    st.control.push(codec::control_frame(None, Control::Unsubscribe, &json_string(id)));
                    st.left.insert(id.clone());
                }
            }
            st.shutdown = st.channels.is_empty();
            st.shutdown
        };
        if last {
            self.stop.store(true, Ordering::Release);
        }
        self.changed.notify_all();
        self.waker.wake();
        if last {
            if let Some(h) = io.take() {
                let _ = h.join();
            }
            let mut st = self.state.lock();
            if st.channels.is_empty() {
                st.connection = closed(1000, "");
            }
        }
    }

    // ---------------------------------------------------------------------- the I/O thread

    fn run(self: Arc<Self>) {
        let mut backoff = self.settings.reconnect_min;
        loop {
            {
                let mut st = self.state.lock();
                if st.shutdown {
                    return;
                }
                st.retry_now = false;
                st.connection = ConnectionState::Connecting;
                st.events(&TransportEvent::StateChanged);
            }
            let end = match self.target.connect(self.settings.connect_timeout, &self.stop) {
                Ok(socket) => {
                    let opened = Instant::now();
                    let end = Session::new(&self, socket).run();
                    // A connection that lasted resets the backoff; one dropped at once does
                    // not, so a server refusing us is not hammered.
                    if opened.elapsed() >= self.settings.reconnect_max.min(Duration::from_secs(5)) {
                        backoff = self.settings.reconnect_min;
                    }
                    end
                }
                Err(e) => {
                    let st = self.state.lock();
                    if !st.shutdown {
                        st.events(&TransportEvent::Error(format!("tinybase:5:{e}")));
                    }
                    closed(1006, e)
                }
            };
            let mut st = self.state.lock();
            let now = Instant::now();
            st.connection = end;
            for c in &mut st.channels {
                c.ready = false;
                c.settled = true;
                for out in &mut c.queue {
                    out.deadline.get_or_insert(now + c.timeout);
                }
            }
            st.control.clear();
            st.left.clear();
            st.overflow = false;
            st.events(&TransportEvent::StateChanged);
            self.changed.notify_all();
            if st.shutdown {
                return;
            }
            if !self.settings.reconnect {
                st.ended = true;
                for c in &mut st.channels {
                    c.queue.clear();
                }
                st.queued_payloads = 0;
                st.queued_bytes = 0;
                return;
            }
            // Full jitter: anywhere up to the current backoff, which doubles to the maximum.
            let jitter = u64::from_le_bytes(crate::util::random_bytes(8).try_into().unwrap_or([0; 8])) as f64 / u64::MAX as f64;
            let delay = backoff.mul_f64(jitter);
            backoff = (backoff * 2).min(self.settings.reconnect_max).max(self.settings.reconnect_min);
            let until = Instant::now() + delay;
            while !st.shutdown && !st.retry_now {
                if self.changed.wait_until(&mut st, until).timed_out() {
                    break;
                }
            }
        }
    }
}

/// A JSON string literal (channel ids in control bodies).
fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// One open socket, from the upgrade to its end.
struct Session<'a> {
    conn: &'a Conn,
    socket: Socket,
    /// Frames taken from the queues that the socket's write buffer had no room for yet.
    pending: VecDeque<String>,
    want_write: bool,
    /// One per socket: TinyBase's fragment limits count the whole socket (7.2).
    reassembler: Reassembler,
    last_heard: Instant,
    next_ping: Instant,
    next_tick: Instant,
    /// Multiplexed: the Hello awaiting its echo (request id, deadline); then None.
    hello: Option<(String, Instant)>,
    hello_ok: bool,
    /// Multiplexed: Subscribes awaiting their echo, by channel: (request id, deadline).
    subscribing: HashMap<String, (String, Instant)>,
    /// Our closing handshake: when to give up waiting, and the state to report.
    closing: Option<(Instant, ConnectionState)>,
    /// The close frame the server sent.
    peer_close: Option<ConnectionState>,
}

impl<'a> Session<'a> {
    fn new(conn: &'a Conn, socket: Socket) -> Session<'a> {
        let now = Instant::now();
        Session {
            conn,
            socket,
            pending: VecDeque::new(),
            want_write: false,
            reassembler: Reassembler::new(conn.shortest_timeout()),
            last_heard: now,
            next_ping: now + conn.settings.ping_interval,
            next_tick: now + TICK,
            hello: None,
            hello_ok: false,
            subscribing: HashMap::new(),
            closing: None,
            peer_close: None,
        }
    }

    fn mux(&self) -> bool {
        self.conn.target.is_mux()
    }

    /// Runs until the socket is closed or lost; returns the Closed state to report.
    fn run(mut self) -> ConnectionState {
        let Some(fd) = tcp_of(&self.socket).map(AsRawFd::as_raw_fd) else {
            return closed(1006, "unexpected stream type");
        };
        let hello_timeout = self.conn.shortest_timeout();
        {
            let mut st = self.conn.state.lock();
            st.connection = ConnectionState::Open;
            if self.mux() {
                let request_id = crate::util::random_id(16);
                self.pending.push_back(codec::control_frame(Some(&request_id), Control::Hello, "1"));
                self.hello = Some((request_id, Instant::now() + hello_timeout));
                st.events(&TransportEvent::StateChanged);
            } else {
                for c in &mut st.channels {
                    c.ready = true;
                    c.settled = true;
                    c.event(TransportEvent::Reopened);
                }
                self.conn.changed.notify_all();
            }
        }
        loop {
            self.conn.waker.drain();
            if let Err(end) = self.step() {
                return end;
            }
            let timeout = self.next_deadline().map(|d| d.saturating_duration_since(Instant::now()));
            if let Err(e) = self.conn.waker.wait(Some(fd), self.want_write, timeout) {
                return closed(1006, format!("poll: {e}"));
            }
        }
    }

    /// Begins our closing handshake (at most once) with this code and reason.
    fn close(&mut self, code: u16, reason: &str) {
        if self.closing.is_some() {
            return;
        }
        self.closing = Some((Instant::now() + CLOSE_TIMEOUT, closed(code, reason)));
        self.pending.clear();
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        // Errors (WouldBlock) are driven by the loop; a dead socket ends it at the next read.
        let _ = self.socket.close(Some(frame));
    }

    /// Closes for bad or excessive traffic, telling every channel (7.3).
    fn close_for(&mut self, close: Close) {
        if self.closing.is_none() {
            self.conn.state.lock().events(&TransportEvent::Error(close.reason.clone()));
        }
        self.close(close.code, &close.reason);
    }

    /// One turn: queue → socket, socket → channels, timers. Err: the session is over.
    fn step(&mut self) -> Result<(), ConnectionState> {
        let now = Instant::now();
        self.take_queued(now);
        self.write()?;
        self.read()?;
        // Pongs (and close replies) queued while reading.
        self.flush()?;
        self.timers(now)
    }

    /// Moves what the channels queued (and control frames) to the session, when the socket's
    /// write buffer has drained.
    fn take_queued(&mut self, now: Instant) {
        let mut st = self.conn.state.lock();
        if self.closing.is_some() {
            return;
        }
        if st.shutdown {
            self.pending.extend(st.control.drain(..));
            drop(st);
            // The Unsubscribes go out before the close frame.
            let _ = self.write();
            self.close(1000, "");
            return;
        }
        if st.overflow {
            st.overflow = false;
            drop(st);
            self.close_for(Close::overload("client"));
            return;
        }
        self.pending.extend(st.control.drain(..));
        if self.mux() && self.hello_ok {
            for c in &st.channels {
                if let Some(id) = &c.id {
                    if !c.ready && !self.subscribing.contains_key(id) {
                        let request_id = crate::util::random_id(16);
                        self.pending.push_back(codec::control_frame(Some(&request_id), Control::Subscribe, &json_string(id)));
                        self.subscribing.insert(id.clone(), (request_id, now + c.timeout));
                    }
                }
            }
        }
        if self.pending.is_empty() {
            // What waited for the connection past its request's timeout is stale.
            st.expire(now);
            let mut taken = Vec::new();
            for c in &mut st.channels {
                if c.ready {
                    taken.extend(c.queue.drain(..));
                }
            }
            for out in taken {
                st.unqueue(&out);
                self.pending.extend(out.frames);
            }
        }
    }

    /// Writes pending frames until done or the write buffer is full, then flushes.
    fn write(&mut self) -> Result<(), ConnectionState> {
        while self.closing.is_none() {
            let Some(frame) = self.pending.pop_front() else { break };
            match self.socket.write(WsMessage::Text(frame.into())) {
                Ok(()) => {}
                Err(tungstenite::Error::WriteBufferFull(message)) => {
                    if let WsMessage::Text(text) = *message {
                        self.pending.push_front(text.as_str().to_string());
                    }
                    self.want_write = true;
                    break;
                }
                // Buffered; the rest goes out when the socket has room.
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(self.lost(e)),
            }
        }
        self.flush()
    }

    fn flush(&mut self) -> Result<(), ConnectionState> {
        match self.socket.flush() {
            Ok(()) => {
                self.want_write = !self.pending.is_empty();
                Ok(())
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.want_write = true;
                Ok(())
            }
            Err(e) => Err(self.lost(e)),
        }
    }

    /// The state to report when the socket failed with `e`.
    fn lost(&self, e: tungstenite::Error) -> ConnectionState {
        match e {
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => self.end_state(),
            e => {
                if let Some(state) = self.closing.as_ref().map(|c| c.1.clone()).or_else(|| self.peer_close.clone()) {
                    return state;
                }
                let error = format!("tinybase:5:{e}");
                self.conn.state.lock().events(&TransportEvent::Error(error));
                closed(1006, e.to_string())
            }
        }
    }

    /// How a cleanly closed session ended: our close, else the server's, else 1005.
    fn end_state(&self) -> ConnectionState {
        self.closing.as_ref().map(|c| c.1.clone()).or_else(|| self.peer_close.clone()).unwrap_or_else(|| closed(1005, ""))
    }

    fn read(&mut self) -> Result<(), ConnectionState> {
        loop {
            match self.socket.read() {
                Ok(message) => {
                    self.last_heard = Instant::now();
                    let text = match message {
                        WsMessage::Text(t) => t.as_str().to_string(),
                        // TinyBase reads every payload as UTF-8 text, whatever the frame type.
                        WsMessage::Binary(b) => match String::from_utf8(b.to_vec()) {
                            Ok(t) => t,
                            Err(_) => {
                                self.close_for(Close::malformed());
                                continue;
                            }
                        },
                        WsMessage::Close(frame) => {
                            self.peer_close = Some(match frame {
                                Some(f) => closed(f.code.into(), f.reason.as_str()),
                                None => closed(1005, ""),
                            });
                            continue;
                        }
                        _ => continue,
                    };
                    if self.closing.is_none() {
                        if let Err(close) = self.handle(&text) {
                            self.close_for(close);
                        }
                    }
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(tungstenite::Error::Capacity(_)) => {
                    // Larger than any payload may be (7.3).
                    self.close_for(Close::overload("socket"));
                    return Ok(());
                }
                Err(e) => return Err(self.lost(e)),
            }
        }
    }

    /// One text frame from the server.
    fn handle(&mut self, text: &str) -> Result<(), Close> {
        if !self.mux() {
            return self.deliver(None, text);
        }
        match codec::parse_mux(text)? {
            MuxFrame::Control { request_id, control, body } => {
                match control {
                    Control::Hello => {
                        if body.as_i64() == Some(1) && self.hello.as_ref().is_some_and(|h| Some(&h.0) == request_id.as_ref()) {
                            self.hello = None;
                            self.hello_ok = true;
                            // Subscribes go out on the next turn.
                            self.conn.waker.wake();
                        }
                    }
                    Control::Subscribe | Control::Unsubscribe => {
                        let Some(id) = body.as_str() else { return Ok(()) };
                        if codec::check_channel_id(id).is_err() {
                            return Err(Close::overload("channels"));
                        }
                        if control == Control::Subscribe && self.subscribing.get(id).is_some_and(|s| Some(&s.0) == request_id.as_ref()) {
                            self.subscribing.remove(id);
                            let mut st = self.conn.state.lock();
                            if let Some(c) = st.channel_mut(Some(id)) {
                                c.ready = true;
                                c.settled = true;
                                c.event(TransportEvent::Reopened);
                            }
                            self.conn.changed.notify_all();
                            // What the channel queued while away goes out now.
                            self.conn.waker.wake();
                        }
                    }
                }
                Ok(())
            }
            MuxFrame::Data { channel_id, payload } => {
                let known = {
                    let st = self.conn.state.lock();
                    match st.channel(Some(channel_id)) {
                        Some(c) => Some(c.ready),
                        None => st.left.contains(channel_id).then_some(false),
                    }
                };
                match known {
                    Some(true) => self.deliver(Some(channel_id), payload),
                    // In flight when we unsubscribed, or before the echo: dropped.
                    Some(false) => Ok(()),
                    None => Err(Close::malformed()),
                }
            }
        }
    }

    /// A basic payload (7.1, 7.2) for a channel: reassembled, validated, handed to its
    /// synchronizer.
    fn deliver(&mut self, id: Option<&str>, frame: &str) -> Result<(), Close> {
        let now = Instant::now();
        let payload = match id {
            Some(channel) => self.reassembler.push_channel(channel, frame, now)?,
            None => self.reassembler.push(frame, now)?,
        };
        if let Some(payload) = payload {
            let inlet = self.conn.state.lock().channel(id).and_then(|c| c.inlet.clone());
            if let Some(inlet) = inlet {
                // Validated already: the worker takes the parsed message. A full inbox is
                // reported by the synchronizer itself (tinybase:15:inbox).
                let _ = inlet.receive_parsed(&payload.client_id, payload.remainder.len(), payload.received);
            }
        }
        Ok(())
    }

    fn timers(&mut self, now: Instant) -> Result<(), ConnectionState> {
        if let Some((deadline, state)) = &self.closing {
            if now >= *deadline {
                return Err(state.clone());
            }
            return Ok(());
        }
        let ping = self.conn.settings.ping_interval;
        if !ping.is_zero() {
            if now.duration_since(self.last_heard) >= ping * 2 {
                let reason = format!("no answer from the server for {:?}", ping * 2);
                self.conn.state.lock().events(&TransportEvent::Error(format!("tinybase:5:{reason}")));
                return Err(closed(1006, reason));
            }
            if now >= self.next_ping {
                self.next_ping = now + ping;
                match self.socket.write(WsMessage::Ping(Default::default())) {
                    Ok(()) => {}
                    Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(tungstenite::Error::WriteBufferFull(_)) => {}
                    Err(e) => return Err(self.lost(e)),
                }
                self.flush()?;
            }
        }
        if let Some((_, deadline)) = &self.hello {
            if now >= *deadline {
                let error = format!("tinybase:4:{}", Control::Hello as u8);
                let mut st = self.conn.state.lock();
                st.events(&TransportEvent::Error(error.clone()));
                for c in &mut st.channels {
                    c.settled = true;
                }
                self.conn.changed.notify_all();
                return Err(closed(1006, format!("{error}: no Hello echo")));
            }
        }
        let late: Vec<String> = self.subscribing.iter().filter(|(_, s)| now >= s.1).map(|(id, _)| id.clone()).collect();
        if !late.is_empty() {
            let mut st = self.conn.state.lock();
            for id in late {
                // Subscribed again on the next turn (one attempt per timeout).
                self.subscribing.remove(&id);
                if let Some(c) = st.channel_mut(Some(&id)) {
                    c.settled = true;
                    c.event(TransportEvent::Error(format!("tinybase:4:{}", Control::Subscribe as u8)));
                }
            }
            self.conn.changed.notify_all();
        }
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            self.reassembler.expire(now);
            self.conn.state.lock().expire(now);
        }
        Ok(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        if let Some((deadline, _)) = &self.closing {
            return Some(*deadline);
        }
        let ping = self.conn.settings.ping_interval;
        let mut next = self.next_tick;
        if !ping.is_zero() {
            next = next.min(self.next_ping).min(self.last_heard + ping * 2);
        }
        if let Some((_, d)) = &self.hello {
            next = next.min(*d);
        }
        for (_, d) in self.subscribing.values() {
            next = next.min(*d);
        }
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_numbers_of_our_own_payloads() {
        use crate::sync::message::{payload, Message};
        for m in [Message::Response, Message::GetContentHashes, Message::ContentHashes, Message::ContentDiff, Message::GetCellDiff] {
            assert_eq!(message_number(&payload(Some("3W88eSMduER.xHwe"), m, "\"\"")), Some(m as u8));
            assert_eq!(message_number(&payload(None, m, "[1,2]")), Some(m as u8));
        }
        assert_eq!(message_number("not a payload"), None);
        assert_eq!(message_number("[\"unterminated,2,[]]"), None);
    }
}
