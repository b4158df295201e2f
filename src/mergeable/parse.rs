//! A direct parser from MergeableContent / MergeableChanges JSON text to [`MergeIn`], without
//! building a `serde_json::Value` tree first.
//!
//! It accepts exactly what `value::parse_json` followed by `wire::parse_merge_in` accepts and
//! produces an identical [`MergeIn`]. Whenever it meets anything it does not accept (any syntax,
//! shape, value or HLC error, an HLC too far in the future), [`parse_merge_in_text`] runs that
//! reference path instead, so errors (their variant and message, and which of several problems is
//! reported) are exactly the reference's too. The fast path handles everything that is valid,
//! including JavaScript key order (integer-like keys first, ascending), duplicate keys (first
//! position, last value, as `JSON.parse`), any escapes, objects and arrays as leaf values.

use super::wire::{self, valid_hash, LeafIn, LeavesIn, MergeIn, StampIn, TableIn};
use crate::error::Result;
use crate::hlc::{Hlc, HLC_MAX_FUTURE_OFFSET};
use crate::json_lex::{LexError, Lexer};
use crate::store::tree::Key;
use crate::value::{js_key_order, parse_json, Stored, JSON_PREFIX, MAX_JSON_BYTES, UNDEFINED_MARKER};
use compact_str::CompactString;
use serde_json::Value as Json;

/// `value::parse_json`'s nesting limit (a value deeper than this is refused).
const MAX_DEPTH: usize = 256;

/// Validates and reads MergeableChanges/Content JSON text, exactly as
/// `wire::parse_merge_in(&parse_json(text)?, now(), hashes_required, wire)`; `now` is called once,
/// only when the text is valid JSON (as the reference path calls it).
pub(crate) fn parse_merge_in_text(text: &str, now: impl FnOnce() -> f64, hashes_required: bool, wire: bool) -> Result<MergeIn> {
    if let Ok((input, max_time)) = parse_fast(text, hashes_required, wire) {
        let now = now();
        match max_time {
            Some(t) if t as f64 > now + HLC_MAX_FUTURE_OFFSET => {}
            _ => return Ok(input),
        }
        return reference(text, now, hashes_required, wire);
    }
    let json = parse_json(text)?;
    wire::parse_merge_in(&json, now(), hashes_required, wire)
}

fn reference(text: &str, now: f64, hashes_required: bool, wire: bool) -> Result<MergeIn> {
    wire::parse_merge_in(&parse_json(text)?, now, hashes_required, wire)
}

/// The fast path refuses (the reference path then decides, and reports why).
#[derive(Debug)]
pub(crate) struct Bail;

type R<T> = std::result::Result<T, Bail>;

/// Parses without the future check; returns the input and the latest non-empty HLC time in it.
pub(crate) fn parse_fast(text: &str, hashes_required: bool, wire: bool) -> R<(MergeIn, Option<u64>)> {
    parse_changes(text, hashes_required, wire, false)
}

/// A ContentDiff body `[tables, values, 1]` checked as `message::parse_payload` checks it (stamps
/// without hashes, finite numbers) and read as `parse_merge_in_text(body, now, false, true)` reads
/// it, but for the future check (on the returned latest HLC time, when applied). None for anything
/// else, valid or not: the caller then takes the reference path, which decides and reports.
pub(crate) fn parse_diff_body(body: &str) -> Option<(MergeIn, Option<u64>)> {
    parse_changes(body, false, true, true).ok()
}

