//! The harness of the WebSocket interop tests (tinybase_interop.rs): processes that die with the
//! test (node's TinyBase server and clients, our server binary), temporary folders, our clients
//! and their writers, and the convergence check that compares everybody's content hashes.

#![allow(dead_code)]

use crate::edits::random_op;
use crate::rng::Rng;
use crate::script::{call_op, first_difference, same_json};
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tinybase::sync::ws::{WsClient, WsOptions, WsSynchronizer};
use tinybase::sync::SynchronizerOptions;
use tinybase::MergeableStore;

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("server/ is in the repository").to_path_buf()
}

/// tests/interop/ws/`name`, once the pinned npm packages are there.
pub fn node_script(name: &str) -> PathBuf {
    let interop = root().join("tests/interop");
    for package in ["tinybase", "ws"] {
        assert!(
            interop.join("node_modules").join(package).is_dir(),
            "tests/interop/node_modules/{package} is missing: run `npm ci` in tests/interop (scripts/test-all.sh does)"
        );
    }
    interop.join("ws").join(name)
}

/// A folder under the system's temporary folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty folder named after `label`.
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tinybase-interop-{}-{label}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary folder");
        TempDir(dir)
    }
    /// A path inside.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (SIGKILL) when dropped, whatever path the test takes out.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    /// Sends `signal` (`TERM`, `KILL`) through kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().expect("kill(1)");
        assert!(status.success(), "{}: kill -{signal} failed", self.name);
    }
    /// Waits for the exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    /// The resident set size (VmRSS of /proc/PID/status), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("/proc/PID/status");
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
        let kb: u64 = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmRSS in kB");
        kb * 1024
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Results and events of a line-driven node process, filled by its reader thread.
#[derive(Default)]
struct Inbox {
    results: HashMap<u64, Result<Json, String>>,
    events: Vec<Json>,
    listening: Option<u16>,
    exited: bool,
}

/// A node process speaking the JSON command lines of tests/interop/ws (tb_client.mjs,
/// tb_server.mjs): `{"id", "op", "args"}` in, results by id and event lines out.
pub struct Node {
    pub proc: Proc,
    stderr_file: PathBuf,
    /// The commands sent, by id (for failure messages).
    sent: Mutex<HashMap<u64, String>>,
    stdin: Mutex<ChildStdin>,
    next_id: AtomicU64,
    inbox: Arc<(Mutex<Inbox>, Condvar)>,
}

