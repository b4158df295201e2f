//! MergeableContent and MergeableChanges as JSON: validation of what arrives (PROTOCOL.md 4.7)
//! and the exact JSON TinyBase emits for content, changes, hashes and diffs.

use crate::error::{Error, Result};
use crate::hlc::Hlc;
use crate::store::core::Core;
use crate::store::tree::{Content, Key, Leaves, VALUES};
use crate::store::write_object;
use crate::value::{write_integer, JsonOut, Stored};
use serde_json::Value as Json;

/// A stamp as it arrives: thing, HLC (empty if absent), hash (0 if absent).
#[derive(Debug, Clone)]
pub(crate) struct StampIn<T> {
    pub thing: T,
    pub hlc: Hlc,
    pub hash: u32,
}

pub(crate) type LeafIn = StampIn<Stored>;
pub(crate) type LeavesIn = StampIn<Vec<(Key, LeafIn)>>;
pub(crate) type TableIn = StampIn<Vec<(Key, LeavesIn)>>;

/// Validated MergeableChanges or MergeableContent.
#[derive(Debug, Clone)]
pub(crate) struct MergeIn {
    pub tables: StampIn<Vec<(Key, TableIn)>>,
    pub values: LeavesIn,
}

/// JavaScript's `x >>> 0` for a stamp's hash.
fn to_uint32(n: f64) -> u32 {
    if !n.is_finite() {
        return 0;
    }
    n.trunc().rem_euclid(4_294_967_296.0) as u32
}

struct Validator {
    max_time: f64,
    hashes_required: bool,
    /// Wire form: U+FFFD strings are kept verbatim (and must hold JSON objects or arrays).
    wire: bool,
}

impl Validator {
    fn stamp<'a>(&self, json: &'a Json, what: &str) -> Result<(&'a Json, Hlc, u32)> {
        let parts = json.as_array().ok_or_else(|| Error::InvalidShape(format!("{what} stamp must be an array")))?;
        let (hlc, hash) = match parts.len() {
            3 => {
                let hash = parts[2].as_f64().ok_or_else(|| Error::InvalidShape(format!("{what} stamp hash must be a number")))?;
                (Some(&parts[1]), to_uint32(hash))
            }
            1 | 2 if self.hashes_required => {
                return Err(Error::InvalidShape(format!("{what} stamp must be [thing, hlc, hash] in content")))
            }
            1 => (None, 0),
            2 => (Some(&parts[1]), 0),
            n => return Err(Error::InvalidShape(format!("{what} stamp has {n} elements"))),
        };
        let hlc = match hlc {
            None => Hlc::EMPTY,
            Some(h) => {
                let s = h.as_str().ok_or_else(|| Error::InvalidHlc(format!("{what} HLC must be a string")))?;
                let hlc = Hlc::parse(s)?;
                if !hlc.is_empty() && hlc.time() as f64 > self.max_time {
                    return Err(Error::InvalidHlc(format!("{s:?} is more than five minutes in the future")));
                }
                hlc
            }
        };
        Ok((&parts[0], hlc, hash))
    }

    fn object<'a>(&self, json: &'a Json, what: &str) -> Result<&'a serde_json::Map<String, Json>> {
        json.as_object().ok_or_else(|| Error::InvalidShape(format!("{what} must be an object")))
    }

    fn leaf(&self, json: &Json) -> Result<LeafIn> {
        let (thing, hlc, hash) = self.stamp(json, "a cell or value")?;
        let value = if self.wire { Stored::from_json_wire(thing)? } else { Stored::from_json_api(thing, true)? };
        Ok(StampIn { thing: value, hlc, hash })
    }

    fn leaves(&self, json: &Json, what: &str) -> Result<LeavesIn> {
        let (thing, hlc, hash) = self.stamp(json, what)?;
        let mut out = Vec::new();
        for (k, v) in self.object(thing, what)? {
            out.push((Key::from(k.as_str()), self.leaf(v)?));
        }
        Ok(StampIn { thing: out, hlc, hash })
    }

    fn merge_in(&self, json: &Json) -> Result<MergeIn> {
        let parts = json.as_array().ok_or_else(|| Error::InvalidShape("mergeable content must be an array".into()))?;
        match parts.len() {
            2 => {}
            3 if !self.hashes_required && parts[2].as_f64() == Some(1.0) && parts[2].is_number() => {}
            3 => return Err(Error::InvalidShape("mergeable changes must end with 1".into())),
            n => return Err(Error::InvalidShape(format!("mergeable content must have 2 elements, not {n}"))),
        }
        let (tables, tables_hlc, tables_hash) = self.stamp(&parts[0], "tables")?;
        let mut tables_out = Vec::new();
        for (t, table) in self.object(tables, "tables")? {
            let (rows, hlc, hash) = self.stamp(table, "a table")?;
            let mut rows_out = Vec::new();
            for (r, row) in self.object(rows, "a table")? {
                rows_out.push((Key::from(r.as_str()), self.leaves(row, "a row")?));
            }
            tables_out.push((Key::from(t.as_str()), StampIn { thing: rows_out, hlc, hash }));
        }
        Ok(MergeIn {
            tables: StampIn { thing: tables_out, hlc: tables_hlc, hash: tables_hash },
            values: self.leaves(&parts[1], "values")?,
        })
    }
}

