//! The content tree shared by the plain Store and the MergeableStore's metadata.
//!
//! One node per table, row, cell and value holds both what the plain Store shows and the
//! CRDT stamp (HLC and hash). A deleted cell stays as a tombstone. Two orders are kept:
//! the metadata order (insertion into the map, never reordered) and the plain Store's order
//! (`seq`, renewed whenever an id re-enters the Store, as a JavaScript Map re-appends it).

use crate::hlc::Hlc;
use crate::value::Stored;
use compact_str::CompactString;
use indexmap::IndexMap;

/// An id (table, row, cell or value id).
pub(crate) type Key = CompactString;
/// An insertion-ordered map from ids (tables, and each table's rows), with IndexMap's method
/// names. Unlike IndexMap it stores no hash per entry and indexes entries with u32 rather than
/// usize: a one-cell row is most of a store's memory (W3), and this saves it 12 bytes.
/// Hashes are recomputed from the keys when the table grows.
#[derive(Clone)]
pub(crate) struct OMap<V> {
    entries: Vec<(Key, V)>,
    index: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

pub(crate) fn omap<V>() -> OMap<V> {
    OMap { entries: Vec::new(), index: hashbrown::HashTable::new(), hasher: foldhash::fast::RandomState::default() }
}

impl<V: std::fmt::Debug> std::fmt::Debug for OMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The hash of entry `j`'s id: how the index finds an entry's hash again (it stores none).
#[inline]
fn entry_hash<'a, V>(entries: &'a [(Key, V)], hasher: &'a foldhash::fast::RandomState) -> impl Fn(&u32) -> u64 + 'a {
    use std::hash::BuildHasher;
    move |&j| hasher.hash_one(entries[j as usize].0.as_str())
}

impl<V> OMap<V> {
    #[inline]
    fn hash(&self, k: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(k)
    }
    pub(crate) fn get_index_of(&self, k: &str) -> Option<usize> {
        let entries = &self.entries;
        self.index.find(self.hash(k), |&i| entries[i as usize].0 == k).map(|&i| i as usize)
    }
    pub(crate) fn get(&self, k: &str) -> Option<&V> {
        self.get_index_of(k).map(|i| &self.entries[i].1)
    }
    pub(crate) fn get_mut(&mut self, k: &str) -> Option<&mut V> {
        self.get_index_of(k).map(|i| &mut self.entries[i].1)
    }
    pub(crate) fn get_full(&self, k: &str) -> Option<(usize, &Key, &V)> {
        self.get_index_of(k).map(|i| (i, &self.entries[i].0, &self.entries[i].1))
    }
    /// Inserts or replaces; returns the entry's index and the value replaced, if any.
    pub(crate) fn insert_full(&mut self, k: Key, v: V) -> (usize, Option<V>) {
        let h = self.hash(&k);
        let entries = &self.entries;
        if let Some(&i) = self.index.find(h, |&i| entries[i as usize].0 == k) {
            return (i as usize, Some(std::mem::replace(&mut self.entries[i as usize].1, v)));
        }
        (self.push_hashed(h, k, v), None)
    }

    /// The index of `k`, inserting it (with `make()`) when absent; true when inserted. Hashes
    /// the id once (a lookup then an insert would hash it twice).
    pub(crate) fn get_or_insert_full(&mut self, k: &str, make: impl FnOnce() -> V) -> (usize, bool) {
        let h = self.hash(k);
        let entries = &self.entries;
        if let Some(&i) = self.index.find(h, |&i| entries[i as usize].0 == k) {
            return (i as usize, false);
        }
        (self.push_hashed(h, Key::from(k), make()), true)
    }