/// A table diff response `[tables, {}]` (no differing tables), checked as a ContentDiff body
/// is in [`parse_diff_body`]: its tables, their latest HLC time and the tables' byte range in
/// `body`. None for anything else (the caller takes the reference path).
pub(crate) fn parse_table_diff_body(body: &str) -> Option<(StampIn<Vec<(Key, TableIn)>>, Option<u64>, std::ops::Range<usize>)> {
    let mut p = Fast::new(body, false, true, true);
    let r: R<_> = (|| {
        p.ws();
        p.expect(b'[')?;
        p.ws();
        let start = p.i;
        let tables = p.tables()?;
        let end = p.i;
        p.ws();
        p.expect(b',')?;
        p.ws();
        p.expect(b'{')?;
        p.ws();
        p.expect(b'}')?;
        p.ws();
        p.expect(b']')?;
        p.ws();
        if p.i != p.b.len() {
            return Err(Bail);
        }
        Ok((tables, start..end))
    })();
    r.ok().map(|(tables, range)| (tables, p.max_time, range))
}

/// [`parse_fast`]; `protocol` adds `message::parse_payload`'s rules for a ContentDiff body
/// (stamps without hashes, finite numbers, the trailing 1) and refuses leaves that are objects or
/// arrays (their depth would count from the payload).
fn parse_changes(text: &str, hashes_required: bool, wire: bool, protocol: bool) -> R<(MergeIn, Option<u64>)> {
    if text.len() > MAX_JSON_BYTES {
        return Err(Bail);
    }
    let mut p = Fast::new(text, hashes_required, wire, protocol);
    p.ws();
    p.expect(b'[')?;
    p.ws();
    let tables = p.tables()?;
    p.ws();
    p.expect(b',')?;
    p.ws();
    let values = p.stamp(|p| p.object_in(cells_buf, |p| p.leaf(4)))?;
    p.ws();
    match p.next() {
        Some(b']') if !protocol => {}
        Some(b',') if !hashes_required => {
            p.ws();
            if p.number()? != 1.0 {
                return Err(Bail);
            }
            p.ws();
            p.expect(b']')?;
        }
        _ => return Err(Bail),
    }
    p.ws();
    if p.i != p.b.len() {
        return Err(Bail);
    }
    let tables: StampIn<Vec<(Key, TableIn)>> = tables;
    let values: LeavesIn = values;
    Ok((MergeIn { tables, values }, p.max_time))
}

struct Fast<'a> {
    lx: Lexer<'a>,
    hashes_required: bool,
    wire: bool,
    /// A protocol message's body: `message::parse_payload`'s rules too.
    protocol: bool,
    max_time: Option<u64>,
    /// Reused buffers for a table's rows and a row's cells: each object is read into one, then
    /// moved out at its exact size (no regrowing a big table's list row by row).
    rows: Vec<(Key, LeavesIn)>,
    cells: Vec<(Key, LeafIn)>,
}

fn rows_buf<'b>(p: &'b mut Fast<'_>) -> &'b mut Vec<(Key, LeavesIn)> {
    &mut p.rows
}

fn cells_buf<'b>(p: &'b mut Fast<'_>) -> &'b mut Vec<(Key, LeafIn)> {
    &mut p.cells
}

impl<'a> Fast<'a> {
    fn new(text: &'a str, hashes_required: bool, wire: bool, protocol: bool) -> Self {
        Fast { lx: Lexer::new(text), hashes_required, wire, protocol, max_time: None, rows: Vec::new(), cells: Vec::new() }
    }
}

impl<'a> std::ops::Deref for Fast<'a> {
    type Target = Lexer<'a>;
    #[inline]
    fn deref(&self) -> &Lexer<'a> {
        &self.lx
    }
}
impl std::ops::DerefMut for Fast<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.lx
    }
}

impl From<LexError> for Bail {
    #[inline]
    fn from(_: LexError) -> Bail {
        Bail
    }
}

