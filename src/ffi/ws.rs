//! WebSocket synchronizers: TinyBase's protocol through a WebSocket server (`crate::sync::ws`).
//! This module only reads the host's options and hands back a normal tb_synchronizer (every
//! tb_synchronizer_* function works on it).

use crate::ffi::error::{fail, guard, tb_status, FfiResult};
use crate::ffi::handle::{mergeable, tb_mergeable_store};
use crate::ffi::strings::{non_null, opt_str_in, str_in};
use crate::ffi::synchronizer::{
    next_token, options_in, seconds, sync_out, tb_connection_state, tb_synchronizer, tb_synchronizer_options, write_connection, SyncHandle,
};
use crate::sync::SynchronizerOptions;
use crate::ffi::{guard_or, live_dec, live_inc};
use crate::sync::ws::client::{WsClient, WsOptions, WsSynchronizer};
use crate::Result;
use std::ffi::c_char;
use std::path::PathBuf;

/// A multiplexed WebSocket connection (subprotocol "tinybase") that any number of
/// synchronizers share, one per channel: several stores over one socket. Opaque;
/// tb_ws_client_new(), freed with tb_ws_client_free().
pub struct tb_ws_client {
    _private: [u8; 0],
}

/// Options of a WebSocket synchronizer. Zero-initialize
/// (`tb_ws_synchronizer_options o = {0};`) and set what you need: zero means the default for
/// every field; passing NULL instead of options means all defaults. Read during the creating
/// call only (the struct and its strings are not kept).
#[repr(C)]
pub struct tb_ws_synchronizer_options {
    /// The synchronizer's options (request timeout, default 1 s; anti-entropy; on_send,
    /// on_receive, on_ignored_error and on_status with their user_data and release; inbox
    /// limits). on_status is also called when the connection opens, closes or starts
    /// reconnecting.
    pub sync: tb_synchronizer_options,
    /// NULL: TinyBase's legacy framing (one store per socket; the room is the URL's path).
    /// Otherwise the multiplexed protocol (subprotocol "tinybase") on this channel.
    pub channel_id: *const c_char,
    /// Outgoing payloads are cut into fragments of at most this many bytes; 0: never.
    /// Incoming fragments are always reassembled.
    pub fragment_size: usize,
    /// false (the default): a lost connection is re-opened with backoff and jitter, and the
    /// store pulls again after each re-open. true: the creating call waits for the socket to
    /// open and fails when it cannot; a later loss leaves the synchronizer closed.
    pub no_reconnect: bool,
    /// The first reconnect delay in seconds (doubled after each failure, with jitter); 0 is
    /// the default.
    pub reconnect_min_seconds: f64,
    /// The longest reconnect delay in seconds; 0 is the default.
    pub reconnect_max_seconds: f64,
    /// How often a silent server is pinged, in seconds (a dead one is noticed and the socket
    /// re-opened); 0 is the default.
    pub ping_interval_seconds: f64,
    /// How long one connection attempt may take, in seconds; 0 is the default.
    pub connect_timeout_seconds: f64,
    /// NULL, or a PEM file of CA certificates trusted for wss:// in addition to the built-in
    /// roots (private CAs).
    pub ca_file: *const c_char,
    /// `header_count` extra headers for the upgrade request, each "Name: value" (for example
    /// "Authorization: Bearer ..."). May be NULL when header_count is 0.
    pub headers: *const *const c_char,
    /// The number of strings in `headers`.
    pub header_count: usize,
}

/// The "Name: value" lines of the host as (name, value) pairs.
unsafe fn headers_in(p: *const *const c_char, count: usize) -> FfiResult<Vec<(String, String)>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(fail(tb_status::TB_ERROR_NULL_PARAMETER, "headers is NULL but header_count is not 0"));
    }
    std::slice::from_raw_parts(p, count)
        .iter()
        .map(|&line| {
            let line = str_in(line, "header")?;
            match line.split_once(':') {
                Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_string(), value.trim().to_string())),
                _ => Err(fail(tb_status::TB_ERROR_INVALID_ARGUMENT, format!("header {line:?} is not \"Name: value\""))),
            }
        })
        .collect()
}