impl Node {
    /// Starts `node tests/interop/ws/<script> args...`; its stderr goes to `stderr_file`.
    pub fn start(script: &str, args: &[String], stderr_file: &Path) -> Node {
        let mut child = Command::new("node")
            .arg(node_script(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr_file).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node (needed for the TinyBase side): {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let stdin = Mutex::new(child.stdin.take().expect("stdin"));
        let inbox: Arc<(Mutex<Inbox>, Condvar)> = Arc::default();
        let reader_inbox = inbox.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let (lock, cvar) = &*reader_inbox;
                let mut inbox = lock.lock().unwrap();
                if let Some(port) = line.strip_prefix("listening ") {
                    inbox.listening = port.trim().parse().ok();
                } else if let Ok(obj) = serde_json::from_str::<Json>(&line) {
                    let id = obj.get("id").and_then(Json::as_u64);
                    match (obj.get("type").and_then(Json::as_str), id) {
                        (Some("result"), Some(id)) => {
                            inbox.results.insert(id, Ok(obj.get("value").cloned().unwrap_or(Json::Null)));
                        }
                        (Some("error"), Some(id)) => {
                            let message = obj.get("message").and_then(Json::as_str).unwrap_or("?").to_string();
                            inbox.results.insert(id, Err(message));
                        }
                        _ => inbox.events.push(obj),
                    }
                }
                cvar.notify_all();
            }
            let (lock, cvar) = &*reader_inbox;
            lock.lock().unwrap().exited = true;
            cvar.notify_all();
        });
        Node { proc: Proc { child, name: script.to_string() }, stderr_file: stderr_file.to_path_buf(), sent: Mutex::default(), stdin, next_id: AtomicU64::new(1), inbox }
    }

    /// Waits until `ready` holds for the inbox, at most `timeout`.
    fn wait_inbox<T>(&self, timeout: Duration, mut ready: impl FnMut(&mut Inbox) -> Option<T>) -> Option<T> {
        let (lock, cvar) = &*self.inbox;
        let deadline = Instant::now() + timeout;
        let mut inbox = lock.lock().unwrap();
        loop {
            if let Some(value) = ready(&mut inbox) {
                return Some(value);
            }
            let now = Instant::now();
            if now >= deadline || inbox.exited {
                return None;
            }
            inbox = cvar.wait_timeout(inbox, deadline - now).unwrap().0;
        }
    }

    /// The port of its `listening PORT` line (tb_server.mjs).
    pub fn wait_listening(&self, timeout: Duration) -> u16 {
        self.wait_inbox(timeout, |inbox| inbox.listening)
            .unwrap_or_else(|| panic!("{} did not print `listening PORT` within {timeout:?}", self.proc.name))
    }

    /// Sends a command; its result comes with [`Node::wait`].
    pub fn send(&self, op: &str, args: Json) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let line = json!({"id": id, "op": op, "args": [args]}).to_string();
        self.sent.lock().unwrap().insert(id, line.chars().take(200).collect());
        let mut stdin = self.stdin.lock().unwrap();
        writeln!(stdin, "{line}").and_then(|_| stdin.flush()).unwrap_or_else(|e| panic!("{}: {op}: {e}", self.proc.name));
        id
    }

    /// The result of command `id` (Err: the error it answered), None if none came within `timeout`.
    pub fn try_wait(&self, id: u64, timeout: Duration) -> Option<Result<Json, String>> {
        self.wait_inbox(timeout, |inbox| inbox.results.remove(&id))
    }

    /// The last `n` event lines, one per line (for failure messages).
    pub fn events_tail(&self, n: usize) -> String {
        let events = self.events();
        events[events.len().saturating_sub(n)..].iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
    }

    /// The result of command `id` (Err: the error it answered), at most `timeout`.
    pub fn wait(&self, id: u64, timeout: Duration) -> Result<Json, String> {
        self.try_wait(id, timeout).unwrap_or_else(|| {
            let exited = self.inbox.0.lock().unwrap().exited;
            let tail = file_tail(&self.stderr_file, 3000);
            let how = if exited { "it exited".to_string() } else { format!("none within {timeout:?}") };
            let command = self.sent.lock().unwrap().get(&id).cloned().unwrap_or_default();
            let events = self.events_tail(15);
            panic!("{}: no answer to {command} ({how}); its last events:\n{events}\nits stderr ends with:\n{tail}", self.proc.name)
        })
    }

    /// Sends a command and waits (30 s at most) for its result.
    pub fn call(&self, op: &str, args: Json) -> Result<Json, String> {
        let id = self.send(op, args);
        self.wait(id, Duration::from_secs(30))
    }

    /// Like [`Node::call`], panicking on an error answer.
    pub fn ok(&self, op: &str, args: Json) -> Json {
        let what = format!("{op} {args}");
        self.call(op, args).unwrap_or_else(|e| panic!("{}: {what}: {e}", self.proc.name))
    }

    /// The event lines received so far.
    pub fn events(&self) -> Vec<Json> {
        self.inbox.0.lock().unwrap().events.clone()
    }
}

/// The last `chars` characters of the file at `path` (a log), for failure messages.
pub fn file_tail(path: &Path, chars: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.chars().rev().take(chars).collect::<Vec<_>>().into_iter().rev().collect()
}

/// `(tables hash, values hash)` from a `[t, v]` JSON array.
pub fn hashes_of(json: &Json) -> (u32, u32) {
    let h = |i: usize| json.get(i).and_then(Json::as_u64).unwrap_or_else(|| panic!("hashes: {json}")) as u32;
    (h(0), h(1))
}

/// TinyBase's clients in one node process (tb_client.mjs).
pub struct TbClients {
    pub node: Node,
    /// How each client was opened, to open it again.
    specs: Mutex<HashMap<String, Json>>,
    /// How many times a client closed for overload was opened again.
    pub rejoins: AtomicU64,
}

