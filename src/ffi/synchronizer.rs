//! Synchronizers: TinyBase's sync protocol over host transports (C callbacks), in-process
//! buses and named channels. The protocol lives in `crate::sync`; this module only checks
//! arguments, adapts C callbacks to the engine's transport and hooks, and keeps the handle
//! bookkeeping (exactly-once release of host data after the worker thread has stopped).

use crate::ffi::error::{fail, guard, guard_or, tb_status, FfiResult};
use crate::ffi::handle::{mergeable, tb_mergeable_store, tb_release_fn, HostData};
use crate::ffi::strings::{non_null, opt_str_in, str_in, string_out};
use crate::ffi::{live_dec, live_inc};
use crate::sync::framed::FramedTransport;
use crate::sync::local::{BroadcastChannel, LocalBus, LOCAL_REQUEST_TIMEOUT};
use crate::sync::message::Message;
use crate::sync::{ConnectionState, ErrorHook, MessageHook, Status, StatusHook, SyncState, SyncStatus, Synchronizer, SynchronizerOptions, Transport};
use parking_lot::Mutex;
use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A synchronizer: TinyBase's sync protocol between one mergeable store and its peers, with
/// its own worker thread. Opaque; create with tb_synchronizer_new_custom(),
/// tb_synchronizer_new_custom_framed() or tb_local_bus_create_synchronizer(); free with
/// tb_synchronizer_free().
pub struct tb_synchronizer {
    _private: [u8; 0],
}

/// An in-process bus (TinyBase's LocalSynchronizer medium): every synchronizer created on the
/// same bus reaches the others. Opaque; tb_local_bus_new() or tb_broadcast_channel_open(),
/// freed with tb_local_bus_free().
pub struct tb_local_bus {
    _private: [u8; 0],
}

/// A protocol message type (a uint32_t; one of the TB_SYNC_MESSAGE_* constants), as TinyBase
/// numbers them on the wire.
pub type tb_sync_message = u32;
/// The answer to a request (same request id).
pub const TB_SYNC_MESSAGE_RESPONSE: tb_sync_message = 0;
/// Asks for content hashes (body `""`).
pub const TB_SYNC_MESSAGE_GET_CONTENT_HASHES: tb_sync_message = 1;
/// Announces content hashes `[tablesHash, valuesHash]`.
pub const TB_SYNC_MESSAGE_CONTENT_HASHES: tb_sync_message = 2;
/// Mergeable changes `[tables, values, 1]` (sent after each local transaction).
pub const TB_SYNC_MESSAGE_CONTENT_DIFF: tb_sync_message = 3;
/// Asks for a table diff (body: the sender's table hashes).
pub const TB_SYNC_MESSAGE_GET_TABLE_DIFF: tb_sync_message = 4;
/// Asks for a row diff (body: the sender's row hashes).
pub const TB_SYNC_MESSAGE_GET_ROW_DIFF: tb_sync_message = 5;
/// Asks for a cell diff (body: the sender's cell hashes).
pub const TB_SYNC_MESSAGE_GET_CELL_DIFF: tb_sync_message = 6;
/// Asks for a value diff (body: the sender's value hashes).
pub const TB_SYNC_MESSAGE_GET_VALUE_DIFF: tb_sync_message = 7;

/// A synchronizer's status (a uint32_t; TinyBase's getStatus()).
pub type tb_sync_status = u32;
/// Neither loading nor saving.
pub const TB_SYNC_STATUS_IDLE: tb_sync_status = 0;
/// Pulling or applying other peers' changes.
pub const TB_SYNC_STATUS_LOADING: tb_sync_status = 1;
/// Announcing or sending local changes.
pub const TB_SYNC_STATUS_SAVING: tb_sync_status = 2;

/// A custom transport's send: delivers `payload` (JSON text `[requestId, message, body]` in
/// TinyBase's wire encoding, `len` bytes, NUL-terminated) to the client `to_client_id`, or to
/// every other client when `to_client_id` is NULL. Called on the synchronizer's worker thread,
/// never concurrently for one synchronizer, with no store lock held. All arguments are borrowed
/// for the call only: copy what you keep. It should hand the payload over and return quickly.
/// It may call tb_synchronizer_receive() (of any synchronizer) and tb_store_* /
/// tb_mergeable_store_* functions; it must not destroy or free synchronizers (destroying its
/// own gives TB_ERROR_INVALID_STATE) and should not call the blocking synchronizer functions.
pub type tb_sync_send_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, to_client_id: *const c_char, payload: *const c_char, len: usize)>;

/// A framed custom transport's send: delivers `frame`, TinyBase's WebSocket form
/// `toClientId\n[requestId, message, body]` (`len` bytes, NUL-terminated; an empty client id
/// means every other client). Same thread, concurrency, borrowing and re-entrancy rules as
/// tb_sync_send_fn.
pub type tb_sync_send_frame_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, frame: *const c_char, len: usize)>;

