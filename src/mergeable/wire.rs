//! MergeableContent and MergeableChanges as JSON: validation of what arrives (PROTOCOL.md 4.7)
//! and the exact JSON TinyBase emits for content, changes, hashes and diffs.

use crate::error::{Error, Result};
use crate::hlc::Hlc;
use crate::store::core::Core;
use crate::store::track::Stamped;
use crate::store::tree::{Content, Key, Leaves, VALUES};
use crate::store::write_object;
use crate::json_lex::STRING_STOP;
use crate::value::{is_integer_key, write_integer, write_js_string, JsonOut, Stored, DIGIT_PAIRS};
use serde_json::Value as Json;

/// A stamp as it arrives: thing and HLC (empty if absent). Its hash, if any, is checked and
/// dropped: merging computes every hash from the stamps.
#[derive(Debug, Clone)]
pub(crate) struct StampIn<T> {
    pub thing: T,
    pub hlc: Hlc,
}

pub(crate) type LeafIn = StampIn<Stored>;
/// A row's cells (or the values) as they arrive. Most rows hold one cell: inline, so a big
/// table's rows cost no allocation each while they pass from the parser to the merge.
pub(crate) type CellsIn = smallvec::SmallVec<[(Key, LeafIn); 1]>;
pub(crate) type LeavesIn = StampIn<CellsIn>;
pub(crate) type TableIn = StampIn<Vec<(Key, LeavesIn)>>;

/// Validated MergeableChanges or MergeableContent.
#[derive(Debug, Clone)]
pub(crate) struct MergeIn {
    pub tables: StampIn<Vec<(Key, TableIn)>>,
    pub values: LeavesIn,
}

struct Validator {
    max_time: f64,
    hashes_required: bool,
    /// Wire form: U+FFFD strings are kept verbatim (and must hold JSON objects or arrays).
    wire: bool,
}

