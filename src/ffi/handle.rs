//! Store handles: reference-counted (`Arc`) owners of a Store, shared by `tb_store` and
//! `tb_mergeable_store` pointers (the same allocation seen through two C types).

use crate::ffi::error::{fail, guard, guard_or, tb_status, FfiResult};
use crate::ffi::strings::{non_null, opt_str_in};
use crate::ffi::{live_dec, live_inc};
use crate::lifetime::{Lifetime, Release};
use crate::store::ListenerId;
use crate::{MergeableStore, Store};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::ffi::{c_char, c_void};
use std::sync::{Arc, Weak};

/// A TinyBase Store (plain or mergeable). Opaque; use through tb_store_* functions.
pub struct tb_store {
    _private: [u8; 0],
}

/// A TinyBase MergeableStore. Opaque; tb_mergeable_store_as_store() gives its tb_store view.
pub struct tb_mergeable_store {
    _private: [u8; 0],
}

/// Frees host data a callback was registered with. Called exactly once (see the callback
/// contract at the top of this header). May be NULL.
pub type tb_release_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// A mergeable store's clock: milliseconds since the Unix epoch (as JavaScript's Date.now()).
/// Called with the store's lock held, on any thread that writes or merges the store, never
/// concurrently for one store. Must not call into this library.
pub type tb_now_fn = Option<unsafe extern "C" fn(user_data: *mut c_void) -> f64>;

/// What a tb_store / tb_mergeable_store pointer points at. Each host reference owns one strong
/// count of the `Arc` (memory) and one reference of `life` (when the last goes, the listeners
/// are removed, after the callbacks in flight returned).
pub(crate) struct Handle {
    pub store: Store,
    pub mergeable: Option<MergeableStore>,
    /// Listeners registered through this handle (removed when its last reference is freed).
    pub listeners: Mutex<HashSet<ListenerId>>,
    /// Host references and the listener callbacks in flight that use this handle.
    life: Lifetime,
}

impl Handle {
    /// A listener callback is about to run with this handle as its store view: the handle
    /// upgraded, or None when the host released its last reference (then no call).
    pub(crate) fn enter(weak: &Weak<Handle>) -> Option<Arc<Handle>> {
        weak.upgrade().filter(|h| h.life.enter())
    }

    /// The callback entered with [`Handle::enter`] returned (call after its bookkeeping): when
    /// the host's last free ran inside a callback, the last one to leave removes the listeners.
    pub(crate) fn leave(this: Option<Arc<Handle>>) {
        if let Some(h) = this {
            if h.life.leave() {
                h.remove_listeners();
            }
        }
    }

    /// Removes every listener registered through this handle (each waits for its calls in
    /// flight on other threads, then releases its user_data).
    fn remove_listeners(&self) {
        let ids: Vec<ListenerId> = self.listeners.lock().drain().collect();
        for id in ids {
            self.store.del_listener(id);
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Listeners added through a borrowed view after the last free.
        self.remove_listeners();
    }
}

/// Host data that is released (exactly once) when dropped.
pub(crate) struct HostData {
    pub user_data: *mut c_void,
    pub release: tb_release_fn,
}

// SAFETY: the callback contract requires user_data to be usable from any thread.
unsafe impl Send for HostData {}
unsafe impl Sync for HostData {}

impl HostData {
    pub fn ptr(&self) -> *mut c_void {
        self.user_data
    }
}

impl Drop for HostData {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            unsafe { release(self.user_data) }
        }
    }
}

fn new_handle(store: Store, mergeable: Option<MergeableStore>) -> *mut Handle {
    live_inc();
    Arc::into_raw(Arc::new(Handle { store, mergeable, listeners: Mutex::new(HashSet::new()), life: Lifetime::new() })) as *mut Handle
}

/// The handle behind a store pointer.
pub(crate) unsafe fn handle<'a>(p: *const tb_store) -> FfiResult<&'a Handle> {
    if p.is_null() {
        return Err(fail(tb_status::TB_ERROR_NULL_PARAMETER, "store is NULL"));
    }
    Ok(&*(p as *const Handle))
}