impl TbClients {
    /// Starts the process; its stderr goes to `dir`/tb_client.stderr.
    pub fn start(dir: &TempDir) -> TbClients {
        let node = Node::start("tb_client.mjs", &[], &dir.join("tb_client.stderr"));
        node.wait_inbox(Duration::from_secs(20), |inbox| inbox.events.iter().any(|e| e["type"] == "ready").then_some(()))
            .expect("tb_client.mjs did not start within 20 s");
        TbClients { node, specs: Mutex::default(), rejoins: AtomicU64::new(0) }
    }
    /// Opens (or reopens) client `spec.name` and starts its sync; Err: TinyBase's rejection.
    pub fn open(&self, spec: Json) -> Result<Json, String> {
        let name = spec["name"].as_str().expect("a client's name").to_string();
        self.specs.lock().unwrap().insert(name, spec.clone());
        self.node.call("open", spec)
    }
    /// What a TinyBase app does when the server closes its socket for overload (1013
    /// `tinybase:15:...`, e.g. more than 16 MiB queued for a client too slow to read it,
    /// PROTOCOL.md 7.3): it opens a new one (TinyBase's clients never reconnect). True if
    /// client `name` was so closed and has been opened again (waiting at most 10 s for that).
    pub fn rejoin_if_overloaded(&self, name: &str) -> bool {
        let info = self.node.ok("info", json!({"name": name}));
        if !info["closed"]["reason"].as_str().is_some_and(|r| r.starts_with("tinybase:15")) {
            return false;
        }
        let Some(spec) = self.specs.lock().unwrap().get(name).cloned() else { return false };
        self.rejoins.fetch_add(1, Ordering::Relaxed);
        // Its startSync may be cut short by another overload: the caller asks again.
        let id = self.node.send("open", spec);
        let _ = self.node.try_wait(id, Duration::from_secs(10));
        true
    }
    /// Client `name`'s content hashes.
    pub fn hashes(&self, name: &str) -> (u32, u32) {
        hashes_of(&self.node.ok("state", json!({"name": name, "content": false}))["hashes"])
    }
    /// Client `name`'s `getContent()`.
    pub fn content(&self, name: &str) -> Json {
        self.node.ok("state", json!({"name": name}))["content"].clone()
    }
    /// A store method on client `name` (wire arguments).
    pub fn call(&self, name: &str, method: &str, args: Json) -> Json {
        self.node.ok("call", json!({"name": name, "method": method, "args": args}))
    }
}

/// One of our clients: a store and its WebSocket synchronizer.
pub struct Ours {
    pub name: String,
    pub store: MergeableStore,
    pub sync: WsSynchronizer,
    /// What its ignored-error hook reported (shown when a check fails).
    pub errors: Arc<Mutex<Vec<String>>>,
}

/// How one of our clients connects.
#[derive(Clone, Default)]
pub struct OursSpec {
    /// `ws://127.0.0.1:PORT/room` (legacy) or the base URL (multiplexed).
    pub url: String,
    pub channel: Option<String>,
    pub fragment_size: Option<usize>,
    pub headers: Vec<(String, String)>,
    /// Anti-entropy period: on whenever TinyBase peers take part (PROTOCOL.md 12.7).
    pub anti_entropy: Option<Duration>,
}

/// The options of one of our clients: reconnecting quickly (the tests restart servers).
pub fn ws_options(spec: &OursSpec) -> WsOptions {
    WsOptions {
        url: spec.url.clone(),
        channel_id: spec.channel.clone(),
        fragment_size: spec.fragment_size,
        headers: spec.headers.clone(),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(500),
        ping_interval: Duration::from_secs(2),
        sync: SynchronizerOptions { anti_entropy: spec.anti_entropy, ..Default::default() },
        ..Default::default()
    }
}

impl Ours {
    /// Connects a new store and starts syncing, waiting (10 s at most) for the initial load and save.
    pub fn open(name: &str, spec: &OursSpec) -> Ours {
        let store = MergeableStore::new(None);
        let mut options = ws_options(spec);
        let errors = collect_errors(&mut options.sync);
        let sync = WsSynchronizer::new(&store, options).unwrap_or_else(|e| panic!("{name}: WsSynchronizer::new: {e}"));
        Ours::started(name, store, sync, errors)
    }
    /// Joins a shared multiplexed connection on `channel`, then starts syncing.
    pub fn join(name: &str, client: &WsClient, channel: &str, anti_entropy: Option<Duration>) -> Ours {
        let store = MergeableStore::new(None);
        let mut options = SynchronizerOptions { anti_entropy, ..Default::default() };
        let errors = collect_errors(&mut options);
        let sync = client.join(&store, channel, options).unwrap_or_else(|e| panic!("{name}: WsClient::join: {e}"));
        Ours::started(name, store, sync, errors)
    }
    fn started(name: &str, store: MergeableStore, sync: WsSynchronizer, errors: Arc<Mutex<Vec<String>>>) -> Ours {
        let started = sync.start_sync_async(None);
        started.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("{name}: startSync did not finish within 10 s"));
        Ours { name: name.to_string(), store, sync, errors }
    }
    /// The store's content hashes.
    pub fn hashes(&self) -> (u32, u32) {
        self.store.get_mergeable_content_hashes()
    }
    /// The store's `getContent()` as JSON.
    pub fn content(&self) -> Json {
        serde_json::from_str(&self.store.get_content_json()).expect("content JSON")
    }
}

