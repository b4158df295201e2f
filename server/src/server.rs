//! The server: options, the HTTP side (upgrade, `/healthz`, `/metrics`), rooms, saving and
//! unloading, listeners, graceful shutdown.

use crate::auth::{Access, AuthHook, AuthKind, AuthRequest};
use crate::metrics::{Metrics, Refusal};
use crate::outbox::Outbox;
use crate::persist::StoreKind;
use crate::room::{self, Member, Room};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tinybase::sync::ws::codec;

/// Called with (path id, +1 when the room got its first client | -1 when its last one left).
pub type PathIdsListener = Arc<dyn Fn(&str, i8) + Send + Sync>;
/// Called with (path id, client id, +1 joined | -1 left).
pub type ClientIdsListener = Arc<dyn Fn(&str, &str, i8) + Send + Sync>;

/// How the server runs. `ServerOptions::default()` listens on 127.0.0.1:8043 without a data
/// folder (rooms live in memory only).
#[derive(Clone)]
pub struct ServerOptions {
    /// The address to listen on (port 0 picks a free port; see [`ServerHandle::local_addr`]).
    pub listen: SocketAddr,
    /// The folder of the rooms' files (or SQLite databases, see `store`); None: in memory only
    /// (unless `store` is PostgreSQL, which needs no folder).
    pub data_dir: Option<PathBuf>,
    /// How rooms are kept: one file per room in `data_dir` in TinyBase's file format (the
    /// default), one incremental SQLite database per room in `data_dir`, or a PostgreSQL
    /// database shared by every room (and by other servers). See [`StoreKind`].
    pub store: StoreKind,
    /// Whether each room has a server store (client `S`, PROTOCOL.md 8.2); false makes a pure
    /// relay (like TinyBase's WsServerSimple).
    pub server_store: bool,
    /// How long a room with a server store stays loaded after its last client left (so a quick
    /// reconnect finds it warm), before it is saved and unloaded.
    pub room_idle: Duration,
    /// How long after a room's last change it is saved (changes going on all the time are
    /// saved at least every 4 such delays).
    pub save_delay: Duration,
    /// At most this many connections at once (more: HTTP 503, no upgrade).
    pub max_clients: usize,
    /// At most this many rooms loaded at once (more: HTTP 503 for a legacy client, close 1013
    /// `tinybase:15:rooms` for a multiplexed subscribe).
    pub max_rooms: usize,
    /// At most this many connections from one IP address (more: HTTP 429).
    pub max_connections_per_ip: usize,
    /// The largest message accepted (more: close 1013 `tinybase:15:socket`), and the most bytes
    /// queued for a slow client before it is closed the same way.
    pub max_message_bytes: usize,
    /// The server stores' request timeout (TinyBase's `requestTimeoutSeconds`); incomplete
    /// fragmented messages expire after it, and a room not ready after 10 of them closes its
    /// waiting clients (1013 `tinybase:15:server`).
    pub request_timeout: Duration,
    /// The server stores' fragment size (7.2); None: never fragment.
    pub fragment_size: Option<usize>,
    /// Beyond TinyBase, off by default: this often, each room store re-announces its hashes
    /// and pulls from a client (PROTOCOL.md 12.7), repairing what a TinyBase client never sent
    /// (6.4's data-loss race) and what a client missed, at the cost of a few messages per room.
    pub anti_entropy: Option<Duration>,
    /// Decides each connection's (and each multiplexed channel's) access; None: everyone may
    /// read and write.
    pub auth: Option<AuthHook>,
    /// One line per connection and per error on stderr.
    pub log: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8043)),
            data_dir: None,
            store: StoreKind::File,
            server_store: true,
            room_idle: Duration::from_secs(30),
            save_delay: Duration::from_millis(250),
            max_clients: 10_000,
            max_rooms: 10_000,
            max_connections_per_ip: 10_000,
            max_message_bytes: codec::MAX_PAYLOAD_BYTES,
            request_timeout: Duration::from_secs(1),
            fragment_size: None,
            anti_entropy: None,
            auth: None,
            log: true,
        }
    }
}

