//! One open socket's turn loop on the I/O thread: queued frames out, frames in until the
//! socket would block, multiplex handshake, pings, closing handshakes, then poll(2).

use super::{closed, json_string, Conn, CLOSE_TIMEOUT, TICK};
use crate::sync::ws::codec::{self, Close, Control, MuxFrame, Reassembler};
use crate::sync::ws::connect::{tcp_of, Socket};
use crate::sync::{ConnectionState, TransportEvent};
use std::collections::{HashMap, VecDeque};
use std::os::fd::AsRawFd;
use std::time::Instant;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message as WsMessage;

/// One open socket, from the upgrade to its end.
pub(super) struct Session<'a> {
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
    pub(super) fn new(conn: &'a Conn, socket: Socket) -> Session<'a> {
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
    pub(super) fn run(mut self) -> ConnectionState {
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
        // Unsubscribes only once Hello was echoed: before it the server knows no channel of
        // ours (a Subscribe goes out only after Hello).
        let controls: Vec<String> = st.control.drain(..).filter(|_| self.hello_ok).collect();
        if st.shutdown {
            self.pending.extend(controls);
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
        self.pending.extend(controls);
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