/// A message hook (on_send / on_receive): `client_id` is the client sent to (NULL: every other
/// client) or received from; `request_id` is the request or transaction id (NULL for null);
/// `message` a TB_SYNC_MESSAGE_* number; `body_json` the message body as JSON text (`body_len`
/// bytes, NUL-terminated). Called on the synchronizer's worker thread, never concurrently for
/// one synchronizer; arguments borrowed for the call only. Same re-entrancy rules as
/// tb_sync_send_fn.
pub type tb_sync_message_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        client_id: *const c_char,
        request_id: *const c_char,
        message: tb_sync_message,
        body_json: *const c_char,
        body_len: usize,
    ),
>;

/// The ignored-error hook: an error the protocol ignores, always starting with its TinyBase
/// code: "tinybase:14" an invalid message ("tinybase:14:response..." a response that does not
/// fit its request, "tinybase:14:..." changes refused for their content); "tinybase:13:..."
/// changes refused for their HLC; "tinybase:3:..." a request timed out or the synchronizer
/// was destroyed; "tinybase:15:requests" / "tinybase:15:inbox" an overflow; "tinybase:1:..."
/// initial content that could not be set. Called on the
/// synchronizer's worker thread, never concurrently for one synchronizer; `error` is borrowed
/// for the call only. Same re-entrancy rules as tb_sync_send_fn.
pub type tb_sync_error_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, error: *const c_char)>;

/// The coarse state a status callback reports (a uint32_t; one of the TB_SYNC_STATE_*
/// constants; beyond TinyBase).
pub type tb_sync_state = u32;
/// Nothing in flight.
pub const TB_SYNC_STATE_IDLE: tb_sync_state = 0;
/// Requests in flight, or changes being loaded.
pub const TB_SYNC_STATE_SYNCING: tb_sync_state = 1;
/// The last pull or request failed (timeout, invalid message...); cleared by the next valid
/// message from a peer.
pub const TB_SYNC_STATE_ERROR: tb_sync_state = 2;

/// The state of a synchronizer's connection (a uint32_t; one of the TB_CONNECTION_*
/// constants; beyond TinyBase).
pub type tb_connection_state = u32;
/// The synchronizer has no connection of its own (custom transports, local buses).
pub const TB_CONNECTION_NONE: tb_connection_state = 0;
/// Opening, or re-opening after a loss, the connection.
pub const TB_CONNECTION_CONNECTING: tb_connection_state = 1;
/// Open: messages flow.
pub const TB_CONNECTION_OPEN: tb_connection_state = 2;
/// Closed, with a WebSocket close code and reason (1006 when the connection was lost or never
/// opened). A reconnecting synchronizer goes back to TB_CONNECTION_CONNECTING after a backoff.
pub const TB_CONNECTION_CLOSED: tb_connection_state = 3;

/// What a status callback is told (beyond TinyBase, for UIs). Borrowed for the call only:
/// copy what you keep.
#[repr(C)]
pub struct tb_sync_status_info {
    /// A TB_SYNC_STATE_* value.
    pub state: tb_sync_state,
    /// Requests waiting for a response.
    pub pending_requests: usize,
    /// Protocol messages sent so far.
    pub sends: u64,
    /// Valid messages received so far.
    pub receives: u64,
    /// The last ignored error while `state` is TB_SYNC_STATE_ERROR, else NULL.
    pub last_error: *const c_char,
    /// A TB_CONNECTION_* value (TB_CONNECTION_NONE for synchronizers without a connection).
    pub connection: tb_connection_state,
    /// The WebSocket close code when `connection` is TB_CONNECTION_CLOSED, else 0.
    pub close_code: u16,
    /// The close reason when `connection` is TB_CONNECTION_CLOSED (possibly ""), else NULL.
    pub close_reason: *const c_char,
}

/// A status callback (beyond TinyBase): called when the sync state (idle, syncing, error)
/// changes, and for WebSocket synchronizers when the connection opens, closes or starts
/// reconnecting. Called on the synchronizer's worker thread, never concurrently for one
/// synchronizer; `status` and its strings are borrowed for the call only. Same re-entrancy
/// rules as tb_sync_send_fn.
pub type tb_sync_status_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, status: *const tb_sync_status_info)>;

/// Options of a synchronizer. Zero-initialize (`tb_synchronizer_options o = {0};`) and set what
/// you need; passing NULL instead of options means all defaults. The options are read during
/// the creating call only (the struct itself is not kept).
#[repr(C)]
pub struct tb_synchronizer_options {
    /// How long a request waits for its response, in seconds (TinyBase's
    /// requestTimeoutSeconds). 0 means the default: 1 s for custom transports, 0.01 s on a
    /// local bus (as TinyBase). Must be finite and not negative.
    pub request_timeout_seconds: f64,
    /// Beyond TinyBase, off with 0: while auto-saving, this often (seconds) re-announce the
    /// content hashes and pull from a peer (a load), so that a lost or never-sent message is
    /// repaired without a restart. Recommended whenever TinyBase peers take part.
    pub anti_entropy_seconds: f64,
    /// Called for every message sent (TinyBase's onSend). May be NULL.
    pub on_send: tb_sync_message_fn,
    /// Called for every valid message received (TinyBase's onReceive). May be NULL.
    pub on_receive: tb_sync_message_fn,
    /// Called for every ignored error (TinyBase's onIgnoredError). May be NULL.
    pub on_ignored_error: tb_sync_error_fn,
    /// Passed to the three hooks above.
    pub user_data: *mut c_void,
    /// If not NULL, called once with user_data when the synchronizer is freed, after its
    /// worker has stopped (not called when the creating call fails).
    pub release: tb_release_fn,
    /// Beyond TinyBase: at most this many received payloads wait for the worker; 0 means the
    /// default, 10,000. Beyond it tb_synchronizer_receive() refuses payloads (see there).
    pub inbox_max_payloads: usize,
    /// Beyond TinyBase: at most this many bytes of received payloads wait for the worker; 0
    /// means the default, 64 MiB. One payload is always taken when no other waits, whatever
    /// its size.
    pub inbox_max_bytes: usize,
    /// Beyond TinyBase: called with user_data when the sync state or the connection changes
    /// (see tb_sync_status_fn). May be NULL.
    pub on_status: tb_sync_status_fn,
}

