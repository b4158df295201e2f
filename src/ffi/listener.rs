//! Listeners: C callbacks and buffered delivery through event queues.

use crate::ffi::error::{fail, guard, guard_or, tb_status, FfiResult};
use crate::ffi::handle::{handle, held, tb_release_fn, tb_store, Handle, HostData};
use crate::ffi::strings::{non_null, opt_str_in};
use crate::ffi::value::{tb_value, value_borrowed};
use crate::ffi::{live_dec, live_inc};
use crate::store::{ListenerEvent, ListenerKind};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// The kind of a listener (a uint32_t; one of the TB_LISTENER_* constants), after TinyBase's
/// add…Listener methods.
pub type tb_listener_kind = u32;
/// addHasTablesListener: whether the store has any tables. No ids.
pub const TB_LISTENER_HAS_TABLES: tb_listener_kind = 0;
/// addTablesListener: any change to any table. No ids.
pub const TB_LISTENER_TABLES: tb_listener_kind = 1;
/// addTableIdsListener. No ids.
pub const TB_LISTENER_TABLE_IDS: tb_listener_kind = 2;
/// addHasTableListener. Ids: table.
pub const TB_LISTENER_HAS_TABLE: tb_listener_kind = 3;
/// addTableListener. Ids: table.
pub const TB_LISTENER_TABLE: tb_listener_kind = 4;
/// addTableCellIdsListener. Ids: table.
pub const TB_LISTENER_TABLE_CELL_IDS: tb_listener_kind = 5;
/// addHasTableCellListener. Ids: table, cell.
pub const TB_LISTENER_HAS_TABLE_CELL: tb_listener_kind = 6;
/// addRowCountListener (the event's row_count is the new count). Ids: table.
pub const TB_LISTENER_ROW_COUNT: tb_listener_kind = 7;
/// addRowIdsListener. Ids: table.
pub const TB_LISTENER_ROW_IDS: tb_listener_kind = 8;
/// addHasRowListener. Ids: table, row.
pub const TB_LISTENER_HAS_ROW: tb_listener_kind = 9;
/// addRowListener. Ids: table, row.
pub const TB_LISTENER_ROW: tb_listener_kind = 10;
/// addCellIdsListener. Ids: table, row.
pub const TB_LISTENER_CELL_IDS: tb_listener_kind = 11;
/// addHasCellListener. Ids: table, row, cell.
pub const TB_LISTENER_HAS_CELL: tb_listener_kind = 12;
/// addCellListener (the event carries new_value and old_value). Ids: table, row, cell.
pub const TB_LISTENER_CELL: tb_listener_kind = 13;
/// addHasValuesListener. No ids.
pub const TB_LISTENER_HAS_VALUES: tb_listener_kind = 14;
/// addValuesListener. No ids.
pub const TB_LISTENER_VALUES: tb_listener_kind = 15;
/// addValueIdsListener. No ids.
pub const TB_LISTENER_VALUE_IDS: tb_listener_kind = 16;
/// addHasValueListener. Ids: value.
pub const TB_LISTENER_HAS_VALUE: tb_listener_kind = 17;
/// addValueListener (the event carries new_value and old_value). Ids: value.
pub const TB_LISTENER_VALUE: tb_listener_kind = 18;
/// addStartTransactionListener. No ids.
pub const TB_LISTENER_START_TRANSACTION: tb_listener_kind = 19;
/// addWillFinishTransactionListener (called inside the transaction). No ids.
pub const TB_LISTENER_WILL_FINISH_TRANSACTION: tb_listener_kind = 20;
/// addDidFinishTransactionListener (tb_store_get_transaction_changes_json works inside it).
/// No ids.
pub const TB_LISTENER_DID_FINISH_TRANSACTION: tb_listener_kind = 21;

