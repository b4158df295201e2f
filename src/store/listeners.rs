//! Listeners: registration with wildcard ids, and the calls a committed transaction makes,
//! in TinyBase's order.

use super::core::Core;
use super::track::Nest3;
use super::tree::Key;
use crate::value::{Cell, Stored};
use crate::prim::{Condvar, Mutex};
use std::cell::Cell as StdCell;
use std::collections::HashMap;
use std::sync::Arc;

/// A listener's id: never reused within a store (and never 0), so an id kept after its
/// listener was removed can never remove or call another one.
pub type ListenerId = u64;

/// How deeply listener calls may nest on one thread (a listener writing the store that calls
/// it again, and so on). A write that would go deeper is refused: unbounded, the recursion
/// overflows the native stack. A level takes about 2 KiB of stack in a release build, so this
/// fits small mobile thread stacks (512 KiB) with room to spare.
pub const MAX_LISTENER_NESTING: u32 = 100;

/// The kinds of listener a store offers (TinyBase's `add…Listener` methods).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ListenerKind {
    /// Whether the store has any tables.
    HasTables,
    /// Any change to any table.
    Tables,
    /// The table ids changed.
    TableIds,
    /// Whether a table exists.
    HasTable,
    /// Any change in a table.
    Table,
    /// The cell ids used in a table changed.
    TableCellIds,
    /// Whether a cell id is used in a table.
    HasTableCell,
    /// A table's row count changed.
    RowCount,
    /// A table's row ids changed.
    RowIds,
    /// Whether a row exists.
    HasRow,
    /// Any change in a row.
    Row,
    /// A row's cell ids changed.
    CellIds,
    /// Whether a cell exists.
    HasCell,
    /// A cell changed.
    Cell,
    /// Whether the store has any values.
    HasValues,
    /// Any change to any value.
    Values,
    /// The value ids changed.
    ValueIds,
    /// Whether a value exists.
    HasValue,
    /// A value changed.
    Value,
    /// A transaction started.
    StartTransaction,
    /// A transaction is about to finish (still inside it).
    WillFinishTransaction,
    /// A transaction finished.
    DidFinishTransaction,
}

const KINDS: usize = 22;

impl ListenerKind {
    /// How many ids (table, row, cell or value) the kind takes.
    pub fn id_count(self) -> usize {
        use ListenerKind::*;
        match self {
            HasTable | Table | TableCellIds | RowCount | RowIds | HasValue | Value => 1,
            HasTableCell | HasRow | Row | CellIds => 2,
            HasCell | Cell => 3,
            _ => 0,
        }
    }
}

/// What a listener is called with.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenerEvent {
    /// The kind of listener called.
    pub kind: ListenerKind,
    /// The ids of what changed (as many as the kind takes; never wildcards).
    pub ids: Vec<String>,
    /// For cell and value listeners: the new cell or value (None if deleted).
    pub new_cell: Option<Cell>,
    /// For cell and value listeners: the old cell or value (None if it did not exist).
    pub old_cell: Option<Cell>,
    /// For has-listeners: whether the thing now exists.
    pub has: bool,
    /// For row count listeners: the new row count.
    pub row_count: usize,
}

impl ListenerEvent {
    fn new(kind: ListenerKind, ids: Vec<String>) -> ListenerEvent {
        ListenerEvent { kind, ids, new_cell: None, old_cell: None, has: false, row_count: 0 }
    }
}

/// A registered listener's callback (type-erased; the store handle is passed by the caller).
/// Dropping its last reference releases what it holds (host data of the FFI, a queue sink).
pub(crate) type Callback = Arc<dyn Fn(&super::Store, &ListenerEvent) + Send + Sync>;

thread_local! {
    /// Listener calls in progress on this thread (nested when a listener writes the store).
    static CALL_DEPTH: StdCell<u32> = const { StdCell::new(0) };
}

/// Listener calls in progress on this thread.
pub(crate) fn call_depth() -> u32 {
    CALL_DEPTH.with(StdCell::get)
}

/// The removal protocol of one registration: runs enter and leave; removal stops new runs and
/// waits for the running ones (unless told not to), and whoever comes last drops the value
/// (the callback) outside the lock, so that its release never runs under it.
pub(crate) struct Gate<T> {
    state: Mutex<GateState<T>>,
    idle: Condvar,
}

struct GateState<T> {
    removed: bool,
    running: usize,
    /// The last run out of a removed gate is dropping the value.
    dropping: bool,
    value: Option<T>,
}

impl<T: Clone> Gate<T> {
    pub(crate) fn new(value: T) -> Gate<T> {
        Gate { state: Mutex::new(GateState { removed: false, running: 0, dropping: false, value: Some(value) }), idle: Condvar::new() }
    }