    /// Appends an entry whose id is absent and whose hash is `h`.
    fn push_hashed(&mut self, h: u64, k: Key, v: V) -> usize {
        let i = self.entries.len();
        let index = u32::try_from(i).expect("fewer than 2^32 ids in a map");
        if self.index.len() == self.index.capacity() {
            self.regrow();
        }
        self.index.insert_unique(h, index, entry_hash(&self.entries, &self.hasher));
        self.entries.push((k, v));
        i
    }
    /// Doubles the index, re-hashing the ids in entry order: the keys are read sequentially
    /// (a rehash in bucket order reads them at random, a cache miss each in a big table).
    #[cold]
    fn regrow(&mut self) {
        let mut index = hashbrown::HashTable::with_capacity((self.index.capacity() * 2).max(4));
        let rehash = entry_hash(&self.entries, &self.hasher);
        for (i, (k, _)) in self.entries.iter().enumerate() {
            index.insert_unique(self.hash(k), i as u32, &rehash);
        }
        self.index = index;
    }
    pub(crate) fn get_index(&self, i: usize) -> Option<(&Key, &V)> {
        self.entries.get(i).map(|(k, v)| (k, v))
    }
    pub(crate) fn get_index_mut(&mut self, i: usize) -> Option<(&Key, &mut V)> {
        self.entries.get_mut(i).map(|(k, v)| (&*k, v))
    }
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity().min(self.index.capacity())
    }
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (&Key, &V)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }
    pub(crate) fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }
    pub(crate) fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, v)| v)
    }
    /// Removes the last entry (undo of a creation).
    pub(crate) fn pop(&mut self) -> Option<(Key, V)> {
        let (k, v) = self.entries.pop()?;
        let i = self.entries.len() as u32;
        let h = self.hash(&k);
        if let Ok(e) = self.index.find_entry(h, |&j| j == i) {
            e.remove();
        }
        Some((k, v))
    }
    /// Room for `additional` more entries (a merge knows how many rows it brings), so a bulk
    /// insert does not regrow and rehash the map step by step.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
        self.index.reserve(additional, entry_hash(&self.entries, &self.hasher));
    }
    pub(crate) fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
        self.index.shrink_to_fit(entry_hash(&self.entries, &self.hasher));
    }
}

impl<V> std::ops::Index<usize> for OMap<V> {
    type Output = V;
    fn index(&self, i: usize) -> &V {
        &self.entries[i].1
    }
}

impl<V> std::ops::IndexMut<usize> for OMap<V> {
    fn index_mut(&mut self, i: usize) -> &mut V {
        &mut self.entries[i].1
    }
}