/// `getStats()`: rooms with clients, and memberships.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Rooms with at least one client.
    pub paths: usize,
    /// Client memberships over all rooms.
    pub clients: usize,
}

/// Identifies a listener for [`ServerHandle::del_listener`].
pub type ListenerId = u64;

#[derive(Default)]
struct Listeners {
    next: AtomicU64,
    paths: Mutex<Vec<(ListenerId, PathIdsListener)>>,
    clients: Mutex<Vec<(ListenerId, Option<String>, ClientIdsListener)>>,
}

/// State shared by the server's tasks.
pub(crate) struct Shared {
    pub(crate) options: ServerOptions,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) rooms: Mutex<HashMap<Arc<str>, Arc<Room>>>,
    /// Open connections, for the shutdown.
    conns: Mutex<HashMap<u64, Arc<Outbox>>>,
    next_conn: AtomicU64,
    clients: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    accepting: AtomicBool,
    /// Set when a room was refused for `max_rooms`: the saver then unloads the rooms without
    /// clients at once rather than after `room_idle`, making room for the next attempt.
    evict: AtomicBool,
    listeners: Listeners,
}

impl Shared {
    pub(crate) fn log(&self, line: &str) {
        if self.options.log {
            eprintln!("tinybase-server: {line}");
        }
    }

    pub(crate) fn log_error(&self, line: &str) {
        self.metrics.error();
        self.log(&format!("error: {line}"));
    }

    /// Whether a new room may be made for `path` now.
    pub(crate) fn room_available(&self, path: &str) -> bool {
        let rooms = self.rooms.lock();
        let available = rooms.contains_key(path) || rooms.len() < self.options.max_rooms;
        if !available {
            self.evict.store(true, Ordering::Release);
        }
        available
    }

