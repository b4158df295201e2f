//! The Store: tables of rows of cells, plus key-values, with transactions and listeners.
//!
//! A [`Store`] is a cheap, cloneable handle (`Send + Sync`) to shared state guarded by a
//! re-entrant lock: a transaction holds it from start to finish, so readers on other threads
//! never see half of one, while the transaction's own thread may call back into the store.
//! Listeners run after commit on the writing thread with no lock held.

pub(crate) mod core;
mod json;
pub(crate) mod listeners;
mod queue;
pub(crate) mod track;
pub(crate) mod tree;

use self::core::{ChangesIn, Core, RowIn, TableIn, TablesIn};
use self::listeners::{Pending, Registry};
pub use self::listeners::{ListenerEvent, ListenerId, ListenerKind, MAX_LISTENER_NESTING};
pub use self::queue::EventQueue;
pub(crate) use self::queue::sink as queue_sink;
use self::json::{changes_from_json, transaction_changes_json};
pub(crate) use self::json::{content_in_json, write_object};
use self::tree::{leaf_order, row_order, Key};
use crate::error::{Error, Result};
use crate::value::{js_key_order, parse_json, Cell, CellArg, Stored};
use indexmap::IndexMap;
use parking_lot::{Mutex, ReentrantMutex};
use serde_json::Value as Json;
use std::cell::RefCell;
use std::sync::Arc;

/// A row: cell ids to cells.
pub type Row = IndexMap<String, Cell>;
/// A table: row ids to rows.
pub type Table = IndexMap<String, Row>;
/// All tables: table ids to tables.
pub type Tables = IndexMap<String, Table>;
/// The key-values: value ids to values.
pub type Values = IndexMap<String, Cell>;

/// What a transaction changed: None marks a deleted table, row, cell or value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    /// Changed tables.
    pub tables: IndexMap<String, Option<IndexMap<String, Option<IndexMap<String, Option<Cell>>>>>>,
    /// Changed values.
    pub values: IndexMap<String, Option<Cell>>,
}

/// Internal work after each committed transaction that changed or touched anything
/// (synchronizers), called on the committing thread with no lock held, before user listeners.
pub(crate) struct CommitHookFns {
    /// Asked first, under the store's lock (must not touch the store): whether this
    /// transaction's changes are wanted at all.
    pub wants: Box<dyn Fn() -> bool + Send + Sync>,
    /// Whether `call` gets the changes with hashes at every level (persisters) or without
    /// (synchronizers' ContentDiff).
    pub with_hashes: bool,
    /// Whether `call` also gets the commits that changed stamps only (persisters): a merge can
    /// give a leaf a newer HLC for the same value, a tombstone for a cell already absent, or a
    /// container a newer HLC, which TinyBase's transaction changes do not list. Such a commit
    /// is numbered only when a hook that wants it has this; with `with_hashes` the changes then
    /// list those stamps too (each table and row once), without it they are the plain ones.
    pub stamps: bool,
    /// Called with the store's commit number (1, 2, ... in commit order, counted under the
    /// store's lock, so hooks called on racing threads can restore the order) and the
    /// transaction's mergeable changes in wire form.
    pub call: Box<dyn Fn(u64, &str) + Send + Sync>,
}

pub(crate) type CommitHook = Arc<CommitHookFns>;

pub(crate) struct Shared {
    pub(crate) core: ReentrantMutex<RefCell<Core>>,
    pub(crate) listeners: Mutex<Registry>,
    pub(crate) commit_hooks: Mutex<Vec<(u64, CommitHook)>>,
    /// Listeners plus commit hooks registered, changed with them under their locks: a
    /// transaction that sees 0 skips the listener and hook bookkeeping with one relaxed load
    /// instead of locking both (a listener added on this thread is seen: program order).
    pub(crate) observers: std::sync::atomic::AtomicUsize,
    /// Commits that reached commit hooks so far (their commit numbers), changed under the core lock.
    pub(crate) commits: std::sync::atomic::AtomicU64,
    /// Transactions rolled back because their thread ended inside them.
    abandoned: std::sync::atomic::AtomicU64,
}

/// A TinyBase Store: tables → rows → cells, and values, with transactions and listeners.
#[derive(Clone)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
}

/// The start_transaction levels this thread holds, per store. Dropped at thread exit: any left
/// open are rolled back then (see [`Store::start_transaction`]).
struct OpenTransactions(RefCell<Vec<(Arc<Shared>, u32)>>);

impl Drop for OpenTransactions {
    fn drop(&mut self) {
        for (shared, levels) in self.0.get_mut().drain(..) {
            Store { shared }.abandon(levels);
        }
    }
}

thread_local! {
    static OPEN: OpenTransactions = const { OpenTransactions(RefCell::new(Vec::new())) };
    /// Changes of transactions whose did-finish listeners are running on this thread.
    static FINISHED: RefCell<Vec<(usize, Arc<FinishedTransaction>)>> = const { RefCell::new(Vec::new()) };
}

/// A committed transaction's changes, kept for its did-finish listeners.
pub(crate) struct FinishedTransaction {
    pub changes: String,
    pub mergeable: Option<[String; 4]>,
}