impl Validator {
    fn stamp<'a>(&self, json: &'a Json, what: &str) -> Result<(&'a Json, Hlc)> {
        let parts = json.as_array().ok_or_else(|| Error::InvalidShape(format!("{what} stamp must be an array")))?;
        let hlc = match parts.len() {
            3 => {
                let hash = parts[2].as_f64().ok_or_else(|| Error::InvalidShape(format!("{what} stamp hash must be a number")))?;
                // Content's hashes must be real ones; a hash in changes is ignored (as TinyBase).
                if self.hashes_required && valid_hash(hash).is_none() {
                    return Err(Error::InvalidShape(format!("{what} stamp hash must be an integer from 0 to 4294967295, not {}", parts[2])));
                }
                Some(&parts[1])
            }
            1 | 2 if self.hashes_required => {
                return Err(Error::InvalidShape(format!("{what} stamp must be [thing, hlc, hash] in content")))
            }
            1 => None,
            2 => Some(&parts[1]),
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
        Ok((&parts[0], hlc))
    }

    fn object<'a>(&self, json: &'a Json, what: &str) -> Result<&'a serde_json::Map<String, Json>> {
        json.as_object().ok_or_else(|| Error::InvalidShape(format!("{what} must be an object")))
    }

    fn leaf(&self, json: &Json) -> Result<LeafIn> {
        let (thing, hlc) = self.stamp(json, "a cell or value")?;
        let value = if self.wire { Stored::from_json_wire(thing)? } else { Stored::from_json_api(thing, true)? };
        Ok(StampIn { thing: value, hlc })
    }

    fn leaves(&self, json: &Json, what: &str) -> Result<LeavesIn> {
        let (thing, hlc) = self.stamp(json, what)?;
        let mut out = CellsIn::new();
        for (k, v) in self.object(thing, what)? {
            out.push((Key::from(k.as_str()), self.leaf(v)?));
        }
        Ok(StampIn { thing: out, hlc })
    }

    fn merge_in(&self, json: &Json) -> Result<MergeIn> {
        let parts = json.as_array().ok_or_else(|| Error::InvalidShape("mergeable content must be an array".into()))?;
        match parts.len() {
            2 => {}
            3 if !self.hashes_required && parts[2].as_f64() == Some(1.0) && parts[2].is_number() => {}
            3 => return Err(Error::InvalidShape("mergeable changes must end with 1".into())),
            n => return Err(Error::InvalidShape(format!("mergeable content must have 2 elements, not {n}"))),
        }
        let (tables, tables_hlc) = self.stamp(&parts[0], "tables")?;
        let mut tables_out = Vec::new();
        for (t, table) in self.object(tables, "tables")? {
            let (rows, hlc) = self.stamp(table, "a table")?;
            let mut rows_out = Vec::new();
            for (r, row) in self.object(rows, "a table")? {
                rows_out.push((Key::from(r.as_str()), self.leaves(row, "a row")?));
            }
            tables_out.push((Key::from(t.as_str()), StampIn { thing: rows_out, hlc }));
        }
        Ok(MergeIn {
            tables: StampIn { thing: tables_out, hlc: tables_hlc },
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

/// The HLC alphabet (`hlc.rs`), here so that the text below is known to be ASCII.
const HLC_ALPHABET: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
const _: () = assert!(HLC_ALPHABET.is_ascii());
const UNDEFINED_MARKER_STR: &str = "\u{FFFC}";

/// Writes an HLC as a JSON string: `"` + 16 characters + `"` in one piece (`""` when empty).
#[inline]
fn write_hlc<O: JsonOut + ?Sized>(out: &mut O, hlc: Hlc) {
    if hlc.is_empty() {
        out.push_str("\"\"");
        return;
    }
    let buf = hlc_quoted(hlc);
    // SAFETY: quotes and characters of the ASCII alphabet only.
    out.push_str(unsafe { std::str::from_utf8_unchecked(&buf) });
}

/// A non-empty HLC as `"` + 16 characters + `"`.
#[inline(always)]
fn hlc_quoted(hlc: Hlc) -> [u8; 18] {
    // 42 bits of time (7 characters), 24 of counter (4), 30 of client id (5).
    let (time, counter, client) = (hlc.time(), hlc.counter() as u64, hlc.client_id() as u64);
    let mut buf = [b'"'; 18];
    for j in 0..7 {
        buf[1 + j] = HLC_ALPHABET[((time >> (6 * (6 - j))) & 63) as usize];
    }
    for j in 0..4 {
        buf[8 + j] = HLC_ALPHABET[((counter >> (6 * (3 - j))) & 63) as usize];
    }
    for j in 0..5 {
        buf[12 + j] = HLC_ALPHABET[((client >> (6 * (4 - j))) & 63) as usize];
    }
    buf
}

/// Writes `{id: ...}` in JavaScript key order without collecting the items first when no id is
/// integer-like (the usual case); otherwise as [`write_object`] (which sorts them).
#[inline]
fn write_object_iter<'k, O, T, I>(out: &mut O, items: impl Fn() -> I, mut write: impl FnMut(&mut O, T))
where
    O: JsonOut + ?Sized,
    I: Iterator<Item = (&'k str, T)>,
{
    // Into a String: write optimistically and start again if an integer-like id shows up (one
    // pass over the items, which matters for big tables); other sinks look first.
    let start = out.as_string().map(|s| s.len());
    if start.is_none() && items().any(|(k, _)| is_integer_key(k).is_some()) {
        return write_object(out, items().collect(), write);
    }
    out.push_str("{");
    let mut first = true;
    for (k, v) in items() {
        if let Some(start) = start {
            if is_integer_key(k).is_some() {
                if let Some(s) = out.as_string() {
                    s.truncate(start);
                }
                return write_object(out, items().collect(), write);
            }
        }
        if !first {
            out.push_str(",");
        }
        first = false;
        write_js_string(out, k);
        out.push_str(":");
        write(out, v);
    }
    out.push_str("}");
}

/// Roughly how many bytes `write_content` writes (a reservation, not exact).
fn content_len_estimate(c: &Content) -> usize {
    fn leaves(l: &Leaves) -> usize {
        l.map
            .iter()
            .map(|(k, leaf)| {
                k.len()
                    + 40
                    + match &leaf.value {
                        Stored::Str(s) => s.len() + 6,
                        _ => 24,
                    }
            })
            .sum::<usize>()
            + 40
    }
    let mut n = 64 + leaves(&c.values);
    for (k, t) in c.tables.iter() {
        n += k.len() + 40;
        for (k, r) in t.rows.iter() {
            n += k.len() + 8 + leaves(&r.cells);
        }
    }
    n
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
    write_stamp(out, style, content.leaves_hlc_of(key), leaves.hash, |out| {
        if pick.is_none() {
            if let Some(s) = out.as_string() {
                if write_leaves_fast(s, style, content, key, leaves) {
                    return;
                }
            }
        }
        let items = || {
            leaves.map.iter().enumerate().filter(|(_, (k, _))| pick.is_none_or(|p| p(k))).map(|(i, (k, l))| (k.as_str(), (i, l)))
        };
        write_object_iter(out, items, |out, (i, l)| write_leaf(out, style, content.meta(key, i, l), l.hlc, l.hash));
    });
}

/// Appends bytes to a String's reserved spare capacity.
struct Spare<'a> {
    buf: &'a mut [std::mem::MaybeUninit<u8>],
    n: usize,
}

impl Spare<'_> {
    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.buf[self.n].write(b);
        self.n += 1;
    }
    /// One bounds check and one copy for the run (not a check per byte).
    #[inline(always)]
    fn bytes(&mut self, s: &[u8]) {
        let dst = &mut self.buf[self.n..self.n + s.len()];
        // SAFETY: `dst` is exactly `s.len()` bytes of the buffer, and `s` cannot overlap the
        // String's spare capacity.
        unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), dst.as_mut_ptr().cast::<u8>(), s.len()) };
        self.n += s.len();
    }
    /// A string that needs no escaping, quoted.
    #[inline(always)]
    fn quoted(&mut self, s: &[u8]) {
        self.byte(b'"');
        self.bytes(s);
        self.byte(b'"');
    }
    /// The quoted HLC, built in a fixed-size array and copied at once.
    #[inline(always)]
    fn hlc(&mut self, hlc: Hlc) {
        if hlc.is_empty() {
            self.bytes(b"\"\"");
            return;
        }
        self.bytes(&hlc_quoted(hlc));
    }
    /// Decimal digits written in place, right to left, two at a time.
    #[inline(always)]
    fn uint(&mut self, v: u64) {
        let len = decimal_len(v);
        let dst = &mut self.buf[self.n..self.n + len];
        let mut v = v;
        let mut i = len;
        while v >= 100 {
            let d = (v % 100) as usize * 2;
            v /= 100;
            i -= 2;
            dst[i].write(DIGIT_PAIRS[d]);
            dst[i + 1].write(DIGIT_PAIRS[d + 1]);
        }
        if v >= 10 {
            let d = v as usize * 2;
            dst[0].write(DIGIT_PAIRS[d]);
            dst[1].write(DIGIT_PAIRS[d + 1]);
        } else {
            dst[0].write(b'0' + v as u8);
        }
        self.n += len;
    }
}