    /// Adds a client to the room `path`, loading or making it. Err: too many rooms.
    pub(crate) fn join(self: &Arc<Self>, path: &str, client_id: &Arc<str>, member: Member) -> Result<Arc<Room>, codec::Close> {
        let (room, first, created) = {
            let mut rooms = self.rooms.lock();
            let (room, created) = match rooms.get(path) {
                Some(room) => (room.clone(), false),
                None => {
                    if rooms.len() >= self.options.max_rooms {
                        self.evict.store(true, Ordering::Release);
                        return Err(codec::Close::overload("rooms"));
                    }
                    let room = Arc::new(Room::new(path.into(), self.options.server_store, self.options.fragment_size));
                    rooms.insert(room.path.clone(), room.clone());
                    self.metrics.room_opened();
                    (room, true)
                }
            };
            let mut inner = room.inner.write();
            let first = inner.members.is_empty();
            inner.members.insert(client_id.clone(), member);
            inner.empty_since = None;
            (room.clone(), first, created)
        };
        if created && self.options.server_store {
            let (shared, r) = (self.clone(), room.clone());
            tokio::task::spawn_blocking(move || room::start_store(&shared, &r));
            let (shared, r) = (self.clone(), room.clone());
            let limit = self.options.request_timeout * 10;
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                if !r.is_ready() {
                    shared.log_error(&format!("room {:?}: its server store did not start in {limit:?}", r.path));
                    for m in r.inner.read().members.values() {
                        m.outbox.close(1013, "tinybase:15:server");
                    }
                }
            });
        }
        if first {
            self.path_changed(path, 1);
        }
        self.client_changed(path, client_id, 1);
        Ok(room)
    }

    /// Removes a client from a room. A room without a server store goes at once; one with a
    /// store stays loaded for `room_idle` (the saver unloads it).
    pub(crate) fn leave(&self, room: &Arc<Room>, client_id: &Arc<str>) {
        let empty = {
            let mut rooms = self.rooms.lock();
            let mut inner = room.inner.write();
            if inner.members.remove(client_id).is_none() {
                return;
            }
            let empty = inner.members.is_empty();
            if empty {
                inner.empty_since = Some(Instant::now());
                if room.store.get().is_none() && !self.options.server_store && rooms.get(&room.path).is_some_and(|r| Arc::ptr_eq(r, room)) {
                    rooms.remove(&room.path);
                    self.metrics.room_closed();
                }
            }
            empty
        };
        self.client_changed(&room.path, client_id, -1);
        if empty {
            self.path_changed(&room.path, -1);
        }
    }

    fn path_changed(&self, path: &str, change: i8) {
        let listeners: Vec<_> = self.listeners.paths.lock().iter().map(|(_, f)| f.clone()).collect();
        for f in listeners {
            f(path, change);
        }
    }

    fn client_changed(&self, path: &str, client_id: &str, change: i8) {
        let listeners: Vec<_> = self
            .listeners
            .clients
            .lock()
            .iter()
            .filter(|(_, p, _)| p.as_deref().is_none_or(|p| p == path))
            .map(|(_, _, f)| f.clone())
            .collect();
        for f in listeners {
            f(path, client_id, change);
        }
    }

    /// Registers an open connection; the returned guard unregisters it.
    pub(crate) fn register(self: &Arc<Self>, outbox: Arc<Outbox>) -> u64 {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        self.conns.lock().insert(id, outbox);
        if !self.accepting.load(Ordering::Acquire) {
            if let Some(o) = self.conns.lock().get(&id) {
                o.close(1001, "");
            }
        }
        id
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.conns.lock().remove(&id);
    }

    /// Saves dirty rooms (debounced) and unloads rooms idle for `room_idle`; runs every tick.
    fn tick(self: &Arc<Self>) {
        let now = Instant::now();
        let rooms: Vec<Arc<Room>> = self.rooms.lock().values().cloned().collect();
        let delay = self.options.save_delay;
        let room_idle = if self.evict.swap(false, Ordering::AcqRel) { Duration::ZERO } else { self.options.room_idle };
        for room in rooms {
            let Some(rs) = room.store.get() else { continue };
            let idle = room.inner.read().empty_since.is_some_and(|t| now.duration_since(t) >= room_idle);
            if idle {
                let (shared, room) = (self.clone(), room.clone());
                tokio::task::spawn_blocking(move || shared.unload(&room));
                continue;
            }
            if rs.missed.load(Ordering::Acquire) && rs.sync.is_settled() {
                rs.missed.store(false, Ordering::Release);
                self.log(&format!("room {:?}: its store fell behind and dropped client messages; pulling again", room.path));
                drop(rs.sync.load_async(None));
            }
            let Some(persister) = &rs.persister else { continue };
            if persister.is_shared() {
                // A merge of what another server wrote reaches this room's clients as a
                // ContentDiff, except stamps that change no visible value (a deletion of a cell
                // this server never had: TinyBase's transaction changes leave those out). Once
                // changes pause, the room announces its hashes, and clients that differ pull.
                let hashes = rs.store.get_mergeable_content_hashes();
                let announce = {
                    let mut seen = rs.seen.lock();
                    if seen.hashes != hashes {
                        seen.hashes = hashes;
                        seen.changed = now;
                    }
                    let due = seen.announced != hashes && now.duration_since(seen.changed) >= delay;
                    if due {
                        seen.announced = hashes;
                    }
                    due
                };
                if announce {
                    let room = room.clone();
                    tokio::task::spawn_blocking(move || {
                        if let Some(rs) = room.store.get() {
                            rs.sync.save();
                        }
                    });
                }
            }
            if !persister.debounced() {
                continue;
            }
            let hashes = rs.store.get_mergeable_content_hashes();
            let due = {
                let mut seen = rs.seen.lock();
                if seen.hashes != hashes {
                    seen.hashes = hashes;
                    seen.changed = now;
                }
                if hashes == persister.saved_hashes() {
                    seen.unsaved_since = None;
                    false
                } else {
                    // Saved once changes pause for `save_delay`, and at least every 4 delays
                    // while they go on.
                    let unsaved_since = *seen.unsaved_since.get_or_insert(now);
                    let due = now.duration_since(seen.changed) >= delay || now.duration_since(unsaved_since) >= delay * 4;
                    if due {
                        seen.unsaved_since = Some(now);
                    }
                    due
                }
            };
            if due && !persister.is_saving() {
                let (shared, room) = (self.clone(), room.clone());
                tokio::task::spawn_blocking(move || {
                    if let Some(rs) = room.store.get() {
                        rs.save(&shared, &room.path, false);
                    }
                });
            }
        }
    }

    /// Saves and unloads a room without clients (blocking), unless a client came back or the
    /// store is still busy.
    fn unload(&self, room: &Arc<Room>) {
        let Some(rs) = room.store.get() else { return };
        if rs.is_saving() {
            return;
        }
        rs.save(self, &room.path, true);
        {
            let mut rooms = self.rooms.lock();
            let inner = room.inner.read();
            if !inner.members.is_empty() || !rs.sync.is_settled() || rs.dirty() {
                return;
            }
            if rooms.get(&room.path).is_some_and(|r| Arc::ptr_eq(r, room)) {
                rooms.remove(&room.path);
                self.metrics.room_closed();
            }
            room.gone.store(true, Ordering::Release);
        }
        rs.close(self, &room.path);
    }

    /// Stops accepting, closes every connection (1001), waits a little for them to end, then
    /// saves and unloads every room (blocking part on a blocking thread).
    async fn shutdown(self: &Arc<Self>) {
        self.accepting.store(false, Ordering::Release);
        let conns: Vec<Arc<Outbox>> = self.conns.lock().values().cloned().collect();
        for c in &conns {
            c.close(1001, "");
        }
        let end = Instant::now() + Duration::from_secs(2);
        while !self.conns.lock().is_empty() && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let shared = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let rooms: Vec<Arc<Room>> = shared.rooms.lock().drain().map(|(_, r)| r).collect();
            for room in rooms {
                shared.metrics.room_closed();
                room.gone.store(true, Ordering::Release);
                if let Some(rs) = room.store.get() {
                    // What clients sent before they were closed is applied first (a pull still
                    // waiting for a closed client is not waited for).
                    if !rs.sync.is_settled() {
                        tinybase::sync::wait_until(Duration::from_millis(200), || rs.sync.is_settled());
                    }
                    rs.close(&shared, &room.path);
                }
            }
        })
        .await;
    }
}

