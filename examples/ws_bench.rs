//! BENCHMARKS.md W10: WebSocket servers, this project's `tinybase-server` against TinyBase's
//! WsServer (node, `ws`), in the same run, with the same load generator (this program).
//!
//! `cargo run --release --example ws_bench -- [--runs R] [--servers tinybase,ours] [--smoke]
//!  [--clients N] [--seconds S] [--rate R] [--idle N] [--cells N] [--joiner tinybase,ours]`
//! (scripts/bench-ws.sh builds what it needs and runs it.)
//!
//! Each phase starts a fresh server on 127.0.0.1 (port 0: the server prints `listening <addr>`),
//! and kills it at the end:
//! - throughput: N raw clients in one room; each change is one ContentDiff broadcast from one
//!   client, relayed to the N-1 others; a window of in-flight changes keeps the server busy
//!   without an unbounded queue. Counted at the receivers: deliveries/s and changes/s, plus the
//!   server's CPU time (user + system, /proc) per delivery.
//! - latency: the same room at a light, fixed rate; the send time is in the change's value and
//!   every receiver records `received - sent`: p50 and p99 over all deliveries.
//! - memory: server RSS (/proc/PID/status) with 1 client, then with N more idle clients;
//!   the difference divided by N.
//! - late joiner: a holder client sends one ContentDiff of N cells (BENCHMARKS.md's data shape)
//!   and waits until the room's server store answers the expected content hashes; then an empty
//!   client joins and syncs until its hashes are equal. Joiners: TinyBase's createWsSynchronizer
//!   (node, tests/interop/ws/bench_joiner.mjs) and, when built with it, this library's
//!   WsSynchronizer; each joins both servers.
//!
//! The raw clients are tungstenite sockets in non-blocking mode, a few per thread, driven by
//! epoll; their frames are valid ContentDiffs with HLCs from the library's clock, each client
//! writing its own row so the server stores accept every change.
//!
//! Servers (overridable, words split on spaces): TINYBASE_CMD (default `node
//! tests/interop/ws/bench_server.mjs --persist memory`), OURS_CMD (default
//! `target/release/tinybase-server --listen 127.0.0.1:0` with limits raised for the load).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tinybase::hlc::Clock;
use tinybase::sync::ws::{WsOptions, WsSynchronizer};
use tinybase::MergeableStore;
use tungstenite::{Message, WebSocket};

const ALPHABET: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

fn wall_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

/// An 11-character transaction id from a counter (unique per sender is all the protocol needs).
fn tx_id(n: u64) -> String {
    (0..11).map(|i| ALPHABET[((n >> (6 * (10 - i))) & 63) as usize] as char).collect()
}

// ---------------------------------------------------------------------------------------------
// Servers

/// A server process under test: started on a free port, killed on drop.
struct Server {
    child: Child,
    _stdin: Option<ChildStdin>,
    addr: String,
}

impl Server {
    fn start(command: &str) -> Server {
        let words: Vec<&str> = command.split_whitespace().collect();
        let mut child = Command::new(words[0])
            .args(&words[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let addr = loop {
            let line = match lines.next() {
                Some(Ok(line)) => line,
                _ => {
                    let _ = child.kill();
                    panic!("`{command}` exited before printing `listening`");
                }
            };
            if line.contains("listening") {
                if let Some(at) = line.find("127.0.0.1:") {
                    let port: String = line[at + 10..].chars().take_while(char::is_ascii_digit).collect();
                    break format!("127.0.0.1:{port}");
                }
            }
        };
        // Keep draining stdout so a chatty server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Server { child, _stdin: stdin, addr }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    }

    fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&self.pid().to_string())
    }
}

/// User + system CPU seconds of a whole process (`self` or a pid).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state, field 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling our own child process by its id.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Raw clients

fn connect(addr: &str, room: &str) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_nodelay(true).expect("nodelay");
    // tungstenite zeroes the free part of its read buffer on every read: 128 KiB by default, the
    // main cost of reading small frames; 8 KiB holds many of them.
    let config = tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8192);
    let (ws, _) = tungstenite::client::client_with_config(format!("ws://{addr}/{room}"), stream, Some(config))
        .unwrap_or_else(|e| panic!("handshake ws://{addr}/{room}: {e}"));
    ws
}