/// How many decimal digits `v` has.
#[inline(always)]
fn decimal_len(v: u64) -> usize {
    v.checked_ilog10().unwrap_or(0) as usize + 1
}


/// An upper bound of the bytes [`Spare::leaves`] writes for a leaf container (from lengths
/// only, nothing scanned), or None when a value is not simple: a number that is not an integer
/// below 1e15, an object or array in the decoded style.
#[inline(always)]
fn leaves_bound(style: StampStyle, content: &Content, key: (u32, u32), leaves: &Leaves) -> Option<usize> {
    let mut max = 2;
    for (i, (k, l)) in leaves.map.iter().enumerate() {
        max += k.len()
            + 48
            + match content.meta(key, i, l) {
                // Objects and arrays are written raw in the decoded style: the general path.
                Stored::Str(s) if style.wire || !s.starts_with(crate::value::JSON_PREFIX) => s.len() + 2,
                Stored::Str(_) => return None,
                Stored::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => 17,
                Stored::Num(n) if *n == 0.0 => 1,
                Stored::Num(_) => return None,
                Stored::Bool(_) | Stored::Null => 5,
                Stored::Deleted => 5,
            };
    }
    Some(max)
}

impl Spare<'_> {
    /// `s` quoted if it needs no escaping (checked while copying); None (part written) if it
    /// does.
    #[inline(always)]
    fn plain_quoted(&mut self, s: &[u8]) -> Option<()> {
        self.byte(b'"');
        let dst = &mut self.buf[self.n..self.n + s.len()];
        for (d, &b) in dst.iter_mut().zip(s) {
            if STRING_STOP[b as usize] {
                return None;
            }
            d.write(b);
        }
        self.n += s.len();
        self.byte(b'"');
        Some(())
    }

    /// An id: quoted, not integer-like (those go first in JavaScript's order: the general
    /// path), nothing to escape; None otherwise.
    #[inline(always)]
    fn id(&mut self, k: &str) -> Option<()> {
        if is_integer_key(k).is_some() {
            return None;
        }
        self.plain_quoted(k.as_bytes())
    }

    /// The body of a leaf container (`{"id":[value,"hlc",hash],...}`) that [`leaves_bound`]
    /// bounded; None (part written) if an id or string needs escaping or an id is integer-like.
    #[inline(always)]
    fn leaves(&mut self, style: StampStyle, content: &Content, key: (u32, u32), leaves: &Leaves) -> Option<()> {
        let w = self;
        w.byte(b'{');
        for (i, (k, l)) in leaves.map.iter().enumerate() {
            if i > 0 {
                w.byte(b',');
            }
            w.id(k)?;
            w.byte(b':');
            w.byte(b'[');
            match content.meta(key, i, l) {
                Stored::Str(s) => w.plain_quoted(s.as_bytes())?,
                Stored::Num(n) => {
                    if *n < 0.0 {
                        w.byte(b'-');
                    }
                    // Integers below 1e15 (and -0 as "0"), as write_js_number writes them.
                    w.uint(n.abs() as u64);
                }
                Stored::Bool(true) => w.bytes(b"true"),
                Stored::Bool(false) => w.bytes(b"false"),
                Stored::Null => w.bytes(b"null"),
                Stored::Deleted => w.quoted(UNDEFINED_MARKER_STR.as_bytes()),
            }
            w.stamp_tail(style, l.hlc, l.hash);
        }
        w.byte(b'}');
        Some(())
    }

    /// A stamp's end after its thing, as [`write_stamp`] writes it: `,"hlc",hash]`, `,"hlc"]`
    /// or `]`.
    #[inline(always)]
    fn stamp_tail(&mut self, style: StampStyle, hlc: Hlc, hash: u32) {
        if style.hashes {
            self.byte(b',');
            self.hlc(hlc);
            self.byte(b',');
            self.uint(hash as u64);
        } else if !hlc.is_empty() {
            self.byte(b',');
            self.hlc(hlc);
        }
        self.byte(b']');
    }
}

