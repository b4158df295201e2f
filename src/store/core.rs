//! The engine behind a store handle: content, TinyBase's mutation rules, stamping and
//! transactions. Everything here runs under the store's lock and never calls user code.

use super::track::Tracking;
use super::tree::*;
use crate::hlc::{Clock, Hlc};
use crate::value::Stored;

/// A row, table or tables shape given to a setter: ordered (id, thing) pairs, already validated.
pub(crate) type RowIn = Vec<(Key, Stored)>;
pub(crate) type TableIn = Vec<(Key, RowIn)>;
pub(crate) type TablesIn = Vec<(Key, TableIn)>;
/// Changes: None deletes the table, row, cell or value.
pub(crate) type ChangesIn = (Vec<(Key, Option<Vec<(Key, Option<Vec<(Key, Stored)>>)>>)>, Vec<(Key, Stored)>);

/// One step to undo the stamps of a rolled-back transaction.
#[derive(Debug)]
pub(crate) enum Undo {
    /// A leaf's stamp before a merge accepted a change (values when `t` is None).
    Leaf { t: Option<u32>, r: u32, c: u32, hlc: Hlc, hash: u32 },
    /// A container's stamp (row, table, tables or values) before a merge.
    Container { level: Level, hlc: Hlc, hash: u32 },
    /// A node created in the transaction: the last entry of its map is removed.
    Created(Level),
    /// The whole content before `set_mergeable_content` replaced it.
    Content(Box<Content>),
    /// A stamp value override that a merge removed.
    Override((u32, u32, u32), Stored),
}

/// One tracking call, recorded by node index during a transaction and turned into id-keyed
/// [`Tracking`] only when something reads it (listeners, transaction changes, rollback).
#[derive(Debug)]
pub(crate) enum TrackEvent {
    TableIds(u32, i8),
    RowIds(u32, u32, i8),
    TableCellIds(u32, u32, u32, i8),
    CellIds(u32, u32, u32, i8),
    Cell(u32, u32, u32, Stored),
    /// A cell id entering a row, in one event (a bulk write journals one per cell): the row's
    /// `RowIds(+1)` first when `row`, then `CellIds(+1)`, then, when `set`, `Cell` with the
    /// old value deleted.
    AddedCell { t: u32, r: u32, c: u32, row: bool, set: bool },
    ValueIds(u32, i8),
    Value(u32, Stored),
}

/// Which container an undo step refers to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Level {
    Tables,
    Table(u32),
    Row(u32, u32),
    Values,
    /// For `Created`: a leaf in a row, or a value when the row is None.
    Leaf(Option<(u32, u32)>),
}

/// The engine state of one store.
pub(crate) struct Core {
    pub content: Content,
    /// The HLC clock: present for a MergeableStore.
    pub clock: Option<Clock>,
    /// Whether local changes get stamped (off while merging remote changes in).
    pub listening: bool,
    /// Stamps for default content are empty HLCs.
    pub defaulting: bool,
    /// Nesting depth of the current transaction (0: none).
    pub depth: u32,
    pub rollback_requested: bool,
    pub track: Tracking,
    /// Tracking calls not yet applied to `track`.
    pub journal: Vec<TrackEvent>,
    /// Tables whose new term the tables hash does not hold yet (local writes; see `settle`).
    pub unsettled: Vec<u32>,
    /// Leaf values changed so far (how a merge tells which accepted leaves changed the Store).
    pub leaf_changes: u64,
    /// Whether `track` holds anything (it is only filled by `flush`).
    pub tracked: bool,
    pub undo: Vec<Undo>,
    /// Counts outermost transactions, to know what a transaction created or saved already.
    pub tx_gen: u32,
    pub tables_at_start: usize,
    pub tables_saved: bool,
    pub values_saved: bool,
    /// The current transaction is a single call's own (no rollback can be requested).
    pub implicit: bool,
    /// Plain-Store state at the start of the transaction, for has-tables/has-values listeners.
    pub had_tables: bool,
    pub had_values: bool,
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

impl Core {
    pub(crate) fn new(clock: Option<Clock>) -> Core {
        Core {
            content: Content::new(),
            clock,
            listening: true,
            defaulting: false,
            depth: 0,
            rollback_requested: false,
            track: Tracking::default(),
            journal: Vec::new(),
            unsettled: Vec::new(),
            leaf_changes: 0,
            tracked: false,
            undo: Vec::new(),
            tx_gen: 0,
            tables_at_start: 0,
            tables_saved: false,
            values_saved: false,
            implicit: false,
            had_tables: false,
            had_values: false,
        }
    }

    pub(crate) fn is_mergeable(&self) -> bool {
        self.clock.is_some()
    }

    fn undoable(&self) -> bool {
        self.clock.is_some() && self.depth > 0
    }

    // ---------------------------------------------------------------- nodes

