//! TinyBase's merge algorithm with incremental hashing (PROTOCOL.md 4.4), for local writes and
//! for incoming changes and content alike.

use super::wire::{LeavesIn, MergeIn};
use crate::hash::{id_hash, id_hash_delta};
use crate::hlc::Hlc;
use crate::store::core::{Core, Level, Undo};
use crate::store::track::Stamped;
use crate::value::Stored;

/// `replaceHlcHash`: a container's HLC term when the incoming HLC is later.
fn replace_hlc_hash(old: Hlc, new: Hlc) -> u32 {
    // Local writes finish their containers with the empty HLC: nothing to compare.
    if new.is_empty() {
        return 0;
    }
    if new > old {
        (if old.is_empty() { 0 } else { old.hash() }) ^ new.hash()
    } else {
        0
    }
}

/// The change to a container's hash when a row or table goes from hash `old` to `new`; `old` is
/// None for a child that has no term in its container yet (never merged before).
///
/// Deliberate deviation (README, "Conformance with TinyBase"): TinyBase skips the old term
/// whenever the old hash is 0 (3.4), so an empty row or table received in a message (hash 0)
/// leaves `H(id:0)` in its container for good once it gets cells, and equal content then hashes
/// differently forever. Here only a new child skips it, so a container's hash is always the
/// static function of its content (`compute_content_hashes`). Nothing changes where no empty
/// row or table ever existed, nor for an empty one as long as it stays empty.
fn child_delta(id: &str, old: Option<u32>, new: u32) -> u32 {
    id_hash_delta(id, old, new)
}

/// A leaf accepted by a merge, to be written into the plain Store afterwards.
pub(crate) struct Accepted {
    pub at: Option<(u32, u32)>,
    pub leaf: u32,
    pub value: Stored,
}

impl Core {
    fn save(&mut self, level: Level) {
        if self.clock.is_none() || self.depth == 0 {
            return;
        }
        // Only the first save in a transaction matters, and nothing created in it needs one.
        match level {
            Level::Tables if self.tables_saved => return,
            Level::Tables => self.tables_saved = true,
            Level::Values if self.values_saved => return,
            Level::Values => self.values_saved = true,
            Level::Table(t) => {
                let gen = self.tx_gen;
                if self.table_is_new(t as usize) || self.content.tables[t as usize].saved_gen == gen {
                    return;
                }
                self.content.tables[t as usize].saved_gen = gen;
            }
            Level::Row(t, r) if self.row_is_new(t as usize, r as usize) => return,
            _ => {}
        }
        let (hlc, hash) = match level {
            Level::Tables => (self.content.tables_hlc, self.content.tables_hash),
            Level::Table(t) => {
                let n = &self.content.tables[t as usize];
                (n.hlc, n.hash)
            }
            Level::Row(t, r) => {
                let n = &self.content.tables[t as usize];
                (n.row_hlc(r as usize), n.rows[r as usize].cells.hash)
            }
            Level::Values => (self.content.values_hlc, self.content.values.hash),
            Level::Leaf(_) => return,
        };
        self.undo.push(Undo::Container { level, hlc, hash });
    }

    /// Merges one leaf stamp: accepted when the stored HLC is empty or older. Returns the
    /// change to the container's hash.
    fn merge_leaf(&mut self, at: Option<(usize, usize)>, ci: usize, value: &Stored, hlc: Hlc) -> Option<u32> {
        let (old_hlc, old_hash) = {
            let leaf = &self.leaves(at).map[ci];
            (leaf.hlc, leaf.hash)
        };
        if !(old_hlc.is_empty() || hlc > old_hlc) {
            return None;
        }
        let new_hash = Core::leaf_hash(value, hlc);
        // A fresh leaf, or one in a new row, needs no saved stamp: undoing removes it.
        if self.clock.is_some()
            && self.depth > 0
            && !(old_hash == 0 && old_hlc.is_empty())
            && !at.is_some_and(|(t, r)| self.row_is_new(t, r))
        {
            let undo = Undo::Leaf { t: at.map(|a| a.0 as u32), r: at.map(|a| a.1 as u32).unwrap_or(0), c: ci as u32, hlc: old_hlc, hash: old_hash };
            self.undo.push(undo);
        }
        if !self.content.overrides.is_empty() {
            let key = match at {
                Some((t, r)) => (t as u32, r as u32, ci as u32),
                None => (crate::store::tree::VALUES, 0, ci as u32),
            };
            if let Some(old) = self.content.overrides.remove(&key) {
                if self.clock.is_some() && self.depth > 0 {
                    self.undo.push(Undo::Override(key, old));
                }
            }
        }
        let leaves = self.leaves_mut(at);
        let (c, leaf) = leaves.map.get_index_mut(ci).expect("leaf");
        leaf.hlc = old_hlc.max(hlc);
        leaf.hash = new_hash;
        Some(id_hash_delta(c, Some(old_hash), new_hash))
    }