const KINDS: [ListenerKind; 22] = {
    use ListenerKind::*;
    [
        HasTables,
        Tables,
        TableIds,
        HasTable,
        Table,
        TableCellIds,
        HasTableCell,
        RowCount,
        RowIds,
        HasRow,
        Row,
        CellIds,
        HasCell,
        Cell,
        HasValues,
        Values,
        ValueIds,
        HasValue,
        Value,
        StartTransaction,
        WillFinishTransaction,
        DidFinishTransaction,
    ]
};

fn kind_in(kind: tb_listener_kind) -> FfiResult<ListenerKind> {
    KINDS
        .get(kind as usize)
        .copied()
        .ok_or_else(|| fail(tb_status::TB_ERROR_INVALID_ARGUMENT, format!("unknown listener kind {kind}")))
}

fn kind_out(kind: ListenerKind) -> tb_listener_kind {
    KINDS.iter().position(|k| *k == kind).unwrap_or(0) as tb_listener_kind
}

/// What a listener is called with. Everything in it is borrowed for the duration of the
/// callback (or owned by the tb_event from a queue until tb_event_free()).
#[repr(C)]
pub struct tb_event {
    /// The kind of listener (a TB_LISTENER_* constant).
    pub kind: tb_listener_kind,
    /// The id of the listener called (as returned when it was added).
    pub listener_id: u64,
    /// The table id, for table, row and cell kinds (NULL otherwise).
    pub table_id: *const c_char,
    /// The row id, for row and cell kinds (NULL otherwise).
    pub row_id: *const c_char,
    /// The cell id, for cell kinds and TB_LISTENER_HAS_TABLE_CELL (NULL otherwise).
    pub cell_id: *const c_char,
    /// The value id, for TB_LISTENER_HAS_VALUE and TB_LISTENER_VALUE (NULL otherwise).
    pub value_id: *const c_char,
    /// TB_LISTENER_CELL / TB_LISTENER_VALUE: the new cell or value (absent when deleted).
    pub new_value: tb_value,
    /// TB_LISTENER_CELL / TB_LISTENER_VALUE: the old cell or value (absent when it was new).
    pub old_value: tb_value,
    /// Has-listeners: whether the thing now exists.
    pub has: bool,
    /// TB_LISTENER_ROW_COUNT: the table's new row count.
    pub row_count: usize,
}

/// A tb_event with the storage its pointers borrow from.
#[repr(C)]
pub(crate) struct OwnedEvent {
    event: tb_event,
    text: Vec<Box<[u8]>>,
}

// SAFETY: the raw pointers point into `text`, which the event owns.
unsafe impl Send for OwnedEvent {}

impl OwnedEvent {
    fn new(e: &ListenerEvent, listener_id: u64) -> Box<OwnedEvent> {
        use ListenerKind::*;
        let mut text: Vec<Box<[u8]>> = Vec::new();
        let mut id = |i: usize| -> *const c_char {
            match e.ids.get(i) {
                Some(s) => {
                    let mut v = Vec::with_capacity(s.len() + 1);
                    v.extend_from_slice(s.as_bytes());
                    v.push(0);
                    let b = v.into_boxed_slice();
                    let p = b.as_ptr() as *const c_char;
                    text.push(b);
                    p
                }
                None => std::ptr::null(),
            }
        };
        let null = std::ptr::null();
        let (table_id, row_id, cell_id, value_id) = match e.kind {
            HasTable | Table | TableCellIds | RowCount | RowIds => (id(0), null, null, null),
            HasTableCell => (id(0), null, id(1), null),
            HasRow | Row | CellIds => (id(0), id(1), null, null),
            HasCell | Cell => (id(0), id(1), id(2), null),
            HasValue | Value => (null, null, null, id(0)),
            _ => (null, null, null, null),
        };
        let new_value = value_borrowed(e.new_cell.as_ref(), &mut text);
        let old_value = value_borrowed(e.old_cell.as_ref(), &mut text);
        Box::new(OwnedEvent {
            event: tb_event {
                kind: kind_out(e.kind),
                listener_id,
                table_id,
                row_id,
                cell_id,
                value_id,
                new_value,
                old_value,
                has: e.has,
                row_count: e.row_count,
            },
            text,
        })
    }
}

