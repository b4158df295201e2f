//! Per-transaction change tracking, with the iteration orders of TinyBase's nested Maps.
//!
//! TinyBase keeps its transaction changes in nested JavaScript Maps; the order in which it
//! calls listeners and lists changes follows their insertion orders (outer entries stay once
//! created; inner "ids changed" entries that cancel out are removed, and re-appended if they
//! change again). These flat maps keep the same orders without a Map per row.

use super::tree::Key;
use crate::value::Stored;
use indexmap::{IndexMap, IndexSet};

type H = foldhash::fast::RandomState;

/// TinyBase's `idsChanged`: +1 added, -1 removed; an add and a remove cancel out.
pub(crate) fn ids_changed<K: std::hash::Hash + Eq>(map: &mut IndexMap<K, i8, H>, key: K, delta: i8) {
    match map.get(&key) {
        Some(&d) if d == -delta => {
            map.shift_remove(&key);
        }
        _ => {
            map.insert(key, delta);
        }
    }
}

/// Changes keyed by (table, inner id), iterated table by table in first-touch order.
#[derive(Debug)]
pub(crate) struct Nest2<V> {
    outer: IndexSet<Key, H>,
    map: IndexMap<(u32, Key), V, H>,
}

impl<V> Default for Nest2<V> {
    fn default() -> Self {
        Nest2 { outer: IndexSet::default(), map: IndexMap::default() }
    }
}

impl<V> Default for Nest3<V> {
    fn default() -> Self {
        Nest3 { outer: IndexSet::default(), mid: IndexMap::default(), map: IndexMap::default() }
    }
}

impl<V> Nest2<V> {
    pub(crate) fn outer_index(&mut self, t: &str) -> u32 {
        match self.outer.get_index_of(t) {
            Some(i) => i as u32,
            None => self.outer.insert_full(Key::from(t)).0 as u32,
        }
    }
    pub(crate) fn map(&mut self) -> &mut IndexMap<(u32, Key), V, H> {
        &mut self.map
    }
    /// Entries grouped by table (first-touch order), then in their own order.
    pub(crate) fn grouped(&self) -> Vec<(&Key, &Key, &V)> {
        let mut v: Vec<(u32, usize)> = self.map.keys().enumerate().map(|(i, k)| (k.0, i)).collect();
        v.sort_by_key(|e| e.0);
        v.into_iter()
            .map(|(o, i)| {
                let (k, val) = self.map.get_index(i).expect("index in range");
                (&self.outer[o as usize], &k.1, val)
            })
            .collect()
    }
    pub(crate) fn get(&self, t: &str, inner: &str) -> Option<&V> {
        let o = self.outer.get_index_of(t)? as u32;
        self.map.get(&(o, Key::from(inner)))
    }
}

/// Changes keyed by (table, row, cell), iterated table by table, then row by row (each in
/// first-touch order).
#[derive(Debug)]
pub(crate) struct Nest3<V> {
    outer: IndexSet<Key, H>,
    mid: IndexMap<(u32, Key), (), H>,
    map: IndexMap<(u32, Key), V, H>,
}