/// How long the start waits for the room store (PostgreSQL) to answer.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts servers.
pub struct Server;

impl Server {
    /// Binds `options.listen` and starts serving on the current tokio runtime.
    pub async fn start(options: ServerOptions) -> io::Result<ServerHandle> {
        let keeps = options.data_dir.is_some() || !options.store.uses_data_dir();
        if keeps && !options.server_store {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a relay without server stores keeps no rooms: no data_dir or PostgreSQL store"));
        }
        if options.data_dir.is_some() && !options.store.uses_data_dir() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "rooms kept in PostgreSQL need no data_dir"));
        }
        if options.store == StoreKind::Sqlite && options.data_dir.is_none() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the SQLite store keeps its databases in data_dir"));
        }
        if let Some(dir) = &options.data_dir {
            std::fs::create_dir_all(dir)?;
        }
        {
            let store = options.store.clone();
            // A database host that drops packets would hold the start for minutes: it is an
            // error after a while (a DSN's own connect_timeout may say sooner).
            let checked = tokio::time::timeout(STORE_CHECK_TIMEOUT, tokio::task::spawn_blocking(move || crate::persist::check(&store)))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("the room store did not answer within {STORE_CHECK_TIMEOUT:?}")))?;
            checked.map_err(io::Error::other)??;
        }
        let listener = tokio::net::TcpListener::bind(options.listen).await?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            options,
            metrics: Arc::new(Metrics::default()),
            rooms: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            clients: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            accepting: AtomicBool::new(true),
            evict: AtomicBool::new(false),
            listeners: Listeners::default(),
        });
        let app = Router::new().fallback(handle_request).with_state(shared.clone());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            // Small frames go out at once (no Nagle delay behind an unacknowledged one).
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await;
        });
        let ticker = {
            let shared = shared.clone();
            tokio::spawn(async move {
                let period = (shared.options.save_delay / 2).clamp(Duration::from_millis(10), Duration::from_millis(250));
                let mut interval = tokio::time::interval(period);
                loop {
                    interval.tick().await;
                    shared.tick();
                }
            })
        };
        Ok(ServerHandle { shared, local_addr, stop: Some(stop_tx), serving, ticker })
    }
}