/// One raw client: a row of its own (`r<index>`) and a clock of its own.
struct Client {
    ws: WebSocket<TcpStream>,
    index: usize,
    clock: Clock,
    sent: u64,
    flush: bool,
    open: bool,
}

impl Client {
    fn new(ws: WebSocket<TcpStream>, index: usize) -> Client {
        ws.get_ref().set_nonblocking(true).expect("nonblocking");
        let clock = Clock::new(Some(&format!("bench-client-{index}")), Box::new(wall_ms));
        Client { ws, index, clock, sent: 0, flush: false, open: true }
    }

    /// Sends one ContentDiff whose value is the send time (µs since the program started).
    fn send_change(&mut self) -> Result<(), String> {
        let hlc = self.clock.next();
        let frame = hlc.with_str(|hlc| {
            format!(
                "\n[\"{}\",3,[[{{\"t\":[{{\"r{}\":[{{\"c\":[{},\"{hlc}\"]}}]}}]}}],[{{}}],1]]",
                tx_id(self.sent),
                self.index,
                now_us()
            )
        });
        self.sent += 1;
        self.write(frame)
    }

    fn write(&mut self, frame: String) -> Result<(), String> {
        match self.ws.write(Message::text(frame)) {
            Ok(()) => self.try_flush(),
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                self.flush = true;
                Ok(())
            }
            Err(e) => Err(format!("client {}: write: {e}", self.index)),
        }
    }

    fn try_flush(&mut self) -> Result<(), String> {
        match self.ws.flush() {
            Ok(()) => {
                self.flush = false;
                Ok(())
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                self.flush = true;
                Ok(())
            }
            Err(e) => Err(format!("client {}: flush: {e}", self.index)),
        }
    }
}

/// The send time carried by a relayed ContentDiff of this program, if the frame is one.
fn sent_at(frame: &str) -> Option<u64> {
    let at = frame.find("{\"c\":[")? + 6;
    let digits = &frame[at..];
    let end = digits.find(|c: char| !c.is_ascii_digit())?;
    digits[..end].parse().ok()
}

#[derive(Clone, Copy)]
enum Mode {
    /// Only read (answers pings): the memory phase.
    Idle,
    /// Keep `window` changes in flight (sent, not yet delivered to every other client).
    Flood { window: u64 },
    /// `rate` changes per second over the whole room, in client order.
    Paced { rate: f64 },
}

struct Shared {
    stop: AtomicBool,
    sent: AtomicU64,
    delivered: AtomicU64,
    clients: u64,
    /// Deliveries and latencies count only from `window_start` to `window_end` (µs).
    window_start: u64,
    window_end: u64,
    /// Paced mode: the time of change 0 (µs).
    t0: u64,
    /// Flood mode: the pause between two reads of all sockets (µs).
    batch_us: u64,
}

impl Shared {
    fn new(clients: u64, (window_start, window_end): (u64, u64), t0: u64, batch_us: u64) -> Arc<Shared> {
        Arc::new(Shared {
            stop: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            clients,
            window_start,
            window_end,
            t0,
            batch_us,
        })
    }
}

#[derive(Default)]
struct Tally {
    deliveries: u64,
    latencies_us: Vec<u32>,
    errors: Vec<String>,
    closed: usize,
}

/// The epoll interest of one client: always readable, writable too while a flush is pending.
fn watch(epoll: i32, op: i32, c: &Client, slot: usize) {
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | if c.flush { libc::EPOLLOUT } else { 0 }) as u32,
        u64: slot as u64,
    };
    // SAFETY: epoll is an epoll descriptor we own; the fd belongs to a live socket.
    unsafe { libc::epoll_ctl(epoll, op, c.ws.get_ref().as_raw_fd(), &mut event) };
}

