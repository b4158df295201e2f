//! The WebSocket client: TinyBase's `createWsSynchronizer` over `ws://` and `wss://`, legacy or
//! multiplexed, with what TinyBase leaves to the application: reconnecting with backoff (and
//! pulling again after it, PROTOCOL.md 12.5), a dead server noticed by ping, the connection's
//! state in the status callback, and a clean close on destroy.
//!
//! ```no_run
//! use tinybase::sync::ws::{WsOptions, WsSynchronizer};
//! use tinybase::MergeableStore;
//! let store = MergeableStore::new(None);
//! let sync = WsSynchronizer::new(&store, WsOptions { url: "ws://127.0.0.1:8043/room".into(), ..Default::default() }).unwrap();
//! sync.start_sync(None);
//! store.set_cell("pets", "fido", "species", "dog").unwrap();
//! ```
//!
//! Several stores over one socket: a [`WsClient`] (subprotocol `tinybase`) that synchronizers
//! join with their channel ids.

use super::conn::{Conn, Settings};
use super::connect::Target;
use crate::error::{Error, Result};
use crate::mergeable::MergeableStore;
use crate::sync::{ConnectionState, Synchronizer, SynchronizerOptions, Transport};
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Options of a WebSocket synchronizer (and of a shared [`WsClient`] connection).
#[derive(Clone)]
pub struct WsOptions {
    /// `ws://host[:port]/path` or `wss://...`; the path is the room (PROTOCOL.md 8.1), or the
    /// base path of the channels when multiplexed.
    pub url: String,
    /// Some: multiplexed on that channel (subprotocol `tinybase`, room `path/channel`); None:
    /// TinyBase's legacy framing, one store per socket.
    pub channel_id: Option<String>,
    /// The synchronizer's options (request timeout, default 1 s as TinyBase's WsSynchronizer;
    /// hooks; anti-entropy; status callback, which also reports the connection's state).
    pub sync: SynchronizerOptions,
    /// Cut outgoing payloads into fragments of about this many bytes (7.2); None: never.
    /// Incoming fragments are always reassembled.
    pub fragment_size: Option<usize>,
    /// Reconnect after the connection is lost or fails to open (default true), with
    /// exponential backoff and full jitter between `reconnect_min` and `reconnect_max`; each
    /// reopening announces this store's hashes and pulls again. Off: as TinyBase's client, a
    /// lost connection stays closed (make a new synchronizer).
    pub reconnect: bool,
    /// The first backoff (default 100 ms).
    pub reconnect_min: Duration,
    /// The largest backoff (default 10 s).
    pub reconnect_max: Duration,
    /// A ping this often; a server silent for two intervals is taken for dead and the
    /// connection is dropped (then reconnected). Zero: no pings. Default 10 s.
    pub ping_interval: Duration,
    /// The TCP connect, TLS and upgrade together (default 10 s).
    pub connect_timeout: Duration,
    /// A PEM file of CA certificates to trust for `wss://` besides Mozilla's roots (private
    /// CAs, self-signed test servers).
    pub ca_file: Option<PathBuf>,
    /// Extra headers of the upgrade request, e.g. `("Authorization", "Bearer ...")`.
    pub headers: Vec<(String, String)>,
}

impl Default for WsOptions {
    fn default() -> Self {
        WsOptions {
            url: String::new(),
            channel_id: None,
            sync: SynchronizerOptions::default(),
            fragment_size: None,
            reconnect: true,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
            ping_interval: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            ca_file: None,
            headers: Vec::new(),
        }
    }
}

impl WsOptions {
    fn settings(&self) -> Settings {
        Settings {
            fragment_size: self.fragment_size.filter(|&s| s >= 1),
            reconnect: self.reconnect,
            reconnect_min: self.reconnect_min.max(Duration::from_millis(1)),
            reconnect_max: self.reconnect_max.max(self.reconnect_min),
            ping_interval: self.ping_interval,
            connect_timeout: self.connect_timeout.max(Duration::from_millis(1)),
        }
    }
}

/// A multiplexed WebSocket connection (subprotocol `tinybase`, PROTOCOL.md 7.4) shared by any
/// number of [`WsSynchronizer`]s, one per channel (and usually per store). The socket opens
/// when the first synchronizer joins, each join subscribes its channel, each destroy
/// unsubscribes it, and the socket closes (1000) when the last one is destroyed; a later join
/// opens it again. Reconnecting re-sends Hello and every Subscribe. Cheap to clone.
#[derive(Clone)]
pub struct WsClient {
    conn: Arc<Conn>,
    options: Arc<WsOptions>,
}

impl WsClient {
    /// A multiplexed connection to `options.url` (its `channel_id` and `sync` are not used:
    /// each joining synchronizer brings its own). Nothing is opened yet. Err: an invalid URL,
    /// header or CA file.
    pub fn new(options: &WsOptions) -> Result<WsClient> {
        let target = Target::new(&options.url, &options.headers, true, options.ca_file.as_deref())?;
        let conn = Conn::new(target, options.settings()).map_err(|e| Error::InvalidState(format!("tinybase:5:{e}")))?;
        Ok(WsClient { conn, options: Arc::new(options.clone()) })
    }