// A panic inside a transaction rolls it back, so a store stays consistent across unwinding.
impl std::panic::UnwindSafe for Store {}
impl std::panic::RefUnwindSafe for Store {}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// A new, empty plain Store (no CRDT metadata).
    pub fn new() -> Store {
        Store::with_core(Core::new(None))
    }

    pub(crate) fn with_core(core: Core) -> Store {
        Store {
            shared: Arc::new(Shared {
                core: ReentrantMutex::new(RefCell::new(core)),
                listeners: Mutex::new(Registry::default()),
                commit_hooks: Mutex::new(Vec::new()),
                observers: Default::default(),
                commits: Default::default(),
                abandoned: Default::default(),
            }),
        }
    }

    fn id(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
    }

    /// Runs `f` on the core with the lock held (re-entrant) and a short borrow.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Core) -> R) -> R {
        let guard = self.shared.core.lock();
        if !guard.borrow().unsettled.is_empty() {
            guard.borrow_mut().settle();
        }
        let core = guard.borrow();
        f(&core)
    }

    /// `mutate` for a local write, refused before anything changes when it would commit from
    /// [`MAX_LISTENER_NESTING`] nested listener calls on this thread, or when the store's clock
    /// cannot stamp a newer change (`Clock::can_stamp`; TinyBase throws `tinybase:13`).
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut Core) -> R) -> Result<R> {
        self.check_nesting()?;
        self.mutate(|core| {
            if core.clock.as_mut().is_some_and(|clock| !clock.prime()) {
                return Err(Error::InvalidState(
                    "tinybase:13: the clock cannot stamp a newer change (get_now at or past 2^42 ms, or the HLC counter used up at the largest time); nothing was written".into(),
                ));
            }
            let r = f(core);
            if let Some(clock) = core.clock.as_mut() {
                clock.unprime();
            }
            Ok(r)
        })
    }

    /// Runs a mutation as TinyBase's `fluentTransaction`: in its own (or the enclosing)
    /// transaction.
    pub(crate) fn mutate<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        // One lock level for the whole call: a single write is the common case, and each
        // re-entrant level costs a thread-id read.
        let guard = self.shared.core.lock();
        // Inside this thread's transaction already: no nested transaction needed.
        if guard.borrow().depth > 0 {
            let mut core = guard.borrow_mut();
            return f(&mut core);
        }
        self.begin_locked(&guard);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut core = guard.borrow_mut();
            // This transaction is the call's own: nobody can ask to roll it back.
            core.implicit = true;
            f(&mut core)
        }));
        self.end_locked(guard, result, None)
    }

    /// Refuses a write that would commit from [`MAX_LISTENER_NESTING`] nested listener calls:
    /// listeners writing the store that calls them again would otherwise overflow the stack.
    pub(crate) fn check_nesting(&self) -> Result<()> {
        if listeners::call_depth() >= MAX_LISTENER_NESTING && self.in_transaction().is_none() {
            return Err(Error::InvalidState(format!(
                "listener calls nested {MAX_LISTENER_NESTING} deep (a listener writing the store that calls it again?): write refused"
            )));
        }
        Ok(())
    }

    // ------------------------------------------------------------------ transactions

    /// Runs `actions` in a transaction (nested calls join the outer one). Listeners are called
    /// once, when the outermost transaction finishes.
    pub fn transaction<R>(&self, actions: impl FnOnce(&Store) -> R) -> R {
        self.transaction_with(actions, |_| false)
    }

    /// Runs `actions` in a transaction, then rolls it back if `do_rollback` returns true.
    pub fn transaction_with<R>(&self, actions: impl FnOnce(&Store) -> R, do_rollback: impl FnOnce(&Store) -> bool) -> R {
        let guard = self.shared.core.lock();
        self.begin_locked(&guard);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| actions(self)));
        self.end_locked(guard, result, Some(Box::new(do_rollback)))
    }

    /// Finishes the transaction `begin_locked` started, after its actions returned or panicked
    /// (then it is rolled back and the panic goes on).
    fn end_locked<R>(
        &self,
        guard: parking_lot::ReentrantMutexGuard<'_, RefCell<Core>>,
        result: std::thread::Result<R>,
        do_rollback: Option<Box<dyn FnOnce(&Store) -> bool + '_>>,
    ) -> R {
        match result {
            Ok(r) => {
                self.finish_locked(guard, do_rollback);
                r
            }
            Err(panic) => {
                guard.borrow_mut().rollback_requested = true;
                self.finish_locked(guard, None);
                std::panic::resume_unwind(panic)
            }
        }
    }

    fn begin_locked(&self, guard: &parking_lot::ReentrantMutexGuard<'_, RefCell<Core>>) {
        let outer = guard.borrow_mut().begin();
        if outer && self.shared.observers.load(std::sync::atomic::Ordering::Relaxed) != 0 {
            let listeners = {
                let registry = self.shared.listeners.lock();
                if !registry.has(ListenerKind::StartTransaction) {
                    return;
                }
                registry.all_of(ListenerKind::StartTransaction)
            };
            let event = ListenerEvent { kind: ListenerKind::StartTransaction, ids: vec![], new_cell: None, old_cell: None, has: false, row_count: 0 };
            for l in listeners {
                l.call(self, &event);
            }
        }
    }

    /// Starts a transaction that [`Store::finish_transaction`] ends, on the same thread.
    /// Other threads wait for the store until then. A thread that ends with such a transaction
    /// still open has it rolled back as it exits, without listener calls, so that the store is
    /// not locked forever; [`Store::get_abandoned_transaction_count`] counts those.
    pub fn start_transaction(&self) {
        let guard = self.shared.core.lock();
        self.begin_locked(&guard);
        // The lock level is kept until finish_transaction (or the thread's exit) gives it back;
        // OPEN counts it, which is what allows giving it back.
        std::mem::forget(guard);
        OPEN.with(|open| {
            let mut open = open.0.borrow_mut();
            match open.iter_mut().find(|(shared, _)| Arc::ptr_eq(shared, &self.shared)) {
                Some((_, levels)) => *levels += 1,
                None => open.push((self.shared.clone(), 1)),
            }
        });
    }

    /// Finishes a transaction begun on this thread with [`Store::start_transaction`], rolling it
    /// back when `rollback` is true. Refused (and nothing changes) when this thread has no such
    /// transaction open; only the thread's own start levels can be finished, so a call from
    /// inside [`Store::transaction`] or a transaction listener cannot end a transaction it
    /// does not own.
    pub fn finish_transaction(&self, rollback: bool) -> Result<()> {
        let owned = OPEN
            .try_with(|open| {
                let mut open = open.0.borrow_mut();
                let i = open.iter().position(|(shared, _)| Arc::ptr_eq(shared, &self.shared))?;
                open[i].1 -= 1;
                if open[i].1 == 0 {
                    open.swap_remove(i);
                }
                Some(())
            })
            .ok()
            .flatten();
        if owned.is_none() {
            return Err(Error::InvalidState("no transaction started with start_transaction is open on this thread".into()));
        }
        let guard = self.shared.core.lock();
        // SAFETY: this thread holds the lock twice at least: the level start_transaction kept
        // (counted in OPEN, whose count was just taken back) and `guard`.
        unsafe { self.shared.core.force_unlock() };
        self.finish_locked(guard, Some(Box::new(move |_: &Store| rollback)));
        Ok(())
    }

    /// How many transactions were rolled back because the thread that started them with
    /// [`Store::start_transaction`] ended without finishing them.
    pub fn get_abandoned_transaction_count(&self) -> u64 {
        self.shared.abandoned.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Rolls back the start_transaction levels a thread left open as it exits, and gives their
    /// lock levels back. No listener is called: the transaction leaves no change, and host code
    /// should not run in a thread's teardown.
    fn abandon(&self, levels: u32) {
        let guard = self.shared.core.lock();
        {
            let mut core = guard.borrow_mut();
            core.rollback();
            core.depth = 0;
            core.reset();
        }
        for _ in 0..levels {
            // SAFETY: the exiting thread holds these levels (counted in OPEN) besides `guard`.
            unsafe { self.shared.core.force_unlock() };
        }
        drop(guard);
        self.shared.abandoned.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        eprintln!("tinybase: a thread ended inside start_transaction; its transaction was rolled back");
    }

    fn finish_locked(
        &self,
        guard: parking_lot::ReentrantMutexGuard<'_, RefCell<Core>>,
        do_rollback: Option<Box<dyn FnOnce(&Store) -> bool + '_>>,
    ) {
        if guard.borrow().depth > 1 {
            guard.borrow_mut().depth -= 1;
            return;
        }
        guard.borrow_mut().settle();
        let rollback = guard.borrow().rollback_requested || do_rollback.is_some_and(|f| f(self));
        if rollback {
            guard.borrow_mut().rollback();
        } else if self.shared.observers.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            // Nobody reads this commit's changes: nothing to build, nothing to call.
            let mut core = guard.borrow_mut();
            core.depth = 0;
            core.reset();
            return;
        }
        let will_finish = self.shared.listeners.lock().all_of(ListenerKind::WillFinishTransaction);
        let tx_event = |kind| ListenerEvent { kind, ids: vec![], new_cell: None, old_cell: None, has: false, row_count: 0 };
        for l in will_finish {
            l.call(self, &tx_event(ListenerKind::WillFinishTransaction));
        }
        let (pending, finished, hooks) = {
            let mut core = guard.borrow_mut();
            core.depth = 0;
            let registry = self.shared.listeners.lock();
            let did_finish = registry.all_of(ListenerKind::DidFinishTransaction);
            let hooks: Vec<CommitHook> =
                if rollback { Vec::new() } else { self.shared.commit_hooks.lock().iter().filter(|h| (h.1.wants)()).map(|h| h.1.clone()).collect() };
            // The tracking journal is only turned into changes when someone reads them.
            if registry.len() > 0 || !hooks.is_empty() {
                core.flush();
            }
            let visible = !core.track.cells.is_empty() | !core.track.values.is_empty();
            // A commit that changed stamps only goes to the hooks that ask for it.
            let mut hooks = hooks;
            let stamped = !visible && core.track.stamped.is_some();
            if stamped {
                hooks.retain(|hook| hook.stamps);
            }
            let hook_changes = (!rollback && !hooks.is_empty() && core.is_mergeable() && (visible || stamped))
                .then(|| {
                    let seq = self.shared.commits.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1;
                    let wants = |h: bool| hooks.iter().any(|hook| hook.with_hashes == h);
                    let plain = wants(false).then(|| core.transaction_mergeable_changes_json(false, true));
                    let hashed = wants(true).then(|| core.persisted_changes_json());
                    (seq, [plain, hashed])
                });
            let pending: Vec<Pending> = if rollback || registry.len() == 0 { Vec::new() } else { listeners::collect(&core, &registry) };
            drop(registry);
            let finished = (!did_finish.is_empty()).then(|| {
                Arc::new(FinishedTransaction {
                    changes: transaction_changes_json(&core),
                    mergeable: core.is_mergeable().then(|| {
                        [
                            core.transaction_mergeable_changes_json(false, false),
                            core.transaction_mergeable_changes_json(true, false),
                            core.transaction_mergeable_changes_json(false, true),
                            core.transaction_mergeable_changes_json(true, true),
                        ]
                    }),
                })
            });
            core.reset();
            (pending, finished.map(|f| (f, did_finish)), hook_changes.map(|c| (c, hooks)))
        };
        drop(guard);
        if let Some(((seq, changes), hooks)) = hooks {
            for hook in hooks {
                if let Some(changes) = &changes[hook.with_hashes as usize] {
                    (hook.call)(seq, changes);
                }
            }
        }
        for (entry, event) in pending {
            entry.call(self, &event);
        }
        if let Some((finished, did_finish)) = finished {
            FINISHED.with(|f| f.borrow_mut().push((self.id(), finished)));
            for l in did_finish {
                l.call(self, &tx_event(ListenerKind::DidFinishTransaction));
            }
            FINISHED.with(|f| f.borrow_mut().pop());
        }
    }

    fn in_transaction(&self) -> Option<parking_lot::ReentrantMutexGuard<'_, RefCell<Core>>> {
        if !self.shared.core.is_owned_by_current_thread() {
            return None;
        }
        let guard = self.shared.core.lock();
        let depth = guard.borrow().depth;
        (depth > 0).then_some(guard)
    }

    pub(crate) fn finished(&self) -> Option<Arc<FinishedTransaction>> {
        let id = self.id();
        FINISHED.with(|f| f.borrow().iter().rev().find(|(s, _)| *s == id).map(|(_, t)| t.clone()))
    }

    /// The changes of the current transaction (or of the one whose did-finish listeners are
    /// running), as JSON in TinyBase's wire encoding: `[tables, values, 1]`.
    pub fn get_transaction_changes_json(&self) -> String {
        if let Some(guard) = self.in_transaction() {
            guard.borrow_mut().flush();
            return transaction_changes_json(&guard.borrow());
        }
        self.finished().map(|f| f.changes.clone()).unwrap_or_else(|| "[{},{},1]".to_string())
    }

    /// The changes of the current transaction (see [`Store::get_transaction_changes_json`]).
    pub fn get_transaction_changes(&self) -> Changes {
        let json = parse_json(&self.get_transaction_changes_json()).unwrap_or(Json::Null);
        changes_from_json(&json)
    }

    // ------------------------------------------------------------------ listeners

    pub(crate) fn add_listener(&self, kind: ListenerKind, ids: &[Option<&str>], callback: listeners::Callback) -> ListenerId {
        self.add_listener_with(kind, ids, |_| callback)
    }

    /// Registers the callback `make` builds for the new listener's id (`ids` already checked).
    pub(crate) fn add_listener_with(&self, kind: ListenerKind, ids: &[Option<&str>], make: impl FnOnce(ListenerId) -> listeners::Callback) -> ListenerId {
        let path = ids.iter().map(|id| id.map(Key::from)).collect();
        let mut registry = self.shared.listeners.lock();
        let id = registry.add(kind, path, make);
        self.shared.observers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        id
    }

    fn check_ids(kind: ListenerKind, ids: &[Option<&str>]) -> Result<()> {
        if ids.len() != kind.id_count() {
            return Err(Error::InvalidShape(format!("{kind:?} listeners take {} ids", kind.id_count())));
        }
        Ok(())
    }

    /// Adds a listener of any kind; `ids` holds one entry per id the kind takes (None is a
    /// wildcard). The callback receives the store and the event.
    pub fn add_listener_of_kind(
        &self,
        kind: ListenerKind,
        ids: &[Option<&str>],
        callback: impl Fn(&Store, &ListenerEvent) + Send + Sync + 'static,
    ) -> Result<ListenerId> {
        Self::check_ids(kind, ids)?;
        Ok(self.add_listener(kind, ids, Arc::new(callback)))
    }

    /// Adds a buffered listener: instead of a callback, each call queues the event (with this
    /// listener's id) into `queue`, for any thread to drain. Kinds and ids as in
    /// [`Store::add_listener_of_kind`]. Removing the listener discards its queued events.
    pub fn add_buffered_listener(&self, queue: &Arc<EventQueue>, kind: ListenerKind, ids: &[Option<&str>]) -> Result<ListenerId> {
        Self::check_ids(kind, ids)?;
        Ok(self.add_listener_with(kind, ids, |id| queue::sink(queue.clone(), id)))
    }

    /// Removes a listener; returns whether it existed. Once this returns the listener is never
    /// called again, its runs in progress on other threads have returned and its callback was
    /// dropped. Except when called from inside a listener callback or inside a transaction on
    /// this thread (what such a run may itself be waiting for): then it does not wait; the
    /// listener is never called again after the runs in progress, and the last of them drops
    /// the callback. Removing a listener from inside its own callback is such a case.
    pub fn del_listener(&self, id: ListenerId) -> bool {
        let entry = {
            let mut registry = self.shared.listeners.lock();
            let Some(entry) = registry.remove(id) else { return false };
            self.shared.observers.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            entry
        };
        let wait = listeners::call_depth() == 0 && !self.shared.core.is_owned_by_current_thread();
        entry.remove(wait)
    }

    /// Number of listeners registered.
    pub fn get_listener_count(&self) -> usize {
        self.shared.listeners.lock().len()
    }

    /// Calls a listener now for everything its ids match (wildcards expanded), as TinyBase's
    /// `callListener` does.
    pub fn call_listener(&self, id: ListenerId) {
        let Some((kind, path, entry)) = self.shared.listeners.lock().get(id) else { return };
        let events = self.read(|core| listener_snapshot(core, kind, &path));
        for e in events {
            entry.call(self, &e);
        }
    }

    /// Adds a tables listener (any change to any table).
    pub fn add_tables_listener(&self, f: impl Fn(&Store) + Send + Sync + 'static) -> ListenerId {
        self.add_listener(ListenerKind::Tables, &[], Arc::new(move |s, _| f(s)))
    }
    /// Adds a table ids listener.
    pub fn add_table_ids_listener(&self, f: impl Fn(&Store) + Send + Sync + 'static) -> ListenerId {
        self.add_listener(ListenerKind::TableIds, &[], Arc::new(move |s, _| f(s)))
    }
    /// Adds a table listener (None: any table).
    pub fn add_table_listener(&self, table_id: Option<&str>, f: impl Fn(&Store, &str) + Send + Sync + 'static) -> ListenerId {
        self.add_listener(ListenerKind::Table, &[table_id], Arc::new(move |s, e| f(s, &e.ids[0])))
    }
    /// Adds a table cell ids listener.
    pub fn add_table_cell_ids_listener(&self, table_id: Option<&str>, f: impl Fn(&Store, &str) + Send + Sync + 'static) -> ListenerId {
        self.add_listener(ListenerKind::TableCellIds, &[table_id], Arc::new(move |s, e| f(s, &e.ids[0])))
    }
    /// Adds a row count listener: called with the table id and its new row count.
    pub fn add_row_count_listener(&self, table_id: Option<&str>, f: impl Fn(&Store, &str, usize) + Send + Sync + 'static) -> ListenerId {
        self.add_listener(ListenerKind::RowCount, &[table_id], Arc::new(move |s, e| f(s, &e.ids[0], e.row_count)))
    }
    /// Adds a row ids listener.
    pub fn add_row_ids_listener(&self, table_id: Option<&str>, f: impl Fn(&Store, &str) + Send + Sync + 'static) -> ListenerId {
        self.add_listener(ListenerKind::RowIds, &[table_id], Arc::new(move |s, e| f(s, &e.ids[0])))
    }
    /// Adds a row listener.
    pub fn add_row_listener(
        &self,
        table_id: Option<&str>,
        row_id: Option<&str>,
        f: impl Fn(&Store, &str, &str) + Send + Sync + 'static,
    ) -> ListenerId {
        self.add_listener(ListenerKind::Row, &[table_id, row_id], Arc::new(move |s, e| f(s, &e.ids[0], &e.ids[1])))
    }
    /// Adds a cell ids listener.
    pub fn add_cell_ids_listener(
        &self,
        table_id: Option<&str>,
        row_id: Option<&str>,
        f: impl Fn(&Store, &str, &str) + Send + Sync + 'static,
    ) -> ListenerId {
        self.add_listener(ListenerKind::CellIds, &[table_id, row_id], Arc::new(move |s, e| f(s, &e.ids[0], &e.ids[1])))
    }
    /// Adds a cell listener: called with the ids, the new cell and the old cell.
    pub fn add_cell_listener(
        &self,
        table_id: Option<&str>,
        row_id: Option<&str>,
        cell_id: Option<&str>,
        f: impl Fn(&Store, &str, &str, &str, Option<&Cell>, Option<&Cell>) + Send + Sync + 'static,
    ) -> ListenerId {
        self.add_listener(
            ListenerKind::Cell,
            &[table_id, row_id, cell_id],
            Arc::new(move |s, e| f(s, &e.ids[0], &e.ids[1], &e.ids[2], e.new_cell.as_ref(), e.old_cell.as_ref())),
        )
    }
    /// Adds a has-tables listener.
    pub fn add_has_tables_listener(&self, f: impl Fn(&Store, bool) + Send + Sync + 'static) -> ListenerId {
        self.add_listener(ListenerKind::HasTables, &[], Arc::new(move |s, e| f(s, e.has)))
    }
    /// Adds a has-table listener.
    pub fn add_has_table_listener(&self, table_id: Option<&str>, f: impl Fn(&Store, &str, bool) + Send + Sync + 'static) -> ListenerId {
        self.add_listener(ListenerKind::HasTable, &[table_id], Arc::new(move |s, e| f(s, &e.ids[0], e.has)))
    }
    /// Adds a has-table-cell listener.
    pub fn add_has_table_cell_listener(
        &self,
        table_id: Option<&str>,
        cell_id: Option<&str>,
        f: impl Fn(&Store, &str, &str, bool) + Send + Sync + 'static,
    ) -> ListenerId {
        self.add_listener(ListenerKind::HasTableCell, &[table_id, cell_id], Arc::new(move |s, e| f(s, &e.ids[0], &e.ids[1], e.has)))
    }
    /// Adds a has-row listener.
    pub fn add_has_row_listener(
        &self,
        table_id: Option<&str>,
        row_id: Option<&str>,
        f: impl Fn(&Store, &str, &str, bool) + Send + Sync + 'static,
    ) -> ListenerId {
        self.add_listener(ListenerKind::HasRow, &[table_id, row_id], Arc::new(move |s, e| f(s, &e.ids[0], &e.ids[1], e.has)))
    }
    /// Adds a has-cell listener.
    pub fn add_has_cell_listener(
        &self,
        table_id: Option<&str>,
        row_id: Option<&str>,
        cell_id: Option<&str>,
        f: impl Fn(&Store, &str, &str, &str, bool) + Send + Sync + 'static,
    ) -> ListenerId {
        self.add_listener(
            ListenerKind::HasCell,
            &[table_id, row_id, cell_id],
            Arc::new(move |s, e| f(s, &e.ids[0], &e.ids[1], &e.ids[2], e.has)),
        )
    }
    /// Adds a values listener.
    pub fn add_values_listener(&self, f: impl Fn(&Store) + Send + Sync + 'static) -> ListenerId {
        self.add_listener(ListenerKind::Values, &[], Arc::new(move |s, _| f(s)))
    }
    /// Adds a value ids listener.
    pub fn add_value_ids_listener(&self, f: impl Fn(&Store) + Send + Sync + 'static) -> ListenerId {
        self.add_listener(ListenerKind::ValueIds, &[], Arc::new(move |s, _| f(s)))
    }
    /// Adds a has-values listener.
    pub fn add_has_values_listener(&self, f: impl Fn(&Store, bool) + Send + Sync + 'static) -> ListenerId {
        self.add_listener(ListenerKind::HasValues, &[], Arc::new(move |s, e| f(s, e.has)))
    }
    /// Adds a has-value listener.
    pub fn add_has_value_listener(&self, value_id: Option<&str>, f: impl Fn(&Store, &str, bool) + Send + Sync + 'static) -> ListenerId {
        self.add_listener(ListenerKind::HasValue, &[value_id], Arc::new(move |s, e| f(s, &e.ids[0], e.has)))
    }
    /// Adds a value listener: called with the id, the new value and the old value.
    pub fn add_value_listener(
        &self,
        value_id: Option<&str>,
        f: impl Fn(&Store, &str, Option<&Cell>, Option<&Cell>) + Send + Sync + 'static,
    ) -> ListenerId {
        self.add_listener(
            ListenerKind::Value,
            &[value_id],
            Arc::new(move |s, e| f(s, &e.ids[0], e.new_cell.as_ref(), e.old_cell.as_ref())),
        )
    }
    /// Adds a listener called when a transaction starts.
    pub fn add_start_transaction_listener(&self, f: impl Fn(&Store) + Send + Sync + 'static) -> ListenerId {
        self.add_listener(ListenerKind::StartTransaction, &[], Arc::new(move |s, _| f(s)))
    }
    /// Adds a listener called just before a transaction finishes (still inside it).
    pub fn add_will_finish_transaction_listener(&self, f: impl Fn(&Store) + Send + Sync + 'static) -> ListenerId {
        self.add_listener(ListenerKind::WillFinishTransaction, &[], Arc::new(move |s, _| f(s)))
    }
    /// Adds a listener called after a transaction finished and its other listeners ran.
    pub fn add_did_finish_transaction_listener(&self, f: impl Fn(&Store) + Send + Sync + 'static) -> ListenerId {
        self.add_listener(ListenerKind::DidFinishTransaction, &[], Arc::new(move |s, _| f(s)))
    }

    pub(crate) fn add_commit_hook(&self, hook: CommitHook) -> u64 {
        self.add_commit_hook_at(hook).0
    }

    /// Adds a commit hook and returns its id with the number of the last commit before it: the
    /// hook is called for every commit numbered after that one (the core lock is held, so no
    /// commit falls between).
    pub(crate) fn add_commit_hook_at(&self, hook: CommitHook) -> (u64, u64) {
        let _core = self.shared.core.lock();
        let mut hooks = self.shared.commit_hooks.lock();
        let id = hooks.iter().map(|h| h.0).max().unwrap_or(0) + 1;
        hooks.push((id, hook));
        self.shared.observers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (id, self.shared.commits.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Whether a commit hook wants the commits that changed stamps only (merges record them).
    pub(crate) fn wants_stamps(&self) -> bool {
        self.shared.commit_hooks.lock().iter().any(|h| h.1.stamps)
    }

    pub(crate) fn del_commit_hook(&self, id: u64) {
        let mut hooks = self.shared.commit_hooks.lock();
        let before = hooks.len();
        hooks.retain(|h| h.0 != id);
        self.shared.observers.fetch_sub(before - hooks.len(), std::sync::atomic::Ordering::Relaxed);
    }

    // ------------------------------------------------------------------ getters

    /// All tables, in the store's order.
    pub fn get_tables(&self) -> Tables {
        self.read(|core| {
            core.content
                .table_order()
                .into_iter()
                .map(|ti| {
                    let (t, _) = core.content.tables.get_index(ti).expect("table");
                    (t.to_string(), table_of(core, ti))
                })
                .collect()
        })
    }

    /// Ids of the tables, in the store's order.
    pub fn get_table_ids(&self) -> Vec<String> {
        self.read(|core| core.content.table_order().into_iter().map(|ti| core.content.tables.get_index(ti).expect("t").0.to_string()).collect())
    }

    /// A table (empty if absent).
    pub fn get_table(&self, table_id: &str) -> Table {
        self.read(|core| core.present_table(table_id).map(|ti| table_of(core, ti)).unwrap_or_default())
    }

    /// The cell ids used anywhere in a table, in first-use order.
    pub fn get_table_cell_ids(&self, table_id: &str) -> Vec<String> {
        self.read(|core| {
            core.present_table(table_id)
                .map(|ti| core.content.tables[ti].cell_counts.keys().map(|k| k.to_string()).collect())
                .unwrap_or_default()
        })
    }

    /// Number of rows in a table.
    pub fn get_row_count(&self, table_id: &str) -> usize {
        self.read(|core| core.present_table(table_id).map(|ti| core.content.tables[ti].live as usize).unwrap_or(0))
    }

    /// Ids of a table's rows, in the store's order.
    pub fn get_row_ids(&self, table_id: &str) -> Vec<String> {
        self.read(|core| {
            core.present_table(table_id)
                .map(|ti| {
                    let table = &core.content.tables[ti];
                    row_order(table).into_iter().map(|ri| table.rows.get_index(ri).expect("row").0.to_string()).collect()
                })
                .unwrap_or_default()
        })
    }

    /// A row (empty if absent).
    pub fn get_row(&self, table_id: &str, row_id: &str) -> Row {
        self.read(|core| core.present_row(table_id, row_id).map(|(ti, ri)| row_of(core, ti, ri)).unwrap_or_default())
    }

    /// Ids of a row's cells, in the store's order.
    pub fn get_cell_ids(&self, table_id: &str, row_id: &str) -> Vec<String> {
        self.read(|core| {
            core.present_row(table_id, row_id)
                .map(|(ti, ri)| {
                    let cells = &core.content.tables[ti].rows[ri].cells;
                    leaf_order(cells).into_iter().map(|ci| cells.map.get_index(ci).expect("cell").0.to_string()).collect()
                })
                .unwrap_or_default()
        })
    }

    /// A cell, or None if absent.
    pub fn get_cell(&self, table_id: &str, row_id: &str, cell_id: &str) -> Option<Cell> {
        self.read(|core| core.present_cell(table_id, row_id, cell_id).and_then(Stored::to_cell))
    }

    /// All values, in the store's order.
    pub fn get_values(&self) -> Values {
        self.read(|core| {
            let values = &core.content.values;
            leaf_order(values)
                .into_iter()
                .filter_map(|ci| {
                    let (k, leaf) = values.map.get_index(ci)?;
                    Some((k.to_string(), leaf.value.to_cell()?))
                })
                .collect()
        })
    }

    /// Ids of the values, in the store's order.
    pub fn get_value_ids(&self) -> Vec<String> {
        self.read(|core| {
            let values = &core.content.values;
            leaf_order(values).into_iter().map(|ci| values.map.get_index(ci).expect("value").0.to_string()).collect()
        })
    }

    /// A value, or None if absent.
    pub fn get_value(&self, value_id: &str) -> Option<Cell> {
        self.read(|core| core.present_value(value_id).and_then(Stored::to_cell))
    }

    /// Whether there is any table.
    pub fn has_tables(&self) -> bool {
        self.read(|core| core.content.live > 0)
    }
    /// Whether a table exists.
    pub fn has_table(&self, table_id: &str) -> bool {
        self.read(|core| core.present_table(table_id).is_some())
    }
    /// Whether a cell id is used in a table.
    pub fn has_table_cell(&self, table_id: &str, cell_id: &str) -> bool {
        self.read(|core| core.present_table(table_id).is_some_and(|ti| core.content.tables[ti].cell_counts.contains_key(cell_id)))
    }
    /// Whether a row exists.
    pub fn has_row(&self, table_id: &str, row_id: &str) -> bool {
        self.read(|core| core.present_row(table_id, row_id).is_some())
    }
    /// Whether a cell exists.
    pub fn has_cell(&self, table_id: &str, row_id: &str, cell_id: &str) -> bool {
        self.read(|core| core.present_cell(table_id, row_id, cell_id).is_some())
    }
    /// Whether there is any value.
    pub fn has_values(&self) -> bool {
        self.read(|core| core.content.values.live > 0)
    }
    /// Whether a value exists.
    pub fn has_value(&self, value_id: &str) -> bool {
        self.read(|core| core.present_value(value_id).is_some())
    }

    /// Tables and values.
    pub fn get_content(&self) -> (Tables, Values) {
        self.transaction(|s| (s.get_tables(), s.get_values()))
    }

    // ------------------------------------------------------------------ setters

    /// Replaces all tables (tables not given are deleted).
    pub fn set_tables(&self, tables: &Tables) -> Result<()> {
        let tables = tables_in_typed(tables)?;
        self.write(|c| c.set_tables(&tables))
    }
    /// Replaces a table.
    pub fn set_table(&self, table_id: &str, table: &Table) -> Result<()> {
        let table = table_in_typed(table)?;
        self.write(|c| c.set_table(table_id, &table))
    }
    /// Replaces a row.
    pub fn set_row(&self, table_id: &str, row_id: &str, row: &Row) -> Result<()> {
        let row = row_in_typed(row)?;
        self.write(|c| c.set_row(table_id, row_id, &row))
    }
    /// Adds a row with a new id and returns the id. As in TinyBase, ids are integers counted
    /// per table; with `reuse_row_ids` the ids of deleted rows are used first.
    pub fn add_row(&self, table_id: &str, row: &Row, reuse_row_ids: bool) -> Result<String> {
        let row = row_in_typed(row)?;
        Ok(self.write(|c| c.add_row(table_id, &row, reuse_row_ids))?.to_string())
    }
    /// Sets some cells of a row.
    pub fn set_partial_row(&self, table_id: &str, row_id: &str, row: &Row) -> Result<()> {
        let row = row_in_typed(row)?;
        self.write(|c| c.set_partial_row(table_id, row_id, &row))
    }
    /// Sets a cell.
    pub fn set_cell<'a>(&self, table_id: &str, row_id: &str, cell_id: &str, cell: impl Into<CellArg<'a>>) -> Result<()> {
        self.set_stored_cell(table_id, row_id, cell_id, cell.into().into_stored()?)
    }
    /// Sets a cell already encoded (what the C API's string setter and `set_cell` share).
    pub(crate) fn set_stored_cell(&self, table_id: &str, row_id: &str, cell_id: &str, v: Stored) -> Result<()> {
        self.write(|c| c.set_cell(table_id, row_id, cell_id, v))
    }
    /// Replaces all values.
    pub fn set_values(&self, values: &Values) -> Result<()> {
        let values = row_in_typed(values)?;
        self.write(|c| c.set_values(&values))
    }
    /// Sets some values.
    pub fn set_partial_values(&self, values: &Values) -> Result<()> {
        let values = row_in_typed(values)?;
        self.write(|c| c.set_partial_values(&values))
    }
    /// Sets a value.
    pub fn set_value<'a>(&self, value_id: &str, value: impl Into<CellArg<'a>>) -> Result<()> {
        let v = value.into().into_stored()?;
        self.write(|c| c.set_value(value_id, v))
    }
    /// Replaces tables and values (empty tables or values delete them all).
    pub fn set_content(&self, tables: &Tables, values: &Values) -> Result<()> {
        let tables = if tables.is_empty() { Vec::new() } else { tables_in_typed(tables)? };
        let values = if values.is_empty() { Vec::new() } else { row_in_typed(values)? };
        self.write(|c| c.set_content(&tables, &values))
    }
    /// Applies changes (None deletes).
    pub fn apply_changes(&self, changes: &Changes) -> Result<()> {
        let changes = changes_in_typed(changes)?;
        self.write(|c| c.apply_changes(&changes))
    }
    /// Deletes all tables.
    pub fn del_tables(&self) {
        // Refused silently (nothing changes) when the clock cannot stamp: see `write`.
        let _ = self.write(|c| c.del_tables());
    }
    /// Deletes a table.
    pub fn del_table(&self, table_id: &str) {
        // Refused silently (nothing changes) when the clock cannot stamp: see `write`.
        let _ = self.write(|c| c.del_table(table_id));
    }
    /// Deletes a row.
    pub fn del_row(&self, table_id: &str, row_id: &str) {
        // Refused silently (nothing changes) when the clock cannot stamp: see `write`.
        let _ = self.write(|c| c.del_row(table_id, row_id));
    }
    /// Deletes a cell.
    pub fn del_cell(&self, table_id: &str, row_id: &str, cell_id: &str) {
        // Refused silently (nothing changes) when the clock cannot stamp: see `write`.
        let _ = self.write(|c| c.del_cell(table_id, row_id, cell_id));
    }
    /// Deletes all values.
    pub fn del_values(&self) {
        // Refused silently (nothing changes) when the clock cannot stamp: see `write`.
        let _ = self.write(|c| c.del_values());
    }
    /// Deletes a value.
    pub fn del_value(&self, value_id: &str) {
        // Refused silently (nothing changes) when the clock cannot stamp: see `write`.
        let _ = self.write(|c| c.del_value(value_id));
    }

}

