//! The MergeableStore: a Store plus CRDT metadata (an HLC and a hash on every cell and value,
//! and a hash tree), so that replicas merge deterministically and exactly as TinyBase's do.

pub(crate) mod merge;
pub mod typed;
pub(crate) mod parse;
pub(crate) mod wire;

use crate::error::{Error, Result};
use crate::hlc::{Clock, GetNow};
use crate::store::core::Core;
use crate::store::{write_object, Store};
use crate::value::parse_json;
use std::ops::Deref;
use wire::{hash_map, hash_map2, hash_map3, lookup, write_content, write_hashes, write_leaf, write_stamp, StampStyle};

/// A TinyBase MergeableStore. It dereferences to [`Store`] for every Store method.
#[derive(Clone)]
pub struct MergeableStore {
    store: Store,
}

impl Deref for MergeableStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

const DECODED: StampStyle = StampStyle { hashes: true, wire: false };
const ENCODED: StampStyle = StampStyle { hashes: true, wire: true };
const DIFF: StampStyle = StampStyle { hashes: false, wire: true };

fn system_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

impl MergeableStore {
    /// A new MergeableStore; `unique_id` fixes the HLC client id (give each replica its own),
    /// None picks a random one. Time comes from the system clock.
    pub fn new(unique_id: Option<&str>) -> MergeableStore {
        MergeableStore::with_clock(unique_id, system_now)
    }

    /// A new MergeableStore whose clock is `get_now` (ms since the epoch), as TinyBase's `getNow`.
    pub fn with_clock(unique_id: Option<&str>, get_now: impl Fn() -> f64 + Send + Sync + 'static) -> MergeableStore {
        let get_now: GetNow = Box::new(get_now);
        MergeableStore { store: Store::with_core(Core::new(Some(Clock::new(unique_id, get_now)))) }
    }

    /// The plain Store handle of this store (the same store).
    pub fn as_store(&self) -> &Store {
        &self.store
    }

    /// The MergeableStore behind a Store handle, if it is one.
    pub fn from_store(store: &Store) -> Option<MergeableStore> {
        store.read(|c| c.is_mergeable()).then(|| MergeableStore { store: store.clone() })
    }

    fn write_json(&self, f: impl FnOnce(&Core, &mut String)) -> String {
        self.store.read(|core| {
            let mut out = String::new();
            f(core, &mut out);
            out
        })
    }

    /// `getMergeableContent` as JSON: `[tablesStamp, valuesStamp]` with hashes, objects and
    /// arrays decoded, deletions as the U+FFFC marker.
    pub fn get_mergeable_content_json(&self) -> String {
        self.write_json(|core, out| write_content(out, core, DECODED))
    }

    /// The content in wire form (objects and arrays as U+FFFD-prefixed strings): what a
    /// synchronizer sends and a persisted file holds.
    pub fn get_encoded_mergeable_content_json(&self) -> String {
        self.write_json(|core, out| write_content(out, core, ENCODED))
    }

    /// `getMergeableContentHashes`: `[tablesHash, valuesHash]`.
    pub fn get_mergeable_content_hashes(&self) -> (u32, u32) {
        self.store.read(|core| (core.content.tables_hash, core.content.values.hash))
    }

    /// `getTransactionMergeableChanges` as JSON (decoded form); outside a transaction
    /// `[[{}],[{}],1]`.
    pub fn get_transaction_mergeable_changes_json(&self, with_hashes: bool) -> String {
        self.transaction_changes(with_hashes, false)
    }

    /// The same in wire form: the body of a ContentDiff message (without hashes).
    pub fn get_encoded_transaction_mergeable_changes_json(&self, with_hashes: bool) -> String {
        self.transaction_changes(with_hashes, true)
    }

    fn transaction_changes(&self, with_hashes: bool, wire: bool) -> String {
        if let Some(finished) = self.store.finished() {
            if !self.store.shared.core.is_owned_by_current_thread() || self.store.read(|c| c.depth == 0) {
                if let Some(m) = &finished.mergeable {
                    return m[(with_hashes as usize) + 2 * (wire as usize)].clone();
                }
            }
        }
        // Outside a transaction nothing is touched: just the container stamps.
        let guard = self.store.shared.core.lock();
        guard.borrow_mut().flush();
        let json = guard.borrow().transaction_mergeable_changes_json(with_hashes, wire);
        json
    }