/// Validates MergeableChanges/Content JSON: hashes required for content; `wire` for the encoded
/// form (synchronizers, persisters) versus the decoded public form.
pub(crate) fn parse_merge_in(json: &Json, now: f64, hashes_required: bool, wire: bool) -> Result<MergeIn> {
    let v = Validator { max_time: now + crate::hlc::HLC_MAX_FUTURE_OFFSET, hashes_required, wire };
    v.merge_in(json)
}

// ---------------------------------------------------------------------- output

/// How stamps are written: with hashes or not, leaves in wire or decoded form.
#[derive(Clone, Copy)]
pub(crate) struct StampStyle {
    pub hashes: bool,
    pub wire: bool,
}

fn write_hlc<O: JsonOut + ?Sized>(out: &mut O, hlc: Hlc) {
    out.push_str("\"");
    hlc.with_str(|s| out.push_str(s));
    out.push_str("\"");
}

/// Writes `[thing]`, `[thing, hlc]` or `[thing, hlc, hash]`.
pub(crate) fn write_stamp<O: JsonOut + ?Sized>(out: &mut O, style: StampStyle, hlc: Hlc, hash: u32, thing: impl FnOnce(&mut O)) {
    out.push_str("[");
    thing(out);
    if style.hashes {
        out.push_str(",");
        write_hlc(out, hlc);
        out.push_str(",");
        write_integer(out, hash as i64);
    } else if !hlc.is_empty() {
        out.push_str(",");
        write_hlc(out, hlc);
    }
    out.push_str("]");
}

/// Writes a leaf stamp.
pub(crate) fn write_leaf<O: JsonOut + ?Sized>(out: &mut O, style: StampStyle, value: &Stored, hlc: Hlc, hash: u32) {
    write_stamp(out, style, hlc, hash, |out| value.write_json(out, style.wire));
}

/// Writes a leaf container with the leaves chosen by `pick` (all when None), in metadata order.
pub(crate) fn write_leaves_stamp<O: JsonOut + ?Sized>(
    out: &mut O,
    style: StampStyle,
    content: &Content,
    key: (u32, u32),
    leaves: &Leaves,
    pick: Option<&dyn Fn(&str) -> bool>,
) {
    write_stamp(out, style, leaves.hlc, leaves.hash, |out| {
        let items: Vec<(&str, _)> = leaves
            .map
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| pick.is_none_or(|p| p(k)))
            .map(|(i, (k, l))| (k.as_str(), (content.meta(key, i, l), l)))
            .collect();
        write_object(out, items, |out, (v, l)| write_leaf(out, style, v, l.hlc, l.hash));
    });
}

/// Writes the whole content: `[tablesStamp, valuesStamp]`.
pub(crate) fn write_content<O: JsonOut + ?Sized>(out: &mut O, core: &Core, style: StampStyle) {
    out.push_str("[");
    let c = &core.content;
    write_stamp(out, style, c.tables_hlc, c.tables_hash, |out| {
        let tables: Vec<(&str, _)> = c.tables.iter().enumerate().map(|(ti, (k, t))| (k.as_str(), (ti as u32, t))).collect();
        write_object(out, tables, |out, (ti, table)| {
            write_stamp(out, style, table.hlc, table.hash, |out| {
                let rows: Vec<(&str, _)> = table.rows.iter().enumerate().map(|(ri, (k, r))| (k.as_str(), (ri as u32, r))).collect();
                write_object(out, rows, |out, (ri, row)| write_leaves_stamp(out, style, c, (ti, ri), &row.cells, None));
            });
        });
    });
    out.push_str(",");
    write_leaves_stamp(out, style, c, (VALUES, 0), &c.values, None);
    out.push_str("]");
}

