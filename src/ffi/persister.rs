//! Persisters: TinyBase's Persister API over files, SQLite and PostgreSQL. The engine lives in
//! `crate::persist`; this module only checks arguments, adapts the C callbacks to the engine's
//! hooks and keeps the handle bookkeeping (exactly-once release of host data after the
//! persister's thread has stopped, frees from inside the persister's own callbacks).

use crate::ffi::error::{fail, guard, guard_or, status_of, tb_status, FfiResult};
use crate::ffi::handle::{handle, tb_release_fn, tb_store, HostData};
use crate::ffi::strings::{non_null, opt_str_in, str_in, write_string};
use crate::ffi::synchronizer::{c_text, current_callback, drop_elsewhere, in_callback, next_token, seconds, Ptr};
use crate::ffi::{live_dec, live_inc};
use crate::persist::sqlite::{SqliteConfig, SqliteMode};
use crate::persist::{Durable, Persister, PersisterOptions, PersisterStatus};
use crate::{Error, Store};
use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

/// A persister: TinyBase's Persister, keeping one store's content in a file, a SQLite database
/// or a PostgreSQL room, with its own thread for auto-load and auto-save. Opaque; create with
/// tb_file_persister_new(), tb_sqlite_persister_new() or tb_postgres_persister_new(); free
/// with tb_persister_free().
pub struct tb_persister {
    _private: [u8; 0],
}

/// A persister's status (a uint32_t; one of the TB_PERSISTER_* constants; TinyBase's
/// getStatus()).
pub type tb_persister_status = u32;
/// Neither loading nor saving.
pub const TB_PERSISTER_IDLE: tb_persister_status = 0;
/// Loading.
pub const TB_PERSISTER_LOADING: tb_persister_status = 1;
/// Saving.
pub const TB_PERSISTER_SAVING: tb_persister_status = 2;

/// How a SQLite persister lays the store out (a uint32_t; one of the TB_SQLITE_* constants).
pub type tb_sqlite_mode = u32;
/// TinyBase's layout: the whole content as JSON in one row (table "tinybase", columns "_id"
/// and "store", row "_"; the names are options), readable and writable by TinyBase's own
/// SQLite persisters.
pub const TB_SQLITE_JSON: tb_sqlite_mode = 0;
/// Beyond TinyBase: one row per cell and per value with its HLC and hash, each committed
/// transaction written as one SQLite transaction (WAL). Needs a mergeable store.
pub const TB_SQLITE_INCREMENTAL: tb_sqlite_mode = 1;

/// What the durable callback is told: the content now durable. Borrowed for the call only.
#[repr(C)]
pub struct tb_durable_info {
    /// The mergeable store's tables hash of the content made durable (for an incremental
    /// write, the hash of that transaction's table changes); 0 for a plain store.
    pub tables_hash: u32,
    /// Likewise for the values.
    pub values_hash: u32,
    /// Saves completed so far (as tb_persister_get_stats()).
    pub saves: u64,
}

/// Called each time content becomes durable (synced to disk or committed): on the persister's
/// thread for auto-save and destroy, on the calling thread for tb_persister_save() and the
/// save tb_persister_start_auto_save() starts with. Never concurrently for one persister,
/// never with a lock of the library held; `info` is borrowed for the call only. It may call
/// the non-blocking tb_persister_* functions (get_status, get_stats, is_auto_*, describe) and
/// any store function; the other tb_persister_* functions of its own persister give
/// TB_ERROR_INVALID_STATE there, and freeing its own persister is deferred until it returned
/// (see tb_persister_free()).
pub type tb_persister_durable_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, info: *const tb_durable_info)>;

/// Called with an error that auto-load or auto-save met and could not return (TinyBase's
/// onIgnoredError): `status` is its code (TB_ERROR_IO, TB_ERROR_CORRUPT, ...), `message` its
/// text, borrowed for the call only. Same thread and re-entrancy rules as
/// tb_persister_durable_fn.
pub type tb_persister_error_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, status: tb_status, message: *const c_char)>;