    /// The store's clock now (for the five-minute future limit of incoming HLCs).
    pub(crate) fn now(&self) -> f64 {
        self.store.read(|core| core.clock.as_ref().map(Clock::now).unwrap_or(0.0))
    }

    fn merge_json(&self, json: &str, is_content: bool, wire: bool) -> Result<()> {
        // The text straight to validated input (the same result and errors as parse_json then
        // wire::parse_merge_in); the clock is read once the text is known to be valid JSON.
        let input = parse::parse_merge_in_text(json, || self.now(), is_content, wire)?;
        self.store.check_nesting()?;
        self.merge_input(input, is_content);
        Ok(())
    }

    /// Applies wire-form changes already parsed as JSON (a synchronizer's pull result), without
    /// printing and reparsing them.
    pub(crate) fn apply_mergeable_changes_value(&self, json: &serde_json::Value) -> Result<()> {
        self.apply_merge_in(wire::parse_merge_in(json, self.now(), false, true)?)
    }

    /// Applies changes validated already (a synchronizer's diff read straight from its text).
    pub(crate) fn apply_merge_in(&self, input: wire::MergeIn) -> Result<()> {
        self.store.check_nesting()?;
        self.merge_input(input, false);
        Ok(())
    }

    fn merge_input(&self, input: wire::MergeIn, is_content: bool) {
        let record = self.store.wants_stamps();
        self.store.mutate(|core| {
            // The content kept for a rollback must hold its own tables hash.
            core.settle();
            if is_content {
                // Inside a user transaction the old content is kept for a rollback.
                let saved = (!core.implicit).then(|| Box::new(core.content.clone()));
                let was = core.listening;
                core.listening = false;
                core.del_tables();
                core.del_values();
                core.listening = was;
                // The journal refers to the old tree's nodes.
                core.flush();
                core.content = crate::store::tree::Content::new();
                core.tables_at_start = 0;
                if let Some(saved) = saved {
                    core.undo.push(crate::store::core::Undo::Content(saved));
                }
            }
            let accepted = core.merge(input, record);
            core.apply_accepted(accepted, record);
        });
    }

    /// `applyMergeableChanges` with JSON in wire form (objects as U+FFFD-prefixed strings,
    /// deletions as U+FFFC): changes `[tables, values, 1]` or content. The whole input is refused
    /// if anything in it is invalid, including an HLC more than five minutes ahead.
    pub fn apply_mergeable_changes_json(&self, json: &str) -> Result<()> {
        self.merge_json(json, false, true)
    }

    /// `applyMergeableChanges` with JSON in the decoded form (objects as objects); they are
    /// encoded with JavaScript rules before hashing.
    pub fn apply_decoded_mergeable_changes_json(&self, json: &str) -> Result<()> {
        self.merge_json(json, false, false)
    }

    /// `setMergeableContent` with wire-form content. Every stamp needs a hash, an integer from 0
    /// to 2^32 - 1 (anything else refuses the whole content); the store then holds the hashes
    /// its stamps compute, as `compute_content_hashes` (TinyBase keeps the given ones verbatim;
    /// they are the same for content a real peer produced).
    pub fn set_mergeable_content_json(&self, json: &str) -> Result<()> {
        self.merge_json(json, true, true)
    }

    /// `setMergeableContent` with decoded-form content.
    pub fn set_decoded_mergeable_content_json(&self, json: &str) -> Result<()> {
        self.merge_json(json, true, false)
    }

    /// `merge`: both stores apply each other's full content (wire form).
    pub fn merge(&self, other: &MergeableStore) -> Result<()> {
        let mine = self.get_encoded_mergeable_content_json();
        let theirs = other.get_encoded_mergeable_content_json();
        other.apply_mergeable_changes_json(&mine)?;
        self.apply_mergeable_changes_json(&theirs)
    }