    /// The table's node index, creating a (tombstone) node if needed.
    pub(crate) fn table_node(&mut self, t: &str) -> usize {
        let i = match self.content.tables.get_index_of(t) {
            Some(i) => i,
            None => {
                if self.undoable() {
                    self.undo.push(Undo::Created(Level::Table(0)));
                }
                self.content.tables.insert_full(Key::from(t), TableNode::new()).0
            }
        };
        let gen = self.tx_gen;
        let table = &mut self.content.tables[i];
        if table.tx_gen != gen {
            table.tx_gen = gen;
            table.rows_at_start = table.rows.len() as u32;
        }
        i
    }

    /// Whether a table was created in the current transaction.
    pub(crate) fn table_is_new(&self, ti: usize) -> bool {
        ti >= self.tables_at_start
    }

    /// Whether a row was created in the current transaction (its table was looked up through
    /// `table_node` in it, which every path that creates rows does).
    pub(crate) fn row_is_new(&self, ti: usize, ri: usize) -> bool {
        let table = &self.content.tables[ti];
        self.table_is_new(ti) || (table.tx_gen == self.tx_gen && ri >= table.rows_at_start as usize)
    }

    pub(crate) fn row_node(&mut self, ti: usize, r: &str) -> usize {
        let undoable = self.undoable();
        let table = &mut self.content.tables[ti];
        let (ri, inserted) = table.rows.get_or_insert_full(r, || RowNode { cells: Leaves::new() });
        if !inserted {
            return ri;
        }
        // Rows of a table created in this transaction go when the table goes.
        if undoable && !self.table_is_new(ti) {
            self.undo.push(Undo::Created(Level::Row(ti as u32, 0)));
        }
        ri
    }

    pub(crate) fn leaf_node_pub(&mut self, at: Option<(usize, usize)>, c: &str) -> usize {
        let undoable = self.undoable();
        let leaves = self.leaves_mut(at);
        if let Some(i) = leaves.map.get_index_of(c) {
            return i;
        }
        let i = leaves.map.push(Key::from(c), Leaf::new());
        // Leaves of a row created in this transaction go when the row goes.
        if undoable && !at.is_some_and(|(t, r)| self.row_is_new(t, r)) {
            self.undo.push(Undo::Created(Level::Leaf(at.map(|(t, r)| (t as u32, r as u32)))));
        }
        i
    }

    /// A row's cells (Some((table, row))) or the values (None).
    pub(crate) fn leaves_mut(&mut self, at: Option<(usize, usize)>) -> &mut Leaves {
        match at {
            Some((ti, ri)) => &mut self.content.tables[ti].rows[ri].cells,
            None => &mut self.content.values,
        }
    }

    pub(crate) fn leaves(&self, at: Option<(usize, usize)>) -> &Leaves {
        match at {
            Some((ti, ri)) => &self.content.tables[ti].rows[ri].cells,
            None => &self.content.values,
        }
    }

    // ---------------------------------------------------------------- plain-Store lookups

    pub(crate) fn present_table(&self, t: &str) -> Option<usize> {
        self.content.tables.get_index_of(t).filter(|&i| self.content.tables[i].seq != 0)
    }

    pub(crate) fn present_row(&self, t: &str, r: &str) -> Option<(usize, usize)> {
        let ti = self.present_table(t)?;
        let ri = self.content.tables[ti].rows.get_index_of(r)?;
        (self.content.tables[ti].rows[ri].cells.seq != 0).then_some((ti, ri))
    }

    pub(crate) fn present_cell(&self, t: &str, r: &str, c: &str) -> Option<&Stored> {
        let (ti, ri) = self.present_row(t, r)?;
        let leaf = self.content.tables[ti].rows[ri].cells.map.get(c)?;
        (!leaf.value.is_deleted()).then_some(&leaf.value)
    }

    pub(crate) fn present_value(&self, v: &str) -> Option<&Stored> {
        let leaf = self.content.values.map.get(v)?;
        (!leaf.value.is_deleted()).then_some(&leaf.value)
    }

    // ---------------------------------------------------------------- TinyBase's mutations

    /// `getOrCreateTable`: the table enters the plain Store if absent.
    pub(crate) fn get_or_create_table(&mut self, t: &str) -> usize {
        let ti = self.table_node(t);
        self.make_table_present(ti);
        ti
    }

    fn make_table_present(&mut self, ti: usize) {
        if self.content.tables[ti].seq == 0 {
            let seq = take_seq(&mut self.content.next_seq);
            let table = &mut self.content.tables[ti];
            table.seq = seq;
            table.pool = RowIdPool::default();
            table.cell_counts.clear();
            self.content.live += 1;
            self.journal.push(TrackEvent::TableIds(ti as u32, 1));
        }
    }

    /// `mapEnsure(tableMap, rowId)`: the row enters the plain Store if absent.
    fn ensure_row(&mut self, ti: usize, r: &str) -> usize {
        let ri = self.row_node(ti, r);
        self.make_row_present(ti, ri);
        ri
    }