/// The WebSocket options of the host (everything but the synchronizer's options).
unsafe fn ws_options_in(url: &str, o: Option<&tb_ws_synchronizer_options>) -> FfiResult<WsOptions> {
    let mut ws = WsOptions { url: url.to_string(), ..Default::default() };
    let Some(o) = o else { return Ok(ws) };
    ws.channel_id = opt_str_in(o.channel_id, "channel_id")?.map(str::to_string);
    ws.fragment_size = (o.fragment_size > 0).then_some(o.fragment_size);
    ws.reconnect = !o.no_reconnect;
    if let Some(d) = seconds(o.reconnect_min_seconds, "reconnect_min_seconds")? {
        ws.reconnect_min = d;
    }
    if let Some(d) = seconds(o.reconnect_max_seconds, "reconnect_max_seconds")? {
        ws.reconnect_max = d;
    }
    if let Some(d) = seconds(o.ping_interval_seconds, "ping_interval_seconds")? {
        ws.ping_interval = d;
    }
    if let Some(d) = seconds(o.connect_timeout_seconds, "connect_timeout_seconds")? {
        ws.connect_timeout = d;
    }
    ws.ca_file = opt_str_in(o.ca_file, "ca_file")?.map(PathBuf::from);
    ws.headers = headers_in(o.headers, o.header_count)?;
    Ok(ws)
}

/// Creates the synchronizer with `create` once the host's synchronizer options are read (and
/// `user_data` taken over); gives user_data back when creation fails.
unsafe fn ws_sync_out(
    sync_options: *const tb_synchronizer_options,
    default_timeout: std::time::Duration,
    out: *mut *mut tb_synchronizer,
    create: impl FnOnce(SynchronizerOptions) -> Result<WsSynchronizer>,
) -> FfiResult<()> {
    let token = next_token();
    let host = options_in(sync_options, token, default_timeout)?;
    match create(host.options) {
        Ok(w) => {
            let sync = w.synchronizer().clone();
            let connection = Box::new(move || w.connection_state());
            *out = sync_out(SyncHandle::new(sync, token, host.host.into_iter().collect(), Some(connection)));
            Ok(())
        }
        Err(e) => {
            if let Some(h) = host.host {
                h.disarm();
            }
            Err(e.into())
        }
    }
}

/// createWsSynchronizer: a synchronizer for `store` through the WebSocket server at `url`
/// (`ws://` or `wss://`; TinyBase's WsServer or tinybase-server). `options` may be NULL (all
/// defaults; see tb_ws_synchronizer_options). Returns a normal synchronizer: start it with
/// tb_synchronizer_start_sync(), read its connection with
/// tb_synchronizer_get_connection_state(), destroy it (the socket is closed cleanly, 1000)
/// and free it with tb_synchronizer_destroy() / tb_synchronizer_free(). With a channel id it
/// has a multiplexed socket of its own; tb_ws_client_new() shares one between stores.
///
/// An invalid URL, channel id, header, CA file or duration fails at once (nothing created, no
/// release called). BLOCKS for the first connection attempt (up to the connect timeout and
/// two request timeouts); with `no_reconnect` a failed attempt fails the call
/// (TB_ERROR_INVALID_STATE, "tinybase:5..."), otherwise it keeps trying in the background. On
/// success the library owns the options' user_data until tb_synchronizer_free().
#[no_mangle]
pub unsafe extern "C" fn tb_ws_synchronizer_new(
    store: *mut tb_mergeable_store,
    url: *const c_char,
    options: *const tb_ws_synchronizer_options,
    out: *mut *mut tb_synchronizer,
) -> tb_status {
    guard(|| {
        let (_, m) = mergeable(store)?;
        let url = str_in(url, "url")?;
        let out = non_null(out, "out")?;
        let o = options.as_ref();
        let mut ws = ws_options_in(url, o)?;
        let sync = o.map_or(std::ptr::null(), |o| &o.sync as *const tb_synchronizer_options);
        ws_sync_out(sync, ws.sync.request_timeout, out, |sync| {
            ws.sync = sync;
            WsSynchronizer::new(m, ws)
        })
    })
}