// ------------------------------------------------------------------------------ plumbing

thread_local! {
    /// The synchronizer (token) whose callback is running on this thread, 0 if none.
    static IN_CALLBACK: Cell<usize> = const { Cell::new(0) };
}

static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(1);

/// A new token identifying one synchronizer's or persister's callbacks.
pub(crate) fn next_token() -> usize {
    NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
}

/// The token of the synchronizer or persister whose callback runs on this thread (0: none).
pub(crate) fn current_callback() -> usize {
    IN_CALLBACK.try_with(Cell::get).unwrap_or(0)
}

/// Runs a call into the host, marking this thread as inside `token`'s callbacks.
pub(crate) fn in_callback<R>(token: usize, f: impl FnOnce() -> R) -> R {
    let previous = IN_CALLBACK.try_with(|c| c.replace(token)).unwrap_or(0);
    let r = f();
    let _ = IN_CALLBACK.try_with(|c| c.set(previous));
    r
}

/// Host user_data carried into the worker's closures (transport, hooks) and the handle. The
/// last holder releases it: the handle normally (once the worker has stopped), or the worker
/// when it exits after its last callback if the handle went first (freed on the worker thread,
/// e.g. from a store listener while the worker applies a peer's changes).
#[derive(Clone)]
pub(crate) struct Ptr(Arc<HostData>);

impl Ptr {
    /// Takes the host's user_data over: released by the last clone dropped.
    pub(crate) fn new(data: HostData) -> Ptr {
        Ptr(Arc::new(data))
    }

    /// The host's user_data, for a callback.
    pub(crate) fn get(&self) -> *mut c_void {
        self.0.ptr()
    }

    /// The creating call failed after the options were read: the host keeps its user_data, so
    /// its release must not be called. Every closure holding a clone is gone by then (a failed
    /// constructor drops what it was given), so this is the last holder.
    pub(crate) fn disarm(self) {
        if let Some(mut data) = Arc::into_inner(self.0) {
            data.release = None;
        }
    }
}

/// NUL-terminated copy of a string for the host (borrowed by the callback).
pub(crate) fn c_text(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    v
}

fn c_ptr(text: &Option<Vec<u8>>) -> *const c_char {
    text.as_ref().map_or(std::ptr::null(), |t| t.as_ptr() as *const c_char)
}

/// A duration in seconds from the host: 0 is None (the default), else finite and positive.
pub(crate) fn seconds(v: f64, name: &str) -> FfiResult<Option<Duration>> {
    if v == 0.0 {
        return Ok(None);
    }
    if !(0.0..=1e9).contains(&v) {
        return Err(fail(tb_status::TB_ERROR_INVALID_ARGUMENT, format!("{name} must be finite, not negative and at most 1e9 (got {v})")));
    }
    Duration::try_from_secs_f64(v).map(Some).map_err(|e| fail(tb_status::TB_ERROR_INVALID_ARGUMENT, format!("{name}: {e}")))
}

fn message_hook(f: unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, tb_sync_message, *const c_char, usize), ud: &Ptr, token: usize) -> MessageHook {
    let ud = ud.clone();
    Arc::new(move |client: Option<&str>, request: Option<&str>, message: Message, body: &str| {
        let (client, request, text) = (client.map(c_text), request.map(c_text), c_text(body));
        in_callback(token, || unsafe { f(ud.get(), c_ptr(&client), c_ptr(&request), message as tb_sync_message, text.as_ptr() as *const c_char, body.len()) });
    })
}

fn error_hook(f: unsafe extern "C" fn(*mut c_void, *const c_char), ud: &Ptr, token: usize) -> ErrorHook {
    let ud = ud.clone();
    Arc::new(move |error: &str| {
        let text = c_text(error);
        in_callback(token, || unsafe { f(ud.get(), text.as_ptr() as *const c_char) });
    })
}

/// The C view of a connection state: (TB_CONNECTION_*, close code, close reason).
pub(crate) fn connection_out(c: Option<&ConnectionState>) -> (tb_connection_state, u16, Option<&str>) {
    match c {
        None => (TB_CONNECTION_NONE, 0, None),
        Some(ConnectionState::Connecting) => (TB_CONNECTION_CONNECTING, 0, None),
        Some(ConnectionState::Open) => (TB_CONNECTION_OPEN, 0, None),
        Some(ConnectionState::Closed { code, reason }) => (TB_CONNECTION_CLOSED, *code, Some(reason)),
    }
}