/// `getTransactionMergeableChanges`: the touched leaves with their current stamps.
pub(crate) fn write_transaction_changes<O: JsonOut + ?Sized>(out: &mut O, core: &Core, style: StampStyle) {
    let c = &core.content;
    let touched = core.track.cells.grouped();
    // (table index, [(row index, [leaf index])]) in touch order.
    let mut tables: Vec<(usize, Vec<(usize, Vec<usize>)>)> = Vec::new();
    for (t, r, cell, _) in touched {
        let Some(ti) = c.tables.get_index_of(t.as_str()) else { continue };
        if tables.last().map(|e| e.0) != Some(ti) {
            tables.push((ti, Vec::new()));
        }
        let Some(ri) = c.tables[ti].rows.get_index_of(r.as_str()) else { continue };
        let rows = &mut tables.last_mut().expect("pushed").1;
        if rows.last().map(|e| e.0) != Some(ri) {
            rows.push((ri, Vec::new()));
        }
        if let Some(ci) = c.tables[ti].rows[ri].cells.map.get_index_of(cell.as_str()) {
            rows.last_mut().expect("pushed").1.push(ci);
        }
    }
    out.push_str("[");
    write_stamp(out, style, c.tables_hlc, c.tables_hash, |out| {
        let items: Vec<(&str, _)> = tables.iter().map(|(ti, rows)| (c.tables.get_index(*ti).expect("t").0.as_str(), (*ti, rows))).collect();
        write_object(out, items, |out, (ti, rows)| {
            let table = &c.tables[ti];
            write_stamp(out, style, table.hlc, table.hash, |out| {
                let items: Vec<(&str, _)> = rows.iter().map(|(ri, cells)| (table.rows.get_index(*ri).expect("r").0.as_str(), (*ri, cells))).collect();
                write_object(out, items, |out, (ri, cells)| {
                    let leaves = &table.rows[ri].cells;
                    write_stamp(out, style, leaves.hlc, leaves.hash, |out| {
                        let items: Vec<(&str, _)> = cells.iter().map(|ci| {
                            let (k, l) = leaves.map.get_index(*ci).expect("c");
                            (k.as_str(), (c.meta((ti as u32, ri as u32), *ci, l), l))
                        }).collect();
                        write_object(out, items, |out, (v, l)| write_leaf(out, style, v, l.hlc, l.hash));
                    });
                });
            });
        });
    });
    out.push_str(",");
    // Values in touch order.
    write_stamp(out, style, c.values.hlc, c.values.hash, |out| {
        let items: Vec<(&str, _)> = core
            .track
            .values
            .keys()
            .filter_map(|k| c.values.map.get_full(k.as_str()).map(|(i, _, l)| (k.as_str(), (c.meta((VALUES, 0), i, l), l))))
            .collect();
        write_object(out, items, |out, (v, l)| write_leaf(out, style, v, l.hlc, l.hash));
    });
    out.push_str(",1]");
}

/// Writes `{id: hash}` for a map of hashed nodes, in JavaScript key order.
pub(crate) fn write_hashes<O: JsonOut + ?Sized>(out: &mut O, items: Vec<(&str, u32)>) {
    write_object(out, items, |out, h| write_integer(out, h as i64));
}

/// Reads `{id: number}` (a hash map given to a diff method); non-numbers never match.
pub(crate) fn hash_map(json: &Json) -> Result<Vec<(Key, Option<f64>)>> {
    let obj = json.as_object().ok_or_else(|| Error::InvalidShape("hashes must be an object".into()))?;
    Ok(obj.iter().map(|(k, v)| (Key::from(k.as_str()), v.as_f64())).collect())
}

/// Reads `{id: {id: number}}`.
pub(crate) fn hash_map2(json: &Json) -> Result<Vec<(Key, Vec<(Key, Option<f64>)>)>> {
    let obj = json.as_object().ok_or_else(|| Error::InvalidShape("hashes must be an object".into()))?;
    obj.iter().map(|(k, v)| Ok((Key::from(k.as_str()), hash_map(v)?))).collect()
}

/// Reads `{id: {id: {id: number}}}`.
pub(crate) fn hash_map3(json: &Json) -> Result<Vec<(Key, Vec<(Key, Vec<(Key, Option<f64>)>)>)>> {
    let obj = json.as_object().ok_or_else(|| Error::InvalidShape("hashes must be an object".into()))?;
    obj.iter().map(|(k, v)| Ok((Key::from(k.as_str()), hash_map2(v)?))).collect()
}

/// Whether an id-hash list names `id` with exactly `hash`.
pub(crate) fn lookup(list: &[(Key, Option<f64>)], id: &str) -> Option<Option<f64>> {
    list.iter().rev().find(|(k, _)| k == id).map(|(_, h)| *h)
}