impl<'a, V> IntoIterator for &'a OMap<V> {
    type Item = (&'a Key, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (Key, V)>, fn(&'a (Key, V)) -> (&'a Key, &'a V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

/// A cell or value with its stamp.
#[derive(Clone, Debug)]
pub(crate) struct Leaf {
    pub value: Stored,
    pub hlc: Hlc,
    pub hash: u32,
    /// Position in the plain Store's order (meaningful while the value is not deleted).
    pub seq: u32,
}

impl Leaf {
    pub(crate) fn new() -> Leaf {
        Leaf { value: Stored::Deleted, hlc: Hlc::EMPTY, hash: 0, seq: 0 }
    }
}

/// An insertion-ordered map of leaves, compact for the usual few cells of a row: a single leaf
/// lives inline (no heap block, 72 bytes), more go to a boxed vector, and a lookup index is built
/// only for containers with many leaves. W3's rows hold one cell each, so the inline case is most
/// of a store's memory.
#[derive(Clone, Debug, Default)]
pub(crate) enum LeafMap {
    #[default]
    Empty,
    One((Key, Leaf)),
    Many(Box<ManyLeaves>),
}

/// The leaves of a container that has held more than one.
#[derive(Clone, Debug, Default)]
pub(crate) struct ManyLeaves {
    items: Vec<(Key, Leaf)>,
    index: Option<std::collections::HashMap<Key, u32, foldhash::fast::RandomState>>,
}

const INDEX_FROM: usize = 12;

impl LeafMap {
    #[inline]
    fn items(&self) -> &[(Key, Leaf)] {
        match self {
            LeafMap::Empty => &[],
            LeafMap::One(item) => std::slice::from_ref(item),
            LeafMap::Many(m) => &m.items,
        }
    }
    #[inline]
    fn items_mut(&mut self) -> &mut [(Key, Leaf)] {
        match self {
            LeafMap::Empty => &mut [],
            LeafMap::One(item) => std::slice::from_mut(item),
            LeafMap::Many(m) => &mut m.items,
        }
    }
    pub(crate) fn get_index_of(&self, k: &str) -> Option<usize> {
        match self {
            LeafMap::Many(m) if m.index.is_some() => m.index.as_ref().and_then(|ix| ix.get(k)).map(|&i| i as usize),
            _ => self.items().iter().position(|(key, _)| key == k),
        }
    }
    pub(crate) fn get(&self, k: &str) -> Option<&Leaf> {
        self.get_index_of(k).map(|i| &self.items()[i].1)
    }
    pub(crate) fn get_mut(&mut self, k: &str) -> Option<&mut Leaf> {
        self.get_index_of(k).map(|i| &mut self.items_mut()[i].1)
    }
    pub(crate) fn get_full(&self, k: &str) -> Option<(usize, &Key, &Leaf)> {
        self.get_index_of(k).map(|i| (i, &self.items()[i].0, &self.items()[i].1))
    }
    /// Appends a new leaf (the id must not be present) and returns its index.
    pub(crate) fn push(&mut self, k: Key, v: Leaf) -> usize {
        let m = match self {
            LeafMap::Empty => {
                *self = LeafMap::One((k, v));
                return 0;
            }
            LeafMap::One(_) => {
                let LeafMap::One(first) = std::mem::take(self) else { unreachable!() };
                *self = LeafMap::Many(Box::new(ManyLeaves { items: vec![first, (k, v)], index: None }));
                return 1;
            }
            LeafMap::Many(m) => m,
        };
        let i = m.items.len();
        if let Some(ix) = &mut m.index {
            ix.insert(k.clone(), i as u32);
        } else if i + 1 >= INDEX_FROM {
            let mut ix = std::collections::HashMap::with_capacity_and_hasher(i * 2, foldhash::fast::RandomState::default());
            for (j, (key, _)) in m.items.iter().enumerate() {
                ix.insert(key.clone(), j as u32);
            }
            ix.insert(k.clone(), i as u32);
            m.index = Some(ix);
        }
        m.items.push((k, v));
        i
    }
    pub(crate) fn get_index(&self, i: usize) -> Option<(&Key, &Leaf)> {
        self.items().get(i).map(|(k, v)| (k, v))
    }
    pub(crate) fn get_index_mut(&mut self, i: usize) -> Option<(&Key, &mut Leaf)> {
        self.items_mut().get_mut(i).map(|(k, v)| (&*k, v))
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Key, &Leaf)> {
        self.items().iter().map(|(k, v)| (k, v))
    }
    pub(crate) fn values(&self) -> impl Iterator<Item = &Leaf> {
        self.items().iter().map(|(_, v)| v)
    }
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut Leaf> {
        self.items_mut().iter_mut().map(|(_, v)| v)
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.items().is_empty()
    }
    /// Removes the last leaf (undo of a creation).
    pub(crate) fn pop(&mut self) -> Option<(Key, Leaf)> {
        match std::mem::take(self) {
            LeafMap::Empty => None,
            LeafMap::One(item) => Some(item),
            LeafMap::Many(mut m) => {
                let item = m.items.pop();
                if let (Some(ix), Some(item)) = (&mut m.index, &item) {
                    ix.remove(item.0.as_str());
                }
                if !m.items.is_empty() {
                    *self = LeafMap::Many(m);
                }
                item
            }
        }
    }
}

impl std::ops::Index<usize> for LeafMap {
    type Output = Leaf;
    fn index(&self, i: usize) -> &Leaf {
        &self.items()[i].1
    }
}

impl std::ops::IndexMut<usize> for LeafMap {
    fn index_mut(&mut self, i: usize) -> &mut Leaf {
        &mut self.items_mut()[i].1
    }
}

/// A container of leaves: a row's cells, or the values. Its HLC is held outside (a row's in
/// [`TableNode::row_hlc`], the values' in [`Content::values_hlc`]): local writes leave a row's HLC
/// empty, so a row would mostly carry 13 empty bytes (and padding).
#[derive(Clone, Debug)]
pub(crate) struct Leaves {
    pub map: LeafMap,
    pub hash: u32,
    /// Number of leaves that are not deleted.
    pub live: u32,
    /// The next leaf sequence number (low 31 bits) and, in the top bit, whether this row's hash is
    /// a term of its table's yet (not before its first merge): a separate bool would cost 8 bytes
    /// of padding per row. Use the methods.
    next_seq: u32,
    /// A row's position in its table's plain-Store order, 0 while the row is absent from the
    /// plain Store (unused for the values). Held here rather than in [`RowNode`], where it would
    /// cost a row 8 bytes of padding.
    pub seq: u32,
}

impl Leaves {
    pub(crate) fn new() -> Leaves {
        Leaves { map: LeafMap::default(), hash: 0, live: 0, next_seq: 1, seq: 0 }
    }

    /// Whether this row's hash is a term of its table's hash yet.
    #[inline]
    pub(crate) fn termed(&self) -> bool {
        self.next_seq & TERMED != 0
    }

    /// Marks this row's hash as a term of its table's hash.
    #[inline]
    pub(crate) fn set_termed(&mut self) {
        self.next_seq |= TERMED;
    }

    /// Takes the next leaf sequence number (0 means "absent", so it is skipped; wraps after 2^31).
    #[inline]
    pub(crate) fn take_seq(&mut self) -> u32 {
        let s = self.next_seq & !TERMED;
        self.next_seq = (s.wrapping_add(1) & !TERMED).max(1) | (self.next_seq & TERMED);
        s
    }

    /// Restarts the leaf sequence numbers (the termed flag stays).
    pub(crate) fn reset_seq(&mut self) {
        self.next_seq = 1 | (self.next_seq & TERMED);
    }
}

/// The termed flag's bit in [`Leaves`]'s `next_seq`.
const TERMED: u32 = 1 << 31;

/// A row: its cells, and whether (and where) it is in the plain Store (`cells.seq`).
#[derive(Clone, Debug)]
pub(crate) struct RowNode {
    pub cells: Leaves,
}

/// TinyBase's per-table pool of row ids for `addRow`.
#[derive(Clone, Debug, Default)]
pub(crate) struct RowIdPool {
    pub released: std::collections::VecDeque<Key>,
    pub next_id: u64,
}

/// A table: its rows, presence in the plain Store, and the plain Store's per-table state.
#[derive(Clone, Debug)]
pub(crate) struct TableNode {
    pub rows: OMap<RowNode>,
    pub hlc: Hlc,
    pub hash: u32,
    /// Number of rows present in the plain Store.
    pub live: u32,
    pub next_seq: u32,
    /// 0 while the table is absent from the plain Store.
    pub seq: u32,
    pub pool: RowIdPool,
    /// How many rows use each cell id, in first-use order (`getTableCellIds`).
    pub cell_counts: IndexMap<Key, u32, foldhash::fast::RandomState>,
    /// The transaction that last looked this table up, and its row count then.
    pub tx_gen: u32,
    pub rows_at_start: u32,
    /// The transaction in which this table's stamp was last saved for undo.
    pub saved_gen: u32,
    /// Whether this table's hash is a term of the tables hash yet (not before its first merge).
    pub termed: bool,
    /// `(hash, id_hash(id, hash))`: the table's last term in the tables hash, so that the next
    /// change to the table does not hash its old term again (a pure function of the hash, so
    /// never stale: a different hash just misses).
    pub term: Option<(u32, u32)>,
    /// Set while the tables hash does not yet hold this table's new term (see
    /// [`Core::settle`](crate::store::core::Core::settle)): the term it holds, if any.
    pub unsettled: Option<Option<u32>>,
    /// The HLCs of rows whose HLC is not empty, by row index (only merges of received changes
    /// stamp a row; see [`Leaves`]).
    row_hlcs: std::collections::HashMap<u32, Hlc, foldhash::fast::RandomState>,
}

impl TableNode {
    pub(crate) fn new() -> TableNode {
        TableNode {
            rows: omap(),
            hlc: Hlc::EMPTY,
            hash: 0,
            live: 0,
            next_seq: 1,
            seq: 0,
            pool: RowIdPool::default(),
            cell_counts: IndexMap::with_hasher(foldhash::fast::RandomState::default()),
            tx_gen: 0,
            rows_at_start: 0,
            saved_gen: 0,
            termed: false,
            term: None,
            unsettled: None,
            row_hlcs: Default::default(),
        }
    }

    /// A row's HLC (empty until a merge stamps it).
    #[inline]
    pub(crate) fn row_hlc(&self, ri: usize) -> Hlc {
        if self.row_hlcs.is_empty() {
            return Hlc::EMPTY;
        }
        self.row_hlcs.get(&(ri as u32)).copied().unwrap_or(Hlc::EMPTY)
    }

    /// Sets a row's HLC.
    pub(crate) fn set_row_hlc(&mut self, ri: usize, hlc: Hlc) {
        if hlc.is_empty() {
            self.row_hlcs.remove(&(ri as u32));
        } else {
            self.row_hlcs.insert(ri as u32, hlc);
        }
    }

    /// Removes the last row (undo of its creation), with its HLC.
    pub(crate) fn pop_row(&mut self) {
        if self.rows.pop().is_some() {
            self.row_hlcs.remove(&(self.rows.len() as u32));
        }
    }
}

/// Everything a store holds.
#[derive(Clone, Debug)]
pub(crate) struct Content {
    pub tables: OMap<TableNode>,
    pub tables_hlc: Hlc,
    pub tables_hash: u32,
    /// Number of tables present in the plain Store.
    pub live: u32,
    pub next_seq: u32,
    pub values: Leaves,
    /// The values' HLC (see [`Leaves`]).
    pub values_hlc: Hlc,
    /// Stamp values that differ from the plain Store's value, keyed by (table, row, leaf) index
    /// (table `VALUES` for values). TinyBase leaves these behind when a rollback cannot restore
    /// an object or array cell into its Store; almost always empty.
    pub overrides: std::collections::HashMap<(u32, u32, u32), Stored>,
}

/// The table index used for values in override keys.
pub(crate) const VALUES: u32 = u32::MAX;

impl Content {
    pub(crate) fn new() -> Content {
        Content {
            tables: omap(),
            tables_hlc: Hlc::EMPTY,
            tables_hash: 0,
            live: 0,
            next_seq: 1,
            values: Leaves::new(),
            values_hlc: Hlc::EMPTY,
            overrides: std::collections::HashMap::new(),
        }
    }

    /// The value a leaf's stamp holds (normally the plain Store's value).
    #[inline]
    pub(crate) fn meta<'a>(&'a self, key: (u32, u32), ci: usize, leaf: &'a Leaf) -> &'a Stored {
        if self.overrides.is_empty() {
            &leaf.value
        } else {
            self.overrides.get(&(key.0, key.1, ci as u32)).unwrap_or(&leaf.value)
        }
    }

    /// The HLC of a row (`Some((table, row))`) or of the values (None).
    #[inline]
    pub(crate) fn leaves_hlc(&self, at: Option<(usize, usize)>) -> Hlc {
        match at {
            Some((ti, ri)) => self.tables[ti].row_hlc(ri),
            None => self.values_hlc,
        }
    }

    /// The HLC of a row or of the values by override key (`(VALUES, 0)` for the values).
    #[inline]
    pub(crate) fn leaves_hlc_of(&self, key: (u32, u32)) -> Hlc {
        self.leaves_hlc(if key.0 == VALUES { None } else { Some((key.0 as usize, key.1 as usize)) })
    }

    /// Sets the HLC of a row or of the values.
    pub(crate) fn set_leaves_hlc(&mut self, at: Option<(usize, usize)>, hlc: Hlc) {
        match at {
            Some((ti, ri)) => self.tables[ti].set_row_hlc(ri, hlc),
            None => self.values_hlc = hlc,
        }
    }

    /// The present tables in the plain Store's order.
    pub(crate) fn table_order(&self) -> Vec<usize> {
        order_by_seq(self.tables.values().map(|t| t.seq))
    }
}

/// Indexes of entries whose seq is non-zero, sorted by seq (cheap when already in order).
pub(crate) fn order_by_seq(seqs: impl Iterator<Item = u32>) -> Vec<usize> {
    let mut v: Vec<(u32, usize)> = seqs.enumerate().filter(|(_, s)| *s != 0).map(|(i, s)| (s, i)).collect();
    if !v.windows(2).all(|w| w[0].0 < w[1].0) {
        v.sort_unstable();
    }
    v.into_iter().map(|(_, i)| i).collect()
}

/// Present leaves of a container in the plain Store's order.
pub(crate) fn leaf_order(leaves: &Leaves) -> Vec<usize> {
    order_by_seq(leaves.map.values().map(|l| if l.value.is_deleted() { 0 } else { l.seq }))
}

/// Present rows of a table in the plain Store's order.
pub(crate) fn row_order(table: &TableNode) -> Vec<usize> {
    order_by_seq(table.rows.values().map(|r| r.cells.seq))
}

/// Takes the next sequence number of a container (0 means "absent", so it is skipped; a container
/// would need 2^32 re-insertions to wrap).
pub(crate) fn take_seq(next: &mut u32) -> u32 {
    let s = *next;
    *next = next.wrapping_add(1).max(1);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_sizes_do_not_grow() {
        // Memory per cell (W3) is these sizes: a one-cell row is a row-map entry (key,
        // RowNode) and a u32 in the map's hash table, holding its leaf inline. A change here changes W3; update
        // docs/benchmarks/profiles/W1-W3.md and tests/memory.rs's bound with it.
        use std::mem::size_of;
        let sizes = [
            ("Stored", size_of::<Stored>()),
            ("Hlc", size_of::<Hlc>()),
            ("Key", size_of::<Key>()),
            ("Leaf", size_of::<Leaf>()),
            ("LeafMap", size_of::<LeafMap>()),
            ("Leaves", size_of::<Leaves>()),
            ("RowNode", size_of::<RowNode>()),
            ("row map entry", size_of::<(Key, RowNode)>()),
        ];
        let expected = [
            ("Stored", 24),
            ("Hlc", 13),
            ("Key", 24),
            ("Leaf", 48),
            ("LeafMap", 72),
            ("Leaves", 88),
            ("RowNode", 88),
            ("row map entry", 112),
        ];
        assert_eq!(sizes, expected);
    }
}