    /// `setDefaultContent`: sets `[tables, values]` (decoded JSON) with empty HLCs, only where no
    /// stamp exists yet, so defaults never contradict the metadata (PROTOCOL.md 12.3).
    pub fn set_default_content_json(&self, json: &str) -> Result<()> {
        let (tables, values) = crate::store::content_in_json(&parse_json(json)?, false)?;
        self.store.check_nesting()?;
        self.store.mutate(|core| {
            core.defaulting = true;
            for (t, table) in &tables {
                for (r, row) in table {
                    for (c, v) in row {
                        let stamped = core
                            .content
                            .tables
                            .get(t.as_str())
                            .and_then(|tn| tn.rows.get(r.as_str()))
                            .and_then(|rn| rn.cells.map.get(c.as_str()))
                            .is_some_and(|l| !l.hlc.is_empty() || l.hash != 0);
                        if !stamped {
                            core.set_cell(t, r, c, v.clone());
                        }
                    }
                }
            }
            for (k, v) in &values {
                let stamped = core.content.values.map.get(k.as_str()).is_some_and(|l| !l.hlc.is_empty() || l.hash != 0);
                if !stamped {
                    core.set_value(k, v.clone());
                }
            }
            core.defaulting = false;
        });
        Ok(())
    }

    /// `getMergeableTableHashes`: `{tableId: hash}`.
    pub fn get_mergeable_table_hashes_json(&self) -> String {
        self.write_json(|core, out| write_hashes(out, core.content.tables.iter().map(|(k, t)| (k.as_str(), t.hash)).collect()))
    }

    /// `getMergeableTableDiff(otherTableHashes)`: `[newTables, differingTableHashes]`.
    pub fn get_mergeable_table_diff_json(&self, other_table_hashes: &str) -> Result<String> {
        let other = hash_map(&parse_json(other_table_hashes)?)?;
        Ok(self.write_json(|core, out| {
            let c = &core.content;
            out.push('[');
            let style = DIFF;
            write_stamp(out, style, c.tables_hlc, 0, |out| {
                let items: Vec<(&str, _)> = c
                    .tables
                    .iter()
                    .enumerate()
                    .filter(|(_, (k, _))| lookup(&other, k).is_none())
                    .map(|(ti, (k, t))| (k.as_str(), (ti as u32, t)))
                    .collect();
                write_object(out, items, |out, (ti, table)| {
                    write_stamp(out, style, table.hlc, 0, |out| {
                        // W6's sender: the whole table in one pass when simple.
                        if wire::write_rows_fast(out, style, c, ti, table) {
                            return;
                        }
                        let rows: Vec<(&str, _)> = table.rows.iter().enumerate().map(|(ri, (k, r))| (k.as_str(), (ri as u32, r))).collect();
                        write_object(out, rows, |out, (ri, row)| wire::write_leaves_stamp(out, style, c, (ti, ri), &row.cells, None));
                    })
                });
            });
            out.push(',');
            let differing: Vec<(&str, u32)> = c
                .tables
                .iter()
                .filter(|(k, t)| lookup(&other, k).is_some_and(|h| h != t.hash))
                .map(|(k, t)| (k.as_str(), t.hash))
                .collect();
            write_hashes(out, differing);
            out.push(']');
        }))
    }

    /// `getMergeableRowHashes(otherTableHashes)`: `{tableId: {rowId: hash}}` for every table
    /// both have whose hash differs.
    pub fn get_mergeable_row_hashes_json(&self, other_table_hashes: &str) -> Result<String> {
        let other = hash_map(&parse_json(other_table_hashes)?)?;
        Ok(self.write_json(|core, out| {
            let c = &core.content;
            let items: Vec<(&str, _)> = other
                .iter()
                .filter_map(|(t, h)| {
                    let table = c.tables.get(t.as_str())?;
                    (*h != table.hash && !table.rows.is_empty()).then_some((t.as_str(), table))
                })
                .collect();
            write_object(out, items, |out, table| write_hashes(out, table.rows.iter().map(|(k, r)| (k.as_str(), r.cells.hash)).collect()));
        }))
    }