fn status_hook(f: unsafe extern "C" fn(*mut c_void, *const tb_sync_status_info), ud: &Ptr, token: usize) -> StatusHook {
    let ud = ud.clone();
    Arc::new(move |s: &SyncStatus| {
        let (connection, close_code, reason) = connection_out(s.connection.as_ref());
        let (error, reason) = (s.last_error.as_deref().map(c_text), reason.map(c_text));
        let info = tb_sync_status_info {
            state: match s.state {
                SyncState::Idle => TB_SYNC_STATE_IDLE,
                SyncState::Syncing => TB_SYNC_STATE_SYNCING,
                SyncState::Error => TB_SYNC_STATE_ERROR,
            },
            pending_requests: s.pending_requests,
            sends: s.sends,
            receives: s.receives,
            last_error: c_ptr(&error),
            connection,
            close_code,
            close_reason: c_ptr(&reason),
        };
        in_callback(token, || unsafe { f(ud.get(), &info) });
    })
}

/// Options read from the host; `host` takes the options' user_data over.
pub(crate) struct HostOptions {
    pub options: SynchronizerOptions,
    pub host: Option<Ptr>,
}

/// Reads (and checks) the host's options; the user_data is taken over only when every check
/// passed.
pub(crate) unsafe fn options_in(p: *const tb_synchronizer_options, token: usize, default_timeout: Duration) -> FfiResult<HostOptions> {
    let mut options = SynchronizerOptions { request_timeout: default_timeout, ..Default::default() };
    if p.is_null() {
        return Ok(HostOptions { options, host: None });
    }
    let o = &*p;
    if let Some(t) = seconds(o.request_timeout_seconds, "request_timeout_seconds")? {
        options.request_timeout = t;
    }
    options.anti_entropy = seconds(o.anti_entropy_seconds, "anti_entropy_seconds")?;
    if o.inbox_max_payloads > 0 {
        options.inbox_max_payloads = o.inbox_max_payloads;
    }
    if o.inbox_max_bytes > 0 {
        options.inbox_max_bytes = o.inbox_max_bytes;
    }
    // Every check passed: from here on the library owns user_data.
    let ud = Ptr(Arc::new(HostData { user_data: o.user_data, release: o.release }));
    options.on_send = o.on_send.map(|f| message_hook(f, &ud, token));
    options.on_receive = o.on_receive.map(|f| message_hook(f, &ud, token));
    options.on_ignored_error = o.on_ignored_error.map(|f| error_hook(f, &ud, token));
    options.on_status = o.on_status.map(|f| status_hook(f, &ud, token));
    Ok(HostOptions { options, host: Some(ud) })
}

/// The connection state of a synchronizer that has one (and what keeps its connection alive
/// while the handle lives).
pub(crate) type ConnectionFn = Box<dyn Fn() -> ConnectionState + Send + Sync>;

/// What a tb_synchronizer pointer points at (Box-owned by the host; one release path:
/// tb_synchronizer_free).
pub(crate) struct SyncHandle {
    sync: Arc<Synchronizer>,
    token: usize,
    /// Serializes destroys: every destroy call returns after the worker has stopped.
    destroying: Mutex<()>,
    destroyed: AtomicBool,
    /// Transport and options user_data, released by their last holder (see `Ptr`).
    _host: Vec<Ptr>,
    /// WebSocket synchronizers: their connection's state.
    connection: Option<ConnectionFn>,
}

impl SyncHandle {
    /// A handle for `sync`, whose callbacks are marked with `token`; it keeps `host` until it
    /// is freed.
    pub(crate) fn new(sync: Arc<Synchronizer>, token: usize, host: Vec<Ptr>, connection: Option<ConnectionFn>) -> SyncHandle {
        SyncHandle { sync, token, destroying: Mutex::new(()), destroyed: AtomicBool::new(false), _host: host, connection }
    }

    fn destroy(&self) {
        let _serial = self.destroying.lock();
        if !self.destroyed.load(Ordering::Acquire) {
            self.sync.destroy();
            self.destroyed.store(true, Ordering::Release);
        }
    }

    fn live(&self) -> FfiResult<&Synchronizer> {
        if self.destroyed.load(Ordering::Acquire) {
            return Err(fail(tb_status::TB_ERROR_INVALID_STATE, "the synchronizer is destroyed"));
        }
        Ok(&self.sync)
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        self.destroy();
    }
}

pub(crate) unsafe fn sync_ref<'a>(p: *const tb_synchronizer) -> FfiResult<&'a SyncHandle> {
    if p.is_null() {
        return Err(fail(tb_status::TB_ERROR_NULL_PARAMETER, "synchronizer is NULL"));
    }
    Ok(&*(p as *const SyncHandle))
}

pub(crate) fn sync_out(handle: SyncHandle) -> *mut tb_synchronizer {
    live_inc();
    Box::into_raw(Box::new(handle)) as *mut tb_synchronizer
}