// ---------------------------------------------------------------------- typed conversions in

pub(super) fn nonempty<T>(v: Vec<T>, what: &str) -> Result<Vec<T>> {
    if v.is_empty() {
        Err(Error::InvalidShape(format!("a {what} must not be empty")))
    } else {
        Ok(v)
    }
}

fn ordered<T>(iter: impl Iterator<Item = (Key, T)>) -> Vec<(Key, T)> {
    let mut v: Vec<(Key, T)> = iter.collect();
    js_key_order(&mut v, |e| e.0.as_str());
    v
}

fn row_in_typed(row: &Row) -> Result<RowIn> {
    let v = ordered(row.iter().map(|(k, c)| Ok::<_, Error>((Key::from(k.as_str()), Stored::from_cell(c)?))).collect::<Result<Vec<_>>>()?.into_iter());
    nonempty(v, "row")
}

fn table_in_typed(table: &Table) -> Result<TableIn> {
    let v = table.iter().map(|(k, r)| Ok((Key::from(k.as_str()), row_in_typed(r)?))).collect::<Result<Vec<_>>>()?;
    nonempty(ordered(v.into_iter()), "table")
}

fn tables_in_typed(tables: &Tables) -> Result<TablesIn> {
    let v = tables.iter().map(|(k, t)| Ok((Key::from(k.as_str()), table_in_typed(t)?))).collect::<Result<Vec<_>>>()?;
    nonempty(ordered(v.into_iter()), "tables")
}