    fn make_row_present(&mut self, ti: usize, ri: usize) {
        let table = &mut self.content.tables[ti];
        if table.rows[ri].cells.seq == 0 {
            let seq = take_seq(&mut table.next_seq);
            table.rows[ri].cells.seq = seq;
            table.live += 1;
            self.journal.push(TrackEvent::RowIds(ti as u32, ri as u32, 1));
        }
    }

    /// `cellIdsChanged`: per-table cell id counts and the changed-ids maps.
    fn cell_ids_changed(&mut self, ti: usize, ri: usize, ci: usize, delta: i8) {
        let table = &mut self.content.tables[ti];
        let c = table.rows[ri].cells.map.get_index(ci).expect("leaf").0;
        let counts = &mut table.cell_counts;
        // One lookup for both the count and its update; a table has few cell ids, and
        // comparing a handful of short ids costs less than hashing one.
        let found = if counts.len() <= 8 {
            counts.iter().position(|(k, _)| k == c).map(|i| (i, counts[i]))
        } else {
            counts.get_full(c.as_str()).map(|(i, _, n)| (i, *n))
        };
        let (slot, count) = match found {
            Some((i, n)) => (Some(i), n),
            None => (None, 0),
        };
        if (count == 0 && delta == 1) || (count == 1 && delta == -1) {
            self.journal.push(TrackEvent::TableCellIds(ti as u32, ri as u32, ci as u32, delta));
        }
        match slot {
            Some(i) if count == 1 && delta == -1 => {
                counts.shift_remove_index(i);
            }
            Some(i) if count != 0 => counts[i] = (count as i64 + delta as i64) as u32,
            _ => {
                counts.insert(c.clone(), 1);
            }
        }
        let (t, r, c) = (ti as u32, ri as u32, ci as u32);
        if delta != 1 {
            self.journal.push(TrackEvent::CellIds(t, r, c, delta));
        } else if let Some(last @ TrackEvent::RowIds(..)) = self.journal.last_mut().filter(|e| matches!(e, TrackEvent::RowIds(lt, lr, 1) if (*lt, *lr) == (t, r))) {
            *last = TrackEvent::AddedCell { t, r, c, row: true, set: false };
        } else {
            self.journal.push(TrackEvent::AddedCell { t, r, c, row: false, set: false });
        }
    }

    /// `setValidCell`: sets a validated cell in a row that is in the plain Store.
    fn set_valid_cell(&mut self, ti: usize, ri: usize, c: &str, value: Stored) {
        let ci = self.leaf_node_pub(Some((ti, ri)), c);
        self.set_valid_leaf(ti, ri, ci, value);
    }

    fn set_valid_leaf(&mut self, ti: usize, ri: usize, ci: usize, value: Stored) {
        let was_deleted = self.content.tables[ti].rows[ri].cells.map[ci].value.is_deleted();
        if was_deleted {
            self.cell_ids_changed(ti, ri, ci, 1);
        }
        if !self.content.tables[ti].rows[ri].cells.map[ci].value.same(&value) {
            self.leaf_changed(Some((ti, ri)), ci, value);
        }
    }

    /// A leaf's plain-Store value changes: tracking, presence and (for local writes) a stamp.
    fn leaf_changed(&mut self, at: Option<(usize, usize)>, ci: usize, value: Stored) {
        let deleting = value.is_deleted();
        let leaves = self.leaves_mut(at);
        // The old value moves into the journal (no clone).
        let old = std::mem::replace(&mut leaves.map[ci].value, value);
        let was_deleted = old.is_deleted();
        if was_deleted && !deleting {
            leaves.live += 1;
            leaves.map[ci].seq = leaves.take_seq();
        } else if !was_deleted && deleting {
            leaves.live -= 1;
        }
        self.leaf_changes += 1;
        match at {
            Some((ti, ri)) => {
                let (t, r, c) = (ti as u32, ri as u32, ci as u32);
                match self.journal.last_mut() {
                    Some(TrackEvent::AddedCell { t: lt, r: lr, c: lc, set: set @ false, .. }) if was_deleted && (*lt, *lr, *lc) == (t, r, c) => *set = true,
                    _ => self.journal.push(TrackEvent::Cell(t, r, c, old)),
                }
            }
            None => self.journal.push(TrackEvent::Value(ci as u32, old)),
        }
        if self.listening && self.clock.is_some() {
            let hlc = if self.defaulting { Hlc::EMPTY } else { self.clock.as_mut().map(Clock::next).unwrap_or_default() };
            self.merge_local_leaf(at, ci, hlc);
        }
    }