/// A listener callback. Called on the thread that committed the change (any thread writing the
/// store), possibly concurrently on several threads, after the transaction committed and with
/// no internal lock held. `store` (a borrowed view; for a mergeable store use
/// tb_store_as_mergeable()) and `event` are valid for the duration of the call only. May
/// re-enter the API, including removing this very listener.
pub type tb_listener_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, store: *mut tb_store, event: *const tb_event)>;

/// Called when a tb_event_queue goes from empty to non-empty, on the thread that queued the
/// event, with no lock held (typically to wake the host's event loop). Must not block for
/// long; may call tb_event_queue_* functions.
pub type tb_notify_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

enum Sink {
    Call { f: unsafe extern "C" fn(*mut c_void, *mut tb_store, *const tb_event), data: HostData },
    Queue(Arc<Queue>),
}

struct ListenerState {
    /// Calls are made (set once registration completed, cleared by removal).
    alive: bool,
    removed: bool,
    released: bool,
    in_flight: Vec<ThreadId>,
}

/// A listener registered through the C API.
pub(crate) struct FfiListener {
    id: AtomicU64,
    handle: Weak<Handle>,
    sink: Mutex<Option<Sink>>,
    state: Mutex<ListenerState>,
    idle: Condvar,
}

impl FfiListener {
    fn token(&self) -> usize {
        self as *const FfiListener as usize
    }

    fn call(&self, event: &ListenerEvent) {
        let me = std::thread::current().id();
        {
            let mut st = self.state.lock();
            if !st.alive {
                return;
            }
            st.in_flight.push(me);
        }
        let handle = Handle::enter(&self.handle);
        if let Some(h) = &handle {
            let id = self.id.load(Ordering::Acquire);
            // The sink is only taken once no call is in flight, so it is present here.
            let call = match &*self.sink.lock() {
                Some(Sink::Call { f, data }) => Some((*f, data.user_data)),
                Some(Sink::Queue(q)) => {
                    q.push(self.token(), OwnedEvent::new(event, id));
                    None
                }
                None => None,
            };
            if let Some((f, user_data)) = call {
                let owned = OwnedEvent::new(event, id);
                let store = Arc::as_ptr(h) as *mut tb_store;
                unsafe { f(user_data, store, &owned.event) };
            }
        }
        let release_now = {
            let mut st = self.state.lock();
            if let Some(i) = st.in_flight.iter().position(|t| *t == me) {
                st.in_flight.swap_remove(i);
            }
            self.idle.notify_all();
            let now = st.removed && st.in_flight.is_empty() && !st.released;
            if now {
                st.released = true;
            }
            now
        };
        if release_now {
            self.release();
        }
        Handle::leave(handle);
    }

    /// Stops calls, waits for in-flight calls on other threads, then releases the host data
    /// (or, when called from inside this listener's own callback, arranges for release when
    /// that callback returns).
    pub(crate) fn remove(&self) {
        let me = std::thread::current().id();
        let release_now = {
            let mut st = self.state.lock();
            if st.removed {
                return;
            }
            st.alive = false;
            st.removed = true;
            while st.in_flight.iter().any(|t| *t != me) {
                self.idle.wait(&mut st);
            }
            let now = st.in_flight.is_empty() && !st.released;
            if now {
                st.released = true;
            }
            now
        };
        if release_now {
            self.release();
        }
    }

    fn release(&self) {
        let sink = self.sink.lock().take();
        if let Some(Sink::Queue(q)) = &sink {
            q.purge(self.token());
        }
        drop(sink);
        live_dec();
    }
}