fn changes_in_typed(changes: &Changes) -> Result<ChangesIn> {
    let mut tables = Vec::new();
    for (t, table) in &changes.tables {
        let table = match table {
            None => None,
            Some(rows) => {
                let mut out = Vec::new();
                for (r, row) in rows {
                    out.push((
                        Key::from(r.as_str()),
                        match row {
                            None => None,
                            Some(cells) => Some(ordered(
                                cells
                                    .iter()
                                    .map(|(c, v)| Ok((Key::from(c.as_str()), v.as_ref().map(Stored::from_cell).transpose()?.unwrap_or(Stored::Deleted))))
                                    .collect::<Result<Vec<_>>>()?
                                    .into_iter(),
                            )),
                        },
                    ));
                }
                Some(ordered(out.into_iter()))
            }
        };
        tables.push((Key::from(t.as_str()), table));
    }
    let values = changes
        .values
        .iter()
        .map(|(k, v)| Ok((Key::from(k.as_str()), v.as_ref().map(Stored::from_cell).transpose()?.unwrap_or(Stored::Deleted))))
        .collect::<Result<Vec<_>>>()?;
    Ok((ordered(tables.into_iter()), ordered(values.into_iter())))
}
// ---------------------------------------------------------------------- typed conversions out

fn row_of(core: &Core, ti: usize, ri: usize) -> Row {
    let cells = &core.content.tables[ti].rows[ri].cells;
    leaf_order(cells)
        .into_iter()
        .filter_map(|ci| {
            let (k, leaf) = cells.map.get_index(ci)?;
            Some((k.to_string(), leaf.value.to_cell()?))
        })
        .collect()
}