    /// Starts a run: a reference to the value, or None once removal began. Every Some must be
    /// matched by [`Gate::leave`] after that reference was dropped.
    pub(crate) fn enter(&self) -> Option<T> {
        let mut st = self.state.lock();
        if st.removed {
            return None;
        }
        st.running += 1;
        st.value.clone()
    }

    /// Ends a run; the last run out of a removed gate drops the value.
    pub(crate) fn leave(&self) {
        let mut st = self.state.lock();
        st.running -= 1;
        if st.running == 0 && st.removed {
            if let Some(value) = st.value.take() {
                st.dropping = true;
                drop(st);
                drop(value);
                st = self.state.lock();
                st.dropping = false;
            }
            self.idle.notify_all();
        }
    }

    /// Stops all runs from now on. With `wait`, returns once the runs in progress have ended
    /// and the value was dropped; without (a caller that a run may itself be waiting for), the
    /// last run drops it. Returns false when removal had already begun.
    pub(crate) fn remove(&self, wait: bool) -> bool {
        let mut st = self.state.lock();
        if st.removed {
            return false;
        }
        st.removed = true;
        if wait {
            while st.running > 0 || st.dropping {
                self.idle.wait(&mut st);
            }
        }
        let value = if st.running == 0 { st.value.take() } else { None };
        drop(st);
        drop(value);
        true
    }
}

pub(crate) struct Entry {
    gate: Gate<Callback>,
}

/// Ends a run even when the callback unwinds.
struct Running<'a>(&'a Gate<Callback>);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        CALL_DEPTH.with(|d| d.set(d.get() - 1));
        self.0.leave();
    }
}

impl Entry {
    /// Stops the listener's calls (see [`Gate::remove`]).
    pub(crate) fn remove(&self, wait: bool) -> bool {
        self.gate.remove(wait)
    }

    pub(crate) fn call(&self, store: &super::Store, event: &ListenerEvent) {
        let Some(callback) = self.gate.enter() else { return };
        CALL_DEPTH.with(|d| d.set(d.get() + 1));
        let _running = Running(&self.gate);
        callback(store, event);
        // The run's reference goes before leave(), so the last one out holds the only one.
        drop(callback);
    }
}

type Path = Vec<Option<Key>>;

/// The listeners of one store.
#[derive(Default)]
pub(crate) struct Registry {
    next_id: u64,
    by_id: HashMap<ListenerId, (ListenerKind, Path, Arc<Entry>)>,
    sets: HashMap<(ListenerKind, Path), Vec<ListenerId>>,
    counts: [u32; KINDS],
}

impl Registry {
    /// Registers the callback `make` builds for the new listener's id.
    pub(crate) fn add(&mut self, kind: ListenerKind, path: Path, make: impl FnOnce(ListenerId) -> Callback) -> ListenerId {
        // Ids start at 1: 0 is never a listener (bindings use it for "none").
        self.next_id += 1;
        let id = self.next_id;
        let entry = Arc::new(Entry { gate: Gate::new(make(id)) });
        self.sets.entry((kind, path.clone())).or_default().push(id);
        self.by_id.insert(id, (kind, path, entry));
        self.counts[kind as usize] += 1;
        id
    }

    /// Unregisters a listener; the caller ends it with [`Entry::remove`] outside the
    /// registry's lock.
    pub(crate) fn remove(&mut self, id: ListenerId) -> Option<Arc<Entry>> {
        let (kind, path, entry) = self.by_id.remove(&id)?;
        let key = (kind, path);
        if let Some(set) = self.sets.get_mut(&key) {
            set.retain(|&l| l != id);
            if set.is_empty() {
                self.sets.remove(&key);
            }
        }
        self.counts[kind as usize] -= 1;
        Some(entry)
    }

    pub(crate) fn get(&self, id: ListenerId) -> Option<(ListenerKind, Path, Arc<Entry>)> {
        self.by_id.get(&id).map(|(k, p, e)| (*k, p.clone(), e.clone()))
    }

    pub(crate) fn has(&self, kind: ListenerKind) -> bool {
        self.counts[kind as usize] > 0
    }