unsafe fn client_ref<'a>(p: *const tb_ws_client) -> FfiResult<&'a WsClient> {
    if p.is_null() {
        return Err(fail(tb_status::TB_ERROR_NULL_PARAMETER, "client is NULL"));
    }
    Ok(&*(p as *const WsClient))
}

/// A multiplexed connection to the WebSocket server at `url`, for several stores over one
/// socket: each tb_ws_client_create_synchronizer() joins a channel. `options` may be NULL;
/// its `sync` and `channel_id` fields are not used here (each synchronizer brings its own).
/// Nothing is opened yet: the socket opens when the first synchronizer joins and closes
/// (1000) when the last one is destroyed. An invalid URL, header, CA file or duration fails
/// at once. Free with tb_ws_client_free().
#[no_mangle]
pub unsafe extern "C" fn tb_ws_client_new(url: *const c_char, options: *const tb_ws_synchronizer_options, out: *mut *mut tb_ws_client) -> tb_status {
    guard(|| {
        let url = str_in(url, "url")?;
        let out = non_null(out, "out")?;
        let client = WsClient::new(&ws_options_in(url, options.as_ref())?)?;
        live_inc();
        *out = Box::into_raw(Box::new(client)) as *mut tb_ws_client;
        Ok(())
    })
}

/// Releases the host's handle on a shared connection (NULL is fine). Synchronizers created
/// on it keep working (they hold the connection) until they are destroyed.
#[no_mangle]
pub unsafe extern "C" fn tb_ws_client_free(client: *mut tb_ws_client) {
    guard_or((), || {
        if !client.is_null() {
            drop(Box::from_raw(client as *mut WsClient));
            live_dec();
        }
    })
}

/// A synchronizer for `store` on channel `channel_id` of this shared connection (TinyBase's
/// multiplexed createWsSynchronizer). `options` may be NULL (request timeout 1 s by default).
/// Fails for an invalid or duplicate channel id or too many channels; BLOCKS and fails as
/// tb_ws_synchronizer_new() does for the connection (per the client's reconnect option). Free
/// with tb_synchronizer_free(); destroying it unsubscribes its channel.
#[no_mangle]
pub unsafe extern "C" fn tb_ws_client_create_synchronizer(
    client: *mut tb_ws_client,
    store: *mut tb_mergeable_store,
    channel_id: *const c_char,
    options: *const tb_synchronizer_options,
    out: *mut *mut tb_synchronizer,
) -> tb_status {
    guard(|| {
        let c = client_ref(client)?;
        let (_, m) = mergeable(store)?;
        let channel_id = str_in(channel_id, "channel_id")?;
        let out = non_null(out, "out")?;
        ws_sync_out(options, SynchronizerOptions::default().request_timeout, out, |sync| c.join(m, channel_id, sync))
    })
}

/// The shared socket's state (TB_CONNECTION_OPEN from the upgrade on; each synchronizer's own
/// state, tb_synchronizer_get_connection_state(), is open once its channel is subscribed).
/// `close_code` and `close_reason` as in tb_synchronizer_get_connection_state() (may be NULL).
#[no_mangle]
pub unsafe extern "C" fn tb_ws_client_get_connection_state(
    client: *mut tb_ws_client,
    state: *mut tb_connection_state,
    close_code: *mut u16,
    close_reason: *mut *mut c_char,
) -> tb_status {
    guard(|| {
        let c = client_ref(client)?;
        let state = non_null(state, "state")?;
        write_connection(Some(&c.connection_state()), state, close_code, close_reason)
    })
}