impl<V> Nest3<V> {
    /// Index of (table, row), created on first touch.
    pub(crate) fn mid_index(&mut self, t: &str, r: &str) -> u32 {
        let o = match self.outer.get_index_of(t) {
            Some(i) => i as u32,
            None => self.outer.insert_full(Key::from(t)).0 as u32,
        };
        let key = (o, Key::from(r));
        match self.mid.get_index_of(&key) {
            Some(i) => i as u32,
            None => self.mid.insert_full(key, ()).0 as u32,
        }
    }
    pub(crate) fn map(&mut self) -> &mut IndexMap<(u32, Key), V, H> {
        &mut self.map
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Entries as (table, row, cell, value), grouped as TinyBase's nested Maps iterate.
    pub(crate) fn grouped(&self) -> Vec<(&Key, &Key, &Key, &V)> {
        let mut v: Vec<(u32, u32, usize)> = self
            .map
            .keys()
            .enumerate()
            .map(|(i, k)| (self.mid.get_index(k.0 as usize).map(|m| m.0 .0).unwrap_or(0), k.0, i))
            .collect();
        v.sort_by_key(|e| (e.0, e.1));
        v.into_iter()
            .map(|(o, m, i)| {
                let (k, val) = self.map.get_index(i).expect("index in range");
                let (mk, _) = self.mid.get_index(m as usize).expect("index in range");
                (&self.outer[o as usize], &mk.1, &k.1, val)
            })
            .collect()
    }
}

/// Everything a transaction changed, as TinyBase tracks it.
#[derive(Default, Debug)]
pub(crate) struct Tracking {
    pub table_ids: IndexMap<Key, i8, H>,
    pub table_cell_ids: Nest2<i8>,
    pub row_count: IndexMap<Key, i32, H>,
    pub row_ids: Nest2<i8>,
    pub cell_ids: Nest3<i8>,
    /// The value each changed cell had when the transaction started (Deleted = absent).
    pub cells: Nest3<Stored>,
    pub value_ids: IndexMap<Key, i8, H>,
    pub values: IndexMap<Key, Stored, H>,
    /// What a merge stamped without changing what the Store shows (None until then, so that a
    /// local write allocates nothing for it).
    pub stamped: Option<Box<Stamped>>,
}

/// Stamps a merge changed that `cells` and `values` do not list: a newer HLC for the same
/// value, a tombstone for a cell or value already absent, a container's HLC. TinyBase's
/// transaction changes leave them out, but an incremental persister must write them, or its
/// storage would no longer hold the store's hashes.
#[derive(Default, Debug)]
pub(crate) struct Stamped {
    /// Leaves, as (table, row, cell).
    pub cells: IndexSet<(Key, Key, Key), H>,
    /// Leaves in the values.
    pub values: IndexSet<Key, H>,
    /// Rows whose own stamp changed with none of their cells.
    pub rows: IndexSet<(Key, Key), H>,
    /// Tables whose own stamp changed with none of their rows.
    pub tables: IndexSet<Key, H>,
}

impl Tracking {

    pub(crate) fn table_ids_changed(&mut self, t: &str, delta: i8) {
        ids_changed(&mut self.table_ids, Key::from(t), delta);
    }
    pub(crate) fn row_ids_changed(&mut self, t: &str, r: &str, delta: i8) {
        let o = self.row_ids.outer_index(t);
        ids_changed(self.row_ids.map(), (o, Key::from(r)), delta);
        *self.row_count.entry(Key::from(t)).or_insert(0) += delta as i32;
    }
    pub(crate) fn table_cell_ids_changed(&mut self, t: &str, c: &str, delta: i8) {
        let o = self.table_cell_ids.outer_index(t);
        ids_changed(self.table_cell_ids.map(), (o, Key::from(c)), delta);
    }
    pub(crate) fn cell_ids_changed(&mut self, t: &str, r: &str, c: &str, delta: i8) {
        let m = self.cell_ids.mid_index(t, r);
        ids_changed(self.cell_ids.map(), (m, Key::from(c)), delta);
    }
    /// Records a cell change; the first old value is kept.
    pub(crate) fn cell_changed(&mut self, t: &str, r: &str, c: &str, old: &Stored) {
        let m = self.cells.mid_index(t, r);
        self.cells.map().entry((m, Key::from(c))).or_insert_with(|| old.clone());
    }
    pub(crate) fn value_ids_changed(&mut self, v: &str, delta: i8) {
        ids_changed(&mut self.value_ids, Key::from(v), delta);
    }
    pub(crate) fn value_changed(&mut self, v: &str, old: &Stored) {
        self.values.entry(Key::from(v)).or_insert_with(|| old.clone());
    }
}