/// Runs `f` on `max` bytes of `out`'s spare capacity and keeps what it wrote if it returns
/// Some; on None nothing is kept (the bytes stay beyond the String's length).
#[inline(always)]
fn with_spare(out: &mut String, max: usize, f: impl FnOnce(&mut Spare) -> Option<()>) -> Option<()> {
    out.reserve(max);
    // SAFETY: only whole `str`s (ids, strings) and ASCII bytes are appended, so the String stays
    // valid UTF-8; `set_len` covers exactly the bytes written, all within the reserved capacity
    // (`Spare` indexes a slice of it, so going past it would panic, not overflow).
    let vec = unsafe { out.as_mut_vec() };
    let len = vec.len();
    let mut w = Spare { buf: &mut vec.spare_capacity_mut()[..max], n: 0 };
    f(&mut w)?;
    let n = w.n;
    // SAFETY: the first n spare bytes were initialised by `f`.
    unsafe { vec.set_len(len + n) };
    Some(())
}

/// The body of a leaf container (`{"id":[value,"hlc",hash],...}`) written straight into a
/// String when that is simple: no integer-like id, nothing to escape, strings, integers,
/// booleans, null and deletions. Returns false (having written nothing) otherwise.
fn write_leaves_fast(out: &mut String, style: StampStyle, content: &Content, key: (u32, u32), leaves: &Leaves) -> bool {
    let Some(max) = leaves_bound(style, content, key, leaves) else { return false };
    with_spare(out, max, |w| w.leaves(style, content, key, leaves)).is_some()
}

/// A table's rows object (`{"rowId":[{cells},"hlc",hash],...}`) written straight into a String
/// in one pass when every row id and row is simple (as [`write_leaves_fast`]): no per-row
/// `push_str`s or separate checking pass (W4 has 100k one-cell rows). Returns false (having
/// written nothing) otherwise.
pub(crate) fn write_rows_fast(out: &mut String, style: StampStyle, content: &Content, ti: u32, table: &crate::store::tree::TableNode) -> bool {
    let start = out.len();
    out.push('{');
    for (ri, (k, row)) in table.rows.iter().enumerate() {
        let key = (ti, ri as u32);
        // `,"id":[` and `,"hlc",hash]` around the cells.
        let written = leaves_bound(style, content, key, &row.cells).and_then(|n| {
            with_spare(out, k.len() + 40 + n, |w| {
                if ri > 0 {
                    w.byte(b',');
                }
                w.id(k)?;
                w.byte(b':');
                w.byte(b'[');
                w.leaves(style, content, key, &row.cells)?;
                w.stamp_tail(style, table.row_hlc(ri), row.cells.hash);
                Some(())
            })
        });
        if written.is_none() {
            out.truncate(start);
            return false;
        }
    }
    out.push('}');
    true
}