fn worker(mut clients: Vec<Client>, mode: Mode, shared: Arc<Shared>) -> Tally {
    let mut tally = Tally::default();
    // SAFETY: plain syscall; the descriptor is closed at the end of this function.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(epoll >= 0, "epoll_create1");
    for (slot, c) in clients.iter().enumerate() {
        watch(epoll, libc::EPOLL_CTL_ADD, c, slot);
    }
    let mut watching_out = vec![false; clients.len()];
    let mut registered = vec![true; clients.len()];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut next = 0usize;
    let others = shared.clients.saturating_sub(1).max(1);
    let (mut delivered, mut local_sent) = (0u64, 0u64);
    let paced_n = shared.clients as f64;
    while !shared.stop.load(Relaxed) {
        let now = now_us();
        let mut timeout_ms = 50;
        match mode {
            Mode::Idle => {}
            Mode::Flood { window } => {
                timeout_ms = 1;
                let in_flight = shared.sent.load(Relaxed) - shared.delivered.load(Relaxed) / others;
                let budget = window.saturating_sub(in_flight).min(16);
                for _ in 0..budget {
                    let len = clients.len();
                    let c = &mut clients[next % len];
                    next += 1;
                    if c.open && !c.flush {
                        local_sent += 1;
                        if let Err(e) = c.send_change() {
                            tally.errors.push(e);
                            c.open = false;
                        }
                        timeout_ms = 0;
                    }
                }
                shared.sent.fetch_add(local_sent, Relaxed);
                local_sent = 0;
            }
            Mode::Paced { rate } => {
                let mut wait_us = u64::MAX;
                for c in clients.iter_mut().filter(|c| c.open) {
                    let due = shared.t0 + ((c.sent as f64 * paced_n + c.index as f64) / rate * 1e6) as u64;
                    if now >= due {
                        if let Err(e) = c.send_change() {
                            tally.errors.push(e);
                            c.open = false;
                        }
                        wait_us = 0;
                    } else {
                        wait_us = wait_us.min(due - now);
                    }
                }
                timeout_ms = (wait_us / 1000).min(5) as i32;
            }
        }
        if let Mode::Flood { .. } = mode {
            // Let frames pile up in the sockets so one read takes many: the generator's cost per
            // delivery is then far below the server's (one wake-up per frame would cost about as
            // much as the server spends relaying it). The in-flight window covers the pause.
            std::thread::sleep(Duration::from_micros(shared.batch_us));
        }
        // SAFETY: events is a valid buffer of the given length.
        let ready = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), events.len() as i32, timeout_ms) };
        for event in events.iter().take(ready.max(0) as usize) {
            let (flags, slot) = (event.events, event.u64 as usize);
            let c = &mut clients[slot];
            if !c.open {
                continue;
            }
            if flags & libc::EPOLLOUT as u32 != 0 {
                if let Err(e) = c.try_flush() {
                    tally.errors.push(e);
                    c.open = false;
                    continue;
                }
            }
            if flags & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
                loop {
                    match c.ws.read() {
                        Ok(Message::Text(text)) => {
                            if let Some(sent) = sent_at(text.as_str()) {
                                delivered += 1;
                                let now = now_us();
                                if now >= shared.window_start && now < shared.window_end {
                                    tally.deliveries += 1;
                                    if let Mode::Paced { .. } = mode {
                                        tally.latencies_us.push(now.saturating_sub(sent).min(u32::MAX as u64) as u32);
                                    }
                                }
                            }
                        }
                        Ok(Message::Close(frame)) => {
                            tally.errors.push(format!("client {} closed by the server: {frame:?}", c.index));
                            tally.closed += 1;
                            c.open = false;
                            break;
                        }
                        Ok(_) => {}
                        Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => {
                            tally.errors.push(format!("client {}: read: {e}", c.index));
                            tally.closed += 1;
                            c.open = false;
                            break;
                        }
                    }
                }
                // Pongs queued by reading go out now.
                if c.open {
                    if let Err(e) = c.try_flush() {
                        tally.errors.push(e);
                        c.open = false;
                    }
                }
            }
        }
        shared.delivered.fetch_add(delivered, Relaxed);
        delivered = 0;
        for (slot, c) in clients.iter().enumerate() {
            if !c.open {
                if registered[slot] {
                    watch(epoll, libc::EPOLL_CTL_DEL, c, slot);
                    registered[slot] = false;
                }
            } else if c.flush != watching_out[slot] {
                watch(epoll, libc::EPOLL_CTL_MOD, c, slot);
                watching_out[slot] = c.flush;
            }
        }
    }
    // SAFETY: closing the epoll descriptor created above.
    unsafe { libc::close(epoll) };
    tally
}