    /// `getMergeableRowDiff(otherRowHashes)`: `[newRows, differingRowHashes]`.
    pub fn get_mergeable_row_diff_json(&self, other_row_hashes: &str) -> Result<String> {
        let other = hash_map2(&parse_json(other_row_hashes)?)?;
        Ok(self.write_json(|core, out| {
            let c = &core.content;
            let style = DIFF;
            out.push('[');
            write_stamp(out, style, c.tables_hlc, 0, |out| {
                let items: Vec<(&str, _)> = other
                    .iter()
                    .filter_map(|(t, rows)| {
                        let (ti, _, table) = c.tables.get_full(t.as_str())?;
                        let new: Vec<(&str, _)> = table
                            .rows
                            .iter()
                            .enumerate()
                            .filter(|(_, (r, _))| lookup(rows, r).is_none())
                            .map(|(ri, (r, row))| (r.as_str(), ((ti as u32, ri as u32), row)))
                            .collect();
                        (!new.is_empty()).then_some((t.as_str(), new))
                    })
                    .collect();
                write_object(out, items, |out, rows| {
                    write_stamp(out, style, crate::hlc::Hlc::EMPTY, 0, |out| {
                        write_object(out, rows, |out, (key, row)| wire::write_leaves_stamp(out, style, c, key, &row.cells, None));
                    })
                });
            });
            out.push(',');
            let items: Vec<(&str, Vec<(&str, u32)>)> = other
                .iter()
                .filter_map(|(t, rows)| {
                    let table = c.tables.get(t.as_str())?;
                    let diff: Vec<(&str, u32)> = table
                        .rows
                        .iter()
                        .filter(|(r, row)| lookup(rows, r).is_some_and(|h| h != row.cells.hash))
                        .map(|(r, row)| (r.as_str(), row.cells.hash))
                        .collect();
                    (!diff.is_empty()).then_some((t.as_str(), diff))
                })
                .collect();
            write_object(out, items, write_hashes);
            out.push(']');
        }))
    }

    /// `getMergeableCellHashes(otherRowHashes)`: `{tableId: {rowId: {cellId: hash}}}` for every
    /// row both have whose hash differs.
    pub fn get_mergeable_cell_hashes_json(&self, other_row_hashes: &str) -> Result<String> {
        let other = hash_map2(&parse_json(other_row_hashes)?)?;
        Ok(self.write_json(|core, out| {
            let c = &core.content;
            let items: Vec<(&str, Vec<(&str, Vec<(&str, u32)>)>)> = other
                .iter()
                .filter_map(|(t, rows)| {
                    let table = c.tables.get(t.as_str())?;
                    let rows: Vec<(&str, Vec<(&str, u32)>)> = rows
                        .iter()
                        .filter_map(|(r, h)| {
                            let row = table.rows.get(r.as_str())?;
                            (*h != row.cells.hash && !row.cells.map.is_empty())
                                .then(|| (r.as_str(), row.cells.map.iter().map(|(k, l)| (k.as_str(), l.hash)).collect()))
                        })
                        .collect();
                    (!rows.is_empty()).then_some((t.as_str(), rows))
                })
                .collect();
            write_object(out, items, |out, rows| write_object(out, rows, write_hashes));
        }))
    }