/// A handle kept alive (one more strong count) for a call that may run host callbacks on the
/// calling thread (writes, transactions): one of them may free the host's last reference, and
/// the call still uses the handle after it returns.
pub(crate) struct Held(Arc<Handle>);

impl std::ops::Deref for Held {
    type Target = Handle;
    fn deref(&self) -> &Handle {
        &self.0
    }
}

impl Held {
    /// The MergeableStore (present: checked by [`held_mergeable`]).
    pub(crate) fn mergeable(&self) -> &MergeableStore {
        self.0.mergeable.as_ref().expect("checked by held_mergeable")
    }

    /// Counts the calling thread as a callback in flight until the guard drops, so that the
    /// host's last free from inside a callback of this call does not wait (it would wait for
    /// callbacks that wait for this call's lock): the listeners are removed when it drops.
    pub(crate) fn enter(&self) -> Entered<'_> {
        Entered(self, self.life.enter())
    }
}

/// See [`Held::enter`].
pub(crate) struct Entered<'a>(&'a Held, bool);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if self.1 && self.0.life.leave() {
            self.0.remove_listeners();
        }
    }
}

/// The handle behind a store pointer, held for the call (see [`Held`]).
pub(crate) unsafe fn held(p: *const tb_store) -> FfiResult<Held> {
    handle(p)?;
    Arc::increment_strong_count(p as *const Handle);
    Ok(Held(Arc::from_raw(p as *const Handle)))
}

/// The handle behind a mergeable store pointer, held for the call (see [`Held`]).
pub(crate) unsafe fn held_mergeable(p: *const tb_mergeable_store) -> FfiResult<Held> {
    mergeable(p)?;
    held(p as *const tb_store)
}

/// The handle and MergeableStore behind a mergeable store pointer.
pub(crate) unsafe fn mergeable<'a>(p: *const tb_mergeable_store) -> FfiResult<(&'a Handle, &'a MergeableStore)> {
    if p.is_null() {
        return Err(fail(tb_status::TB_ERROR_NULL_PARAMETER, "store is NULL"));
    }
    let h = &*(p as *const Handle);
    match &h.mergeable {
        Some(m) => Ok((h, m)),
        None => Err(fail(tb_status::TB_ERROR_INVALID_STATE, "not a mergeable store")),
    }
}

/// One more owned reference (TB_ERROR_INVALID_STATE once the last one was freed, which only a
/// callback still running can observe).
unsafe fn retain(p: *const Handle) -> FfiResult<()> {
    if !(*p).life.retain() {
        return Err(fail(tb_status::TB_ERROR_INVALID_STATE, "the store's last reference was freed"));
    }
    Arc::increment_strong_count(p);
    live_inc();
    Ok(())
}

/// Releases one owned reference. The last one removes the listeners once the callbacks in
/// flight on other threads returned, or (freed from inside a callback) when the last returns.
unsafe fn release(p: *const Handle) {
    if (*p).life.release() == Release::TearDown {
        (*p).remove_listeners();
    }
    live_dec();
    drop(Arc::from_raw(p));
}

/// Creates an empty plain Store (no CRDT metadata). Free with tb_store_free().
#[no_mangle]
pub unsafe extern "C" fn tb_store_new(out: *mut *mut tb_store) -> tb_status {
    guard(|| {
        let out = non_null(out, "out")?;
        *out = new_handle(Store::new(), None) as *mut tb_store;
        Ok(())
    })
}

/// Another owned reference to the same store (shared; the store lives until every reference is
/// freed). Works on tb_store views of mergeable stores too. TB_ERROR_INVALID_STATE when the
/// last reference was already freed (seen only by a callback still running after it).
#[no_mangle]
pub unsafe extern "C" fn tb_store_clone(store: *mut tb_store, out: *mut *mut tb_store) -> tb_status {
    guard(|| {
        handle(store)?;
        let out = non_null(out, "out")?;
        retain(store as *const Handle)?;
        *out = store;
        Ok(())
    })
}