/// A running server.
pub struct ServerHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<()>,
    ticker: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// `getPathIds()`: the rooms with at least one client.
    pub fn get_path_ids(&self) -> Vec<String> {
        let rooms: Vec<Arc<Room>> = self.shared.rooms.lock().values().cloned().collect();
        rooms.into_iter().filter(|r| !r.inner.read().members.is_empty()).map(|r| r.path.to_string()).collect()
    }

    /// `getClientIds(pathId)`: the clients in a room.
    pub fn get_client_ids(&self, path: &str) -> Vec<String> {
        let room = self.shared.rooms.lock().get(path).cloned();
        room.map(|r| r.inner.read().members.keys().map(|k| k.to_string()).collect()).unwrap_or_default()
    }

    /// `getStats()`.
    pub fn get_stats(&self) -> ServerStats {
        let rooms: Vec<Arc<Room>> = self.shared.rooms.lock().values().cloned().collect();
        let mut stats = ServerStats::default();
        for r in rooms {
            let n = r.inner.read().members.len();
            stats.paths += usize::from(n > 0);
            stats.clients += n;
        }
        stats
    }

    /// The content of a room's server store (wire-form mergeable content JSON), if the room is
    /// loaded and has one.
    pub fn get_room_content_json(&self, path: &str) -> Option<String> {
        let room = self.shared.rooms.lock().get(path).cloned()?;
        room.store.get().map(|rs| rs.store.get_encoded_mergeable_content_json())
    }

    /// Whether a room is loaded (it has clients, or it had them less than `room_idle` ago).
    pub fn is_room_loaded(&self, path: &str) -> bool {
        self.shared.rooms.lock().contains_key(path)
    }

    /// `addPathIdsListener`: `f(pathId, +1 | -1)` when a room gets its first client or loses
    /// its last one. Called on the server's threads; must not block.
    pub fn add_path_ids_listener(&self, f: impl Fn(&str, i8) + Send + Sync + 'static) -> ListenerId {
        let id = self.shared.listeners.next.fetch_add(1, Ordering::Relaxed);
        self.shared.listeners.paths.lock().push((id, Arc::new(f)));
        id
    }

    /// `addClientIdsListener`: `f(pathId, clientId, +1 | -1)` for the room `path_id` (None: every
    /// room).
    pub fn add_client_ids_listener(&self, path_id: Option<&str>, f: impl Fn(&str, &str, i8) + Send + Sync + 'static) -> ListenerId {
        let id = self.shared.listeners.next.fetch_add(1, Ordering::Relaxed);
        self.shared.listeners.clients.lock().push((id, path_id.map(str::to_string), Arc::new(f)));
        id
    }

    /// `delListener`.
    pub fn del_listener(&self, id: ListenerId) {
        self.shared.listeners.paths.lock().retain(|(i, _)| *i != id);
        self.shared.listeners.clients.lock().retain(|(i, _, _)| *i != id);
    }

    /// Graceful shutdown: stops accepting, closes every socket with 1001, saves every room, and
    /// returns when done.
    pub async fn shutdown(mut self) {
        self.shared.accepting.store(false, Ordering::Release);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.shared.shutdown().await;
        self.ticker.abort();
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.serving).await;
        self.serving.abort();
    }
}

/// The initial read buffer of a connection.
const READ_BUFFER_BYTES: usize = 1024;
/// Frames are written to the socket once this many bytes are buffered (and at each flush); the
/// buffer keeps its capacity, so a small one keeps connections that were once busy cheap.
const WRITE_BUFFER_BYTES: usize = 8 * 1024;

/// A connection slot (counts against `max_clients` and the per-IP limit) released on drop.
pub(crate) struct Slot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.clients.fetch_sub(1, Ordering::AcqRel);
        let mut per_ip = self.shared.per_ip.lock();
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

fn refuse(shared: &Shared, status: StatusCode, reason: Refusal, why: &str, remote: SocketAddr, path: &str) -> Response {
    shared.metrics.refuse(reason);
    shared.log(&format!("refused remote={remote} room={path:?} status={} ({why})", status.as_u16()));
    (status, why.to_string()).into_response()
}