/// Runs `clients` in `threads` workers until `end` (µs); the tallies merged.
fn drive(clients: Vec<Client>, threads: usize, mode: Mode, shared: Arc<Shared>, end: u64) -> Tally {
    let mut groups: Vec<Vec<Client>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, c) in clients.into_iter().enumerate() {
        groups[i % threads].push(c);
    }
    let handles: Vec<_> = groups
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(|g| {
            let shared = shared.clone();
            std::thread::spawn(move || worker(g, mode, shared))
        })
        .collect();
    while now_us() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    shared.stop.store(true, Relaxed);
    let mut all = Tally::default();
    for h in handles {
        let t = h.join().expect("worker");
        all.deliveries += t.deliveries;
        all.latencies_us.extend(t.latencies_us);
        all.errors.extend(t.errors);
        all.closed += t.closed;
    }
    all
}

/// Prints socket errors; in smoke mode (`strict`) any error, or nothing delivered, fails the run.
fn check(what: &str, tally: &Tally, cfg: &Config) {
    if !tally.errors.is_empty() {
        eprintln!("  {what}: {} socket errors, e.g. {}", tally.errors.len(), tally.errors[0]);
    }
    if cfg.strict && (!tally.errors.is_empty() || (what != "memory" && tally.deliveries == 0)) {
        eprintln!("  {what}: FAILED (smoke mode: no socket error and some deliveries expected)");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// Phases

struct Config {
    clients: usize,
    threads: usize,
    warmup: Duration,
    seconds: Duration,
    window: u64,
    batch_us: u64,
    rate: f64,
    idle: usize,
    cells: usize,
    joiners: Vec<String>,
    /// How long the memory phase lets the server settle before each RSS sample.
    settle: Duration,
    /// Smoke mode: fail on any socket error.
    strict: bool,
}

type Figures = Vec<(String, f64)>;

/// Connects `n` clients to a room and waits until it relays: one change from client 0 reaches all
/// the others (TinyBase buffers a room's traffic until its server store is ready, about one
/// request timeout, and closes clients whose buffer overflows).
fn connect_room(addr: &str, room: &str, n: usize) -> Vec<Client> {
    let mut clients: Vec<Client> = (0..n).map(|i| Client::new(connect(addr, room), i)).collect();
    clients[0].send_change().expect("probe");
    let mut waiting: Vec<usize> = (1..n).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !waiting.is_empty() {
        assert!(Instant::now() < deadline, "the room never relayed the probe change");
        waiting.retain(|&i| {
            let c = &mut clients[i];
            loop {
                match c.ws.read() {
                    Ok(Message::Text(t)) if sent_at(t.as_str()).is_some() => return false,
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => return true,
                    Err(e) => panic!("client {i} while waiting for the room: {e}"),
                }
            }
        });
        let _ = clients[0].try_flush();
        std::thread::sleep(Duration::from_millis(2));
    }
    clients
}

fn throughput(command: &str, cfg: &Config, out: &mut Figures) {
    let server = Server::start(command);
    let clients = connect_room(&server.addr, "throughput", cfg.clients);
    let start = now_us() + cfg.warmup.as_micros() as u64;
    let end = start + cfg.seconds.as_micros() as u64;
    let shared = Shared::new(cfg.clients as u64, (start, end), 0, cfg.batch_us);
    // The CPU sample brackets the window from a helper thread.
    let pid_server = &server;
    let cpu = std::thread::scope(|s| {
        let sampler = s.spawn(move || {
            while now_us() < start {
                std::thread::sleep(Duration::from_millis(1));
            }
            let (a, g) = (pid_server.cpu_seconds(), cpu_seconds("self"));
            while now_us() < end {
                std::thread::sleep(Duration::from_millis(1));
            }
            (pid_server.cpu_seconds() - a, cpu_seconds("self") - g)
        });
        let tally = drive(clients, cfg.threads, Mode::Flood { window: cfg.window }, shared.clone(), end);
        (sampler.join().expect("sampler"), tally)
    });
    let ((cpu_s, generator_s), tally) = cpu;
    check("throughput", &tally, cfg);
    let secs = cfg.seconds.as_secs_f64();
    let deliveries = tally.deliveries as f64 / secs;
    out.push(("relayed changes/s".into(), deliveries / (cfg.clients - 1) as f64));
    out.push(("deliveries/s".into(), deliveries));
    out.push(("server CPU µs per delivery".into(), cpu_s * 1e6 / tally.deliveries.max(1) as f64));
    out.push(("server CPU cores busy".into(), cpu_s / secs));
    out.push(("load generator CPU cores busy".into(), generator_s / secs));
    if tally.closed > 0 {
        out.push(("sockets closed by the server".into(), tally.closed as f64));
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at] as f64
}

fn latency(command: &str, cfg: &Config, out: &mut Figures) {
    let server = Server::start(command);
    let clients = connect_room(&server.addr, "latency", cfg.clients);
    let t0 = now_us();
    let start = t0 + cfg.warmup.as_micros() as u64;
    let end = start + cfg.seconds.as_micros() as u64;
    let shared = Shared::new(cfg.clients as u64, (start, end), t0, 0);
    let mut tally = drive(clients, cfg.threads, Mode::Paced { rate: cfg.rate }, shared, end);
    check("latency", &tally, cfg);
    tally.latencies_us.sort_unstable();
    out.push(("latency p50 ms".into(), percentile(&tally.latencies_us, 0.5) / 1000.0));
    out.push(("latency p90 ms".into(), percentile(&tally.latencies_us, 0.9) / 1000.0));
    out.push(("latency p99 ms".into(), percentile(&tally.latencies_us, 0.99) / 1000.0));
    out.push(("latency max ms".into(), percentile(&tally.latencies_us, 1.0) / 1000.0));
    drop(server);
}

fn memory(command: &str, cfg: &Config, out: &mut Figures) {
    let server = Server::start(command);
    let first = connect_room(&server.addr, "memory", 1);
    std::thread::sleep(cfg.settle);
    let base = server.rss();
    let mut clients = first;
    for i in 1..=cfg.idle {
        clients.push(Client::new(connect(&server.addr, "memory"), i));
    }
    let shared = Shared::new(clients.len() as u64, (0, 0), 0, cfg.batch_us);
    let settle = now_us() + cfg.settle.as_micros() as u64;
    let tally = drive(clients, 2, Mode::Idle, shared, settle);
    let loaded = server.rss();
    check("memory", &tally, cfg);
    out.push(("server RSS, 1 client, MB".into(), base as f64 / 1e6));
    out.push(("memory per connection KB".into(), (loaded as f64 - base as f64) / cfg.idle as f64 / 1000.0));
}

/// The late joiner's room content: BENCHMARKS.md's cells as one ContentDiff body, and the
/// content hashes of a store holding exactly that.
fn late_content(cells: usize) -> (String, (u32, u32)) {
    let mut clock = Clock::new(Some("bench-prefill"), Box::new(wall_ms));
    let mut body = String::with_capacity(cells * 48);
    body.push_str("[[{");
    for t in 0..10.min(cells) {
        if t > 0 {
            body.push(',');
        }
        body.push_str(&format!("\"t{t}\":[{{"));
        let mut first = true;
        for i in (t..cells).step_by(10) {
            if !first {
                body.push(',');
            }
            first = false;
            clock.next().with_str(|hlc| {
                body.push_str(&format!("\"r{}\":[{{\"c{}\":[\"v{i}\",\"{hlc}\"]}}]", i / 10, i % 3));
            });
        }
        body.push_str("}]");
    }
    body.push_str("}],[{}],1]");
    let store = MergeableStore::new(Some("bench-expected"));
    store.apply_mergeable_changes_json(&body).expect("the prefill body is valid");
    (body, store.get_mergeable_content_hashes())
}

/// Reads text frames until `want` accepts one, or the deadline passes.
fn await_frame(ws: &mut WebSocket<TcpStream>, deadline: Instant, want: &mut dyn FnMut(&str) -> bool) -> bool {
    while Instant::now() < deadline {
        match ws.read() {
            Ok(Message::Text(t)) if want(t.as_str()) => return true,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("holder: {e}"),
        }
    }
    false
}

/// The hashes `[t, v]` in a Response frame from S to request `id`.
fn response_hashes(frame: &str, id: &str) -> Option<(u32, u32)> {
    let rest = frame.strip_prefix("S\n")?.strip_prefix(&format!("[\"{id}\",0,["))?;
    let mut parts = rest.split([',', ']']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn late_joiner(command: &str, cfg: &Config, content: &(String, (u32, u32)), out: &mut Figures) {
    let (body, want) = content;
    for joiner in &cfg.joiners {
        let server = Server::start(command);
        let mut holder = connect(&server.addr, "late");
        holder.get_ref().set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        let t = Instant::now();
        holder.send(Message::text(format!("\n[\"{}\",3,{body}]", tx_id(1)))).expect("prefill");
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut asked = 0u64;
        loop {
            asked += 1;
            let id = format!("{}.hash", tx_id(asked));
            holder.send(Message::text(format!("S\n[\"{id}\",1,\"\"]"))).expect("ask S");
            let mut got = None;
            await_frame(&mut holder, Instant::now() + Duration::from_secs(2), &mut |f| {
                got = response_hashes(f, &id);
                got.is_some()
            });
            if got == Some(*want) {
                break;
            }
            assert!(Instant::now() < deadline, "the room never reached the expected hashes (last {got:?})");
            std::thread::sleep(Duration::from_millis(50));
        }
        let prefill_ms = t.elapsed().as_secs_f64() * 1000.0;
        let url = format!("ws://{}/late", server.addr);
        let ms = match joiner.as_str() {
            "tinybase" => node_joiner(&url, *want),
            "ours" => our_joiner(&url, *want),
            other => panic!("unknown joiner {other}"),
        };
        let label = if joiner == "tinybase" { "TinyBase client" } else { "our client" };
        out.push((format!("room prefill ms ({} cells)", cfg.cells), prefill_ms));
        out.push((format!("late joiner ms, {} cells, {label}", cfg.cells), ms));
        drop(holder);
    }
}

fn node_joiner(url: &str, want: (u32, u32)) -> f64 {
    let out = Command::new("node")
        .arg("tests/interop/ws/bench_joiner.mjs")
        .args([url, &want.0.to_string(), &want.1.to_string(), "300000"])
        .stderr(Stdio::inherit())
        .output()
        .expect("node bench_joiner.mjs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the TinyBase joiner failed: {text}");
    let at = text.find("\"ms\":").expect("ms") + 5;
    text[at..].trim_end_matches(|c: char| !c.is_ascii_digit()).parse().expect("ms value")
}

/// This library's WsSynchronizer (legacy framing) as the late joiner: from opening the socket to
/// equal hashes. The request timeout is long, as the TinyBase joiner's.
fn our_joiner(url: &str, want: (u32, u32)) -> f64 {
    let store = MergeableStore::new(None);
    let mut options = WsOptions { url: url.to_string(), reconnect: false, ..WsOptions::default() };
    options.sync.request_timeout = Duration::from_secs(60);
    let t = Instant::now();
    let synchronizer = WsSynchronizer::new(&store, options).expect("WsSynchronizer");
    let _ = synchronizer.start_sync_async(None);
    let deadline = t + Duration::from_secs(300);
    while store.get_mergeable_content_hashes() != want {
        assert!(Instant::now() < deadline, "our joiner never reached the room's hashes");
        std::thread::sleep(Duration::from_micros(200));
    }
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    synchronizer.destroy();
    ms
}

// ---------------------------------------------------------------------------------------------
// Table

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    s.sort_by(f64::total_cmp);
    (s[0], s[s.len() / 2], s[s.len() - 1])
}

fn fmt(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else if x.abs() >= 0.1 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// (higher is better, target factor in "ours is N times better")
fn target(metric: &str) -> (bool, Option<f64>) {
    match metric {
        "relayed changes/s" => (true, Some(5.0)),
        "deliveries/s" => (true, None),
        "latency p99 ms" => (false, Some(3.0)),
        "memory per connection KB" => (false, Some(4.0)),
        m if m.starts_with("late joiner ms, own") => (false, Some(10.0)),
        _ => (false, None),
    }
}

fn print_table(results: &BTreeMap<String, BTreeMap<String, Vec<f64>>>, order: &[String], runs: usize) {
    let ours = results.get("ours");
    let theirs = results.get("tinybase");
    println!();
    println!("| metric (runs: {runs}) | ours (min / median / max) | TinyBase (min / median / max) | ratio | target | met? |");
    println!("|---|---|---|---|---|---|");
    for metric in order {
        let o = ours.and_then(|m| m.get(metric)).map(|v| stats(v));
        let t = theirs.and_then(|m| m.get(metric)).map(|v| stats(v));
        let cell = |s: Option<(f64, f64, f64)>| match s {
            Some((a, b, c)) => format!("{} / {} / {}", fmt(a), fmt(b), fmt(c)),
            None => "-".into(),
        };
        let (higher, goal) = target(metric);
        let ratio = match (o, t) {
            (Some((_, a, _)), Some((_, b, _))) if a > 0.0 && b > 0.0 => Some(if higher { a / b } else { b / a }),
            _ => None,
        };
        let ratio_text = ratio.map(|r| format!("{r:.2}x")).unwrap_or("-".into());
        let goal_text = goal.map(|g| format!(">= {g}x")).unwrap_or("-".into());
        let met = match (ratio, goal) {
            (Some(r), Some(g)) => if r >= g { "yes" } else { "no" },
            _ => "-",
        };
        println!("| {metric} | {} | {} | {ratio_text} | {goal_text} | {met} |", cell(o), cell(t));
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut runs = 3;
    let mut servers = vec!["tinybase".to_string(), "ours".to_string()];
    let mut cfg = Config {
        clients: 100,
        threads: 2,
        warmup: Duration::from_secs(2),
        seconds: Duration::from_secs(10),
        window: 2000,
        batch_us: 2000,
        rate: 100.0,
        idle: 1000,
        cells: 100_000,
        joiners: vec!["tinybase".into(), "ours".into()],
        settle: Duration::from_secs(2),
        strict: false,
    };
    let mut phases: Vec<String> = ["throughput", "latency", "memory", "late"].map(String::from).to_vec();
    let list = |s: String| s.split(',').map(str::to_string).collect::<Vec<_>>();
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => runs = value().parse().expect("--runs N"),
            "--servers" => servers = list(value()),
            "--joiner" => cfg.joiners = list(value()),
            "--phases" => phases = list(value()),
            "--clients" => cfg.clients = value().parse().expect("--clients N"),
            "--threads" => cfg.threads = value().parse().expect("--threads N"),
            "--seconds" => cfg.seconds = Duration::from_secs_f64(value().parse().expect("--seconds S")),
            "--warmup" => cfg.warmup = Duration::from_secs_f64(value().parse().expect("--warmup S")),
            "--window" => cfg.window = value().parse().expect("--window N"),
            "--batch-us" => cfg.batch_us = value().parse().expect("--batch-us N"),
            "--rate" => cfg.rate = value().parse().expect("--rate R"),
            "--idle" => cfg.idle = value().parse().expect("--idle N"),
            "--cells" => cfg.cells = value().parse().expect("--cells N"),
            "--smoke" => {
                runs = 1;
                cfg.clients = 10;
                cfg.warmup = Duration::from_millis(300);
                cfg.seconds = Duration::from_millis(500);
                cfg.settle = Duration::from_millis(300);
                cfg.strict = true;
                cfg.window = 20;
                cfg.rate = 50.0;
                cfg.idle = 50;
                cfg.cells = 1000;
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let command = |server: &str| match server {
        "tinybase" => std::env::var("TINYBASE_CMD")
            .unwrap_or_else(|_| "node tests/interop/ws/bench_server.mjs --persist memory".into()),
        "ours" => std::env::var("OURS_CMD").unwrap_or_else(|_| {
            "target/release/tinybase-server --listen 127.0.0.1:0 --quiet --max-clients 100000 \
             --max-connections-per-ip 100000"
                .into()
        }),
        other => panic!("unknown server {other}"),
    };
    let content = if phases.iter().any(|p| p == "late") { late_content(cfg.cells) } else { (String::new(), (0, 0)) };
    let mut results: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for run in 1..=runs {
        for server in &servers {
            let cmd = command(server);
            eprintln!("run {run}/{runs}: {server} (`{cmd}`)");
            let mut figures = Figures::new();
            let on = |phase: &str| phases.iter().any(|p| p == phase);
            if on("throughput") {
                throughput(&cmd, &cfg, &mut figures);
            }
            if on("latency") {
                latency(&cmd, &cfg, &mut figures);
            }
            if on("memory") {
                memory(&cmd, &cfg, &mut figures);
            }
            if on("late") {
                late_joiner(&cmd, &cfg, &content, &mut figures);
            }
            for (metric, value) in figures {
                eprintln!("  {metric}: {}", fmt(value));
                if !order.contains(&metric) {
                    order.push(metric.clone());
                }
                results.entry(server.clone()).or_default().entry(metric).or_default().push(value);
            }
        }
    }
    // End to end: each side's own client joining its own server.
    let own = "late joiner ms, own client (ours: WsSynchronizer; TinyBase: createWsSynchronizer)".to_string();
    for (server, joiner) in [("ours", "our client"), ("tinybase", "TinyBase client")] {
        let key = format!("late joiner ms, {} cells, {joiner}", cfg.cells);
        if let Some(v) = results.get(server).and_then(|m| m.get(&key)).cloned() {
            results.entry(server.to_string()).or_default().insert(own.clone(), v);
            if !order.contains(&own) {
                order.push(own.clone());
            }
        }
    }
    println!(
        "W10, {} clients in one room (throughput: {} changes in flight; latency at {} changes/s = {} \
         deliveries/s), {} idle connections, late joiner of {} cells",
        cfg.clients,
        cfg.window,
        cfg.rate,
        cfg.rate * (cfg.clients - 1) as f64,
        cfg.idle,
        cfg.cells
    );
    print_table(&results, &order, runs);
    let _ = std::io::stdout().flush();
}