/// Writes the whole content: `[tablesStamp, valuesStamp]`.
pub(crate) fn write_content<O: JsonOut + ?Sized>(out: &mut O, core: &Core, style: StampStyle) {
    let c = &core.content;
    out.reserve(content_len_estimate(c));
    out.push_str("[");
    write_stamp(out, style, c.tables_hlc, c.tables_hash, |out| {
        let tables = || c.tables.iter().enumerate().map(|(ti, (k, t))| (k.as_str(), (ti as u32, t)));
        write_object_iter(out, tables, |out, (ti, table)| {
            write_stamp(out, style, table.hlc, table.hash, |out| {
                if let Some(s) = out.as_string() {
                    if write_rows_fast(s, style, c, ti, table) {
                        return;
                    }
                }
                let rows = || table.rows.iter().enumerate().map(|(ri, (k, r))| (k.as_str(), (ri as u32, r)));
                write_object_iter(out, rows, |out, (ri, row)| write_leaves_stamp(out, style, c, (ti, ri), &row.cells, None));
            });
        });
    });
    out.push_str(",");
    write_leaves_stamp(out, style, c, (VALUES, 0), &c.values, None);
    out.push_str("]");
}

/// `getTransactionMergeableChanges`: the touched leaves with their current stamps. With
/// `stamped`, also what a merge stamped without a visible change (`track.stamped`), after them,
/// each table, row and leaf once: what an incremental persister must write.
pub(crate) fn write_transaction_changes<O: JsonOut + ?Sized>(out: &mut O, core: &Core, style: StampStyle, stamped: bool) {
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
    let extra = if stamped { core.track.stamped.as_deref() } else { None };
    if let Some(extra) = extra {
        add_stamped(c, extra, &mut tables);
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
                    write_stamp(out, style, table.row_hlc(ri), leaves.hash, |out| {
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
    write_stamp(out, style, c.values_hlc, c.values.hash, |out| {
        let stamped_values = extra.into_iter().flat_map(|e| e.values.iter().filter(|k| !core.track.values.contains_key(*k)));
        let items: Vec<(&str, _)> = core
            .track
            .values
            .keys()
            .chain(stamped_values)
            .filter_map(|k| c.values.map.get_full(k.as_str()).map(|(i, _, l)| (k.as_str(), (c.meta((VALUES, 0), i, l), l))))
            .collect();
        write_object(out, items, |out, (v, l)| write_leaf(out, style, v, l.hlc, l.hash));
    });
    out.push_str(",1]");
}

/// Adds the stamp-only tables, rows and leaves to the visibly changed ones (found by index,
/// so that a big stamp-only merge costs linear time), each once, in the order they were noted.
fn add_stamped(c: &Content, extra: &Stamped, tables: &mut Vec<(usize, Vec<(usize, Vec<usize>)>)>) {
    use std::collections::{HashMap, HashSet};
    let mut table_at: HashMap<usize, usize> = tables.iter().enumerate().map(|(i, e)| (e.0, i)).collect();
    let mut row_at: HashMap<(usize, usize), usize> = HashMap::new();
    let mut leaves: HashSet<(usize, usize, usize)> = HashSet::new();
    for (ti, rows) in tables.iter() {
        for (i, (ri, cells)) in rows.iter().enumerate() {
            row_at.insert((*ti, *ri), i);
            leaves.extend(cells.iter().map(|ci| (*ti, *ri, *ci)));
        }
    }
    let mut table = |tables: &mut Vec<(usize, Vec<(usize, Vec<usize>)>)>, t: &str| -> Option<(usize, usize)> {
        let ti = c.tables.get_index_of(t)?;
        let at = *table_at.entry(ti).or_insert_with(|| {
            tables.push((ti, Vec::new()));
            tables.len() - 1
        });
        Some((ti, at))
    };
    let mut row = |tables: &mut Vec<(usize, Vec<(usize, Vec<usize>)>)>, (ti, at): (usize, usize), r: &str| -> Option<(usize, usize)> {
        let ri = c.tables[ti].rows.get_index_of(r)?;
        let rows = &mut tables[at].1;
        let i = *row_at.entry((ti, ri)).or_insert_with(|| {
            rows.push((ri, Vec::new()));
            rows.len() - 1
        });
        Some((ri, i))
    };
    for (t, r, cell) in &extra.cells {
        let Some(tt) = table(tables, t) else { continue };
        let Some((ri, i)) = row(tables, tt, r) else { continue };
        let Some(ci) = c.tables[tt.0].rows[ri].cells.map.get_index_of(cell.as_str()) else { continue };
        if leaves.insert((tt.0, ri, ci)) {
            tables[tt.1].1[i].1.push(ci);
        }
    }
    for (t, r) in &extra.rows {
        if let Some(tt) = table(tables, t) {
            row(tables, tt, r);
        }
    }
    for t in &extra.tables {
        table(tables, t);
    }
}

/// Writes `{id: hash}` for a map of hashed nodes, in JavaScript key order.
pub(crate) fn write_hashes<O: JsonOut + ?Sized>(out: &mut O, items: Vec<(&str, u32)>) {
    write_object(out, items, |out, h| write_integer(out, h as i64));
}

/// A hash as TinyBase writes it: an integer from 0 to 2^32 - 1 (anything else is refused).
pub(crate) fn valid_hash(n: f64) -> Option<u32> {
    (n.fract() == 0.0 && (0.0..=4_294_967_295.0).contains(&n)).then_some(n as u32)
}

/// Reads `{id: hash}` (a hash map given to a diff method).
pub(crate) fn hash_map(json: &Json) -> Result<Vec<(Key, u32)>> {
    let obj = json.as_object().ok_or_else(|| Error::InvalidShape("hashes must be an object".into()))?;
    obj.iter()
        .map(|(k, v)| match v.as_f64().and_then(valid_hash) {
            Some(h) => Ok((Key::from(k.as_str()), h)),
            None => Err(Error::InvalidShape(format!("the hash of {k:?} must be an integer from 0 to 4294967295, not {v}"))),
        })
        .collect()
}

/// Reads `{id: {id: hash}}`.
pub(crate) fn hash_map2(json: &Json) -> Result<Vec<(Key, Vec<(Key, u32)>)>> {
    let obj = json.as_object().ok_or_else(|| Error::InvalidShape("hashes must be an object".into()))?;
    obj.iter().map(|(k, v)| Ok((Key::from(k.as_str()), hash_map(v)?))).collect()
}

/// Reads `{id: {id: {id: hash}}}`.
pub(crate) fn hash_map3(json: &Json) -> Result<Vec<(Key, Vec<(Key, Vec<(Key, u32)>)>)>> {
    let obj = json.as_object().ok_or_else(|| Error::InvalidShape("hashes must be an object".into()))?;
    obj.iter().map(|(k, v)| Ok((Key::from(k.as_str()), hash_map2(v)?))).collect()
}

/// The hash an id-hash list gives `id`, if it names it.
pub(crate) fn lookup(list: &[(Key, u32)], id: &str) -> Option<u32> {
    list.iter().rev().find(|(k, _)| k == id).map(|(_, h)| *h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Cell;
    use crate::MergeableStore;

    /// The content writer as it was before the streaming paths: collect, then `write_object`.
    fn write_content_reference<O: JsonOut + ?Sized>(out: &mut O, core: &Core, style: StampStyle) {
        fn leaves_ref<O: JsonOut + ?Sized>(out: &mut O, style: StampStyle, c: &Content, key: (u32, u32), leaves: &Leaves) {
            write_stamp(out, style, c.leaves_hlc_of(key), leaves.hash, |out| {
                let items: Vec<(&str, _)> =
                    leaves.map.iter().enumerate().map(|(i, (k, l))| (k.as_str(), (c.meta(key, i, l), l))).collect();
                write_object(out, items, |out, (v, l)| write_leaf(out, style, v, l.hlc, l.hash));
            });
        }
        let c = &core.content;
        out.push_str("[");
        write_stamp(out, style, c.tables_hlc, c.tables_hash, |out| {
            let tables: Vec<(&str, _)> = c.tables.iter().enumerate().map(|(ti, (k, t))| (k.as_str(), (ti as u32, t))).collect();
            write_object(out, tables, |out, (ti, table)| {
                write_stamp(out, style, table.hlc, table.hash, |out| {
                    let rows: Vec<(&str, _)> = table.rows.iter().enumerate().map(|(ri, (k, r))| (k.as_str(), (ri as u32, r))).collect();
                    write_object(out, rows, |out, (ri, row)| leaves_ref(out, style, c, (ti, ri), &row.cells));
                });
            });
        });
        out.push_str(",");
        leaves_ref(out, style, c, (VALUES, 0), &c.values);
        out.push_str("]");
    }

    /// A sink that is not a String (takes the generic paths).
    struct Plain(String);
    impl JsonOut for Plain {
        fn push_str(&mut self, s: &str) {
            self.0.push_str(s)
        }
    }

    #[test]
    fn content_writer_matches_reference() {
        let store = MergeableStore::with_clock(Some("w"), || 1_700_000_000_000.0);
        let cells: Vec<Cell> = vec![
            "plain".into(),
            "q\"uote\\".into(),
            "\u{1}ctl\n".into(),
            "é\u{2028}".into(),
            "".into(),
            1.5.into(),
            (-0.0).into(),
            1e21.into(),
            (-42).into(),
            0.into(),
            999_999_999_999_999.0.into(),
            1e15.into(),
            (-1e-7).into(),
            true.into(),
            false.into(),
            Cell::Null,
            Cell::from_json(&serde_json::json!({"b": 1, "a": [1, "x\"", null], "2": {"1": true}})).unwrap(),
            Cell::from_json(&serde_json::json!([[], {}, "\u{fffd}"])).unwrap(),
        ];
        let ids = ["t", "1", "0", "b\"q", "10", "é", "01", "x\ny", "4294967295", "4294967294", ""];
        let mut k = 0;
        for (ti, t) in ids.iter().enumerate() {
            for (ri, r) in ids.iter().enumerate().skip(ti % 3) {
                for c in ids.iter().skip(ri % 4).take(3) {
                    store.set_cell(t, r, c, cells[k % cells.len()].clone()).unwrap();
                    k += 1;
                }
            }
        }
        // A big table without integer-like ids, and one with a single integer-like id at the end.
        for i in 0..200 {
            store.set_cell("big", &format!("r{i}"), "c", i).unwrap();
            store.set_cell("late", &format!("r{i}"), &format!("c{}", i % 3), format!("v{i}").as_str()).unwrap();
        }
        store.set_cell("late", "7", "c", 1).unwrap();
        store.del_cell("t", "t", "t");
        store.del_cell("1", "1", "1");
        for (i, v) in ids.iter().enumerate() {
            store.set_value(v, cells[(i * 5) % cells.len()].clone()).unwrap();
        }
        store.del_value("t");
        for hashes in [true, false] {
            for wire in [true, false] {
                let style = StampStyle { hashes, wire };
                let (got, plain, want) = store.read(|core| {
                    let mut got = String::new();
                    write_content(&mut got, core, style);
                    let mut plain = Plain(String::new());
                    write_content(&mut plain, core, style);
                    let mut want = String::new();
                    write_content_reference(&mut want, core, style);
                    (got, plain.0, want)
                });
                for part in ["\u{FFFC}", "\\\"", "\\u0001", "\"4294967294\":", "\"late\":[{\"7\":", "-1e-7", "1e+21"] {
                    assert!(want.contains(part), "{part:?} not in the content");
                }
                assert_eq!(got, want, "hashes {hashes} wire {wire}");
                assert_eq!(plain, want, "hashes {hashes} wire {wire}");
            }
        }
    }

    #[test]
    fn hlc_json_is_its_text_quoted() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut hlcs = vec![Hlc::EMPTY, Hlc::new(0, 0, 0), Hlc::new((1 << 42) - 1, 0xFF_FFFF, 0x3FFF_FFFF)];
        for _ in 0..10_000 {
            hlcs.push(Hlc::new(next() & ((1 << 42) - 1), next() as u32 & 0xFF_FFFF, next() as u32 & 0x3FFF_FFFF));
        }
        for hlc in hlcs {
            let mut out = String::new();
            write_hlc(&mut out, hlc);
            assert_eq!(out, format!("\"{hlc}\""));
        }
    }
}