/// Options of a persister. Zero-initialize (`tb_persister_options o = {0};`) and set what you
/// need; passing NULL instead means all defaults. Read during the creating call only (the
/// struct and its strings are not kept).
#[repr(C)]
pub struct tb_persister_options {
    /// Called when content becomes durable (see tb_persister_durable_fn). May be NULL.
    pub on_durable: tb_persister_durable_fn,
    /// Called for errors auto-load and auto-save met (see tb_persister_error_fn). May be NULL.
    pub on_ignored_error: tb_persister_error_fn,
    /// Passed to the two callbacks above.
    pub user_data: *mut c_void,
    /// If not NULL, called once with user_data when the persister is freed, after its thread
    /// stopped (not called when the creating call fails).
    pub release: tb_release_fn,
    /// How often auto-load checks the storage for other processes' writes, in seconds; 0 means
    /// the default, 0.25. Finite, not negative.
    pub auto_load_interval_seconds: f64,
    /// How long a save waits for another process's write lock before failing with
    /// TB_ERROR_IO, in seconds; 0 means the default, 10.
    pub lock_timeout_seconds: f64,
    /// SQLite JSON mode: the table's name; NULL means "tinybase". Ignored by other storages.
    pub sqlite_table_name: *const c_char,
    /// SQLite JSON mode: the id column's name; NULL means "_id".
    pub sqlite_id_column_name: *const c_char,
    /// SQLite JSON mode: the content column's name; NULL means "store".
    pub sqlite_store_column_name: *const c_char,
}

// ------------------------------------------------------------------------------ plumbing

/// What a tb_persister pointer points at: `Arc`-owned; the host's reference is one strong
/// count (released by tb_persister_free), and every call holds another while it runs, so a
/// callback of that call may free the host's reference without pulling the persister from
/// under it.
struct PersisterHandle {
    /// Dropped first: destroys the persister (its thread stops), then its hooks go.
    persister: Persister,
    /// Marks this persister's callbacks (see `in_callback`).
    token: usize,
    /// The options' user_data: released by its last holder, after the hooks are gone.
    _host: Option<Ptr>,
}

impl PersisterHandle {
    /// Refuses commands from inside this persister's own callbacks: they would wait for the
    /// very thread (or call) that runs the callback.
    fn command(&self) -> FfiResult<&Persister> {
        if current_callback() == self.token {
            return Err(fail(tb_status::TB_ERROR_INVALID_STATE, "calling a persister command from inside its own callback"));
        }
        Ok(&self.persister)
    }
}

/// The handle behind a persister pointer, held (one more strong count) for the call.
unsafe fn held(p: *const tb_persister) -> FfiResult<Arc<PersisterHandle>> {
    if p.is_null() {
        return Err(fail(tb_status::TB_ERROR_NULL_PARAMETER, "persister is NULL"));
    }
    let p = p as *const PersisterHandle;
    Arc::increment_strong_count(p);
    Ok(Arc::from_raw(p))
}

/// Options read from the host: the engine's options, the SQLite names, and the user_data taken
/// over (only once every check passed).
struct HostOptions {
    options: PersisterOptions,
    sqlite_names: [Option<String>; 3],
    host: Option<Ptr>,
}

unsafe fn options_in(p: *const tb_persister_options, token: usize) -> FfiResult<HostOptions> {
    let mut options = PersisterOptions::default();
    if p.is_null() {
        return Ok(HostOptions { options, sqlite_names: [None, None, None], host: None });
    }
    let o = &*p;
    if let Some(t) = seconds(o.auto_load_interval_seconds, "auto_load_interval_seconds")? {
        options.auto_load_interval = t;
    }
    if let Some(t) = seconds(o.lock_timeout_seconds, "lock_timeout_seconds")? {
        options.lock_timeout = t;
    }
    let sqlite_names = [
        opt_str_in(o.sqlite_table_name, "sqlite_table_name")?.map(str::to_string),
        opt_str_in(o.sqlite_id_column_name, "sqlite_id_column_name")?.map(str::to_string),
        opt_str_in(o.sqlite_store_column_name, "sqlite_store_column_name")?.map(str::to_string),
    ];
    // Every check passed: from here on the library owns user_data.
    let ud = Ptr::new(HostData { user_data: o.user_data, release: o.release });
    if let Some(f) = o.on_durable {
        let ud = ud.clone();
        options.on_durable = Some(Arc::new(move |d: &Durable| {
            let info = tb_durable_info { tables_hash: d.content_hashes.0, values_hash: d.content_hashes.1, saves: d.saves };
            in_callback(token, || unsafe { f(ud.get(), &info) });
        }));
    }
    if let Some(f) = o.on_ignored_error {
        let ud = ud.clone();
        options.on_ignored_error = Some(Arc::new(move |e: &Error| {
            let text = c_text(&e.to_string().replace('\0', " "));
            in_callback(token, || unsafe { f(ud.get(), status_of(e), text.as_ptr() as *const c_char) });
        }));
    }
    Ok(HostOptions { options, sqlite_names, host: Some(ud) })
}