/// Sets an ignored-error hook on `options` that keeps what it is told.
fn collect_errors(options: &mut SynchronizerOptions) -> Arc<Mutex<Vec<String>>> {
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = errors.clone();
    options.on_ignored_error = Some(Arc::new(move |e: &str| kept.lock().unwrap().push(e.to_string())));
    errors
}

/// `count` random edits of `store` (10% transactions of 2–4) on a thread, pausing up to
/// `max_pause_ms` between them; joins to the number of edits.
pub fn our_writers(store: &MergeableStore, seed: u64, count: u64, max_pause_ms: u64, tag: &str) -> JoinHandle<u64> {
    let (store, tag) = (store.clone(), format!("{tag}-"));
    std::thread::spawn(move || {
        let mut rng = Rng(seed.wrapping_mul(1_000_003).wrapping_add(77));
        let mut edits = 0;
        for _ in 0..count {
            let steps = if rng.chance(10) { 2 + rng.below(3) } else { 1 };
            let ops: Vec<_> = (0..steps).map(|_| random_op(&mut rng, &tag)).collect();
            store.transaction(|_| {
                for (op, args) in &ops {
                    call_op(&store, op, args, false).expect("random edit");
                }
            });
            edits += steps;
            std::thread::sleep(Duration::from_millis(rng.below(max_pause_ms + 1)));
        }
        edits
    })
}

/// Sets table `big`, row `row`, cell `text` to a string of `bytes` bytes (one payload over the
/// fragment size, and over 1 MiB when `bytes` is).
pub fn big_cell_args(row: &str, bytes: usize, fill: char) -> Json {
    json!(["big", row, "text", fill.to_string().repeat(bytes)])
}

/// Another participant of a convergence check, by name: its content hashes when asked (None
/// while it has none), e.g. TinyBase's server store.
pub type Extra<'a> = (&'a str, &'a dyn Fn() -> Option<(u32, u32)>);

/// Everybody whose hashes the convergence check compares.
pub struct Party<'a> {
    pub ours: Vec<&'a Ours>,
    pub tb: Option<&'a TbClients>,
    pub tb_names: Vec<String>,
    /// Another participant's hashes (e.g. TinyBase's server store), None while it has none.
    pub extra: Option<Extra<'a>>,
}

