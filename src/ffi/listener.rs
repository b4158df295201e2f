//! Listeners: C callbacks and buffered delivery through event queues.

use crate::ffi::error::{fail, guard, guard_or, tb_status, FfiResult};
use crate::ffi::handle::{handle, held, tb_release_fn, tb_store, Handle, HostData};
use crate::ffi::strings::{non_null, opt_str_in};
use crate::ffi::value::{tb_value, value_borrowed};
use crate::ffi::{live_dec, live_inc};
use crate::store::{EventQueue, ListenerEvent, ListenerId, ListenerKind};
use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

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
/// addStartTransactionListener (called inside the transaction, store locked). No ids.
pub const TB_LISTENER_START_TRANSACTION: tb_listener_kind = 19;
/// addWillFinishTransactionListener (called inside the transaction, store locked). No ids.
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

/// How deeply listener calls may nest on one thread (listeners writing the store that calls
/// them again): a write that would commit from deeper fails with TB_ERROR_INVALID_STATE and
/// changes nothing. About 2 KiB of stack per level in this library.
pub const TB_MAX_LISTENER_NESTING: u32 = 100;
const _: () = assert!(TB_MAX_LISTENER_NESTING == crate::store::MAX_LISTENER_NESTING);

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
/// store), possibly concurrently on several threads. Change and did-finish listeners run after
/// the transaction committed, with no lock of the library held; start and will-finish
/// transaction listeners run inside the transaction, with the store's lock held. `store` (a
/// borrowed view; for a mergeable store use tb_store_as_mergeable()) and `event` are valid for
/// the duration of the call only. May re-enter the API, including removing this very listener
/// (a removal from inside any callback does not wait: see tb_store_del_listener). A write
/// from listener calls nested TB_MAX_LISTENER_NESTING deep fails with TB_ERROR_INVALID_STATE.
pub type tb_listener_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, store: *mut tb_store, event: *const tb_event)>;

/// Called when a tb_event_queue goes from empty to non-empty, on the thread that queued the
/// event (a thread that committed a change), with no lock of the library held (typically to
/// wake the host's event loop). Must not block for long; may call tb_event_queue_* functions.
pub type tb_notify_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// Registers a listener through a handle, recording its id there (freeing the handle's last
/// reference removes it). `ids` are parsed for the kind, so the core cannot refuse them.
unsafe fn add(store: *mut tb_store, kind: ListenerKind, ids: [*const c_char; 3], out: *mut u64, register: impl FnOnce(&Handle, &[Option<&str>]) -> ListenerId) -> FfiResult<()> {
    let h = handle(store)?;
    let out = non_null(out, "out_id")?;
    let names = ["first id", "second id", "third id"];
    let mut parsed: Vec<Option<&str>> = Vec::new();
    for i in 0..kind.id_count() {
        parsed.push(opt_str_in(ids[i], names[i])?);
    }
    let mut map = h.listeners.lock();
    let id = register(h, &parsed);
    map.insert(id);
    *out = id;
    Ok(())
}

/// The handle's Arc behind a store pointer (one more reference).
unsafe fn handle_arc(store: *mut tb_store) -> Arc<Handle> {
    let p = store as *const Handle;
    Arc::increment_strong_count(p);
    Arc::from_raw(p)
}

/// A C callback as a core listener: it holds the host data (released when the core drops the
/// callback) and a weak reference to the handle it passes as `store`.
struct CallbackListener {
    f: unsafe extern "C" fn(*mut c_void, *mut tb_store, *const tb_event),
    data: HostData,
    handle: std::sync::Weak<Handle>,
}