/// Creates a persister once the storage's own arguments were checked: checks the store, `out`
/// and the options, then calls `create`; the host's user_data is taken over only on success.
unsafe fn new_persister(
    store: *mut tb_store,
    options: *const tb_persister_options,
    out: *mut *mut tb_persister,
    create: impl FnOnce(&Store, PersisterOptions, [Option<String>; 3]) -> crate::Result<Persister>,
) -> FfiResult<()> {
    let h = handle(store)?;
    let out = non_null(out, "out")?;
    let token = next_token();
    let o = options_in(options, token)?;
    match create(&h.store, o.options, o.sqlite_names) {
        Ok(persister) => {
            live_inc();
            *out = Arc::into_raw(Arc::new(PersisterHandle { persister, token, _host: o.host })) as *mut tb_persister;
            Ok(())
        }
        Err(e) => {
            // The constructor dropped the hooks it was given: this is the last holder.
            if let Some(host) = o.host {
                host.disarm();
            }
            Err(e.into())
        }
    }
}

// ---------------------------------------------------------------------------- constructors

/// createFilePersister: a persister of `store` (plain or mergeable: pass
/// tb_mergeable_store_as_store()) to the file at `path`, in TinyBase's format (a mergeable
/// store's wire-form content with hashes, or a plain store's `[tables, values]`), written
/// atomically and durably (temporary file, fsync, rename, fsync of the folder) under a lock
/// file that keeps two processes from writing at once. Nothing is read or written until a
/// command is called. `options` may be NULL. The persister keeps the store alive until it is
/// freed. On success the library owns the options' user_data until tb_persister_free(); on
/// failure release is not called.
#[no_mangle]
pub unsafe extern "C" fn tb_file_persister_new(
    store: *mut tb_store,
    path: *const c_char,
    options: *const tb_persister_options,
    out: *mut *mut tb_persister,
) -> tb_status {
    guard(|| {
        let path = str_in(path, "path")?;
        new_persister(store, options, out, |store, options, _| crate::persist::file::create_file_persister(store, path, options))
    })
}

/// createSqlitePersister: a persister of `store` to the SQLite database at `path` (created if
/// missing), in `mode` (TB_SQLITE_JSON: TinyBase's layout, with the table and column names of
/// the options; TB_SQLITE_INCREMENTAL: a row per cell and value, mergeable stores only, else
/// TB_ERROR_INVALID_STATE). TB_ERROR_INVALID_ARGUMENT for another mode, TB_ERROR_IO when the
/// database cannot be opened. BLOCKS while it opens the database. Ownership as
/// tb_file_persister_new().
#[no_mangle]
pub unsafe extern "C" fn tb_sqlite_persister_new(
    store: *mut tb_store,
    path: *const c_char,
    mode: tb_sqlite_mode,
    options: *const tb_persister_options,
    out: *mut *mut tb_persister,
) -> tb_status {
    guard(|| {
        let path = str_in(path, "path")?;
        if mode != TB_SQLITE_JSON && mode != TB_SQLITE_INCREMENTAL {
            return Err(fail(tb_status::TB_ERROR_INVALID_ARGUMENT, format!("unknown SQLite mode {mode}")));
        }
        let mode = if mode == TB_SQLITE_JSON { SqliteMode::Json } else { SqliteMode::Incremental };
        new_persister(store, options, out, |store, options, [table, id, content]| {
            let mut config = SqliteConfig::with_mode(mode);
            if let Some(table) = table {
                config.store_table_name = table;
            }
            if let Some(id) = id {
                config.store_id_column_name = id;
            }
            if let Some(content) = content {
                config.store_column_name = content;
            }
            crate::persist::sqlite::create_sqlite_persister(store, path, config, options)
        })
    })
}

/// A persister of `store` to the room `room` of the PostgreSQL database at `dsn` (a libpq
/// connection string or postgres:// URL), in the incremental layout with rooms as keys, so
/// several processes can share one database. Mergeable stores only (else
/// TB_ERROR_INVALID_STATE). TB_ERROR_IO when the database cannot be reached;
/// TB_ERROR_INVALID_STATE "built without PostgreSQL" when the library was built without it.
/// BLOCKS while it connects. Ownership as tb_file_persister_new().
#[no_mangle]
pub unsafe extern "C" fn tb_postgres_persister_new(
    store: *mut tb_store,
    dsn: *const c_char,
    room: *const c_char,
    options: *const tb_persister_options,
    out: *mut *mut tb_persister,
) -> tb_status {
    guard(|| {
        let dsn = str_in(dsn, "dsn")?;
        let room = str_in(room, "room")?;
        new_persister(store, options, out, |store, options, _| postgres(store, dsn, room, options))
    })
}