/// Creates a custom-transport synchronizer once every argument has been checked; the host data
/// is taken over only on success.
unsafe fn new_custom(
    store: *mut tb_mergeable_store,
    user_data: *mut c_void,
    release: tb_release_fn,
    options: *const tb_synchronizer_options,
    out: *mut *mut tb_synchronizer,
    transport: impl FnOnce(&Ptr, usize) -> Arc<dyn Transport>,
) -> FfiResult<()> {
    let (_, m) = mergeable(store)?;
    let out = non_null(out, "out")?;
    let token = next_token();
    let o = options_in(options, token, SynchronizerOptions::default().request_timeout)?;
    let ud = Ptr(Arc::new(HostData { user_data, release }));
    let sync = Arc::new(Synchronizer::new(m, transport(&ud, token), o.options));
    let host = std::iter::once(ud).chain(o.host).collect();
    *out = sync_out(SyncHandle::new(sync, token, host, None));
    Ok(())
}

// ----------------------------------------------------------------------- custom transports

/// createCustomSynchronizer: a synchronizer for `store` whose messages go out through
/// `send(user_data, to_client_id_or_NULL, payload, len)` (see tb_sync_send_fn: worker thread,
/// not concurrent, arguments borrowed) and come in through tb_synchronizer_receive().
/// `options` may be NULL (defaults; see tb_synchronizer_options). It starts stopped: call
/// tb_synchronizer_start_sync(). On success the library owns user_data until
/// tb_synchronizer_free(), which calls release(user_data) once, after the worker has stopped;
/// on failure neither release (transport's nor options') is called.
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_new_custom(
    store: *mut tb_mergeable_store,
    send: tb_sync_send_fn,
    user_data: *mut c_void,
    release: tb_release_fn,
    options: *const tb_synchronizer_options,
    out: *mut *mut tb_synchronizer,
) -> tb_status {
    guard(|| {
        let send = send.ok_or_else(|| fail(tb_status::TB_ERROR_NULL_PARAMETER, "send is NULL"))?;
        new_custom(store, user_data, release, options, out, |ud, token| Arc::new(CTransport { send, ud: ud.clone(), token }))
    })
}

struct CTransport {
    send: unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, usize),
    ud: Ptr,
    token: usize,
}

impl Transport for CTransport {
    fn send(&self, to: Option<&str>, payload: &str) {
        let (to, text) = (to.map(c_text), c_text(payload));
        in_callback(self.token, || unsafe { (self.send)(self.ud.get(), c_ptr(&to), text.as_ptr() as *const c_char, payload.len()) });
    }
}

/// As tb_synchronizer_new_custom(), for byte-stream or message media that carry TinyBase's
/// WebSocket frames: `send_frame(user_data, frame, len)` receives `toClientId\n[...]` (an
/// empty client id meaning every other client; see tb_sync_send_frame_fn). Feed inbound frames
/// (`fromClientId\n[...]`) to tb_synchronizer_receive_framed().
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_new_custom_framed(
    store: *mut tb_mergeable_store,
    send_frame: tb_sync_send_frame_fn,
    user_data: *mut c_void,
    release: tb_release_fn,
    options: *const tb_synchronizer_options,
    out: *mut *mut tb_synchronizer,
) -> tb_status {
    guard(|| {
        let f = send_frame.ok_or_else(|| fail(tb_status::TB_ERROR_NULL_PARAMETER, "send_frame is NULL"))?;
        new_custom(store, user_data, release, options, out, |ud, token| {
            let ud = ud.clone();
            Arc::new(FramedTransport::new(move |frame: &str| {
                let text = c_text(frame);
                in_callback(token, || unsafe { f(ud.get(), text.as_ptr() as *const c_char, frame.len()) });
            }))
        })
    })
}

/// Hands a payload `[requestId, message, body]` received from client `from_client_id` to the
/// synchronizer. Any thread (including inside any synchronizer callback); never blocks: the
/// payload is queued for the worker, which validates it (invalid ones are reported through
/// on_ignored_error and never applied). Payloads received after destroy are ignored (TB_OK).
/// TB_ERROR_INVALID_STATE when the inbox is full (see inbox_max_payloads / inbox_max_bytes in
/// tb_synchronizer_options): the payload is refused at once (the caller is never blocked),
/// on_ignored_error gets "tinybase:15:inbox" on the worker, and
/// tb_synchronizer_get_inbox_stats() counts it; the next load (anti-entropy) repairs what it
/// carried.
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_receive(sync: *mut tb_synchronizer, from_client_id: *const c_char, payload: *const c_char) -> tb_status {
    guard(|| {
        let h = sync_ref(sync)?;
        let from = str_in(from_client_id, "from_client_id")?;
        let payload = str_in(payload, "payload")?;
        h.sync.receive(from, payload)?;
        Ok(())
    })
}

/// Hands a frame `fromClientId\n[requestId, message, body]` (TinyBase's WebSocket form) to the
/// synchronizer: as tb_synchronizer_receive(). TB_ERROR_INVALID_SHAPE when there is no newline.
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_receive_framed(sync: *mut tb_synchronizer, frame: *const c_char) -> tb_status {
    guard(|| {
        let h = sync_ref(sync)?;
        let frame = str_in(frame, "frame")?;
        h.sync.receive_framed(frame)?;
        Ok(())
    })
}