impl Drop for CallbackListener {
    fn drop(&mut self) {
        live_dec();
    }
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
        handle(store)?;
        let f = callback.ok_or_else(|| fail(tb_status::TB_ERROR_NULL_PARAMETER, "callback is NULL"))?;
        let weak = Arc::downgrade(&handle_arc(store));
        add(store, kind, ids, out, |h, parsed| {
            h.store.add_listener_with(kind, parsed, |id| {
                live_inc();
                let l = CallbackListener { f, data: HostData { user_data, release }, handle: weak };
                Arc::new(move |_, e| {
                    // A call racing the last tb_store_free() finds no handle and is skipped; one
                    // in flight holds the handle's lifetime, so that free waits for it.
                    let entered = Handle::enter(&l.handle);
                    if let Some(h) = &entered {
                        let owned = OwnedEvent::new(e, id);
                        unsafe { (l.f)(l.data.ptr(), Arc::as_ptr(h) as *mut tb_store, &owned.event) };
                    }
                    Handle::leave(entered);
                })
            })
        })
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

/// delListener. Synchronous: when it returns the listener is never called again, its calls in
/// flight on other threads have returned and its user_data has been released. Except when
/// called from inside a listener callback (any listener's) or inside a transaction on this
/// thread, where waiting could deadlock (the call in flight may be waiting for this thread):
/// then it returns at once; the listener is never called again after its calls in flight, and
/// release happens as the last of them returns. For a buffered listener, its events still in
/// the queue are discarded. BLOCKS (outside those cases) until calls of this listener in flight
/// on other threads return. Unknown ids (and ids already removed) are ignored: TB_OK. Ids are
/// never reused, so a stale id never removes another listener.
#[no_mangle]
pub unsafe extern "C" fn tb_store_del_listener(store: *mut tb_store, listener_id: u64) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        // The map's lock is not held while removal waits: a call in flight may remove too.
        if h.listeners.lock().remove(&listener_id) {
            h.store.del_listener(listener_id);
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

/// The queue behind a pointer, as one more reference for the duration of a call: a waiter
/// keeps the queue alive through a concurrent tb_event_queue_free().
unsafe fn queue(p: *const tb_event_queue) -> FfiResult<Arc<EventQueue>> {
    if p.is_null() {
        return Err(fail(tb_status::TB_ERROR_NULL_PARAMETER, "queue is NULL"));
    }
    let p = p as *const EventQueue;
    Arc::increment_strong_count(p);
    Ok(Arc::from_raw(p))
}

/// Creates an event queue. `notify(user_data)`, if not NULL, is called whenever the queue goes
/// from empty to non-empty (see tb_notify_fn); `release(user_data)` is called once when the
/// queue is destroyed (after tb_event_queue_free() and the removal of its last buffered
/// listener). Free with tb_event_queue_free(). On failure nothing is taken over.
#[no_mangle]
pub unsafe extern "C" fn tb_event_queue_new(notify: tb_notify_fn, user_data: *mut c_void, release: tb_release_fn, out: *mut *mut tb_event_queue) -> tb_status {
    guard(|| {
        let out = non_null(out, "out")?;
        let notify = notify.map(|f| {
            let data = HostData { user_data, release };
            Box::new(move || unsafe { f(data.ptr()) }) as Box<dyn Fn() + Send + Sync>
        });
        live_inc();
        *out = Arc::into_raw(EventQueue::new(notify)) as *mut tb_event_queue;
        Ok(())
    })
}

/// Closes the queue (events still queued are discarded; buffered listeners still attached stop
/// queueing) and releases the host's reference. NULL is fine. Threads waiting in
/// tb_event_queue_wait() on it are woken and return with NULL (they keep the queue's memory
/// until they return); no other call on the queue may start once this one has. Remove the
/// buffered listeners too: they keep the queue's memory until removed.
#[no_mangle]
pub unsafe extern "C" fn tb_event_queue_free(queue: *mut tb_event_queue) {
    guard_or((), || {
        if queue.is_null() {
            return;
        }
        let q = Arc::from_raw(queue as *const EventQueue);
        q.close();
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
        let q = self::queue(queue)?;
        add(store, kind, [id1, id2, id3], out_id, |h, parsed| h.store.add_listener_with(kind, parsed, |id| crate::store::queue_sink(q, id)))
    })
}

/// Takes the oldest queued event without waiting: `*out` is the event (owned: free it with
/// tb_event_free()) or NULL when the queue is empty.
#[no_mangle]
pub unsafe extern "C" fn tb_event_queue_poll(queue: *mut tb_event_queue, out: *mut *mut tb_event) -> tb_status {
    guard(|| {
        let q = self::queue(queue)?;
        let out = non_null(out, "out")?;
        *out = event_out(q.poll());
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
        *out = event_out(q.wait(Duration::from_millis(timeout_ms as u64)));
        Ok(())
    })
}

/// The number of events waiting in the queue.
#[no_mangle]
pub unsafe extern "C" fn tb_event_queue_len(queue: *mut tb_event_queue, out: *mut usize) -> tb_status {
    guard(|| {
        let q = self::queue(queue)?;
        let out = non_null(out, "out")?;
        *out = q.len();
        Ok(())
    })
}

fn event_out(e: Option<(ListenerId, ListenerEvent)>) -> *mut tb_event {
    match e {
        Some((id, e)) => {
            live_inc();
            Box::into_raw(OwnedEvent::new(&e, id)) as *mut tb_event
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