    /// `delValidCell` (forced): deletes a present cell; an emptied row, then table, leaves the Store.
    fn del_valid_cell(&mut self, ti: usize, ri: usize, ci: usize) {
        self.leaf_changed(Some((ti, ri)), ci, Stored::Deleted);
        self.cell_ids_changed(ti, ri, ci, -1);
        if self.content.tables[ti].rows[ri].cells.live == 0 {
            self.journal.push(TrackEvent::RowIds(ti as u32, ri as u32, -1));
            let table = &mut self.content.tables[ti];
            table.rows[ri].cells.seq = 0;
            table.live -= 1;
            if table.live == 0 {
                table.seq = 0;
                table.pool = RowIdPool::default();
                table.cell_counts.clear();
                self.content.live -= 1;
                self.journal.push(TrackEvent::TableIds(ti as u32, -1));
            }
        }
    }

    /// `delValidRow`: releases the id to the table's pool, then deletes every cell.
    fn del_valid_row(&mut self, ti: usize, ri: usize) {
        let r = self.content.tables[ti].rows.get_index(ri).expect("row").0.clone();
        let pool = &mut self.content.tables[ti].pool;
        if is_digits(&r) && pool.released.len() < 1000 {
            pool.released.push_back(r);
        }
        for ci in leaf_order(&self.content.tables[ti].rows[ri].cells) {
            self.del_valid_cell(ti, ri, ci);
        }
    }

    fn del_valid_table(&mut self, ti: usize) {
        for ri in row_order(&self.content.tables[ti]) {
            if self.content.tables[ti].rows[ri].cells.seq != 0 {
                self.del_valid_row(ti, ri);
            }
        }
    }

    /// `setValidRow`: sets the given cells, then deletes the row's other cells.
    fn set_valid_row(&mut self, ti: usize, r: &str, row: &RowIn) {
        let ri = self.ensure_row(ti, r);
        for (c, v) in row {
            self.set_valid_cell(ti, ri, c, v.clone());
        }
        for ci in leaf_order(&self.content.tables[ti].rows[ri].cells) {
            let c = self.content.tables[ti].rows[ri].cells.map.get_index(ci).expect("leaf").0;
            if !row.iter().any(|(k, _)| k == c) {
                self.del_valid_cell(ti, ri, ci);
            }
        }
    }

    fn set_valid_table(&mut self, t: &str, table: &TableIn) {
        let ti = self.get_or_create_table(t);
        for (r, row) in table {
            self.set_valid_row(ti, r, row);
        }
        let keep: std::collections::HashSet<&str> = table.iter().map(|(r, _)| r.as_str()).collect();
        for ri in row_order(&self.content.tables[ti]) {
            let table_node = &self.content.tables[ti];
            let r = table_node.rows.get_index(ri).expect("row").0;
            if table_node.rows[ri].cells.seq != 0 && !keep.contains(r.as_str()) {
                self.del_valid_row(ti, ri);
            }
        }
    }

    fn set_cell_into_new_row(&mut self, ti: usize, r: &str, c: &str, v: Stored) {
        let ri = self.ensure_row(ti, r);
        self.set_valid_cell(ti, ri, c, v);
    }

    fn set_valid_value(&mut self, v: &str, value: Stored) {
        let ci = self.leaf_node_pub(None, v);
        self.set_valid_value_at(ci, value);
    }

    fn set_valid_value_at(&mut self, ci: usize, value: Stored) {
        if self.content.values.map[ci].value.is_deleted() {
            self.journal.push(TrackEvent::ValueIds(ci as u32, 1));
        }
        if !self.content.values.map[ci].value.same(&value) {
            self.leaf_changed(None, ci, value);
        }
    }

    fn del_valid_value(&mut self, ci: usize) {
        self.leaf_changed(None, ci, Stored::Deleted);
        self.journal.push(TrackEvent::ValueIds(ci as u32, -1));
    }

    // ---------------------------------------------------------------- public mutations

    pub(crate) fn set_tables(&mut self, tables: &TablesIn) {
        for (t, table) in tables {
            self.set_valid_table(t, table);
        }
        let keep: std::collections::HashSet<&str> = tables.iter().map(|(t, _)| t.as_str()).collect();
        for ti in self.content.table_order() {
            let t = self.content.tables.get_index(ti).expect("table").0;
            if self.content.tables[ti].seq != 0 && !keep.contains(t.as_str()) {
                self.del_valid_table(ti);
            }
        }
    }

    pub(crate) fn set_table(&mut self, t: &str, table: &TableIn) {
        self.set_valid_table(t, table);
    }

    pub(crate) fn set_row(&mut self, t: &str, r: &str, row: &RowIn) {
        let ti = self.get_or_create_table(t);
        self.set_valid_row(ti, r, row);
    }

    /// `addRow`: a new id from the table's pool (reused ids first when `reuse`).
    pub(crate) fn add_row(&mut self, t: &str, row: &RowIn, reuse: bool) -> Key {
        let ti = self.get_or_create_table(t);
        let r = loop {
            let pool = &mut self.content.tables[ti].pool;
            let id = match if reuse { pool.released.pop_front() } else { None } {
                Some(id) => id,
                None => {
                    pool.next_id += 1;
                    compact_str::format_compact!("{}", pool.next_id - 1)
                }
            };
            let table = &self.content.tables[ti];
            if table.rows.get(id.as_str()).is_none_or(|row| row.cells.seq == 0) {
                break id;
            }
        };
        self.set_valid_row(ti, &r, row);
        r
    }