// ------------------------------------------------------------------------------ lifecycle

/// Runs a command on a live synchronizer.
unsafe fn command(sync: *mut tb_synchronizer, f: impl FnOnce(&Synchronizer)) -> tb_status {
    guard(|| {
        let h = sync_ref(sync)?;
        f(h.live()?);
        Ok(())
    })
}

unsafe fn command_with_content(sync: *mut tb_synchronizer, initial: *const c_char, f: impl FnOnce(&Synchronizer, Option<&str>)) -> tb_status {
    guard(|| {
        let h = sync_ref(sync)?;
        let initial = opt_str_in(initial, "initial_content_json")?;
        f(h.live()?, initial);
        Ok(())
    })
}

/// startSync: auto-load (pull the changes of whichever peer answers first), then auto-save
/// (announce this store's hashes, then send a ContentDiff after every local transaction).
/// `initial_content_json` (`[tables, values]`, or NULL) becomes default content when no peer
/// answers. BLOCKS until the initial load has finished: up to the request timeout (a few
/// timeouts at most) when no peer answers. Called from inside one of this synchronizer's
/// callbacks it is queued instead and returns at once. TB_ERROR_INVALID_STATE after destroy.
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_start_sync(sync: *mut tb_synchronizer, initial_content_json: *const c_char) -> tb_status {
    command_with_content(sync, initial_content_json, |s, i| s.start_sync(i))
}

/// stopSync: stops auto-loading and auto-saving (requests in flight still complete). BLOCKS
/// briefly until the worker has handled what was queued before it.
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_stop_sync(sync: *mut tb_synchronizer) -> tb_status {
    command(sync, |s| s.stop_sync())
}

/// load: pulls the first answering peer's changes once (`initial_content_json` as in
/// tb_synchronizer_start_sync). BLOCKS until done: up to the request timeout(s).
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_load(sync: *mut tb_synchronizer, initial_content_json: *const c_char) -> tb_status {
    command_with_content(sync, initial_content_json, |s, i| s.load(i))
}

/// save: announces this store's content hashes once (peers that auto-load then pull).
/// BLOCKS briefly until the worker has sent it.
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_save(sync: *mut tb_synchronizer) -> tb_status {
    command(sync, |s| s.save())
}

/// startAutoLoad: acts on peers' ContentHashes and ContentDiff messages from now on, after a
/// first load. BLOCKS until that load has finished (up to the request timeout(s)).
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_start_auto_load(sync: *mut tb_synchronizer, initial_content_json: *const c_char) -> tb_status {
    command_with_content(sync, initial_content_json, |s, i| s.start_auto_load(i))
}

/// stopAutoLoad. BLOCKS briefly (see tb_synchronizer_stop_sync).
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_stop_auto_load(sync: *mut tb_synchronizer) -> tb_status {
    command(sync, |s| s.stop_auto_load())
}

/// startAutoSave: saves, then broadcasts a ContentDiff after every local transaction. BLOCKS
/// briefly (see tb_synchronizer_save).
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_start_auto_save(sync: *mut tb_synchronizer) -> tb_status {
    command(sync, |s| s.start_auto_save())
}

/// stopAutoSave. BLOCKS briefly (see tb_synchronizer_stop_sync).
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_stop_auto_save(sync: *mut tb_synchronizer) -> tb_status {
    command(sync, |s| s.stop_auto_save())
}

/// getStatus: `*out` is a TB_SYNC_STATUS_* value (TB_SYNC_STATUS_IDLE after destroy).
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_get_status(sync: *mut tb_synchronizer, out: *mut tb_sync_status) -> tb_status {
    guard(|| {
        let h = sync_ref(sync)?;
        let out = non_null(out, "out")?;
        *out = match h.sync.get_status() {
            Status::Idle => TB_SYNC_STATUS_IDLE,
            Status::Loading => TB_SYNC_STATUS_LOADING,
            Status::Saving => TB_SYNC_STATUS_SAVING,
        };
        Ok(())
    })
}

/// The synchronizer's connection (beyond TinyBase): `*state` is a TB_CONNECTION_* value
/// (TB_CONNECTION_NONE for synchronizers without a connection of their own: custom transports,
/// local buses). When it is TB_CONNECTION_CLOSED, `*close_code` is the WebSocket close code
/// and `*close_reason` a new string (free it with tb_string_free()); otherwise they are 0 and
/// NULL. `close_code` and `close_reason` may be NULL when not wanted. Readable after destroy
/// (a destroyed WebSocket synchronizer is closed, normally with 1000).
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_get_connection_state(
    sync: *mut tb_synchronizer,
    state: *mut tb_connection_state,
    close_code: *mut u16,
    close_reason: *mut *mut c_char,
) -> tb_status {
    guard(|| {
        let h = sync_ref(sync)?;
        let state = non_null(state, "state")?;
        write_connection(h.connection.as_ref().map(|f| f()).as_ref(), state, close_code, close_reason)
    })
}