    /// Finishes a leaf container (row or values): returns (old hash if it was already a term of
    /// its container's hash, new hash).
    fn finish_leaves(&mut self, at: Option<(usize, usize)>, hash: u32, in_hlc: Hlc) -> (Option<u32>, u32) {
        self.save(match at {
            Some((t, r)) => Level::Row(t as u32, r as u32),
            None => Level::Values,
        });
        let old_hlc = self.content.leaves_hlc(at);
        let hash = hash ^ replace_hlc_hash(old_hlc, in_hlc);
        if in_hlc > old_hlc {
            self.content.set_leaves_hlc(at, in_hlc);
        }
        let leaves = self.leaves_mut(at);
        let old = leaves.termed().then_some(leaves.hash);
        leaves.hash = hash;
        leaves.set_termed();
        (old, hash)
    }

    /// Finishes a table: returns (old hash if it was already a term of the tables hash, new hash).
    fn finish_table(&mut self, ti: usize, hash: u32, in_hlc: Hlc) -> (Option<u32>, u32) {
        self.save(Level::Table(ti as u32));
        let table = &mut self.content.tables[ti];
        let old = table.termed.then_some(table.hash);
        let hash = hash ^ replace_hlc_hash(table.hlc, in_hlc);
        if !in_hlc.is_empty() {
            table.hlc = table.hlc.max(in_hlc);
        }
        table.hash = hash;
        table.termed = true;
        (old, hash)
    }

    /// [`child_delta`] for a table in the tables hash, reusing the table's memoized old term.
    fn table_delta(&mut self, ti: usize, old: Option<u32>, new: u32) -> u32 {
        let (t, table) = self.content.tables.get_index_mut(ti).expect("table");
        let old_term = match (old, table.term) {
            (None, _) => 0,
            (Some(o), Some((h, term))) if h == o => term,
            (Some(o), _) => id_hash(t, o),
        };
        let new_term = id_hash(t, new);
        table.term = Some((new, new_term));
        old_term ^ new_term
    }

    /// Puts the new terms of the tables local writes changed into the tables hash. Everything
    /// that reads the tables hash or the table terms settles first: `Store::read`, `flush`
    /// (so rollbacks, transaction changes and commits), merges, and the end of every
    /// transaction, so a settled store is never left behind.
    pub(crate) fn settle(&mut self) {
        if self.unsettled.is_empty() {
            return;
        }
        let mut tables_hash = self.content.tables_hash;
        // By index, not `mem::take`: the list keeps its buffer for the next transaction.
        for i in 0..self.unsettled.len() {
            let ti = self.unsettled[i] as usize;
            let table = &mut self.content.tables[ti];
            let old = table.unsettled.take().expect("an unsettled table");
            let new = table.hash;
            tables_hash ^= self.table_delta(ti, old, new);
        }
        self.unsettled.clear();
        self.finish_tables(tables_hash, Hlc::EMPTY);
    }

    fn finish_tables(&mut self, hash: u32, in_hlc: Hlc) {
        self.save(Level::Tables);
        let c = &mut self.content;
        let hash = hash ^ replace_hlc_hash(c.tables_hlc, in_hlc);
        if !in_hlc.is_empty() {
            c.tables_hlc = c.tables_hlc.max(in_hlc);
        }
        c.tables_hash = hash;
    }

    /// Merges a row's cells or the values: returns (latest HLC, old hash if termed, new hash).
    fn merge_leaves(&mut self, at: Option<(usize, usize)>, input: LeavesIn, accepted: &mut Vec<Accepted>) -> (Hlc, Option<u32>, u32) {
        let mut hash = self.leaves(at).hash;
        let mut latest = input.hlc;
        for (c, leaf) in input.thing {
            let ci = self.leaf_node_pub(at, &c);
            if let Some(delta) = self.merge_leaf(at, ci, &leaf.thing, leaf.hlc) {
                hash ^= delta;
                latest = latest.max(leaf.hlc);
                accepted.push(Accepted { at: at.map(|(t, r)| (t as u32, r as u32)), leaf: ci as u32, value: leaf.thing });
            }
        }
        let (old, new) = self.finish_leaves(at, hash, input.hlc);
        (latest, old, new)
    }