/// Registers a listener through a handle: the id and the wrapper are recorded under the
/// handle's listener map lock, so that ids reused by the store never get mixed up.
unsafe fn add(store: *mut tb_store, kind: ListenerKind, ids: [*const c_char; 3], sink: impl FnOnce() -> FfiResult<Sink>, out: *mut u64) -> FfiResult<()> {
    let h = handle(store)?;
    let out = non_null(out, "out_id")?;
    let names = ["first id", "second id", "third id"];
    let mut parsed: Vec<Option<&str>> = Vec::new();
    for i in 0..kind.id_count() {
        parsed.push(opt_str_in(ids[i], names[i])?);
    }
    // Recover the Arc of this handle for the listener's weak reference.
    let arc = {
        let p = store as *const Handle;
        Arc::increment_strong_count(p);
        Arc::from_raw(p)
    };
    let sink = sink()?;
    let listener = Arc::new(FfiListener {
        id: AtomicU64::new(0),
        handle: Arc::downgrade(&arc),
        sink: Mutex::new(Some(sink)),
        state: Mutex::new(ListenerState { alive: false, removed: false, released: false, in_flight: Vec::new() }),
        idle: Condvar::new(),
    });
    drop(arc);
    let mut map = h.listeners.lock();
    let l = listener.clone();
    let id = match h.store.add_listener_of_kind(kind, &parsed, move |_, e| l.call(e)) {
        Ok(id) => id,
        Err(e) => {
            // Not taken over: the host data must not be released.
            if let Some(Sink::Call { mut data, .. }) = listener.sink.lock().take() {
                data.release = None;
            }
            return Err(e.into());
        }
    };
    live_inc();
    listener.id.store(id, Ordering::Release);
    listener.state.lock().alive = true;
    map.insert(id, listener);
    *out = id;
    Ok(())
}

unsafe fn add_callback(
    store: *mut tb_store,
    kind: ListenerKind,
    ids: [*const c_char; 3],
    callback: tb_listener_fn,
    user_data: *mut c_void,
    release: tb_release_fn,
    out: *mut u64,
) -> tb_status {
    guard(|| {
        add(
            store,
            kind,
            ids,
            || {
                let f = callback.ok_or_else(|| fail(tb_status::TB_ERROR_NULL_PARAMETER, "callback is NULL"))?;
                Ok(Sink::Call { f, data: HostData { user_data, release } })
            },
            out,
        )
    })
}

const NO_IDS: [*const c_char; 3] = [std::ptr::null(); 3];

/// Adds a listener of any kind. `id1`..`id3` are the ids the kind takes, in TinyBase's order
/// (table, row, cell; or table, cell for TB_LISTENER_HAS_TABLE_CELL; or value), NULL meaning
/// any (a wildcard); ids the kind does not take are ignored. On success `*out_id` is the
/// listener id (for tb_store_del_listener and tb_store_call_listener) and the library owns
/// user_data until the listener is removed (then release is called once). On failure release
/// is not called.
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_listener(
    store: *mut tb_store,
    kind: tb_listener_kind,
    id1: *const c_char,
    id2: *const c_char,
    id3: *const c_char,
    callback: tb_listener_fn,
    user_data: *mut c_void,
    release: tb_release_fn,
    out_id: *mut u64,
) -> tb_status {
    match kind_in(kind) {
        Ok(k) => add_callback(store, k, [id1, id2, id3], callback, user_data, release, out_id),
        Err(e) => guard(|| Err(e)),
    }
}

/// addHasTablesListener (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_has_tables_listener(store: *mut tb_store, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::HasTables, NO_IDS, callback, user_data, release, out_id)
}

/// addTablesListener (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_tables_listener(store: *mut tb_store, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::Tables, NO_IDS, callback, user_data, release, out_id)
}

/// addTableIdsListener (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_table_ids_listener(store: *mut tb_store, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::TableIds, NO_IDS, callback, user_data, release, out_id)
}

/// addHasTableListener; NULL table_id: any table (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_has_table_listener(store: *mut tb_store, table_id: *const c_char, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::HasTable, [table_id, std::ptr::null(), std::ptr::null()], callback, user_data, release, out_id)
}