impl Party<'_> {
    fn all_hashes(&self) -> Vec<(String, Option<(u32, u32)>)> {
        let mut all: Vec<_> = self.ours.iter().map(|o| (o.name.clone(), Some(o.hashes()))).collect();
        if let Some(tb) = self.tb {
            all.extend(self.tb_names.iter().map(|n| (n.clone(), Some(tb.hashes(n)))));
        }
        if let Some((name, f)) = &self.extra {
            all.push((name.to_string(), f()));
        }
        all
    }

    /// After the edits: a quiet moment, then every TinyBase client announces its hashes
    /// (`save()`: TinyBase never sends a transaction committed while it was loading,
    /// PROTOCOL.md 6.4, and only such an announcement lets the others pull it), then everybody's
    /// content hashes must become equal within `within`, and the contents of one of ours and
    /// one of TinyBase's equal. Returns the common hashes and how long it took.
    pub fn converge(&self, what: &str, within: Duration) -> ((u32, u32), Duration) {
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(300));
        if let Some(tb) = self.tb {
            for name in &self.tb_names {
                // A client opened again announces its hashes as it starts syncing.
                if !tb.rejoin_if_overloaded(name) {
                    tb.node.ok("save", json!({"name": name}));
                }
            }
        }
        let deadline = start + within;
        loop {
            if let Some(tb) = self.tb {
                self.tb_names.iter().for_each(|name| _ = tb.rejoin_if_overloaded(name));
            }
            let all = self.all_hashes();
            if let Some(first) = all[0].1.filter(|&f| all.iter().all(|(_, h)| *h == Some(f))) {
                self.same_contents(what);
                return (first, start.elapsed());
            }
            if Instant::now() > deadline {
                let ours_errors: Vec<_> = self.ours.iter().map(|o| (o.name.clone(), o.errors.lock().unwrap().clone())).collect();
                let tb_info: Vec<_> =
                    self.tb.map(|tb| self.tb_names.iter().map(|n| tb.node.ok("info", json!({"name": n}))).collect()).unwrap_or_default();
                panic!(
                    "{what}: no convergence within {within:?}; content hashes: {all:?}; our ignored errors: {ours_errors:?}; TinyBase's: {tb_info:?}"
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn same_contents(&self, what: &str) {
        let (Some(ours), Some(tb), Some(name)) = (self.ours.first(), self.tb, self.tb_names.first()) else { return };
        let (a, b) = (ours.content(), tb.content(name));
        assert!(
            same_json(&a, &b),
            "{what}: equal hashes but {} and {name} differ: {}",
            ours.name,
            first_difference("", &a, &b).unwrap_or_default()
        );
    }
}

/// TinyBase's WsServer (tb_server.mjs), with file-persisted room stores when `data` is given.
pub struct TbServer {
    pub node: Node,
    pub port: u16,
}

impl TbServer {
    /// Starts it on a free port of 127.0.0.1 and waits until it listens.
    pub fn start(dir: &TempDir, data: Option<&Path>, fragment_size: Option<usize>) -> TbServer {
        let mut args = Vec::new();
        if let Some(data) = data {
            args.extend(["--data".to_string(), data.display().to_string()]);
        }
        if let Some(size) = fragment_size {
            args.extend(["--fragment-size".to_string(), size.to_string()]);
        }
        let node = Node::start("tb_server.mjs", &args, &dir.join("tb_server.stderr"));
        let port = node.wait_listening(Duration::from_secs(20));
        TbServer { node, port }
    }
    /// `ws://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}/{path}", self.port)
    }
    /// The content hashes of room `room`'s server store (client `S`), None if it has none.
    pub fn room_hashes(&self, room: &str) -> Option<(u32, u32)> {
        let state = self.node.ok("state", json!(room));
        (!state.is_null()).then(|| hashes_of(&state["hashes"]))
    }
}

/// Our server, target/.../tinybase-server, as a process.
pub struct OurServer {
    pub proc: Proc,
    pub port: u16,
    pub args: Vec<String>,
    pub log: PathBuf,
}

impl OurServer {
    /// Starts `tinybase-server --listen 127.0.0.1:PORT args...` (PORT 0: a free one) and waits
    /// for its `listening` line; stderr (one line per connection) goes to `dir`/server-N.log.
    pub fn start(dir: &TempDir, port: u16, args: &[String]) -> OurServer {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let log = dir.join(&format!("server-{}.log", RUNS.fetch_add(1, Ordering::Relaxed)));
        let mut child = Command::new(env!("CARGO_BIN_EXE_tinybase-server"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("server log"))
            .spawn()
            .expect("target/.../tinybase-server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            // Read to the end, so that the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent && line.contains("listening") {
                    sent = tx.send(line).is_ok();
                }
            }
        });
        let mut proc = Proc { child, name: "tinybase-server".into() };
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(_) => {
                let status = proc.wait_exit(Duration::from_millis(10));
                let log_text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("tinybase-server {args:?} did not print `listening` within 20 s (exit: {status:?}); its log:\n{log_text}");
            }
        };
        let port = line
            .find("127.0.0.1:")
            .and_then(|i| line[i + 10..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok())
            .unwrap_or_else(|| panic!("no 127.0.0.1:PORT in the line {line:?}"));
        OurServer { proc, port, args: args.to_vec(), log }
    }
    /// `ws://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}/{path}", self.port)
    }
    /// SIGTERM: must exit 0 within 10 s (rooms saved, sockets closed 1001).
    pub fn terminate(&mut self) {
        self.proc.signal("TERM");
        let status = self.proc.wait_exit(Duration::from_secs(10)).expect("tinybase-server still running 10 s after SIGTERM");
        assert!(status.success(), "tinybase-server exited with {status} after SIGTERM");
    }
    /// SIGKILL: no chance to save anything.
    pub fn kill(&mut self) {
        self.proc.signal("KILL");
        self.proc.wait_exit(Duration::from_secs(10)).expect("tinybase-server still running after SIGKILL");
    }
    /// The same server again (same port and arguments, so the same data folder).
    pub fn restart(&self, dir: &TempDir) -> OurServer {
        // The port was just released; retry briefly should the bind race anything.
        for _ in 0..50 {
            if std::net::TcpListener::bind(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        OurServer::start(dir, self.port, &self.args)
    }
}