    /// Merges validated changes or content into the stamps, computing every hash from the
    /// stamps (content's own hashes are not trusted: the stored ones always agree with
    /// `compute_content_hashes`); returns the accepted leaves in the order TinyBase applies them
    /// to the Store. `seen` is called with the latest HLC. With `record`, container stamps that
    /// change with nothing under them are noted in `track.stamped` (see [`Core::apply_accepted`]).
    pub(crate) fn merge(&mut self, input: MergeIn, record: bool) -> Vec<Accepted> {
        self.settle();
        let mut accepted = Vec::new();
        let before = (self.content.tables_hlc, self.content.tables_hash, self.content.values_hlc, self.content.values.hash);
        let mut tables_hash = self.content.tables_hash;
        let mut latest = input.tables.hlc;
        for (t, table_in) in input.tables.thing {
            let ti = self.table_node(&t);
            let mut table_hash = self.content.tables[ti].hash;
            let mut table_latest = table_in.hlc;
            let table_accepted = accepted.len();
            let mut rows_noted = false;
            // Grow once, not by doubling through a big table: a table filled from empty (a new
            // replica's first sync) gets all the rows; an existing one may already hold them.
            let rows = &mut self.content.tables[ti].rows;
            if rows.is_empty() {
                rows.reserve(table_in.thing.len());
            }
            accepted.reserve(table_in.thing.len());
            for (r, row_in) in table_in.thing {
                let ri = self.row_node(ti, &r);
                let row_accepted = accepted.len();
                let (row_latest, old, new) = self.merge_leaves(Some((ti, ri)), row_in, &mut accepted);
                if record && accepted.len() == row_accepted && old != Some(new) {
                    self.stamped().rows.insert((t.clone(), r.clone()));
                    rows_noted = true;
                }
                table_hash ^= child_delta(&r, old, new);
                table_latest = table_latest.max(row_latest);
            }
            let (old, new) = self.finish_table(ti, table_hash, table_in.hlc);
            if record && accepted.len() == table_accepted && !rows_noted && old != Some(new) {
                self.stamped().tables.insert(t.clone());
            }
            tables_hash ^= self.table_delta(ti, old, new);
            latest = latest.max(table_latest);
        }
        self.finish_tables(tables_hash, input.tables.hlc);
        let (values_latest, _, _) = self.merge_leaves(None, input.values, &mut accepted);
        let after = (self.content.tables_hlc, self.content.tables_hash, self.content.values_hlc, self.content.values.hash);
        if record && after != before {
            // The tables and values stamps are in any changes written: the hook must only fire.
            self.stamped();
        }
        let latest = latest.max(values_latest);
        if let Some(clock) = self.clock.as_mut() {
            clock.seen(Some(latest));
        }
        accepted
    }

    /// The merge-only stamps of this transaction, created on first use.
    fn stamped(&mut self) -> &mut Stamped {
        self.tracked = true;
        self.track.stamped.get_or_insert_with(Default::default)
    }

    /// Stamps a local change to one leaf (its value already set), as TinyBase merges each local
    /// change as a one-cell MergeableChanges.
    pub(crate) fn merge_local_leaf(&mut self, at: Option<(usize, usize)>, ci: usize, hlc: Hlc) {
        let (hash, delta) = {
            let leaves = self.leaves(at);
            let leaf = &leaves.map[ci];
            if !(leaf.hlc.is_empty() || hlc > leaf.hlc) {
                (leaves.hash, None)
            } else {
                let value = std::mem::replace(&mut self.leaves_mut(at).map[ci].value, Stored::Deleted);
                let delta = self.merge_leaf(at, ci, &value, hlc);
                self.leaves_mut(at).map[ci].value = value;
                (self.leaves(at).hash, delta)
            }
        };
        let (old_row, new_row) = self.finish_leaves(at, hash ^ delta.unwrap_or(0), Hlc::EMPTY);
        if let Some((ti, ri)) = at {
            let table = &self.content.tables[ti];
            let table_hash = table.hash ^ child_delta(table.rows.get_index(ri).expect("row").0, old_row, new_row);
            let (old_table, _) = self.finish_table(ti, table_hash, Hlc::EMPTY);
            // The tables hash takes the table's new term once, when something reads it: a
            // transaction writing many cells of a table hashes its term once, not per cell.
            let table = &mut self.content.tables[ti];
            if table.unsettled.is_none() {
                table.unsettled = Some(old_table);
                self.unsettled.push(ti as u32);
            }
            if self.depth == 0 {
                self.settle();
            }
        }
        // No `clock.seen` here: the stamp came from this clock's `next` (or is empty), so the
        // next `next` reads the time again and lands where seeing it would have.
    }

    /// Writes accepted leaves into the plain Store (without stamping them again). With
    /// `record`, the leaves whose stamp changed while the Store's value did not are noted in
    /// `track.stamped`, for the persisters' commit hooks.
    pub(crate) fn apply_accepted(&mut self, accepted: Vec<Accepted>, record: bool) {
        let was = self.listening;
        self.listening = false;
        self.journal.reserve(accepted.len());
        for a in accepted {
            let at = a.at.map(|(t, r)| (t as usize, r as usize));
            let changes = self.leaf_changes;
            self.apply_leaf_at(at, a.leaf as usize, a.value);
            if record && self.leaf_changes == changes {
                let c = &self.content;
                let ci = a.leaf as usize;
                match at {
                    Some((ti, ri)) => {
                        let (t, table) = c.tables.get_index(ti).expect("table");
                        let (r, row) = table.rows.get_index(ri).expect("row");
                        let key = (t.clone(), r.clone(), row.cells.map.get_index(ci).expect("cell").0.clone());
                        self.stamped().cells.insert(key);
                    }
                    None => {
                        let key = c.values.map.get_index(ci).expect("value").0.clone();
                        self.stamped().values.insert(key);
                    }
                }
            }
        }
        self.listening = was;
    }
}