impl Fast<'_> {
    #[inline]
    fn next(&mut self) -> Option<u8> {
        let c = self.b.get(self.i).copied();
        self.i += 1;
        c
    }

    #[inline]
    fn expect(&mut self, c: u8) -> R<()> {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// `[tables, hlc?]`, with leaf things at depth 8 as parse_json counts them (the top array is 0).
    fn tables(&mut self) -> R<StampIn<Vec<(Key, TableIn)>>> {
        self.stamp(|p| {
            p.object(|p| {
                p.stamp(|p| {
                    p.object_in(rows_buf, |p| {
                        p.stamp(|p| p.object_in(cells_buf, |p| p.leaf(8)))
                    })
                })
            })
        })
    }

    /// `[thing]`, `[thing, hlc]` or `[thing, hlc, hash]` (only the last when hashes are required).
    #[inline]
    fn stamp<T>(&mut self, thing: impl FnOnce(&mut Self) -> R<T>) -> R<StampIn<T>> {
        self.expect(b'[')?;
        self.ws();
        let thing = thing(self)?;
        self.ws();
        let hlc = match self.next() {
            Some(b']') if !self.hashes_required => Hlc::EMPTY,
            Some(b',') => {
                self.ws();
                let hlc = self.hlc()?;
                self.ws();
                match self.next() {
                    Some(b']') if !self.hashes_required => hlc,
                    Some(b',') if !self.protocol => {
                        self.ws();
                        if self.hashes_required {
                            if valid_hash(self.number()?).is_none() {
                                return Err(Bail);
                            }
                        } else {
                            // A hash in changes is only checked to be a number: no value needed.
                            self.skip_number()?;
                        }
                        self.ws();
                        self.expect(b']')?;
                        hlc
                    }
                    _ => return Err(Bail),
                }
            }
            _ => return Err(Bail),
        };
        Ok(StampIn { thing, hlc })
    }

    /// Checks a number as [`Lexer::number`] does without computing it when it is a plain
    /// integer (at most 300 digits: always finite); anything else goes through `number`.
    fn skip_number(&mut self) -> R<()> {
        let b = self.b;
        let mut j = self.i + (b.get(self.i) == Some(&b'-')) as usize;
        let digits = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let n = j - digits;
        if n > 0 && n <= 300 && !(n > 1 && b[digits] == b'0') && !matches!(b.get(j), Some(b'.' | b'e' | b'E')) {
            self.i = j;
            return Ok(());
        }
        self.number()?;
        Ok(())
    }

    fn hlc(&mut self) -> R<Hlc> {
        if self.b.get(self.i) != Some(&b'"') {
            return Err(Bail);
        }
        // The usual `"` + 16 alphabet characters + `"` decoded in place (no string); anything
        // else (escapes, other lengths) through the lexer and Hlc::parse.
        let fast = self.b.get(self.i + 1..self.i + 18).and_then(|w| {
            let (chars, end) = w.split_at(16);
            (end[0] == b'"').then(|| Hlc::from_chars(chars.try_into().expect("16 bytes"))).flatten()
        });
        let hlc = match fast {
            Some(hlc) => {
                self.i += 18;
                hlc
            }
            None => {
                let s = self.string()?;
                Hlc::parse(&s).map_err(|_| Bail)?
            }
        };
        if !hlc.is_empty() {
            let t = hlc.time();
            if self.max_time.is_none_or(|m| t > m) {
                self.max_time = Some(t);
            }
        }
        Ok(hlc)
    }

    /// `{id: value}` in JavaScript key order, duplicates resolved as `JSON.parse` does.
    fn object<T>(&mut self, value: impl FnMut(&mut Self) -> R<T>) -> R<Vec<(Key, T)>> {
        let mut out = Vec::new();
        self.object_into(&mut out, value)?;
        Ok(out)
    }

    /// [`Fast::object`] read into the buffer `buf` picks, then moved out at its exact length.
    fn object_in<T, C: FromIterator<(Key, T)>>(&mut self, buf: fn(&mut Self) -> &mut Vec<(Key, T)>, value: impl FnMut(&mut Self) -> R<T>) -> R<C> {
        let mut items = std::mem::take(buf(self));
        // Drained, not taken: the buffer keeps its capacity for the next object.
        #[allow(clippy::drain_collect)]
        let r = self.object_into(&mut items, value).map(|()| items.drain(..).collect());
        items.clear();
        *buf(self) = items;
        r
    }

    /// Reads `{id: value}` into `out` (empty on entry).
    fn object_into<T>(&mut self, out: &mut Vec<(Key, T)>, mut value: impl FnMut(&mut Self) -> R<T>) -> R<()> {
        self.expect(b'{')?;
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            if self.b.get(self.i) != Some(&b'"') {
                return Err(Bail);
            }
            let key = Key::from(&*self.string()?);
            self.ws();
            self.expect(b':')?;
            self.ws();
            let v = value(self)?;
            out.push((key, v));
            self.ws();
            match self.next() {
                Some(b',') => self.ws(),
                Some(b'}') => break,
                _ => return Err(Bail),
            }
        }
        js_object_order(out);
        Ok(())
    }

    /// A leaf stamp whose thing sits at `depth` (parse_json's count).
    fn leaf(&mut self, depth: usize) -> R<LeafIn> {
        self.stamp(|p| p.leaf_value(depth))
    }

    fn leaf_value(&mut self, depth: usize) -> R<Stored> {
        match self.b.get(self.i) {
            Some(b'"') => {
                let s = self.string()?;
                let mut chars = s.chars();
                match chars.next() {
                    Some(UNDEFINED_MARKER) if chars.as_str().is_empty() => Ok(Stored::Deleted),
                    Some(JSON_PREFIX) => {
                        if !self.wire {
                            return Err(Bail);
                        }
                        let text = chars.as_str();
                        match parse_json(text) {
                            Ok(Json::Object(_)) | Ok(Json::Array(_)) => Ok(Stored::Str(CompactString::from(&*s))),
                            _ => Err(Bail),
                        }
                    }
                    _ => Ok(Stored::Str(CompactString::from(&*s))),
                }
            }
            Some(b'-' | b'0'..=b'9') => match self.number()? {
                n if self.protocol && !n.is_finite() => Err(Bail),
                n => Ok(Stored::Num(n)),
            },
            Some(b't') => self.literal_as(b"true", Stored::Bool(true)),
            Some(b'f') => self.literal_as(b"false", Stored::Bool(false)),
            Some(b'n') => self.literal_as(b"null", Stored::Null),
            Some(b'{' | b'[') if !self.protocol => {
                // Rare: validate (with the document's depth), then encode as the reference does.
                let start = self.i;
                self.skip_value(depth)?;
                let json = parse_json(&self.s[start..self.i]).map_err(|_| Bail)?;
                let stored = if self.wire { Stored::from_json_wire(&json) } else { Stored::from_json_api(&json, true) };
                stored.map_err(|_| Bail)
            }
            _ => Err(Bail),
        }
    }

    fn literal_as<T>(&mut self, word: &[u8], v: T) -> R<T> {
        self.literal(word)?;
        Ok(v)
    }

    /// Checks any JSON value at `depth` as parse_json would.
    fn skip_value(&mut self, depth: usize) -> R<()> {
        if depth > MAX_DEPTH {
            return Err(Bail);
        }
        match self.b.get(self.i) {
            Some(b'"') => Ok(self.string().map(|_| ())?),
            Some(b'-' | b'0'..=b'9') => Ok(self.number().map(|_| ())?),
            Some(b't') => self.literal_as(b"true", ()),
            Some(b'f') => self.literal_as(b"false", ()),
            Some(b'n') => self.literal_as(b"null", ()),
            Some(b'[') => {
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.next() {
                        Some(b',') => {}
                        Some(b']') => return Ok(()),
                        _ => return Err(Bail),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return Err(Bail);
                    }
                    self.string()?;
                    self.ws();
                    self.expect(b':')?;
                    self.ws();
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.next() {
                        Some(b',') => {}
                        Some(b'}') => return Ok(()),
                        _ => return Err(Bail),
                    }
                }
            }
            _ => Err(Bail),
        }
    }
}