    /// Number of listeners registered.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Listeners matching `ids`, in TinyBase's order: at each position the specific id before
    /// the wildcard, each set in registration order.
    pub(crate) fn matching(&self, kind: ListenerKind, ids: &[&str]) -> Vec<Arc<Entry>> {
        let mut out = Vec::new();
        if !self.has(kind) {
            return out;
        }
        let n = ids.len();
        for combo in 0..(1u32 << n) {
            // Bit (n-1-i) set means position i is a wildcard; counting up visits specific first.
            let path: Path = (0..n)
                .map(|i| if combo & (1 << (n - 1 - i)) != 0 { None } else { Some(Key::from(ids[i])) })
                .collect();
            if let Some(set) = self.sets.get(&(kind, path)) {
                out.extend(set.iter().filter_map(|id| self.by_id.get(id).map(|e| e.2.clone())));
            }
        }
        out
    }

    /// Plain listeners of a kind without ids (transaction listeners).
    pub(crate) fn all_of(&self, kind: ListenerKind) -> Vec<Arc<Entry>> {
        self.matching(kind, &[])
    }
}

/// A listener call waiting to be made.
pub(crate) type Pending = (Arc<Entry>, ListenerEvent);

fn ids_event(kind: ListenerKind, ids: &[&str]) -> ListenerEvent {
    ListenerEvent::new(kind, ids.iter().map(|s| s.to_string()).collect())
}

fn push_all(out: &mut Vec<Pending>, reg: &Registry, event: ListenerEvent) {
    let ids: Vec<&str> = event.ids.iter().map(String::as_str).collect();
    for entry in reg.matching(event.kind, &ids) {
        out.push((entry, event.clone()));
    }
}

/// Groups a flat list of (outer, inner) pairs by their outer id, keeping first-seen order.
fn ids_and_has(
    out: &mut Vec<Pending>,
    reg: &Registry,
    ids_kind: ListenerKind,
    has_kind: ListenerKind,
    prefix: &[&str],
    changed: &[(&Key, i8)],
) {
    if changed.is_empty() {
        return;
    }
    push_all(out, reg, ids_event(ids_kind, prefix));
    for (id, delta) in changed {
        let mut ids = prefix.to_vec();
        ids.push(id.as_str());
        let mut e = ids_event(has_kind, &ids);
        e.has = *delta == 1;
        push_all(out, reg, e);
    }
}

fn group2<'a>(entries: Vec<(&'a Key, &'a Key, &'a i8)>) -> Vec<(&'a Key, Vec<(&'a Key, i8)>)> {
    let mut groups: Vec<(&Key, Vec<(&Key, i8)>)> = Vec::new();
    for (outer, inner, d) in entries {
        match groups.last_mut() {
            Some((o, v)) if *o == outer => v.push((inner, *d)),
            _ => groups.push((outer, vec![(inner, *d)])),
        }
    }
    groups
}

fn group3<V>(nest: &Nest3<V>) -> Vec<((&Key, &Key), Vec<(&Key, &V)>)> {
    let mut groups: Vec<((&Key, &Key), Vec<(&Key, &V)>)> = Vec::new();
    for (t, r, c, v) in nest.grouped() {
        match groups.last_mut() {
            Some(((gt, gr), list)) if *gt == t && *gr == r => list.push((c, v)),
            _ => groups.push(((t, r), vec![(c, v)])),
        }
    }
    groups
}