#[cfg(feature = "postgres")]
fn postgres(store: &Store, dsn: &str, room: &str, options: PersisterOptions) -> crate::Result<Persister> {
    crate::persist::postgres::create_postgres_persister(store, dsn, room, options)
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &Store, _: &str, _: &str, _: PersisterOptions) -> crate::Result<Persister> {
    Err(Error::InvalidState("built without PostgreSQL (cargo feature \"postgres\")".into()))
}

// -------------------------------------------------------------------------------- commands

/// Runs a command (not from the persister's own callbacks) on a held persister.
unsafe fn command(p: *mut tb_persister, f: impl FnOnce(&Persister) -> FfiResult<()>) -> tb_status {
    guard(|| {
        let h = held(p)?;
        f(h.command()?)
    })
}

/// Runs a query (allowed from the persister's own callbacks) on a held persister.
unsafe fn query(p: *mut tb_persister, f: impl FnOnce(&Persister) -> FfiResult<()>) -> tb_status {
    guard(|| {
        let h = held(p)?;
        f(&h.persister)
    })
}

/// load: merges what is stored into the store (a mergeable store merges stamps; a plain store
/// takes the stored cells and values over its own, keeping those only it has). `*out_loaded`
/// (out_loaded may be NULL) is false when nothing is stored yet: the store is left as it is.
/// TB_ERROR_CORRUPT when the stored data cannot be loaded: nothing is loaded, the data is
/// kept, and saves are refused (TB_ERROR_INVALID_STATE) until a load succeeds or
/// tb_persister_move_aside_unreadable() is called. TB_ERROR_IO when reading failed. BLOCKS
/// while it reads.
#[no_mangle]
pub unsafe extern "C" fn tb_persister_load(p: *mut tb_persister, out_loaded: *mut bool) -> tb_status {
    command(p, |p| {
        let loaded = p.load()?;
        if !out_loaded.is_null() {
            *out_loaded = loaded;
        }
        Ok(())
    })
}

/// save: writes the whole content (under the storage's cross-process lock, merging in first
/// what another process wrote since) and returns once it is durable; on_durable is called on
/// this thread before it returns. TB_ERROR_IO when writing failed, TB_ERROR_INVALID_STATE
/// while stored data could not be loaded (see tb_persister_load()) or after destroy. BLOCKS
/// until durable (up to lock_timeout_seconds for another process's lock).
#[no_mangle]
pub unsafe extern "C" fn tb_persister_save(p: *mut tb_persister) -> tb_status {
    command(p, |p| Ok(p.save()?))
}

/// startAutoLoad: loads now (its errors are returned, and auto-load stays off), then merges
/// what other processes write to the storage, checked every auto_load_interval_seconds on the
/// persister's thread (errors then go to on_ignored_error). BLOCKS during the first load.
#[no_mangle]
pub unsafe extern "C" fn tb_persister_start_auto_load(p: *mut tb_persister) -> tb_status {
    command(p, |p| Ok(p.start_auto_load()?))
}

/// stopAutoLoad. BLOCKS briefly while a check in progress finishes.
#[no_mangle]
pub unsafe extern "C" fn tb_persister_stop_auto_load(p: *mut tb_persister) -> tb_status {
    command(p, |p| {
        p.stop_auto_load();
        Ok(())
    })
}

/// startAutoSave: saves now (its errors are returned, and auto-save stays off), then writes
/// after every committed transaction on the persister's thread (the whole content, coalescing
/// transactions that queued meanwhile; or each transaction on its own in incremental
/// storages); errors then go to on_ignored_error and to the next tb_persister_flush(). Refused
/// (TB_ERROR_INVALID_STATE) while stored data could not be loaded. BLOCKS during the first
/// save.
#[no_mangle]
pub unsafe extern "C" fn tb_persister_start_auto_save(p: *mut tb_persister) -> tb_status {
    command(p, |p| Ok(p.start_auto_save()?))
}

/// stopAutoSave: writes what is queued first. BLOCKS until that is durable.
#[no_mangle]
pub unsafe extern "C" fn tb_persister_stop_auto_save(p: *mut tb_persister) -> tb_status {
    command(p, |p| {
        p.stop_auto_save();
        Ok(())
    })
}

/// isAutoLoading.
#[no_mangle]
pub unsafe extern "C" fn tb_persister_is_auto_loading(p: *mut tb_persister, out: *mut bool) -> tb_status {
    query(p, |p| {
        let out = non_null(out, "out")?;
        *out = p.is_auto_loading();
        Ok(())
    })
}

