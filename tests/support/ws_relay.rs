//! A small WebSocket relay for the client's tests, following TinyBase's WsServerSimple
//! (PROTOCOL.md 8.1, 8.3): rooms by path, client ids assigned here, `to\nrest` relayed as
//! `from\nrest` to the others (broadcast) or to one client, multiplexed channels (Hello and
//! Subscribe echoed, data in the `M\n<channel>\n` envelope, a channel's room is
//! `path/channel`). No validation: frames (fragments too) are relayed as they come. Beyond the
//! relay, what tests need: TLS, freezing (stop reading and answering, hold new connections),
//! injecting raw frames, killing every connection abruptly, and a record of the close frames
//! and control frames clients sent. Blocking tungstenite, one thread per connection.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tungstenite::handshake::server::{Request, Response};
use tungstenite::{Message, WebSocket};

enum Out {
    Text(String),
    Close(u16, String),
    Kill,
}

struct Peer {
    id: String,
    /// The upgrade path without the leading `/` (the legacy room, or the channels' base path).
    path: String,
    mux: bool,
    /// Multiplexed: channel -> room.
    subs: HashMap<String, String>,
    tx: Sender<Out>,
    tcp: TcpStream,
}

#[derive(Default)]
struct Inner {
    stop: AtomicBool,
    frozen: AtomicBool,
    /// Multiplex controls are not echoed.
    mute: AtomicBool,
    peers: Mutex<HashMap<u64, Peer>>,
    next: AtomicU64,
    /// Close frames received from clients: (code, reason).
    closes: Mutex<Vec<(u16, String)>>,
    /// Multiplex control frames received (their text).
    controls: Mutex<Vec<String>>,
    /// Text frames received.
    frames_in: AtomicU64,
    /// Each upgrade request: (path, Authorization header).
    upgrades: Mutex<Vec<(String, Option<String>)>>,
    /// TCP connections accepted while frozen (never answered).
    held: Mutex<Vec<TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A running relay; killed (every connection dropped without a close) on drop.
pub struct Relay {
    addr: SocketAddr,
    inner: Arc<Inner>,
    accept: Option<JoinHandle<()>>,
}

impl Relay {
    /// Listens on 127.0.0.1:`port` (0: a free port), over TLS when `tls` is given.
    pub fn start(port: u16, tls: Option<Arc<rustls::ServerConfig>>) -> Relay {
        let listener = {
            // The port of a relay just killed may take a moment to be free again.
            let mut tries = 0;
            loop {
                match TcpListener::bind(("127.0.0.1", port)) {
                    Ok(l) => break l,
                    Err(e) if tries < 100 => {
                        tries += 1;
                        let _ = e;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => panic!("bind 127.0.0.1:{port}: {e}"),
                }
            }
        };
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner::default());
        let i = inner.clone();
        let accept = std::thread::spawn(move || {
            while !i.stop.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        if i.frozen.load(Ordering::Acquire) {
                            i.held.lock().unwrap().push(tcp);
                            continue;
                        }
                        let (i2, tls) = (i.clone(), tls.clone());
                        let h = std::thread::spawn(move || serve(i2, tcp, tls));
                        i.threads.lock().unwrap().push(h);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Relay { addr, inner, accept: Some(accept) }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `ws://127.0.0.1:port/path` (or `wss://localhost:port/path` when `tls`).
    pub fn url(&self, path: &str, tls: bool) -> String {
        if tls {
            format!("wss://localhost:{}/{path}", self.port())
        } else {
            format!("ws://127.0.0.1:{}/{path}", self.port())
        }
    }

    /// Stops reading and answering on every connection, and holds new ones unanswered.
    pub fn freeze(&self) {
        self.inner.frozen.store(true, Ordering::Release);
    }

    /// Stops echoing multiplex controls (Hello, Subscribe).
    pub fn mute_controls(&self) {
        self.inner.mute.store(true, Ordering::Release);
    }

    /// Sends a raw text frame to every connection.
    pub fn inject(&self, text: &str) {
        for p in self.inner.peers.lock().unwrap().values() {
            let _ = p.tx.send(Out::Text(text.to_string()));
        }
    }

    /// Closes every connection with this code and reason (a server shutting down: 1001).
    pub fn close_all(&self, code: u16, reason: &str) {
        for p in self.inner.peers.lock().unwrap().values() {
            let _ = p.tx.send(Out::Close(code, reason.to_string()));
        }
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.inner.peers.lock().unwrap().len()
    }

    /// Close frames received from clients.
    pub fn closes(&self) -> Vec<(u16, String)> {
        self.inner.closes.lock().unwrap().clone()
    }

    /// Multiplex control frames received.
    pub fn controls(&self) -> Vec<String> {
        self.inner.controls.lock().unwrap().clone()
    }

    /// Each upgrade request: (path, Authorization header).
    pub fn upgrades(&self) -> Vec<(String, Option<String>)> {
        self.inner.upgrades.lock().unwrap().clone()
    }

    /// Text frames received so far.
    pub fn frames_in(&self) -> u64 {
        self.inner.frames_in.load(Ordering::Acquire)
    }

    /// Drops every connection abruptly (no close frame) and stops listening.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
        for p in self.inner.peers.lock().unwrap().values() {
            let _ = p.tx.send(Out::Kill);
            let _ = p.tcp.shutdown(Shutdown::Both);
        }
        for t in self.inner.held.lock().unwrap().drain(..) {
            let _ = t.shutdown(Shutdown::Both);
        }
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        let threads: Vec<_> = self.inner.threads.lock().unwrap().drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(inner: Arc<Inner>, tcp: TcpStream, tls: Option<Arc<rustls::ServerConfig>>) {
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(2))).unwrap();
    let control = tcp.try_clone().unwrap();
    match tls {
        Some(config) => {
            let conn = rustls::ServerConnection::new(config).unwrap();
            let stream = rustls::StreamOwned::new(conn, tcp);
            run(inner, stream, control);
        }
        None => run(inner, tcp, control),
    }
}

fn handshake<S: Read + Write>(inner: &Inner, stream: S) -> Option<(WebSocket<S>, String, bool)> {
    let mut path = String::new();
    let mut mux = false;
    let mut auth = None;
    // The error type is tungstenite's (an HTTP response), large by design.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, mut resp: Response| -> Result<Response, tungstenite::handshake::server::ErrorResponse> {
        path = req.uri().path().trim_start_matches('/').to_string();
        auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
        mux = req.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).is_some_and(|v| v.split(',').any(|p| p.trim() == "tinybase"));
        if mux {
            resp.headers_mut().insert("sec-websocket-protocol", "tinybase".parse().unwrap());
        }
        Ok(resp)
    };
    let mut attempt = tungstenite::accept_hdr(stream, callback);
    for _ in 0..2500 {
        match attempt {
            Ok(ws) => {
                inner.upgrades.lock().unwrap().push((path.clone(), auth));
                return Some((ws, path, mux));
            }
            Err(tungstenite::HandshakeError::Interrupted(mid)) => attempt = mid.handshake(),
            Err(_) => return None,
        }
    }
    None
}

fn run<S: Read + Write>(inner: Arc<Inner>, stream: S, tcp: TcpStream) {
    let Some((mut ws, path, mux)) = handshake(&inner, stream) else { return };
    let key = inner.next.fetch_add(1, Ordering::AcqRel);
    let id = format!("client{key}");
    let (tx, rx): (Sender<Out>, Receiver<Out>) = channel();
    inner.peers.lock().unwrap().insert(key, Peer { id: id.clone(), path, mux, subs: HashMap::new(), tx, tcp: tcp.try_clone().unwrap() });
    loop {
        if inner.stop.load(Ordering::Acquire) {
            break;
        }
        if inner.frozen.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let mut killed = false;
        while let Ok(out) = rx.try_recv() {
            match out {
                Out::Text(t) => {
                    let _ = ws.write(Message::Text(t.into()));
                }
                Out::Close(code, reason) => {
                    let frame = tungstenite::protocol::CloseFrame { code: code.into(), reason: reason.into() };
                    let _ = ws.close(Some(frame));
                }
                Out::Kill => killed = true,
            }
        }
        if killed {
            break;
        }
        let _ = ws.flush();
        match ws.read() {
            Ok(Message::Text(t)) => {
                inner.frames_in.fetch_add(1, Ordering::AcqRel);
                handle(&inner, key, t.as_str());
            }
            Ok(Message::Close(f)) => {
                let (code, reason) = f.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                inner.closes.lock().unwrap().push((code, reason));
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    inner.peers.lock().unwrap().remove(&key);
    let _ = tcp.shutdown(Shutdown::Both);
}

fn room_of(base: &str, channel: &str) -> String {
    if base.is_empty() {
        channel.to_string()
    } else {
        format!("{base}/{channel}")
    }
}

fn handle(inner: &Inner, key: u64, text: &str) {
    let mut peers = inner.peers.lock().unwrap();
    let Some(me) = peers.get_mut(&key) else { return };
    let (room, basic) = if me.mux {
        if let Some(control) = text.strip_prefix("S\n") {
            inner.controls.lock().unwrap().push(text.to_string());
            let v: serde_json::Value = match serde_json::from_str(control) {
                Ok(v) => v,
                Err(_) => return,
            };
            let (ctl, body) = (v[2][0].as_i64(), v[2][1].clone());
            if inner.mute.load(Ordering::Acquire) {
                return;
            }
            match ctl {
                Some(0) => {
                    let _ = me.tx.send(Out::Text(text.to_string()));
                }
                Some(1) => {
                    let channel = body.as_str().unwrap_or_default().to_string();
                    let room = room_of(&me.path, &channel);
                    me.subs.insert(channel, room);
                    let _ = me.tx.send(Out::Text(text.to_string()));
                }
                Some(2) => {
                    me.subs.remove(body.as_str().unwrap_or_default());
                }
                _ => {}
            }
            return;
        }
        let Some(rest) = text.strip_prefix("M\n") else { return };
        let Some((channel, basic)) = rest.split_once('\n') else { return };
        let Some(room) = me.subs.get(channel) else { return };
        (room.clone(), basic)
    } else {
        (me.path.clone(), text)
    };
    let Some((to, remainder)) = basic.split_once('\n') else { return };
    let from = me.id.clone();
    for (k, p) in peers.iter() {
        if *k == key && to.is_empty() {
            continue;
        }
        if !to.is_empty() && p.id != to {
            continue;
        }
        if p.mux {
            for (channel, r) in &p.subs {
                if *r == room {
                    let _ = p.tx.send(Out::Text(format!("M\n{channel}\n{from}\n{remainder}")));
                }
            }
        } else if p.path == room {
            let _ = p.tx.send(Out::Text(format!("{from}\n{remainder}")));
        }
    }
}