/// addTableListener; NULL table_id: any table (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_table_listener(store: *mut tb_store, table_id: *const c_char, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::Table, [table_id, std::ptr::null(), std::ptr::null()], callback, user_data, release, out_id)
}

/// addTableCellIdsListener; NULL table_id: any table (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_table_cell_ids_listener(store: *mut tb_store, table_id: *const c_char, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::TableCellIds, [table_id, std::ptr::null(), std::ptr::null()], callback, user_data, release, out_id)
}

/// addHasTableCellListener; NULL ids are wildcards (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_has_table_cell_listener(store: *mut tb_store, table_id: *const c_char, cell_id: *const c_char, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::HasTableCell, [table_id, cell_id, std::ptr::null()], callback, user_data, release, out_id)
}

/// addRowCountListener; NULL table_id: any table (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_row_count_listener(store: *mut tb_store, table_id: *const c_char, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::RowCount, [table_id, std::ptr::null(), std::ptr::null()], callback, user_data, release, out_id)
}

/// addRowIdsListener; NULL table_id: any table (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_row_ids_listener(store: *mut tb_store, table_id: *const c_char, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::RowIds, [table_id, std::ptr::null(), std::ptr::null()], callback, user_data, release, out_id)
}

/// addHasRowListener; NULL ids are wildcards (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_has_row_listener(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::HasRow, [table_id, row_id, std::ptr::null()], callback, user_data, release, out_id)
}

/// addRowListener; NULL ids are wildcards (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_row_listener(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::Row, [table_id, row_id, std::ptr::null()], callback, user_data, release, out_id)
}

/// addCellIdsListener; NULL ids are wildcards (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_cell_ids_listener(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::CellIds, [table_id, row_id, std::ptr::null()], callback, user_data, release, out_id)
}

/// addHasCellListener; NULL ids are wildcards (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_has_cell_listener(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char, cell_id: *const c_char, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::HasCell, [table_id, row_id, cell_id], callback, user_data, release, out_id)
}

/// addCellListener; NULL ids are wildcards (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_cell_listener(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char, cell_id: *const c_char, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::Cell, [table_id, row_id, cell_id], callback, user_data, release, out_id)
}

/// addHasValuesListener (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_has_values_listener(store: *mut tb_store, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::HasValues, NO_IDS, callback, user_data, release, out_id)
}

/// addValuesListener (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_values_listener(store: *mut tb_store, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::Values, NO_IDS, callback, user_data, release, out_id)
}

/// addValueIdsListener (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_value_ids_listener(store: *mut tb_store, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::ValueIds, NO_IDS, callback, user_data, release, out_id)
}

/// addHasValueListener; NULL value_id: any value (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_has_value_listener(store: *mut tb_store, value_id: *const c_char, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::HasValue, [value_id, std::ptr::null(), std::ptr::null()], callback, user_data, release, out_id)
}

/// addValueListener; NULL value_id: any value (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_value_listener(store: *mut tb_store, value_id: *const c_char, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::Value, [value_id, std::ptr::null(), std::ptr::null()], callback, user_data, release, out_id)
}

/// addStartTransactionListener (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_start_transaction_listener(store: *mut tb_store, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::StartTransaction, NO_IDS, callback, user_data, release, out_id)
}

/// addWillFinishTransactionListener (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_will_finish_transaction_listener(store: *mut tb_store, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::WillFinishTransaction, NO_IDS, callback, user_data, release, out_id)
}

/// addDidFinishTransactionListener (see tb_store_add_listener).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_did_finish_transaction_listener(store: *mut tb_store, callback: tb_listener_fn, user_data: *mut c_void, release: tb_release_fn, out_id: *mut u64) -> tb_status {
    add_callback(store, ListenerKind::DidFinishTransaction, NO_IDS, callback, user_data, release, out_id)
}