/// Writes a connection state to the (checked) `state` and the optional close outs.
pub(crate) unsafe fn write_connection(c: Option<&ConnectionState>, state: *mut tb_connection_state, close_code: *mut u16, close_reason: *mut *mut c_char) -> FfiResult<()> {
    let (s, code, reason) = connection_out(c);
    let reason = match (reason, close_reason.is_null()) {
        (Some(r), false) => string_out(r.to_string())?,
        _ => std::ptr::null_mut(),
    };
    *state = s;
    if !close_code.is_null() {
        *close_code = code;
    }
    if !close_reason.is_null() {
        *close_reason = reason;
    }
    Ok(())
}

/// getSynchronizerStats: protocol messages sent and valid messages received so far.
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_get_stats(sync: *mut tb_synchronizer, out_sends: *mut u64, out_receives: *mut u64) -> tb_status {
    guard(|| {
        let h = sync_ref(sync)?;
        let sends = non_null(out_sends, "out_sends")?;
        let receives = non_null(out_receives, "out_receives")?;
        let stats = h.sync.get_synchronizer_stats();
        (*sends, *receives) = (stats.sends, stats.receives);
        Ok(())
    })
}

/// The inbox of received payloads (beyond TinyBase): `*out_queued` payloads holding
/// `*out_queued_bytes` bytes wait for the worker; `*out_refused` payloads were refused so far
/// because it was full.
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_get_inbox_stats(
    sync: *mut tb_synchronizer,
    out_queued: *mut usize,
    out_queued_bytes: *mut usize,
    out_refused: *mut u64,
) -> tb_status {
    guard(|| {
        let h = sync_ref(sync)?;
        let queued = non_null(out_queued, "out_queued")?;
        let bytes = non_null(out_queued_bytes, "out_queued_bytes")?;
        let refused = non_null(out_refused, "out_refused")?;
        let stats = h.sync.get_inbox_stats();
        (*queued, *bytes, *refused) = (stats.queued_payloads, stats.queued_bytes, stats.refused_payloads);
        Ok(())
    })
}

/// Whether nothing is queued, running or waiting for a response right now (true after
/// destroy). Messages still inside the host's transport are not seen: a host with its own
/// queues checks those too.
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_is_idle(sync: *mut tb_synchronizer, out: *mut bool) -> tb_status {
    guard(|| {
        let h = sync_ref(sync)?;
        let out = non_null(out, "out")?;
        *out = h.destroyed.load(Ordering::Acquire) || h.sync.is_idle();
        Ok(())
    })
}

/// Whether the worker has handled everything queued so far, local transactions included, even
/// if requests still wait for responses (true after destroy). A host that must see a local
/// transaction's ContentDiff sent before it goes on waits for this.
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_is_settled(sync: *mut tb_synchronizer, out: *mut bool) -> tb_status {
    guard(|| {
        let h = sync_ref(sync)?;
        let out = non_null(out, "out")?;
        *out = h.destroyed.load(Ordering::Acquire) || h.sync.is_settled();
        Ok(())
    })
}

/// Waits until the synchronizer has stayed idle briefly (see tb_synchronizer_is_idle): `*idle`
/// is true then, false when `timeout_seconds` (finite, not negative) passed first. BLOCKS up
/// to timeout_seconds. TB_ERROR_INVALID_STATE from inside one of this synchronizer's own
/// callbacks (it could never become idle).
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_wait_for_idle(sync: *mut tb_synchronizer, timeout_seconds: f64, idle: *mut bool) -> tb_status {
    guard(|| {
        let h = sync_ref(sync)?;
        let idle = non_null(idle, "idle")?;
        let timeout = seconds(timeout_seconds, "timeout_seconds")?.unwrap_or(Duration::ZERO);
        if current_callback() == h.token {
            return Err(fail(tb_status::TB_ERROR_INVALID_STATE, "waiting for a synchronizer to be idle from inside its own callback"));
        }
        *idle = h.destroyed.load(Ordering::Acquire) || h.sync.wait_for_idle(timeout);
        Ok(())
    })
}

/// destroy: fails pending requests, stops syncing, leaves the bus (if any) and stops the
/// worker thread; nothing is sent once it has begun (work queued before it is dropped), and
/// afterwards no callback of this synchronizer is running or will run. Called on the worker
/// thread itself (from a store listener while the worker applies a peer's changes) it returns
/// at once, and the worker stops when that listener returns. The
/// handle stays valid (stats, status; commands give TB_ERROR_INVALID_STATE; received payloads
/// are ignored) until tb_synchronizer_free(). Idempotent; concurrent calls all return after
/// the worker has stopped. BLOCKS until the worker finishes what it is doing.
/// TB_ERROR_INVALID_STATE when called from inside one of this synchronizer's own callbacks.
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_destroy(sync: *mut tb_synchronizer) -> tb_status {
    guard(|| {
        let h = sync_ref(sync)?;
        if current_callback() == h.token {
            return Err(fail(tb_status::TB_ERROR_INVALID_STATE, "destroying a synchronizer from inside its own callback"));
        }
        h.destroy();
        Ok(())
    })
}