/// isAutoSaving.
#[no_mangle]
pub unsafe extern "C" fn tb_persister_is_auto_saving(p: *mut tb_persister, out: *mut bool) -> tb_status {
    query(p, |p| {
        let out = non_null(out, "out")?;
        *out = p.is_auto_saving();
        Ok(())
    })
}

/// getStatus: `*out` is a TB_PERSISTER_* value.
#[no_mangle]
pub unsafe extern "C" fn tb_persister_get_status(p: *mut tb_persister, out: *mut tb_persister_status) -> tb_status {
    query(p, |p| {
        let out = non_null(out, "out")?;
        *out = match p.get_status() {
            PersisterStatus::Idle => TB_PERSISTER_IDLE,
            PersisterStatus::Loading => TB_PERSISTER_LOADING,
            PersisterStatus::Saving => TB_PERSISTER_SAVING,
        };
        Ok(())
    })
}

/// getStats: loads and saves completed so far.
#[no_mangle]
pub unsafe extern "C" fn tb_persister_get_stats(p: *mut tb_persister, out_loads: *mut u64, out_saves: *mut u64) -> tb_status {
    query(p, |p| {
        let loads = non_null(out_loads, "out_loads")?;
        let saves = non_null(out_saves, "out_saves")?;
        let stats = p.get_stats();
        (*loads, *saves) = (stats.loads, stats.saves);
        Ok(())
    })
}

/// Waits until every transaction committed before the call is durable (auto-save), or
/// `timeout_seconds` (finite, not negative) passed: `*out_durable` is true then, false on
/// timeout. The first auto-save error since the last call is returned instead (its status).
/// BLOCKS up to timeout_seconds.
#[no_mangle]
pub unsafe extern "C" fn tb_persister_flush(p: *mut tb_persister, timeout_seconds: f64, out_durable: *mut bool) -> tb_status {
    command(p, |p| {
        let out = non_null(out_durable, "out_durable")?;
        let timeout = seconds(timeout_seconds, "timeout_seconds")?.unwrap_or(Duration::ZERO);
        *out = p.flush(timeout)?;
        Ok(())
    })
}

/// After a load failed with TB_ERROR_CORRUPT: moves the unreadable data aside (a file renamed
/// `<name>.corrupt...`, a database's data kept under another name) so that saves may start
/// afresh. `*out_path` is where it went (free it with tb_string_free()), or NULL when no load
/// has failed. TB_ERROR_IO when it cannot be moved. BLOCKS while it moves.
#[no_mangle]
pub unsafe extern "C" fn tb_persister_move_aside_unreadable(p: *mut tb_persister, out_path: *mut *mut c_char) -> tb_status {
    command(p, |p| {
        let out = non_null(out_path, "out_path")?;
        match p.move_aside_unreadable()? {
            Some(path) => write_string(out, path),
            None => {
                *out = std::ptr::null_mut();
                Ok(())
            }
        }
    })
}

/// Names the storage (`file /data/room.json`, `sqlite /x.db (json)`, ...). `*out` is a new
/// string: free it with tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_persister_describe(p: *mut tb_persister, out: *mut *mut c_char) -> tb_status {
    query(p, |p| {
        let out = non_null(out, "out")?;
        write_string(out, p.describe())
    })
}

/// destroy: stops auto-load and auto-save (writing what is queued, on_durable included) and
/// releases the storage (its lock, its connection). The handle stays valid for status and
/// stats; commands then give TB_ERROR_INVALID_STATE. Idempotent. BLOCKS until the persister's
/// thread stopped. TB_ERROR_INVALID_STATE from inside the persister's own callbacks.
#[no_mangle]
pub unsafe extern "C" fn tb_persister_destroy(p: *mut tb_persister) -> tb_status {
    command(p, |p| {
        p.destroy();
        Ok(())
    })
}

/// Frees a persister (NULL is fine): destroys it if needed (BLOCKS as tb_persister_destroy()
/// does), then calls the options' release(user_data) once, after the persister's thread
/// stopped. The store is not freed (the host frees its own store handle; the persister kept
/// its own reference until now). Called from inside one of the persister's own callbacks, it
/// returns at once: the destroy and the release happen on a library thread once that callback
/// (and the call it ran in) returned.
#[no_mangle]
pub unsafe extern "C" fn tb_persister_free(p: *mut tb_persister) {
    guard_or((), || {
        if p.is_null() {
            return;
        }
        let h = Arc::from_raw(p as *const PersisterHandle);
        live_dec();
        if current_callback() == h.token {
            drop_elsewhere(h, "tinybase-persister-free");
            return;
        }
        drop(h);
    })
}