/// delListener. Synchronous: when it returns the listener is never called again and its
/// user_data has been released (when called from inside the listener's own callback, release
/// happens as that callback returns). For a buffered listener, its events still in the queue
/// are discarded. BLOCKS until calls of this listener in flight on other threads return.
/// Unknown ids (and ids already removed) are ignored: TB_OK.
#[no_mangle]
pub unsafe extern "C" fn tb_store_del_listener(store: *mut tb_store, listener_id: u64) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let listener = {
            let mut map = h.listeners.lock();
            let l = map.remove(&listener_id);
            if l.is_some() {
                h.store.del_listener(listener_id);
            }
            l
        };
        if let Some(l) = listener {
            l.remove();
        }
        Ok(())
    })
}

/// callListener: calls a listener now, once for everything its ids match (wildcards
/// expanded), on the calling thread. Unknown ids are ignored.
#[no_mangle]
pub unsafe extern "C" fn tb_store_call_listener(store: *mut tb_store, listener_id: u64) -> tb_status {
    guard(|| {
        let h = held(store)?;
        h.store.call_listener(listener_id);
        Ok(())
    })
}

/// The number of listeners registered on the store (by any handle, buffered ones included).
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_listener_count(store: *mut tb_store, out: *mut usize) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let out = non_null(out, "out")?;
        *out = h.store.get_listener_count();
        Ok(())
    })
}

// ------------------------------------------------------------------------------- buffered

/// A queue of owned listener events, for hosts that must handle notifications on a thread of
/// their choosing. Any thread may push (listeners) and drain it.
pub struct tb_event_queue {
    _private: [u8; 0],
}

struct QueueState {
    events: VecDeque<(usize, Box<OwnedEvent>)>,
    closed: bool,
}

pub(crate) struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
    notify: Option<(unsafe extern "C" fn(*mut c_void), HostData)>,
}

impl Queue {
    fn push(&self, token: usize, event: Box<OwnedEvent>) {
        let was_empty = {
            let mut st = self.state.lock();
            if st.closed {
                return;
            }
            let was_empty = st.events.is_empty();
            st.events.push_back((token, event));
            self.ready.notify_all();
            was_empty
        };
        if let (true, Some((f, data))) = (was_empty, &self.notify) {
            unsafe { f(data.user_data) }
        }
    }

    fn purge(&self, token: usize) {
        let removed: Vec<_> = {
            let mut st = self.state.lock();
            let (gone, kept): (Vec<_>, Vec<_>) = st.events.drain(..).partition(|e| e.0 == token);
            st.events = kept.into();
            gone
        };
        drop(removed);
    }

    fn pop(&self, timeout: Option<Duration>) -> Option<Box<OwnedEvent>> {
        let mut st = self.state.lock();
        if let Some(t) = timeout {
            let deadline = Instant::now() + t;
            while st.events.is_empty() && !st.closed {
                if self.ready.wait_until(&mut st, deadline).timed_out() {
                    break;
                }
            }
        }
        st.events.pop_front().map(|e| e.1)
    }
}

unsafe fn queue<'a>(p: *const tb_event_queue) -> FfiResult<&'a Queue> {
    if p.is_null() {
        return Err(fail(tb_status::TB_ERROR_NULL_PARAMETER, "queue is NULL"));
    }
    Ok(&*(p as *const Queue))
}

/// Creates an event queue. `notify(user_data)`, if not NULL, is called whenever the queue goes
/// from empty to non-empty (see tb_notify_fn); `release(user_data)` is called once when the
/// queue is destroyed (after tb_event_queue_free() and the removal of its last buffered
/// listener). Free with tb_event_queue_free(). On failure nothing is taken over.
#[no_mangle]
pub unsafe extern "C" fn tb_event_queue_new(notify: tb_notify_fn, user_data: *mut c_void, release: tb_release_fn, out: *mut *mut tb_event_queue) -> tb_status {
    guard(|| {
        let out = non_null(out, "out")?;
        let notify = notify.map(|f| (f, HostData { user_data, release }));
        let q = Arc::new(Queue { state: Mutex::new(QueueState { events: VecDeque::new(), closed: false }), ready: Condvar::new(), notify });
        live_inc();
        *out = Arc::into_raw(q) as *mut tb_event_queue;
        Ok(())
    })
}