/// Frees a synchronizer (NULL is fine): destroys it if needed (BLOCKS as
/// tb_synchronizer_destroy does), then calls the transport's and the options' release once
/// each, on this thread, after the worker has stopped. The store is not freed (the host frees
/// its own store handle; the synchronizer kept its own reference until now). Called from
/// inside one of this synchronizer's own callbacks (discouraged), the destroy and the releases
/// happen on a library thread once that callback has returned. Called on its worker thread
/// otherwise (a store listener running while the worker applies a peer's changes), it returns
/// at once and the releases happen on the worker thread as it exits, after its last callback.
#[no_mangle]
pub unsafe extern "C" fn tb_synchronizer_free(sync: *mut tb_synchronizer) {
    guard_or((), || {
        if sync.is_null() {
            return;
        }
        let h = Box::from_raw(sync as *mut SyncHandle);
        live_dec();
        if current_callback() == h.token {
            drop_elsewhere(h, "tinybase-sync-free");
            return;
        }
        drop(h);
    })
}

/// Drops `value` on a new thread: a free from inside an object's own callback cannot wait for
/// the thread (or call) running that callback. If no thread can be started, `value` is leaked
/// rather than released too early.
pub(crate) fn drop_elsewhere<T: Send + 'static>(value: T, thread_name: &str) {
    let cell = Arc::new(Mutex::new(Some(value)));
    let deferred = cell.clone();
    if std::thread::Builder::new().name(thread_name.into()).spawn(move || drop(deferred.lock().take())).is_err() {
        std::mem::forget(cell.lock().take());
    }
}

// -------------------------------------------------------------------- local bus, channels

unsafe fn bus_ref<'a>(p: *const tb_local_bus) -> FfiResult<&'a LocalBus> {
    if p.is_null() {
        return Err(fail(tb_status::TB_ERROR_NULL_PARAMETER, "bus is NULL"));
    }
    Ok(&*(p as *const LocalBus))
}

fn bus_out(bus: LocalBus) -> *mut tb_local_bus {
    live_inc();
    Box::into_raw(Box::new(bus)) as *mut tb_local_bus
}

/// Creates an empty in-process bus (TinyBase's LocalSynchronizer medium). Free with
/// tb_local_bus_free().
#[no_mangle]
pub unsafe extern "C" fn tb_local_bus_new(out: *mut *mut tb_local_bus) -> tb_status {
    guard(|| {
        let out = non_null(out, "out")?;
        *out = bus_out(LocalBus::new());
        Ok(())
    })
}

/// Releases the host's reference to a bus (NULL is fine). Synchronizers created on it keep
/// working (they hold the bus) until they are destroyed.
#[no_mangle]
pub unsafe extern "C" fn tb_local_bus_free(bus: *mut tb_local_bus) {
    guard_or((), || {
        if !bus.is_null() {
            drop(Box::from_raw(bus as *mut LocalBus));
            live_dec();
        }
    })
}

/// createLocalSynchronizer: a synchronizer for `store` on this bus, with a random client id;
/// it reaches every other synchronizer on the bus. `options` may be NULL (defaults; the request
/// timeout defaults to TinyBase's 0.01 s here, which a busy machine may exceed: timeouts are
/// ignored errors and the peers still converge once the next announcement is answered).
/// Free with tb_synchronizer_free() (which also releases the options' user_data).
#[no_mangle]
pub unsafe extern "C" fn tb_local_bus_create_synchronizer(
    bus: *mut tb_local_bus,
    store: *mut tb_mergeable_store,
    options: *const tb_synchronizer_options,
    out: *mut *mut tb_synchronizer,
) -> tb_status {
    guard(|| {
        let b = bus_ref(bus)?;
        let (_, m) = mergeable(store)?;
        let out = non_null(out, "out")?;
        let token = next_token();
        let o = options_in(options, token, LOCAL_REQUEST_TIMEOUT)?;
        let sync = b.create_synchronizer(m, Some(o.options));
        let host = o.host.into_iter().collect();
        *out = sync_out(SyncHandle::new(sync, token, host, None));
        Ok(())
    })
}

/// Waits until every synchronizer on the bus has stayed idle briefly: `*idle` is true then,
/// false when `timeout_seconds` (finite, not negative) passed first. BLOCKS up to
/// timeout_seconds (do not call it from a synchronizer callback).
#[no_mangle]
pub unsafe extern "C" fn tb_local_bus_wait_for_idle(bus: *mut tb_local_bus, timeout_seconds: f64, idle: *mut bool) -> tb_status {
    guard(|| {
        let b = bus_ref(bus)?;
        let idle = non_null(idle, "idle")?;
        let timeout = seconds(timeout_seconds, "timeout_seconds")?.unwrap_or(Duration::ZERO);
        *idle = b.wait_for_idle(timeout);
        Ok(())
    })
}

/// The bus of the named in-process channel `name` (TinyBase's BroadcastChannelSynchronizer
/// medium): any number of stores whose synchronizers are created on buses opened with the same
/// name sync with each other. The channel lives while any bus handle or synchronizer uses it.
/// Free the handle with tb_local_bus_free().
#[no_mangle]
pub unsafe extern "C" fn tb_broadcast_channel_open(name: *const c_char, out: *mut *mut tb_local_bus) -> tb_status {
    guard(|| {
        let name = str_in(name, "name")?;
        let out = non_null(out, "out")?;
        *out = bus_out(BroadcastChannel::open(name));
        Ok(())
    })
}