/// Orders an object's entries as `JSON.parse` leaves them: a duplicate key keeps its first
/// position and takes its last value; then integer-like keys first, ascending.
fn js_object_order<T>(items: &mut Vec<(Key, T)>) {
    let n = items.len();
    if n < 2 {
        return;
    }
    let has_dup = if n <= 16 {
        (1..n).any(|j| items[..j].iter().any(|(k, _)| *k == items[j].0))
    } else {
        let mut seen: std::collections::HashSet<&str, foldhash::fast::FixedState> =
            std::collections::HashSet::with_capacity_and_hasher(n, Default::default());
        !items.iter().all(|(k, _)| seen.insert(k.as_str()))
    };
    if has_dup {
        let mut map: indexmap::IndexMap<Key, T, foldhash::fast::FixedState> = indexmap::IndexMap::with_capacity_and_hasher(n, Default::default());
        for (k, v) in items.drain(..) {
            // IndexMap::insert keeps an existing key's position and replaces its value.
            map.insert(k, v);
        }
        items.extend(map);
    }
    js_key_order(items, |e| e.0.as_str());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn reference_result(text: &str, now: f64, hashes_required: bool, wire: bool) -> Result<MergeIn> {
        let json = parse_json(text)?;
        wire::parse_merge_in(&json, now, hashes_required, wire)
    }

    fn variant(e: &Error) -> std::mem::Discriminant<Error> {
        std::mem::discriminant(e)
    }

    /// Both parsers on one input, every mode; returns how many inputs the fast path accepted.
    fn check(text: &str) -> usize {
        let mut accepted = 0;
        for &hashes_required in &[false, true] {
            for &wire in &[true, false] {
                for &now in &[1_700_000_000_000.0, 0.0, 1e15] {
                    let want = reference_result(text, now, hashes_required, wire);
                    let got = parse_merge_in_text(text, || now, hashes_required, wire);
                    assert_eq!(format!("{got:?}"), format!("{want:?}"), "{text:?} hashes {hashes_required} wire {wire} now {now}");
                    // The fast path alone: whatever it accepts, the reference accepts identically
                    // (bar the future check, done afterwards); what it refuses, the reference
                    // refuses too, unless a duplicate key dropped the offending part.
                    match parse_fast(text, hashes_required, wire) {
                        Ok((input, max_time)) => {
                            accepted += 1;
                            let future = max_time.is_some_and(|t| t as f64 > now + HLC_MAX_FUTURE_OFFSET);
                            match &want {
                                Ok(w) => {
                                    assert!(!future, "{text:?}");
                                    assert_eq!(format!("{input:?}"), format!("{w:?}"), "{text:?}");
                                }
                                Err(e) => {
                                    assert!(future, "fast accepted {text:?} ({hashes_required} {wire}), reference: {e:?}");
                                    assert_eq!(variant(e), variant(&Error::InvalidHlc(String::new())));
                                }
                            }
                        }
                        Err(Bail) => {
                            if want.is_ok() {
                                assert!(has_duplicate_keys(text), "fast refused valid {text:?} ({hashes_required} {wire})");
                            }
                        }
                    }
                }
            }
        }
        accepted
    }

    fn has_duplicate_keys(text: &str) -> bool {
        // parse_json merges duplicates, so look at the raw text: any object with a repeated key.
        let mut keys: Vec<Vec<String>> = Vec::new();
        let b = text.as_bytes();
        let mut i = 0;
        let mut stack: Vec<bool> = Vec::new();
        while i < b.len() {
            match b[i] {
                b'{' => {
                    stack.push(true);
                    keys.push(Vec::new());
                }
                b'[' => stack.push(false),
                b'}' => {
                    stack.pop();
                    let k = keys.pop().unwrap_or_default();
                    let mut sorted = k.clone();
                    sorted.sort();
                    sorted.dedup();
                    if sorted.len() != k.len() {
                        return true;
                    }
                }
                b']' => {
                    stack.pop();
                }
                b'"' => {
                    let start = i;
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        if b[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                    let s = &text[start..(i + 1).min(text.len())];
                    let mut j = i + 1;
                    while j < b.len() && b[j] == b' ' {
                        j += 1;
                    }
                    if stack.last() == Some(&true) && b.get(j) == Some(&b':') {
                        if let Some(k) = keys.last_mut() {
                            k.push(parse_json(s).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default());
                        }
                    }
                }
                _ => {}
            }
            i += 1;
        }
        false
    }

    fn collect_inputs(json: &Json, out: &mut Vec<String>) {
        match json {
            Json::String(s) if s.starts_with('[') => out.push(s.clone()),
            Json::Array(a) => {
                if a.len() >= 2 && a.len() <= 3 && a[0].is_array() {
                    out.push(crate::value::to_json_string(json));
                }
                a.iter().for_each(|v| collect_inputs(v, out));
            }
            Json::Object(m) => m.values().for_each(|v| collect_inputs(v, out)),
            _ => {}
        }
    }

    fn corpus() -> Vec<String> {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut out = Vec::new();
        for dir in ["tests/vectors", "tests/conformance/public"] {
            let Ok(entries) = std::fs::read_dir(format!("{root}/{dir}")) else { continue };
            let mut paths: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                if p.extension().is_some_and(|e| e == "json") {
                    let text = std::fs::read_to_string(&p).expect("read");
                    if let Ok(j) = parse_json(&text) {
                        collect_inputs(&j, &mut out);
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn handcrafted() -> Vec<String> {
        let h = "NjEtLV0----6YM_I";
        let future = "zzzzzzzzzzzzzzzz";
        let mut v: Vec<String> = [
            r#"[[{}],[{}]]"#,
            r#"[[{}],[{}],1]"#,
            r#"[[{}],[{}],1.0]"#,
            r#"[[{}],[{}],1e0]"#,
            r#"[[{}],[{}],2]"#,
            r#"[[{}],[{}],"1"]"#,
            r#"[[{}],[{}],1,1]"#,
            r#"[[{}]]"#,
            r#"[]"#,
            r#"{}"#,
            r#""#,
            r#" [ [ { } , "" , 0 ] , [ { } , "" , 0 ] ] "#,
            "\t[[{},\"\",0],[{},\"\",0]]\n",
            r#"[[{},"",0],[{},"",0]]x"#,
            r#"[[{},"",0],[{},"",0]"#,
            r#"[[{},"",0],[{},"",-0]]"#,
            r#"[[{},"",4294967297.7],[{},"",-1]]"#,
            r#"[[{},"",1e400],[{},"",0]]"#,
            r#"[[{},"",1e300],[{},"",-1e300]]"#,
            r#"[[{},"",0.5e-400],[{},"",NaN]]"#,
            r#"[[{},"",01],[{},"",0]]"#,
            r#"[[{},"",1.],[{},"",0]]"#,
            r#"[[{},"",1.5E+3],[{},"",123456789012345678901234567890]]"#,
            r#"[[{},"",0],[{},"",0],1]"#,
            r#"[[{},"",0,1],[{},"",0]]"#,
            r#"[[{},""],[{}]]"#,
            r#"[[{},1],[{}]]"#,
            r#"[[{},"",""],[{}]]"#,
            r#"[[[]],[{}]]"#,
            r#"[[],[{}]]"#,
            r#"[[{"t":[{}]}],[{}]]"#,
            r#"[[{"t":[[]]}],[{}]]"#,
            r#"[[{"t":{}}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":[1]}]}]}],[{"v":[true],"w":[false],"x":[null]}]]"#,
            r#"[[{"t":[{"r":[{"c":[tru]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":[]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":"x"}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":["\uFFFC"]}]}]}],[{"v":["￼"]}]]"#,
            r#"[[{"t":[{"r":[{"c":["￼x"]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":["\uFFFD{\"a\":1}"]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":["�[1,2]"]}]}]}],[{"v":["�{}"]}]]"#,
            r#"[[{"t":[{"r":[{"c":["�[1,2"]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":["�\"s\""]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":["�"]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":[{"b":1,"a":[1,{"2":0,"1":1}],"10":2}]}]}]}],[{"v":[[1,"x",null]]}]]"#,
            r#"[[{"t":[{"r":[{"c":[{"a":1,"a":2}]}]}]}],[{"v":[[ ]],"w":[{ }]}]]"#,
            r#"[[{"t":[{"r":[{"c":[{"a":1,}]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":[[1,]]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":["a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\ud83d\ude00"]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":["\ud83d"]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":["\ud83dx"]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":["\ude00"]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":["\ud83d\u0041"]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":["\u+041"]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":["\u004"]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":["\x"]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":["\u00e9\u00E9"]}]}]}],[{"\u0076":[1]}]]"#,
            r#"[[{"t":[{"r":[{"c":[-0]}]}]}],[{"a":[-0.0],"b":[1e-7],"c":[-12.5e3],"d":[9007199254740993]}]]"#,
            r#"[[{"t":[{"r":[{"c":[1e309]}]}]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":[-]}]}]}],[{}]]"#,
            r#"[[{"b":[{}],"a":[{}],"10":[{}],"2":[{}],"01":[{}],"4294967295":[{}],"4294967294":[{}]}],[{}]]"#,
            r#"[[{"b":[{"x":[{"1":[1],"0":[0]}]}],"b":[{"y":[{}]}]}],[{"z":[1],"a":[2],"z":[3]}]]"#,
            r#"[[{"b":[5],"b":[{"y":[{}]}]}],[{}]]"#,
            r#"[[{"b":[{"y":[{}]}],"b":[5]}],[{}]]"#,
            r#"[[{"t":[{"r":[{"c":[1],"c":["x"],"3":[2],"1":[3],"3":[4]}]}]}],[{}]]"#,
            r#"[[{"":[{"":[{"":[""]}]}]}],[{"":[""]}]]"#,
            r#"[[{"t" : [ { "r" : [ { "c" : [ 1 , "" , 0 ] } , "" , 0 ] } , "" , 0 ] } , "" , 0 ] , [ { } , "" , 0 ] ]"#,
            r#"[[{"t":[{"r":[{"c":["a	b"]}]}]}],[{}]]"#,
            r#"[[{t:[{}]}],[{}]]"#,
            r#"[[{"t"[{}]}],[{}]]"#,
            r#"[[{"t":[{}] "u":[{}]}],[{}]]"#,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for hlc in [h, future, "", "short", "NjEtLV0----6YM_!", "NjEtLV0----6YM_I7"] {
            v.push(format!(r#"[[{{"t":[{{"r":[{{"c":[1,"{hlc}"]}},"{h}"]}},"{h}",3]}},"{h}"],[{{"v":[1,"{hlc}",5]}},"",0]]"#));
            v.push(format!(r#"[[{{"t":[{{"r":[{{"c":[1,"{h}",1]}},"{h}",2]}},"{h}",3]}},"{hlc}",4],[{{}},"",0]]"#));
            v.push(format!(r#"[[{{"t":[{{"r":[{{"c":[1,"{hlc}",1]}},"{h}",2]}},"{h}",3]}},"{h}",4],[{{}},"",0],1]"#));
        }
        // Deep nesting inside a leaf, around the depth limit.
        for n in [240, 247, 248, 249, 250, 300] {
            v.push(format!(r#"[[{{"t":[{{"r":[{{"c":[{}{}]}}]}}]}}],[{{}}]]"#, "[".repeat(n), "]".repeat(n)));
            v.push(format!(r#"[[{{}}],[{{"v":[{}{}]}}]]"#, "[".repeat(n), "]".repeat(n)));
            v.push(format!(r#"[[{{"t":[{{"r":[{{"c":["\uFFFD{}{}"]}}]}}]}}],[{{}}]]"#, "[".repeat(n), "]".repeat(n)));
        }
        // Many keys (the hashed duplicate check).
        let rows: Vec<String> = (0..40).map(|i| format!(r#""r{}":[{{"c":[{i}]}}]"#, i % 37)).collect();
        v.push(format!(r#"[[{{"t":[{{{}}}]}}],[{{}}]]"#, rows.join(",")));
        let rows: Vec<String> = (0..40).map(|i| format!(r#""{}":[{{"c":[{i}]}}]"#, 40 - i)).collect();
        v.push(format!(r#"[[{{"t":[{{{}}}]}}],[{{}}]]"#, rows.join(",")));
        v
    }

    /// Inputs and damaged variants of them (truncations, single-byte changes).
    fn with_damage(text: &str) -> Vec<String> {
        let mut out = vec![text.to_string()];
        let b = text.as_bytes();
        let step = (b.len() / 7).max(1);
        for cut in (0..b.len()).step_by(step) {
            if text.is_char_boundary(cut) {
                out.push(text[..cut].to_string());
            }
            for repl in [b'x', b'"', b',', b']', b'}', b'1', b'-', b' '] {
                if b[cut].is_ascii() {
                    let mut m = b.to_vec();
                    m[cut] = repl;
                    out.extend(String::from_utf8(m).ok());
                }
            }
        }
        out
    }

    #[test]
    fn protocol_readers_accept_only_what_parse_payload_and_the_reference_accept() {
        // A synchronizer reads ContentDiff bodies and table diffs with these readers and takes
        // the tree path for whatever they refuse: what they accept must be a valid message
        // (`parse_payload`) read into the same changes as the tree path reads it.
        use crate::sync::message::parse_payload;
        let now = 1e16;
        let mut inputs = corpus();
        inputs.extend(handcrafted());
        let (mut diffs, mut tables) = (0, 0);
        for text in &inputs {
            let table_diff = parse_json(text).ok().and_then(|j| j.get(0).map(|t| format!("[{},{{}}]", crate::value::to_json_string(t))));
            for body in with_damage(text) {
                if let Some((input, _)) = parse_diff_body(&body) {
                    diffs += 1;
                    let received = parse_payload(&format!("[\"i\",3,{body}]")).unwrap_or_else(|e| panic!("{body:?}: {e}"));
                    let want = wire::parse_merge_in(&received.body, now, false, true).unwrap_or_else(|e| panic!("{body:?}: {e}"));
                    assert_eq!(format!("{input:?}"), format!("{want:?}"), "{body:?}");
                }
            }
            for body in table_diff.iter().flat_map(|t| with_damage(t)) {
                if let Some((t, _, range)) = parse_table_diff_body(&body) {
                    tables += 1;
                    let received = parse_payload(&format!("[null,0,{body}]")).unwrap_or_else(|e| panic!("{body:?}: {e}"));
                    let changes = Json::Array(vec![received.body[0].clone(), parse_json("[{}]").unwrap(), Json::from(1)]);
                    let want = wire::parse_merge_in(&changes, now, false, true).unwrap_or_else(|e| panic!("{body:?}: {e}"));
                    assert_eq!(format!("{t:?}"), format!("{:?}", want.tables), "{body:?}");
                    assert!(want.values.thing.is_empty() && want.values.hlc.is_empty());
                    assert_eq!(parse_json(&body[range]).ok().as_ref(), received.body.get(0), "{body:?}");
                }
            }
        }
        assert!(diffs >= 5 && tables >= 5, "accepted {diffs} bodies and {tables} table diffs");
    }

    #[test]
    fn fast_parser_matches_reference() {
        let mut inputs = corpus();
        assert!(inputs.len() > 50, "corpus has {} inputs", inputs.len());
        inputs.extend(handcrafted());
        let mut accepted = 0;
        let mut checked = 0;
        for text in &inputs {
            // The input itself first, then its damaged variants.
            for (i, variant) in with_damage(text).iter().enumerate() {
                let n = check(variant);
                if i == 0 {
                    accepted += n;
                }
                checked += 1;
            }
        }
        eprintln!("fast path accepted {accepted} of {checked} mode runs / inputs ({} base inputs)", inputs.len());
        assert!(accepted > 100, "fast path accepted only {accepted} of {checked}");
    }
}