/// The listener calls for a committed transaction, in TinyBase's order.
pub(crate) fn collect(core: &Core, reg: &Registry) -> Vec<Pending> {
    use ListenerKind::*;
    let mut out = Vec::new();
    let track = &core.track;
    if !track.cells.is_empty() {
        let has_now = core.content.live > 0;
        if has_now != core.had_tables {
            let mut e = ids_event(HasTables, &[]);
            e.has = has_now;
            push_all(&mut out, reg, e);
        }
        let table_ids: Vec<(&Key, i8)> = track.table_ids.iter().map(|(k, d)| (k, *d)).collect();
        ids_and_has(&mut out, reg, TableIds, HasTable, &[], &table_ids);
        for (t, list) in group2(track.table_cell_ids.grouped()) {
            ids_and_has(&mut out, reg, TableCellIds, HasTableCell, &[t.as_str()], &list);
        }
        for (t, count) in &track.row_count {
            if *count != 0 {
                let mut e = ids_event(RowCount, &[t.as_str()]);
                e.row_count = core.present_table(t).map(|ti| core.content.tables[ti].live as usize).unwrap_or(0);
                push_all(&mut out, reg, e);
            }
        }
        for (t, list) in group2(track.row_ids.grouped()) {
            ids_and_has(&mut out, reg, RowIds, HasRow, &[t.as_str()], &list);
        }
        for ((t, r), list) in group3(&track.cell_ids) {
            let list: Vec<(&Key, i8)> = list.into_iter().map(|(c, d)| (c, *d)).collect();
            ids_and_has(&mut out, reg, CellIds, HasCell, &[t.as_str(), r.as_str()], &list);
        }
        if reg.has(Cell) || reg.has(Row) || reg.has(Table) || reg.has(Tables) {
            let mut tables_changed = false;
            let groups = group3(&track.cells);
            let mut i = 0;
            while i < groups.len() {
                let t = groups[i].0 .0;
                let mut table_changed = false;
                while i < groups.len() && groups[i].0 .0 == t {
                    let ((_, r), cells) = &groups[i];
                    let mut row_changed = false;
                    for (c, old) in cells {
                        let new = core.present_cell(t, r, c).cloned().unwrap_or(Stored::Deleted);
                        if !new.same(old) {
                            if reg.has(Cell) {
                                let mut e = ids_event(Cell, &[t, r, c]);
                                e.new_cell = new.to_cell();
                                e.old_cell = old.to_cell();
                                push_all(&mut out, reg, e);
                            }
                            row_changed = true;
                        }
                    }
                    if row_changed {
                        push_all(&mut out, reg, ids_event(Row, &[t, r]));
                        table_changed = true;
                    }
                    i += 1;
                }
                if table_changed {
                    push_all(&mut out, reg, ids_event(Table, &[t]));
                    tables_changed = true;
                }
            }
            if tables_changed {
                push_all(&mut out, reg, ids_event(Tables, &[]));
            }
        }
    }
    if !track.values.is_empty() {
        let has_now = core.content.values.live > 0;
        if has_now != core.had_values {
            let mut e = ids_event(HasValues, &[]);
            e.has = has_now;
            push_all(&mut out, reg, e);
        }
        let value_ids: Vec<(&Key, i8)> = track.value_ids.iter().map(|(k, d)| (k, *d)).collect();
        ids_and_has(&mut out, reg, ValueIds, HasValue, &[], &value_ids);
        let mut values_changed = false;
        for (v, old) in &track.values {
            let new = core.present_value(v).cloned().unwrap_or(Stored::Deleted);
            if !new.same(old) {
                let mut e = ids_event(Value, &[v.as_str()]);
                e.new_cell = new.to_cell();
                e.old_cell = old.to_cell();
                push_all(&mut out, reg, e);
                values_changed = true;
            }
        }
        if values_changed {
            push_all(&mut out, reg, ids_event(Values, &[]));
        }
    }
    out
}

#[cfg(all(test, loom))]
mod tests {
    use super::Gate;
    use crate::prim::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use crate::prim::{thread, Arc};

    /// A callback's stand-in: counts its release (the drop of its last reference).
    struct Payload(Arc<AtomicUsize>);
    impl Drop for Payload {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    fn gate(released: &Arc<AtomicUsize>) -> Arc<Gate<Arc<Payload>>> {
        Arc::new(Gate::new(Arc::new(Payload(released.clone()))))
    }

    /// Once a waiting removal returns, no run is in progress or starts, and the value was
    /// released exactly once.
    #[test]
    fn loom_removal_waits_for_runs_then_releases() {
        loom::model(|| {
            let released = Arc::new(AtomicUsize::new(0));
            let g = gate(&released);
            let removed = Arc::new(AtomicBool::new(false));
            let (g2, r2) = (g.clone(), removed.clone());
            let caller = thread::spawn(move || {
                if let Some(v) = g2.enter() {
                    assert!(!r2.load(SeqCst), "a run after removal returned");
                    drop(v);
                    g2.leave();
                }
            });
            assert!(g.remove(true));
            removed.store(true, SeqCst);
            assert_eq!(released.load(SeqCst), 1);
            caller.join().unwrap();
            assert!(!g.remove(true));
            assert_eq!(released.load(SeqCst), 1);
        });
    }

    /// Two runs that remove each other's listener (removal from inside a callback does not
    /// wait): no deadlock, and each value is released exactly once.
    #[test]
    fn loom_mutual_removal_from_callbacks_never_deadlocks() {
        loom::model(|| {
            let released = Arc::new(AtomicUsize::new(0));
            let gates = [gate(&released), gate(&released)];
            let threads: Vec<_> = [(0, 1), (1, 0)]
                .into_iter()
                .map(|(me, other)| {
                    let (mine, theirs) = (gates[me].clone(), gates[other].clone());
                    thread::spawn(move || {
                        if let Some(v) = mine.enter() {
                            theirs.remove(false);
                            drop(v);
                            mine.leave();
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            // A gate whose run never started was not removed by the other: the owner does.
            for g in &gates {
                g.remove(true);
            }
            assert_eq!(released.load(SeqCst), 2);
            assert!(gates.iter().all(|g| g.enter().is_none()));
        });
    }
}