/// Closes the queue (events still queued are discarded; buffered listeners still attached stop
/// queueing) and releases the host's reference. NULL is fine. Remove the buffered listeners
/// too: they keep the queue's memory until removed.
#[no_mangle]
pub unsafe extern "C" fn tb_event_queue_free(queue: *mut tb_event_queue) {
    guard_or((), || {
        if queue.is_null() {
            return;
        }
        let q = Arc::from_raw(queue as *const Queue);
        let events: Vec<_> = {
            let mut st = q.state.lock();
            st.closed = true;
            q.ready.notify_all();
            st.events.drain(..).collect()
        };
        drop(events);
        live_dec();
        drop(q);
    })
}

/// Adds a buffered listener: instead of calling back, each call queues an owned tb_event
/// (with this listener's id) into `queue`, to be drained with tb_event_queue_poll() or
/// tb_event_queue_wait() on any thread. Kinds and ids as in tb_store_add_listener(). The
/// listener holds a reference to the queue until it is removed (tb_store_del_listener, which
/// also discards its queued events).
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_buffered_listener(
    store: *mut tb_store,
    queue: *mut tb_event_queue,
    kind: tb_listener_kind,
    id1: *const c_char,
    id2: *const c_char,
    id3: *const c_char,
    out_id: *mut u64,
) -> tb_status {
    guard(|| {
        let kind = kind_in(kind)?;
        let q = {
            self::queue(queue)?;
            let p = queue as *const Queue;
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        };
        add(store, kind, [id1, id2, id3], move || Ok(Sink::Queue(q)), out_id)
    })
}

/// Takes the oldest queued event without waiting: `*out` is the event (owned: free it with
/// tb_event_free()) or NULL when the queue is empty.
#[no_mangle]
pub unsafe extern "C" fn tb_event_queue_poll(queue: *mut tb_event_queue, out: *mut *mut tb_event) -> tb_status {
    guard(|| {
        let q = self::queue(queue)?;
        let out = non_null(out, "out")?;
        *out = event_out(q.pop(None));
        Ok(())
    })
}

/// Takes the oldest queued event, waiting up to `timeout_ms` milliseconds for one: `*out` is
/// the event (owned: tb_event_free()) or NULL on timeout or when the queue is closed.
/// BLOCKS up to timeout_ms.
#[no_mangle]
pub unsafe extern "C" fn tb_event_queue_wait(queue: *mut tb_event_queue, timeout_ms: u32, out: *mut *mut tb_event) -> tb_status {
    guard(|| {
        let q = self::queue(queue)?;
        let out = non_null(out, "out")?;
        *out = event_out(q.pop(Some(Duration::from_millis(timeout_ms as u64))));
        Ok(())
    })
}

/// The number of events waiting in the queue.
#[no_mangle]
pub unsafe extern "C" fn tb_event_queue_len(queue: *mut tb_event_queue, out: *mut usize) -> tb_status {
    guard(|| {
        let q = self::queue(queue)?;
        let out = non_null(out, "out")?;
        *out = q.state.lock().events.len();
        Ok(())
    })
}

fn event_out(e: Option<Box<OwnedEvent>>) -> *mut tb_event {
    match e {
        Some(e) => {
            live_inc();
            Box::into_raw(e) as *mut tb_event
        }
        None => std::ptr::null_mut(),
    }
}

/// Frees an event from tb_event_queue_poll() or tb_event_queue_wait(). NULL is fine. Never
/// pass the borrowed event a callback receives.
#[no_mangle]
pub unsafe extern "C" fn tb_event_free(event: *mut tb_event) {
    guard_or((), || {
        if !event.is_null() {
            drop(Box::from_raw(event as *mut OwnedEvent));
            live_dec();
        }
    })
}