fn table_of(core: &Core, ti: usize) -> Table {
    let table = &core.content.tables[ti];
    row_order(table).into_iter().map(|ri| (table.rows.get_index(ri).expect("row").0.to_string(), row_of(core, ti, ri))).collect()
}


/// The events `callListener` makes for a listener: every id its wildcards match, with the
/// current state.
fn listener_snapshot(core: &Core, kind: ListenerKind, path: &[Option<Key>]) -> Vec<ListenerEvent> {
    let tables = || core.content.table_order().into_iter().map(|ti| core.content.tables.get_index(ti).expect("t").0.to_string()).collect::<Vec<_>>();
    let rows = |t: &str| {
        core.present_table(t)
            .map(|ti| {
                let table = &core.content.tables[ti];
                row_order(table).into_iter().map(|ri| table.rows.get_index(ri).expect("r").0.to_string()).collect()
            })
            .unwrap_or_default()
    };
    let cells = |t: &str, r: &str| -> Vec<String> {
        core.present_row(t, r)
            .map(|(ti, ri)| {
                let cells = &core.content.tables[ti].rows[ri].cells;
                leaf_order(cells).into_iter().map(|ci| cells.map.get_index(ci).expect("c").0.to_string()).collect()
            })
            .unwrap_or_default()
    };
    let value_ids = || {
        let values = &core.content.values;
        leaf_order(values).into_iter().map(|ci| values.map.get_index(ci).expect("v").0.to_string()).collect::<Vec<_>>()
    };
    use ListenerKind::*;
    let table_cell_ids = |t: &str| -> Vec<String> {
        core.present_table(t).map(|ti| core.content.tables[ti].cell_counts.keys().map(|k| k.to_string()).collect()).unwrap_or_default()
    };
    let mut paths: Vec<Vec<String>> = vec![vec![]];
    for (i, id) in path.iter().enumerate() {
        let mut next = Vec::new();
        for p in paths {
            let choices: Vec<String> = match id {
                Some(id) => vec![id.to_string()],
                None => match (kind, i) {
                    (HasValue | Value, 0) => value_ids(),
                    (_, 0) => tables(),
                    (HasTableCell, 1) => table_cell_ids(&p[0]),
                    (_, 1) => rows(&p[0]),
                    (_, _) => cells(&p[0], &p[1]),
                },
            };
            for c in choices {
                let mut q = p.clone();
                q.push(c);
                next.push(q);
            }
        }
        paths = next;
    }
    paths
        .into_iter()
        .map(|ids| {
            let mut e = ListenerEvent { kind, ids, new_cell: None, old_cell: None, has: false, row_count: 0 };
            let id = |i: usize| e.ids.get(i).map(String::as_str).unwrap_or("");
            match kind {
                Cell => {
                    let cell = core.present_cell(id(0), id(1), id(2)).and_then(Stored::to_cell);
                    (e.new_cell, e.old_cell) = (cell.clone(), cell);
                }
                Value => {
                    let v = core.present_value(id(0)).and_then(Stored::to_cell);
                    (e.new_cell, e.old_cell) = (v.clone(), v);
                }
                RowCount => e.row_count = core.present_table(id(0)).map(|ti| core.content.tables[ti].live as usize).unwrap_or(0),
                HasTables => e.has = core.content.live > 0,
                HasTable => e.has = core.present_table(id(0)).is_some(),
                HasTableCell => e.has = core.present_table(id(0)).is_some_and(|ti| core.content.tables[ti].cell_counts.contains_key(id(1))),
                HasRow => e.has = core.present_row(id(0), id(1)).is_some(),
                HasCell => e.has = core.present_cell(id(0), id(1), id(2)).is_some(),
                HasValues => e.has = core.content.values.live > 0,
                HasValue => e.has = core.present_value(id(0)).is_some(),
                _ => {}
            }
            e
        })
        .collect()
}