    /// `getMergeableCellDiff(otherCellHashes)`: a TablesStamp of every cell whose hash differs
    /// or that the other side lacks, in the rows it names.
    pub fn get_mergeable_cell_diff_json(&self, other_cell_hashes: &str) -> Result<String> {
        let other = hash_map3(&parse_json(other_cell_hashes)?)?;
        Ok(self.write_json(|core, out| {
            let c = &core.content;
            let style = DIFF;
            write_stamp(out, style, c.tables_hlc, 0, |out| {
                type RowPick<'a> = (&'a str, ((u32, u32), &'a crate::store::tree::Leaves, Vec<&'a str>));
                let mut items: Vec<(&str, (&crate::store::tree::TableNode, Vec<RowPick>))> = Vec::new();
                for (t, rows) in &other {
                    for (r, cells) in rows {
                        let Some((ti, _, table)) = c.tables.get_full(t.as_str()) else { continue };
                        let Some((ri, _, row)) = table.rows.get_full(r.as_str()) else { continue };
                        let differing: Vec<&str> = row
                            .cells
                            .map
                            .iter()
                            .filter(|(k, l)| lookup(cells, k) != Some(l.hash))
                            .map(|(k, _)| k.as_str())
                            .collect();
                        if differing.is_empty() {
                            continue;
                        }
                        let entry = match items.iter().position(|e| e.0 == t.as_str()) {
                            Some(i) => &mut items[i].1 .1,
                            None => {
                                items.push((t.as_str(), (table, Vec::new())));
                                &mut items.last_mut().expect("pushed").1 .1
                            }
                        };
                        match entry.iter().position(|e| e.0 == r.as_str()) {
                            Some(i) => entry[i].1 .2.extend(differing),
                            None => entry.push((r.as_str(), ((ti as u32, ri as u32), &row.cells, differing))),
                        }
                    }
                }
                write_object(out, items, |out, (table, rows)| {
                    write_stamp(out, style, table.hlc, 0, |out| {
                        write_object(out, rows, |out, (key, cells, ids)| {
                            write_stamp(out, style, c.leaves_hlc_of(key), 0, |out| {
                                let items: Vec<(&str, _)> = cells
                                    .map
                                    .iter()
                                    .enumerate()
                                    .filter(|(_, (k, _))| ids.contains(&k.as_str()))
                                    .map(|(ci, (k, l))| (k.as_str(), (c.meta(key, ci, l), l)))
                                    .collect();
                                write_object(out, items, |out, (v, l)| {
                                    // Cell diffs always carry the HLC, even an empty one.
                                    out.push('[');
                                    v.write_json(out, true);
                                    out.push_str(",\"");
                                    l.hlc.with_str(|s| out.push_str(s));
                                    out.push_str("\"]");
                                });
                            })
                        })
                    })
                });
            });
        }))
    }

    /// `getMergeableValueHashes`: `{valueId: hash}`.
    pub fn get_mergeable_value_hashes_json(&self) -> String {
        self.write_json(|core, out| write_hashes(out, core.content.values.map.iter().map(|(k, l)| (k.as_str(), l.hash)).collect()))
    }

    /// `getMergeableValueDiff(otherValueHashes)`: a ValuesStamp of every value whose hash differs
    /// or that the other side lacks.
    pub fn get_mergeable_value_diff_json(&self, other_value_hashes: &str) -> Result<String> {
        let other = hash_map(&parse_json(other_value_hashes)?)?;
        Ok(self.write_json(|core, out| {
            let c = &core.content;
            let values = &c.values;
            write_stamp(out, DIFF, c.values_hlc, 0, |out| {
                let items: Vec<(&str, _)> = values
                    .map
                    .iter()
                    .enumerate()
                    .filter(|(_, (k, l))| lookup(&other, k) != Some(l.hash))
                    .map(|(ci, (k, l))| (k.as_str(), (c.meta((crate::store::tree::VALUES, 0), ci, l), l)))
                    .collect();
                write_object(out, items, |out, (v, l)| write_leaf(out, DIFF, v, l.hlc, l.hash));
            });
        }))
    }

    /// Recomputes every hash from scratch with the static formulas (PROTOCOL.md 3.3) and
    /// returns `[tablesHash, valuesHash]`; always equal to the maintained hashes (a consistency
    /// check for tests and tools).
    pub fn compute_content_hashes(&self) -> (u32, u32) {
        use crate::hash::id_hash;
        self.store.read(|core| {
            let c = &core.content;
            let leaves_hash = |key: (u32, u32), l: &crate::store::tree::Leaves| {
                let hlc = c.leaves_hlc_of(key);
                l.map.iter().enumerate().fold(if hlc.is_empty() { 0 } else { hlc.hash() }, |h, (ci, (k, leaf))| {
                    h ^ id_hash(k, Core::leaf_hash(c.meta(key, ci, leaf), leaf.hlc)) ^ id_hash(k, 0)
                })
            };
            let tables = core.content.tables.iter().enumerate().fold(
                if core.content.tables_hlc.is_empty() { 0 } else { core.content.tables_hlc.hash() },
                |h, (ti, (t, table))| {
                    let th = table.rows.iter().enumerate().fold(if table.hlc.is_empty() { 0 } else { table.hlc.hash() }, |h, (ri, (r, row))| {
                        h ^ id_hash(r, leaves_hash((ti as u32, ri as u32), &row.cells))
                    });
                    h ^ id_hash(t, th)
                },
            );
            (tables, leaves_hash((crate::store::tree::VALUES, 0), &c.values))
        })
    }
}

impl Core {
    /// `getTransactionMergeableChanges` JSON for the current transaction.
    pub(crate) fn transaction_mergeable_changes_json(&self, with_hashes: bool, wire: bool) -> String {
        let mut out = String::new();
        wire::write_transaction_changes(&mut out, self, StampStyle { hashes: with_hashes, wire }, false);
        out
    }

    /// The current transaction's changes for an incremental persister: wire form with hashes,
    /// and also the stamps a merge changed without a visible change (`track.stamped`).
    pub(crate) fn persisted_changes_json(&self) -> String {
        let mut out = String::new();
        wire::write_transaction_changes(&mut out, self, StampStyle { hashes: true, wire: true }, true);
        out
    }
}

/// Whether `err` came from refusing bad input (as opposed to a state problem).
pub fn is_input_error(err: &Error) -> bool {
    !matches!(err, Error::InvalidState(_))
}