    pub(crate) fn set_partial_row(&mut self, t: &str, r: &str, row: &RowIn) {
        let ti = self.get_or_create_table(t);
        for (c, v) in row {
            self.set_cell_into_new_row(ti, r, c, v.clone());
        }
    }

    pub(crate) fn set_cell(&mut self, t: &str, r: &str, c: &str, v: Stored) {
        let ti = self.get_or_create_table(t);
        self.set_cell_into_new_row(ti, r, c, v);
    }

    pub(crate) fn set_values(&mut self, values: &RowIn) {
        for (v, value) in values {
            self.set_valid_value(v, value.clone());
        }
        for ci in leaf_order(&self.content.values) {
            let v = self.content.values.map.get_index(ci).expect("value").0;
            if !values.iter().any(|(k, _)| k == v) {
                self.del_valid_value(ci);
            }
        }
    }

    pub(crate) fn set_partial_values(&mut self, values: &RowIn) {
        for (v, value) in values {
            self.set_valid_value(v, value.clone());
        }
    }

    pub(crate) fn set_value(&mut self, v: &str, value: Stored) {
        self.set_valid_value(v, value);
    }

    pub(crate) fn del_tables(&mut self) {
        for ti in self.content.table_order() {
            self.del_valid_table(ti);
        }
    }

    pub(crate) fn del_table(&mut self, t: &str) {
        if let Some(ti) = self.present_table(t) {
            self.del_valid_table(ti);
        }
    }

    pub(crate) fn del_row(&mut self, t: &str, r: &str) {
        if let Some((ti, ri)) = self.present_row(t, r) {
            self.del_valid_row(ti, ri);
        }
    }

    pub(crate) fn del_cell(&mut self, t: &str, r: &str, c: &str) {
        if let Some((ti, ri)) = self.present_row(t, r) {
            if let Some(ci) = self.content.tables[ti].rows[ri].cells.map.get_index_of(c) {
                if !self.content.tables[ti].rows[ri].cells.map[ci].value.is_deleted() {
                    self.del_valid_cell(ti, ri, ci);
                }
            }
        }
    }

    pub(crate) fn del_values(&mut self) {
        for ci in leaf_order(&self.content.values) {
            self.del_valid_value(ci);
        }
    }

    pub(crate) fn del_value(&mut self, v: &str) {
        if let Some(ci) = self.content.values.map.get_index_of(v) {
            if !self.content.values.map[ci].value.is_deleted() {
                self.del_valid_value(ci);
            }
        }
    }

    /// `setContent`: empty tables (or values) delete them all.
    pub(crate) fn set_content(&mut self, tables: &TablesIn, values: &RowIn) {
        if tables.is_empty() {
            self.del_tables();
        } else {
            self.set_tables(tables);
        }
        if values.is_empty() {
            self.del_values();
        } else {
            self.set_values(values);
        }
    }