/// Releases one reference from tb_store_new() or tb_store_clone(). NULL is fine. Never free a
/// borrowed view, nor a reference that a call in progress on another thread uses. From inside
/// a callback of a write, transaction, merge or tb_store_call_listener() made with it on this
/// thread it may be freed: that call keeps the store until it returns (but do not use the
/// reference after the free). Freeing the last reference removes the listeners added
/// through it and releases their user_data; it first BLOCKS until listener callbacks running on
/// other threads (e.g. on a synchronizer's worker) have returned, so once it returns none runs
/// again. Called from inside one of those callbacks (or a tb_store_transaction() body) it does
/// not wait: the listeners are removed (and their release called) when the last callback in
/// flight returns. The store's content lives on while a synchronizer uses it.
#[no_mangle]
pub unsafe extern "C" fn tb_store_free(store: *mut tb_store) {
    guard_or((), || {
        if !store.is_null() {
            release(store as *const Handle);
        }
    })
}

/// The mergeable store behind a tb_store, borrowed: valid as long as `store` is; never free
/// it. TB_ERROR_INVALID_STATE when the store is a plain one.
#[no_mangle]
pub unsafe extern "C" fn tb_store_as_mergeable(store: *mut tb_store, out: *mut *mut tb_mergeable_store) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let out = non_null(out, "out")?;
        if h.mergeable.is_none() {
            return Err(fail(tb_status::TB_ERROR_INVALID_STATE, "not a mergeable store"));
        }
        *out = store as *mut tb_mergeable_store;
        Ok(())
    })
}

/// Creates an empty MergeableStore. `unique_id` fixes the HLC client id (give every replica
/// its own); NULL picks a random one. Time comes from the system clock. Free with
/// tb_mergeable_store_free().
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_new(unique_id: *const c_char, out: *mut *mut tb_mergeable_store) -> tb_status {
    guard(|| {
        let unique_id = opt_str_in(unique_id, "unique_id")?;
        let out = non_null(out, "out")?;
        let m = MergeableStore::new(unique_id);
        *out = new_handle(m.as_store().clone(), Some(m)) as *mut tb_mergeable_store;
        Ok(())
    })
}

/// Creates an empty MergeableStore whose clock is `now(user_data)` (TinyBase's getNow).
/// `unique_id` may be NULL (random). `release(user_data)`, if given, is called once when the
/// store itself is destroyed: its last reference freed and every synchronizer of it freed (a
/// synchronizer keeps the store, and its clock, until then). On failure nothing is taken over.
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_new_with_clock(
    unique_id: *const c_char,
    now: tb_now_fn,
    user_data: *mut c_void,
    release: tb_release_fn,
    out: *mut *mut tb_mergeable_store,
) -> tb_status {
    guard(|| {
        let unique_id = opt_str_in(unique_id, "unique_id")?;
        let now = now.ok_or_else(|| fail(tb_status::TB_ERROR_NULL_PARAMETER, "now is NULL"))?;
        let out = non_null(out, "out")?;
        let data = HostData { user_data, release };
        let m = MergeableStore::with_clock(unique_id, move || unsafe { now(data.ptr()) });
        *out = new_handle(m.as_store().clone(), Some(m)) as *mut tb_mergeable_store;
        Ok(())
    })
}

/// Another owned reference to the same mergeable store (TB_ERROR_INVALID_STATE as
/// tb_store_clone()).
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_clone(store: *mut tb_mergeable_store, out: *mut *mut tb_mergeable_store) -> tb_status {
    guard(|| {
        mergeable(store)?;
        let out = non_null(out, "out")?;
        retain(store as *const Handle)?;
        *out = store;
        Ok(())
    })
}

/// Releases one reference from tb_mergeable_store_new*() or tb_mergeable_store_clone(). NULL
/// is fine. The last one BLOCKS as tb_store_free() says (same rules).
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_free(store: *mut tb_mergeable_store) {
    guard_or((), || {
        if !store.is_null() {
            release(store as *const Handle);
        }
    })
}

/// The tb_store view of a mergeable store, borrowed: valid as long as `store` is; never free
/// it (use tb_store_clone() for an owned reference). Every tb_store_* function works on it.
/// NULL for NULL.
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_as_store(store: *mut tb_mergeable_store) -> *mut tb_store {
    store as *mut tb_store
}