/// Every request: a WebSocket upgrade on any path joins that room; otherwise `/healthz` and
/// `/metrics` answer over HTTP.
async fn handle_request(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let accepting = shared.accepting.load(Ordering::Acquire);
    let Ok(ws) = ws else {
        return match uri.path() {
            "/healthz" if accepting => (StatusCode::OK, "ok\n").into_response(),
            "/healthz" => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
            "/metrics" => ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], shared.metrics.render()).into_response(),
            _ => (StatusCode::UPGRADE_REQUIRED, "a TinyBase sync server: connect with a WebSocket\n").into_response(),
        };
    };
    let target = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let path = codec::path_of_request_uri(target);
    if !accepting {
        return refuse(&shared, StatusCode::SERVICE_UNAVAILABLE, Refusal::ShuttingDown, "shutting down", remote, &path);
    }
    let mux = ws.requested_protocols().any(|p| p.as_bytes() == codec::SUBPROTOCOL.as_bytes());
    let query = uri.query();
    let access = match &shared.options.auth {
        None => Access::ReadWrite,
        Some(auth) => {
            let kind = if mux { AuthKind::Multiplexed } else { AuthKind::Connect };
            auth(&AuthRequest { kind, path: &path, headers: &headers, query, remote })
        }
    };
    if access == Access::Refuse {
        return refuse(&shared, StatusCode::UNAUTHORIZED, Refusal::Auth, "not authorized", remote, &path);
    }
    if shared.clients.fetch_add(1, Ordering::AcqRel) >= shared.options.max_clients {
        shared.clients.fetch_sub(1, Ordering::AcqRel);
        return refuse(&shared, StatusCode::SERVICE_UNAVAILABLE, Refusal::MaxClients, "too many clients", remote, &path);
    }
    {
        let mut per_ip = shared.per_ip.lock();
        let n = per_ip.entry(remote.ip()).or_insert(0);
        if *n >= shared.options.max_connections_per_ip {
            drop(per_ip);
            shared.clients.fetch_sub(1, Ordering::AcqRel);
            return refuse(&shared, StatusCode::TOO_MANY_REQUESTS, Refusal::MaxConnectionsPerIp, "too many connections from this address", remote, &path);
        }
        *n += 1;
    }
    let slot = Slot { shared: shared.clone(), ip: remote.ip() };
    if !mux && !shared.room_available(&path) {
        return refuse(&shared, StatusCode::SERVICE_UNAVAILABLE, Refusal::MaxRooms, "too many rooms", remote, &path);
    }
    let limit = shared.options.max_message_bytes;
    let ws = if mux { ws.protocols([codec::SUBPROTOCOL]) } else { ws };
    // Tungstenite refuses a much larger message itself, before reading it all (the close is then
    // 1013 too, but the peer may see a reset, its message unread); a message up to 1 MiB over
    // the limit is read and refused with a clean close.
    let hard_limit = limit.saturating_add(1 << 20);
    let ws = ws.max_message_size(hard_limit).max_frame_size(hard_limit);
    // Tungstenite allocates its whole read buffer per connection up front (128 KiB by default):
    // a small one keeps idle connections cheap, and it grows for large messages.
    let ws = ws.read_buffer_size(READ_BUFFER_BYTES).write_buffer_size(WRITE_BUFFER_BYTES);
    let conn = crate::conn::Conn {
        shared: shared.clone(),
        remote,
        path: path.as_str().into(),
        mux,
        access,
        headers: if mux && shared.options.auth.is_some() { Some(Box::new(headers)) } else { None },
        query: query.map(Into::into),
        slot: Some(slot),
    };
    // The client joins its room before the response goes out (see `Conn::start`); a room
    // refused meanwhile for `max_rooms` is refused like one refused above.
    let reader = match conn.start() {
        // Boxed: the upgrade's future keeps its callback's captures for the connection's life.
        Ok(reader) => Box::new(reader),
        Err(_) => return refuse(&shared, StatusCode::SERVICE_UNAVAILABLE, Refusal::MaxRooms, "too many rooms", remote, &path),
    };
    ws.on_upgrade(move |socket| reader.run(socket))
}