    pub(crate) fn apply_changes(&mut self, changes: &ChangesIn) {
        for (t, table) in &changes.0 {
            match table {
                None => self.del_table(t),
                Some(rows) => {
                    for (r, row) in rows {
                        match row {
                            None => self.del_row(t, r),
                            Some(cells) => {
                                for (c, v) in cells {
                                    if v.is_deleted() {
                                        self.del_cell(t, r, c);
                                    } else {
                                        self.set_cell(t, r, c, v.clone());
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for (v, value) in &changes.1 {
            if value.is_deleted() {
                self.del_value(v);
            } else {
                self.set_value(v, value.clone());
            }
        }
    }

    /// Writes an accepted remote leaf into the plain Store, as TinyBase's `applyChanges` would.
    pub(crate) fn apply_leaf(&mut self, t: Option<&str>, r: &str, c: &str, value: Stored) {
        match t {
            Some(t) => {
                if value.is_deleted() {
                    self.del_cell(t, r, c)
                } else {
                    self.set_cell(t, r, c, value)
                }
            }
            None => {
                if value.is_deleted() {
                    self.del_value(c)
                } else {
                    self.set_value(c, value)
                }
            }
        }
    }

    /// [`Core::apply_leaf`] for a leaf whose node exists (a merge just stamped it).
    pub(crate) fn apply_leaf_at(&mut self, at: Option<(usize, usize)>, ci: usize, value: Stored) {
        match at {
            Some((ti, ri)) => {
                if value.is_deleted() {
                    let present = self.content.tables[ti].seq != 0
                        && self.content.tables[ti].rows[ri].cells.seq != 0
                        && !self.content.tables[ti].rows[ri].cells.map[ci].value.is_deleted();
                    if present {
                        self.del_valid_cell(ti, ri, ci);
                    }
                } else {
                    self.make_table_present(ti);
                    self.make_row_present(ti, ri);
                    self.set_valid_leaf(ti, ri, ci, value);
                }
            }
            None => {
                if value.is_deleted() {
                    if !self.content.values.map[ci].value.is_deleted() {
                        self.del_valid_value(ci);
                    }
                } else {
                    self.set_valid_value_at(ci, value);
                }
            }
        }
    }

    // ---------------------------------------------------------------- stamps

    /// The leaf hash: `H(JSON.stringify(value ?? null) ++ ":" ++ hlc)`.
    pub(crate) fn leaf_hash(value: &Stored, hlc: Hlc) -> u32 {
        let mut h = crate::hash::Fnv::default();
        value.write_hash_input(&mut h);
        h.write(b":");
        let mut buf = [0u8; 16];
        let n = hlc.write_to(&mut buf);
        h.write(&buf[..n]);
        h.finish()
    }

    /// Applies the journal to the id-keyed tracking (before anything reads it, and before node
    /// indexes could change).
    pub(crate) fn flush(&mut self) {
        self.settle();
        if self.journal.is_empty() {
            return;
        }
        self.tracked = true;
        let journal = std::mem::take(&mut self.journal);
        let c = &self.content;
        let table = |t: u32| c.tables.get_index(t as usize).expect("table");
        let row = |t: u32, r: u32| table(t).1.rows.get_index(r as usize).expect("row");
        let cell = |t: u32, r: u32, l: u32| row(t, r).1.cells.map.get_index(l as usize).expect("cell").0;
        let value = |v: u32| c.values.map.get_index(v as usize).expect("value").0;
        for e in journal {
            match e {
                TrackEvent::TableIds(t, d) => self.track.table_ids_changed(table(t).0, d),
                TrackEvent::RowIds(t, r, d) => self.track.row_ids_changed(table(t).0, row(t, r).0, d),
                TrackEvent::TableCellIds(t, r, l, d) => self.track.table_cell_ids_changed(table(t).0, cell(t, r, l), d),
                TrackEvent::CellIds(t, r, l, d) => self.track.cell_ids_changed(table(t).0, row(t, r).0, cell(t, r, l), d),
                TrackEvent::Cell(t, r, l, old) => self.track.cell_changed(table(t).0, row(t, r).0, cell(t, r, l), &old),
                TrackEvent::AddedCell { t, r, c: l, row: row_added, set } => {
                    let (t_id, r_id, c_id) = (table(t).0, row(t, r).0, cell(t, r, l));
                    if row_added {
                        self.track.row_ids_changed(t_id, r_id, 1);
                    }
                    self.track.cell_ids_changed(t_id, r_id, c_id, 1);
                    if set {
                        self.track.cell_changed(t_id, r_id, c_id, &Stored::Deleted);
                    }
                }
                TrackEvent::ValueIds(v, d) => self.track.value_ids_changed(value(v), d),
                TrackEvent::Value(v, old) => self.track.value_changed(value(v), &old),
            }
        }
    }


    // ---------------------------------------------------------------- transactions

    /// Starts (or nests) a transaction; returns true when this is the outermost one.
    pub(crate) fn begin(&mut self) -> bool {
        self.depth += 1;
        if self.depth == 1 {
            self.tx_gen = self.tx_gen.wrapping_add(1);
            self.tables_at_start = self.content.tables.len();
            self.tables_saved = false;
            self.values_saved = false;
            self.had_tables = self.content.live > 0;
            self.had_values = self.content.values.live > 0;
            self.rollback_requested = false;
            return true;
        }
        false
    }

    /// Undoes the transaction as TinyBase does: changed cells are set back through the Store
    /// (which re-appends re-created ids and advances the clock per restored cell), then the
    /// stamps are restored.
    pub(crate) fn rollback(&mut self) {
        self.flush();
        let cells: Vec<(Key, Key, Key, Stored)> = self
            .track
            .cells
            .grouped()
            .into_iter()
            .map(|(t, r, c, old)| (t.clone(), r.clone(), c.clone(), old.clone()))
            .collect();
        let values: Vec<(Key, Stored)> = self.track.values.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let cells_at_start = cells.clone();
        let values_at_start = values.clone();
        let was_listening = self.listening;
        let stamping = self.clock.is_some();
        self.listening = false;
        // TinyBase restores cells through its public setters, which refuse the encoded form of
        // object and array cells: those keep their new value in the Store while their stamps are
        // restored. This is reproduced for exact compatibility.
        let mut unrestored: Vec<(Option<(Key, Key)>, Key, Stored)> = Vec::new();
        for (t, r, c, old) in cells {
            let current = self.present_cell(&t, &r, &c).cloned().unwrap_or(Stored::Deleted);
            if !current.same(&old) {
                if old.is_json() {
                    unrestored.push((Some((t, r)), c, old));
                    continue;
                }
                if stamping {
                    self.tick_clock();
                }
                self.apply_leaf(Some(&t), &r, &c, old);
            }
        }
        for (v, old) in values {
            let current = self.present_value(&v).cloned().unwrap_or(Stored::Deleted);
            if !current.same(&old) {
                if old.is_json() {
                    unrestored.push((None, v, old));
                    continue;
                }
                if stamping {
                    self.tick_clock();
                }
                self.apply_leaf(None, "", &v, old);
            }
        }
        self.listening = was_listening;
        if self.undo.iter().any(|u| matches!(u, Undo::Content(_))) {
            // set_mergeable_content replaced the tree in this transaction: restore the old tree,
            // then lay the Store as the replay left it over the restored stamps.
            let plain = PlainSnapshot::take(self);
            while let Some(step) = self.undo.pop() {
                self.undo_step(step);
            }
            self.restore_stamp_values(&cells_at_start, &values_at_start);
            plain.apply(self);
        } else {
            while let Some(step) = self.undo.pop() {
                self.undo_step(step);
            }
            if stamping {
                self.add_overrides(unrestored);
            }
        }
        self.track = Tracking::default();
        self.journal.clear();
    }

    /// Stamp values that the Store could not take back (TinyBase keeps them in the stamps only).
    fn add_overrides(&mut self, unrestored: Vec<(Option<(Key, Key)>, Key, Stored)>) {
        for (at, c, old) in unrestored {
            let key = match at {
                Some((t, r)) => {
                    let Some(ti) = self.content.tables.get_index_of(t.as_str()) else { continue };
                    let Some(ri) = self.content.tables[ti].rows.get_index_of(r.as_str()) else { continue };
                    let Some(ci) = self.content.tables[ti].rows[ri].cells.map.get_index_of(c.as_str()) else { continue };
                    (ti as u32, ri as u32, ci as u32)
                }
                None => {
                    let Some(ci) = self.content.values.map.get_index_of(c.as_str()) else { continue };
                    (VALUES, 0, ci as u32)
                }
            };
            self.content.overrides.entry(key).or_insert(old);
        }
    }

    /// Puts back the stamp values the transaction's changed cells had when it started.
    fn restore_stamp_values(&mut self, cells: &[(Key, Key, Key, Stored)], values: &[(Key, Stored)]) {
        for (t, r, c, old) in cells {
            if let Some(leaf) = self
                .content
                .tables
                .get_mut(t.as_str())
                .and_then(|tn| tn.rows.get_mut(r.as_str()))
                .and_then(|rn| rn.cells.map.get_mut(c.as_str()))
            {
                leaf.value = old.clone();
            }
        }
        for (v, old) in values {
            if let Some(leaf) = self.content.values.map.get_mut(v.as_str()) {
                leaf.value = old.clone();
            }
        }
    }

    /// What a local write would do to the clock (TinyBase stamps rollback restorations too).
    fn tick_clock(&mut self) {
        if let Some(clock) = self.clock.as_mut() {
            let hlc = clock.next();
            clock.seen(Some(hlc));
        }
    }

    fn undo_step(&mut self, step: Undo) {
        match step {
            Undo::Leaf { t, r, c, hlc, hash, .. } => {
                let at = t.map(|t| (t as usize, r as usize));
                let leaf = &mut self.leaves_mut(at).map[c as usize];
                leaf.hlc = hlc;
                leaf.hash = hash;
            }
            Undo::Container { level, hlc, hash } => match level {
                Level::Tables => {
                    self.content.tables_hlc = hlc;
                    self.content.tables_hash = hash;
                }
                Level::Table(t) => {
                    let n = &mut self.content.tables[t as usize];
                    n.hlc = hlc;
                    n.hash = hash;
                }
                Level::Row(t, r) => {
                    let table = &mut self.content.tables[t as usize];
                    table.set_row_hlc(r as usize, hlc);
                    table.rows[r as usize].cells.hash = hash;
                }
                Level::Values => {
                    self.content.values_hlc = hlc;
                    self.content.values.hash = hash;
                }
                Level::Leaf(_) => {}
            },
            Undo::Created(level) => match level {
                Level::Table(_) => {
                    self.content.tables.pop();
                }
                Level::Row(t, _) => {
                    self.content.tables[t as usize].pop_row();
                }
                Level::Leaf(at) => {
                    self.leaves_mut(at.map(|(t, r)| (t as usize, r as usize))).map.pop();
                }
                _ => {}
            },
            Undo::Content(content) => self.content = *content,
            Undo::Override(key, value) => {
                self.content.overrides.insert(key, value);
            }
        }
    }

    /// Ends the outermost transaction's bookkeeping (after listeners were collected).
    pub(crate) fn reset(&mut self) {
        // After a bulk load, give back the growth slack of the big maps it filled (a map that
        // keeps growing pays this at most once per doubling).
        if self.journal.len() > 4096 {
            let slack = |len: usize, cap: usize| cap > 1024 && cap - len > cap / 8;
            let c = &mut self.content;
            if slack(c.tables.len(), c.tables.capacity()) {
                c.tables.shrink_to_fit();
            }
            for table in c.tables.values_mut() {
                if slack(table.rows.len(), table.rows.capacity()) {
                    table.rows.shrink_to_fit();
                }
            }
        }
        // Tracking maps are only filled by a flush; fresh ones cost a hasher seed each.
        if self.tracked {
            self.track = Tracking::default();
            self.tracked = false;
        }
        // Keep small buffers for the next transaction; give big ones back.
        if self.journal.capacity() > 4096 {
            self.journal = Vec::new();
        } else {
            self.journal.clear();
        }
        if self.undo.capacity() > 4096 {
            self.undo = Vec::new();
        } else {
            self.undo.clear();
        }
        self.rollback_requested = false;
        self.implicit = false;
        self.had_tables = self.content.live > 0;
        self.had_values = self.content.values.live > 0;
    }
}

/// The plain Store's state (ids in order, values, per-table row id pools and cell id counts),
/// to be laid over a restored tree after a rollback that replaced the content.
struct PlainSnapshot {
    tables: Vec<(Key, RowIdPool, indexmap::IndexMap<Key, u32, foldhash::fast::RandomState>, Vec<(Key, Vec<(Key, Stored)>)>)>,
    values: Vec<(Key, Stored)>,
}

impl PlainSnapshot {
    fn take(core: &Core) -> PlainSnapshot {
        let c = &core.content;
        let leaves = |l: &Leaves| -> Vec<(Key, Stored)> {
            leaf_order(l)
                .into_iter()
                .map(|ci| {
                    let (k, leaf) = l.map.get_index(ci).expect("leaf");
                    (k.clone(), leaf.value.clone())
                })
                .collect()
        };
        let tables = c
            .table_order()
            .into_iter()
            .map(|ti| {
                let (t, table) = c.tables.get_index(ti).expect("table");
                let rows = row_order(table)
                    .into_iter()
                    .map(|ri| {
                        let (r, row) = table.rows.get_index(ri).expect("row");
                        (r.clone(), leaves(&row.cells))
                    })
                    .collect();
                (t.clone(), table.pool.clone(), table.cell_counts.clone(), rows)
            })
            .collect();
        PlainSnapshot { tables, values: leaves(&c.values) }
    }

    fn apply(self, core: &mut Core) {
        let c = &mut core.content;
        // Everything leaves the Store; what is in the snapshot comes back in its order.
        let mut overrides = std::mem::take(&mut c.overrides);
        let mut hide = |key: (u32, u32), leaves: &mut Leaves| {
            leaves.live = 0;
            leaves.reset_seq();
            for (ci, leaf) in leaves.map.values_mut().enumerate() {
                if !leaf.value.is_deleted() {
                    overrides.entry((key.0, key.1, ci as u32)).or_insert_with(|| leaf.value.clone());
                    leaf.value = Stored::Deleted;
                }
            }
        };
        for (ti, table) in c.tables.values_mut().enumerate() {
            table.seq = 0;
            table.live = 0;
            table.next_seq = 1;
            for (ri, row) in table.rows.values_mut().enumerate() {
                row.cells.seq = 0;
                hide((ti as u32, ri as u32), &mut row.cells);
            }
        }
        hide((VALUES, 0), &mut c.values);
        let mut show = |key: (u32, u32), leaves: &mut Leaves, items: Vec<(Key, Stored)>| {
            for (k, v) in items {
                let Some(ci) = leaves.map.get_index_of(k.as_str()) else { continue };
                let okey = (key.0, key.1, ci as u32);
                if overrides.get(&okey).is_some_and(|m| m.same(&v)) {
                    overrides.remove(&okey);
                }
                let seq = leaves.take_seq();
                let leaf = &mut leaves.map[ci];
                leaf.value = v;
                leaf.seq = seq;
                leaves.live += 1;
            }
        };
        c.live = 0;
        c.next_seq = 1;
        for (t, pool, counts, rows) in self.tables {
            let Some(ti) = c.tables.get_index_of(t.as_str()) else { continue };
            let seq = take_seq(&mut c.next_seq);
            let table = &mut c.tables[ti];
            for (r, cells) in rows {
                let Some(ri) = table.rows.get_index_of(r.as_str()) else { continue };
                show((ti as u32, ri as u32), &mut table.rows[ri].cells, cells);
                if table.rows[ri].cells.live > 0 {
                    table.rows[ri].cells.seq = take_seq(&mut table.next_seq);
                    table.live += 1;
                }
            }
            if table.live > 0 {
                table.seq = seq;
                table.pool = pool;
                table.cell_counts = counts;
                c.live += 1;
            }
        }
        show((VALUES, 0), &mut c.values, self.values);
        c.overrides = overrides;
    }
}
