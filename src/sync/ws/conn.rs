//! One WebSocket connection and its I/O thread, shared by the synchronizers ("channels") that use
//! it: one legacy channel, or any number of multiplexed ones (7.4).
//!
//! Threads: each synchronizer's worker queues outgoing frames here (`send`, never blocking on
//! the network) and wakes the I/O thread through a pipe; the I/O thread connects (blocking,
//! bounded), then runs a poll(2) loop on the nonblocking socket and the pipe: write what is
//! queued, read until the socket would block, ping, expire, sleep until the next event. What
//! arrives goes to each synchronizer's [`Inlet`] (never blocks, never keeps a synchronizer
//! alive), so a destroy can always join this thread.

mod session;

use super::codec::{self, Control, MAX_PAYLOAD_BYTES, MAX_QUEUE};
use super::connect::Target;
use super::poll::Waker;
use crate::sync::{ConnectionState, Inlet, TransportEvent};
use parking_lot::{Condvar, Mutex};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
                    let end = session::Session::new(&self, socket).run();
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