    /// A synchronizer for `store` on channel `channel_id` of this connection (TinyBase's
    /// multiplexed `createWsSynchronizer`), waiting like [`WsSynchronizer::new`] for the
    /// socket and the subscription. Err: an invalid (`tinybase:6`) or duplicate
    /// (`tinybase:7`) channel id, too many channels (`tinybase:15:channels`), or with
    /// `reconnect` off, a connection that failed (`tinybase:5`).
    pub fn join(&self, store: &MergeableStore, channel_id: &str, options: SynchronizerOptions) -> Result<WsSynchronizer> {
        create(&self.conn, &self.options, store, Some(channel_id), options)
    }

    /// The socket's state (Open from the upgrade on; each synchronizer's own state is Open
    /// once its channel is subscribed).
    pub fn connection_state(&self) -> ConnectionState {
        self.conn.socket_state()
    }

    /// The channels of the synchronizers joined and not destroyed.
    pub fn channel_ids(&self) -> Vec<String> {
        self.conn.channel_ids()
    }
}

/// A synchronizer over a WebSocket (TinyBase's `createWsSynchronizer`): dereferences to its
/// [`Synchronizer`] (`start_sync`, `destroy`, stats...). Destroying it (or dropping the last
/// reference to the synchronizer) unsubscribes its channel or closes its socket with 1000.
pub struct WsSynchronizer {
    sync: Arc<Synchronizer>,
    conn: Arc<Conn>,
    channel_id: Option<String>,
}

impl WsSynchronizer {
    /// Opens the connection (legacy, or multiplexed on `options.channel_id` over a socket of
    /// its own; see [`WsClient`] to share one). Err at once for an invalid URL, header, CA file
    /// or channel id. With `reconnect` off, waits until the socket is open (and the channel
    /// subscribed) and returns Err(`tinybase:5...`) if that fails. With `reconnect` on,
    /// returns after the first attempt, whatever its outcome, and keeps trying in the
    /// background; sends made meanwhile wait (up to the request timeout) for the connection.
    pub fn new(store: &MergeableStore, options: WsOptions) -> Result<WsSynchronizer> {
        match options.channel_id.clone() {
            Some(channel_id) => WsClient::new(&options)?.join(store, &channel_id, options.sync.clone()),
            None => {
                let target = Target::new(&options.url, &options.headers, false, options.ca_file.as_deref())?;
                let conn = Conn::new(target, options.settings()).map_err(|e| Error::InvalidState(format!("tinybase:5:{e}")))?;
                create(&conn, &options, store, None, options.sync.clone())
            }
        }
    }

    /// The synchronizer (what a C or Python handle holds).
    pub fn synchronizer(&self) -> &Arc<Synchronizer> {
        &self.sync
    }

    /// The connection's state as this synchronizer sees it.
    pub fn connection_state(&self) -> ConnectionState {
        self.conn.channel_state(self.channel_id.as_deref())
    }

    /// The channel, when multiplexed.
    pub fn channel_id(&self) -> Option<&str> {
        self.channel_id.as_deref()
    }
}

impl Deref for WsSynchronizer {
    type Target = Synchronizer;
    fn deref(&self) -> &Synchronizer {
        &self.sync
    }
}

fn create(conn: &Arc<Conn>, options: &WsOptions, store: &MergeableStore, channel_id: Option<&str>, sync_options: SynchronizerOptions) -> Result<WsSynchronizer> {
    let timeout = sync_options.request_timeout;
    conn.reserve(channel_id, timeout).map_err(Error::InvalidValue)?;
    let transport = Arc::new(WsTransport { conn: conn.clone(), channel_id: channel_id.map(str::to_string) });
    let sync = Arc::new(Synchronizer::new(store, transport, sync_options));
    conn.attach(channel_id, sync.inlet());
    let settings = conn.settings();
    // The first attempt: connect, then Hello and Subscribe echoes (multiplexed), plus margin.
    let bound = settings.connect_timeout + timeout * 2 + Duration::from_secs(1);
    let open = conn.wait_settled(channel_id, bound);
    if !open && !options.reconnect {
        let reason = match conn.channel_state(channel_id) {
            ConnectionState::Closed { code, reason } => format!("{reason} ({code})"),
            _ => "no connection".to_string(),
        };
        // The errors reported on the way reach the ignored-error hook before the Err.
        crate::sync::wait_until(Duration::from_millis(500), || sync.is_settled());
        sync.destroy();
        return Err(Error::InvalidState(format!("tinybase:5: cannot open {}: {reason}", options.url)));
    }
    Ok(WsSynchronizer { sync, conn: conn.clone(), channel_id: channel_id.map(str::to_string) })
}

/// A synchronizer's side of a connection: its channel.
struct WsTransport {
    conn: Arc<Conn>,
    channel_id: Option<String>,
}

impl Transport for WsTransport {
    fn send(&self, to: Option<&str>, payload: &str) {
        self.conn.send(self.channel_id.as_deref(), to, payload);
    }

    fn destroy(&self) {
        self.conn.leave(self.channel_id.as_deref());
    }

    fn connection_state(&self) -> Option<ConnectionState> {
        Some(self.conn.channel_state(self.channel_id.as_deref()))
    }
}
