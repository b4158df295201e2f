//! Cells and values, and JSON exactly as JavaScript writes and reads it.
//!
//! TinyBase hashes and sends JSON text produced by `JSON.stringify`, so the
//! number formatting, string escaping and object key order here follow
//! JavaScript, not serde_json's defaults.

use crate::error::{Error, Result};
use crate::json_lex::{LexError, Lexer};
use compact_str::CompactString;
use serde_json::{Map, Number, Value as Json};

/// The marker TinyBase's JSON layer writes for `undefined` (a deleted cell or value).
pub const UNDEFINED_MARKER: char = '\u{FFFC}';
/// The prefix of an object or array cell held in its encoded (JSON string) form.
pub const JSON_PREFIX: char = '\u{FFFD}';
const JSON_PREFIX_STR: &str = "\u{FFFD}";
const UNDEFINED_STR: &str = "\u{FFFC}";

/// Largest JSON text the parser accepts (transports apply their own, smaller limits).
pub const MAX_JSON_BYTES: usize = 1 << 30;
const MAX_DEPTH: usize = 256;

/// A cell or value: string, finite number, boolean, null, object or array.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// A string (not exactly U+FFFC, not starting with U+FFFD).
    String(String),
    /// A finite number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// JSON null: a real value, different from a deleted cell.
    Null,
    /// A plain object (held in the store as its JSON text).
    Object(Map<String, Json>),
    /// An array (held in the store as its JSON text).
    Array(Vec<Json>),
}

/// Values in the key-value half of a store have the same types as cells.
pub type Value = Cell;

/// What `set_cell` and `set_value` take: anything a [`Cell`] is made from (`&str`, `String`,
/// numbers, `bool`, a `Cell` or `&Cell`). A borrowed string is copied once, straight into the
/// store, with no `String` made and freed on the way.
#[derive(Clone, Debug)]
pub struct CellArg<'a>(CellArgInner<'a>);

#[derive(Clone, Debug)]
enum CellArgInner<'a> {
    Str(&'a str),
    Owned(Cell),
    Ref(&'a Cell),
}

impl CellArg<'_> {
    /// Validates and encodes the argument as the store holds it.
    pub(crate) fn into_stored(self) -> Result<Stored> {
        match self.0 {
            CellArgInner::Str(s) => Stored::from_str_cell(s),
            CellArgInner::Owned(c) => Stored::from_cell(&c),
            CellArgInner::Ref(c) => Stored::from_cell(c),
        }
    }
}

impl<'a> From<&'a str> for CellArg<'a> {
    fn from(s: &'a str) -> Self {
        CellArg(CellArgInner::Str(s))
    }
}
impl<'a> From<&'a String> for CellArg<'a> {
    fn from(s: &'a String) -> Self {
        CellArg(CellArgInner::Str(s))
    }
}
impl<'a> From<&'a Cell> for CellArg<'a> {
    fn from(c: &'a Cell) -> Self {
        CellArg(CellArgInner::Ref(c))
    }
}
impl From<Cell> for CellArg<'_> {
    fn from(c: Cell) -> Self {
        CellArg(CellArgInner::Owned(c))
    }
}
macro_rules! cell_arg_from_owned {
    ($($t:ty),*) => {$(
        impl From<$t> for CellArg<'_> {
            fn from(v: $t) -> Self {
                CellArg(CellArgInner::Owned(Cell::from(v)))
            }
        }
    )*};
}
cell_arg_from_owned!(String, f64, i64, i32, bool);

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::String(s.to_string())
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::String(s)
    }
}
impl From<f64> for Cell {
    fn from(n: f64) -> Self {
        Cell::Number(n)
    }
}
impl From<i64> for Cell {
    fn from(n: i64) -> Self {
        Cell::Number(n as f64)
    }
}
impl From<i32> for Cell {
    fn from(n: i32) -> Self {
        Cell::Number(n as f64)
    }
}
impl From<bool> for Cell {
    fn from(b: bool) -> Self {
        Cell::Bool(b)
    }
}

impl Cell {
    /// Converts a JSON value into a cell (objects and arrays kept as such).
    pub fn from_json(json: &Json) -> Result<Cell> {
        Ok(match json {
            Json::Null => Cell::Null,
            Json::Bool(b) => Cell::Bool(*b),
            Json::Number(n) => Cell::Number(number_to_f64(n)),
            Json::String(s) => Cell::String(s.clone()),
            Json::Object(m) => Cell::Object(m.clone()),
            Json::Array(a) => Cell::Array(a.clone()),
        })
    }

    /// This cell as a JSON value.
    pub fn to_json(&self) -> Json {
        match self {
            Cell::String(s) => Json::String(s.clone()),
            Cell::Number(n) => f64_to_json(*n),
            Cell::Bool(b) => Json::Bool(*b),
            Cell::Null => Json::Null,
            Cell::Object(m) => Json::Object(m.clone()),
            Cell::Array(a) => Json::Array(a.clone()),
        }
    }

    /// Name of this cell's type, as TinyBase's `getCellOrValueType` names it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Cell::String(_) => "string",
            Cell::Number(_) => "number",
            Cell::Bool(_) => "boolean",
            Cell::Null => "null",
            Cell::Object(_) => "object",
            Cell::Array(_) => "array",
        }
    }
}

/// A number from JSON as an IEEE double, as JavaScript reads it.
pub fn number_to_f64(n: &Number) -> f64 {
    n.as_f64().unwrap_or(0.0)
}

/// A finite double as a JSON number (non-finite becomes null, as in JSON.stringify).
pub fn f64_to_json(n: f64) -> Json {
    Number::from_f64(n).map(Json::Number).unwrap_or(Json::Null)
}

/// A cell or value as the store holds it: objects and arrays as their JSON text.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Stored {
    Str(CompactString),
    Num(f64),
    Bool(bool),
    Null,
    /// A tombstone (TinyBase's `undefined`).
    Deleted,
}

impl Stored {
    pub(crate) fn is_deleted(&self) -> bool {
        matches!(self, Stored::Deleted)
    }

    /// Whether this is an object or array cell (held as U+FFFD ++ JSON text, as TinyBase does).
    pub(crate) fn is_json(&self) -> bool {
        matches!(self, Stored::Str(s) if s.starts_with(JSON_PREFIX))
    }

    /// Identity as TinyBase's `!==` on stored values sees it (numbers by value, -0 == 0).
    pub(crate) fn same(&self, other: &Stored) -> bool {
        match (self, other) {
            (Stored::Num(a), Stored::Num(b)) => a == b,
            _ => self == other,
        }
    }

    /// Validates and encodes a string cell from the public API, with no [`Cell`] on the way
    /// (the C API's setters take strings as they come).
    pub(crate) fn from_str_cell(s: &str) -> Result<Stored> {
        if s == UNDEFINED_STR || s.starts_with(JSON_PREFIX) {
            return Err(Error::InvalidValue("strings equal to U+FFFC or starting with U+FFFD are reserved".into()));
        }
        Ok(Stored::Str(CompactString::from(s)))
    }

    /// Validates and encodes a cell from the public API.
    pub(crate) fn from_cell(cell: &Cell) -> Result<Stored> {
        Ok(match cell {
            Cell::String(s) => return Stored::from_str_cell(s),
            Cell::Number(n) => {
                if !n.is_finite() {
                    return Err(Error::InvalidValue(format!("number {n} is not finite")));
                }
                Stored::Num(*n)
            }
            Cell::Bool(b) => Stored::Bool(*b),
            Cell::Null => Stored::Null,
            Cell::Object(m) => {
                let mut out = String::from(JSON_PREFIX_STR);
                write_json_object(&mut out, m);
                Stored::Str(out.into())
            }
            Cell::Array(a) => {
                let mut out = String::from(JSON_PREFIX_STR);
                write_json_array(&mut out, a);
                Stored::Str(out.into())
            }
        })
    }

    /// Reads a cell from JSON given to the public API (decoded form: objects are objects).
    /// The string U+FFFC is the undefined marker and becomes a deletion when `allow_deleted`.
    pub(crate) fn from_json_api(json: &Json, allow_deleted: bool) -> Result<Stored> {
        match json {
            Json::String(s) if s == UNDEFINED_STR && allow_deleted => Ok(Stored::Deleted),
            _ => Stored::from_cell(&Cell::from_json(json)?),
        }
    }

    /// Reads a cell in wire (encoded) form: objects and arrays arrive as U+FFFD-prefixed strings,
    /// kept verbatim; U+FFFC is a deletion.
    pub(crate) fn from_json_wire(json: &Json) -> Result<Stored> {
        match json {
            Json::String(s) if s == UNDEFINED_STR => Ok(Stored::Deleted),
            Json::String(s) if s.starts_with(JSON_PREFIX) => {
                let text = &s[JSON_PREFIX.len_utf8()..];
                match parse_json(text) {
                    Ok(Json::Object(_)) | Ok(Json::Array(_)) => Ok(Stored::Str(CompactString::from(s.as_str()))),
                    _ => Err(Error::InvalidValue(
                        "a U+FFFD-prefixed string must hold a JSON object or array".into(),
                    )),
                }
            }
            Json::String(s) => Ok(Stored::Str(CompactString::from(s.as_str()))),
            Json::Number(n) => Ok(Stored::Num(number_to_f64(n))),
            Json::Bool(b) => Ok(Stored::Bool(*b)),
            Json::Null => Ok(Stored::Null),
            Json::Object(_) | Json::Array(_) => Stored::from_json_api(json, false),
        }
    }

    /// The public cell (objects and arrays decoded); None for a tombstone.
    pub(crate) fn to_cell(&self) -> Option<Cell> {
        Some(match self {
            Stored::Str(s) => match s.strip_prefix(JSON_PREFIX) {
                Some(text) => match parse_json(text) {
                    Ok(Json::Object(m)) => Cell::Object(m),
                    Ok(Json::Array(a)) => Cell::Array(a),
                    _ => Cell::Null,
                },
                None => Cell::String(s.to_string()),
            },
            Stored::Num(n) => Cell::Number(*n),
            Stored::Bool(b) => Cell::Bool(*b),
            Stored::Null => Cell::Null,
            Stored::Deleted => return None,
        })
    }

    /// Writes the JSON of this value: `wire` keeps objects as U+FFFD strings and writes deletions
    /// as the U+FFFC marker; otherwise objects are written as JSON and deletions as the marker too.
    pub(crate) fn write_json<O: JsonOut + ?Sized>(&self, out: &mut O, wire: bool) {
        match self {
            Stored::Str(s) => match s.strip_prefix(JSON_PREFIX) {
                // Decoded, an object or array is written as TinyBase's JSON.stringify writes the
                // parsed value (JavaScript key order and numbers), whatever text a peer sent; the
                // text itself stays for the wire and the hash, which TinyBase takes as received.
                Some(text) if !wire => match parse_json(text) {
                    Ok(json) => write_json(out, &json),
                    Err(_) => out.push_str(text),
                },
                _ => write_js_string(out, s),
            },
            Stored::Num(n) => write_js_number(out, *n),
            Stored::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Stored::Null => out.push_str("null"),
            Stored::Deleted => write_js_string(out, UNDEFINED_STR),
        }
    }

    /// Writes what TinyBase hashes: `JSON.stringify(storedValue ?? null)`.
    pub(crate) fn write_hash_input<O: JsonOut + ?Sized>(&self, out: &mut O) {
        match self {
            Stored::Deleted => out.push_str("null"),
            _ => self.write_json(out, true),
        }
    }
}

/// A sink for JSON text: a String, or a hasher that consumes the bytes.
pub trait JsonOut {
    /// Appends text.
    fn push_str(&mut self, s: &str);
    /// A hint that about `additional` more bytes will be appended (nothing by default).
    #[inline]
    fn reserve(&mut self, additional: usize) {
        let _ = additional;
    }
    /// The sink as a String, for writers with a faster path into one (None by default).
    #[inline]
    fn as_string(&mut self) -> Option<&mut String> {
        None
    }
}

impl JsonOut for String {
    #[inline]
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s)
    }
    #[inline]
    fn reserve(&mut self, additional: usize) {
        String::reserve(self, additional)
    }
    #[inline]
    fn as_string(&mut self) -> Option<&mut String> {
        Some(self)
    }
}

/// Writes a finite double as JavaScript's Number-to-String does (`-0` as `0`).
pub fn write_js_number<O: JsonOut + ?Sized>(out: &mut O, n: f64) {
    if n == 0.0 {
        out.push_str("0");
    } else if !n.is_finite() {
        out.push_str("null");
    } else if n.fract() == 0.0 && n.abs() < 1e15 {
        write_integer(out, n as i64);
    } else {
        let mut buffer = ryu_js::Buffer::new();
        out.push_str(buffer.format_finite(n));
    }
}

/// Two decimal digits for each of 0..100.
pub(crate) const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// ASCII bytes as text, without a UTF-8 validation call on the hot paths.
#[inline]
fn ascii_str(bytes: &[u8]) -> &str {
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8 (checked just above).
        unsafe { std::str::from_utf8_unchecked(bytes) }
    } else {
        std::str::from_utf8(bytes).unwrap_or("")
    }
}

/// Defines a writer of the decimal digits of an unsigned integer at the end of a buffer (two at a
/// time), returning where they start: one body for u64 and u32 (32-bit divisions are cheaper).
macro_rules! decimal_digits_fn {
    ($(#[$doc:meta])* $name:ident, $t:ty, $len:expr) => {
        $(#[$doc])*
        #[inline]
        pub(crate) fn $name(mut v: $t, buf: &mut [u8; $len]) -> usize {
            let mut i = buf.len();
            while v >= 100 {
                let d = (v % 100) as usize * 2;
                v /= 100;
                i -= 2;
                buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
            }
            if v >= 10 {
                let d = v as usize * 2;
                i -= 2;
                buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
            } else {
                i -= 1;
                buf[i] = b'0' + v as u8;
            }
            i
        }
    };
}

decimal_digits_fn!(
    /// Writes the decimal digits of `v` at the end of `buf`; returns where they start. The one
    /// digit writer behind JSON integers and wire-form hashes.
    decimal_digits, u64, 20
);
decimal_digits_fn!(
    /// [`decimal_digits`] for a u32 (hash-tree terms).
    decimal_digits_u32, u32, 10
);

/// Writes an integer in decimal without allocating.
#[inline]
pub(crate) fn write_integer<O: JsonOut + ?Sized>(out: &mut O, n: i64) {
    let mut buf = [0u8; 20];
    let mut i = decimal_digits(n.unsigned_abs(), &mut buf);
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    // SAFETY: only ASCII digits and '-' were written to buf[i..]. (Not `ascii_str`: re-reading the
    // bytes just stored one by one stalls on store forwarding.)
    out.push_str(unsafe { std::str::from_utf8_unchecked(&buf[i..]) });
}

/// JavaScript's Number-to-String of a finite double.
pub fn js_number_string(n: f64) -> String {
    let mut s = String::new();
    write_js_number(&mut s, n);
    s
}

/// Writes a string as `JSON.stringify` does (quotes included).
#[inline]
pub fn write_js_string<O: JsonOut + ?Sized>(out: &mut O, s: &str) {
    out.push_str("\"");
    write_js_string_body(out, s);
    out.push_str("\"");
}

/// Whether a byte must be escaped in a JSON string (`"`, `\\`, control characters).
#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

#[inline]
fn write_js_string_body<O: JsonOut + ?Sized>(out: &mut O, s: &str) {
    // Most strings (ids, short values) need no escape: one copy.
    if !s.bytes().any(needs_escape) {
        out.push_str(s);
        return;
    }
    write_js_string_escaped(out, s);
}

#[cold]
fn write_js_string_escaped<O: JsonOut + ?Sized>(out: &mut O, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        if start < i {
            out.push_str(&s[start..i]);
        }
        match escape {
            Some(e) => out.push_str(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let esc = [b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]];
                out.push_str(ascii_str(&esc));
            }
        }
        start = i + 1;
    }
    if start < bytes.len() {
        out.push_str(&s[start..]);
    }
}

/// Whether a property key is an array index, which JavaScript orders first, numerically.
pub fn is_integer_key(key: &str) -> Option<u32> {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 10 || (b[0] == b'0' && b.len() > 1) {
        return None;
    }
    if !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = key.parse().ok()?;
    if n <= 4_294_967_294 {
        Some(n as u32)
    } else {
        None
    }
}

/// Reorders keys as a JavaScript object iterates them: integer-like keys ascending, then the rest
/// in their given order.
pub fn js_key_order<T, F: Fn(&T) -> &str>(items: &mut [T], key: F) {
    if items.iter().any(|t| is_integer_key(key(t)).is_some()) {
        items.sort_by_key(|t| match is_integer_key(key(t)) {
            Some(n) => (0u8, n),
            None => (1u8, 0),
        });
    }
}

/// Writes a JSON value as `JSON.stringify` would (objects in JavaScript key order).
pub fn write_json<O: JsonOut + ?Sized>(out: &mut O, json: &Json) {
    match json {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => write_js_number(out, number_to_f64(n)),
        Json::String(s) => write_js_string(out, s),
        Json::Array(a) => write_json_array(out, a),
        Json::Object(m) => write_json_object(out, m),
    }
}

fn write_json_array<O: JsonOut + ?Sized>(out: &mut O, a: &[Json]) {
    out.push_str("[");
    for (i, v) in a.iter().enumerate() {
        if i > 0 {
            out.push_str(",");
        }
        write_json(out, v);
    }
    out.push_str("]");
}

fn write_json_object<O: JsonOut + ?Sized>(out: &mut O, m: &Map<String, Json>) {
    let mut entries: Vec<(&String, &Json)> = m.iter().collect();
    js_key_order(&mut entries, |e| e.0.as_str());
    out.push_str("{");
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push_str(",");
        }
        write_js_string(out, k);
        out.push_str(":");
        write_json(out, v);
    }
    out.push_str("}");
}

/// JSON text of a value as `JSON.stringify` would print it.
pub fn to_json_string(json: &Json) -> String {
    let mut s = String::new();
    write_json(&mut s, json);
    s
}

/// Parses JSON text as `JSON.parse` does: numbers as doubles, duplicate keys keep their first
/// position and last value, object keys in JavaScript order. Depth and size are bounded.
pub fn parse_json(text: &str) -> Result<Json> {
    if text.len() > MAX_JSON_BYTES {
        return Err(Error::InvalidJson(format!(
            "JSON text of {} bytes exceeds the {} byte limit",
            text.len(),
            MAX_JSON_BYTES
        )));
    }
    let mut p = Parser(Lexer::new(text));
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(p.err("unexpected trailing characters"));
    }
    Ok(v)
}

/// The value-tree reader over the shared lexer.
struct Parser<'a>(Lexer<'a>);

impl<'a> std::ops::Deref for Parser<'a> {
    type Target = Lexer<'a>;
    fn deref(&self) -> &Lexer<'a> {
        &self.0
    }
}
impl std::ops::DerefMut for Parser<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl From<LexError> for Error {
    fn from(e: LexError) -> Error {
        Error::InvalidJson(format!("{} at byte {}", e.what, e.at))
    }
}

impl Parser<'_> {
    fn err(&self, what: &str) -> Error {
        Error::InvalidJson(format!("{what} at byte {}", self.i))
    }
    fn lit(&mut self, word: &str, v: Json) -> Result<Json> {
        self.literal(word.as_bytes())?;
        Ok(v)
    }
    fn value(&mut self, depth: usize) -> Result<Json> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        match self.b.get(self.i) {
            None => Err(self.err("unexpected end of JSON")),
            Some(b'n') => self.lit("null", Json::Null),
            Some(b't') => self.lit("true", Json::Bool(true)),
            Some(b'f') => self.lit("false", Json::Bool(false)),
            Some(b'"') => Ok(Json::String(self.string()?.into_owned())),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(self.err("expected , or ]")),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut entries: Vec<(String, Json)> = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Object(Map::new()));
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return Err(self.err("expected a string key"));
                    }
                    let k = self.string()?.into_owned();
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return Err(self.err("expected :"));
                    }
                    self.i += 1;
                    self.ws();
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            break;
                        }
                        _ => return Err(self.err("expected , or }")),
                    }
                }
                // Duplicate keys: the first position, the last value (as JSON.parse).
                let mut map = Map::with_capacity(entries.len());
                let has_int = entries.iter().any(|(k, _)| is_integer_key(k).is_some());
                if has_int {
                    let mut positions: Map<String, Json> = Map::with_capacity(entries.len());
                    for (k, v) in entries {
                        positions.insert(k, v);
                    }
                    let mut ordered: Vec<(String, Json)> = positions.into_iter().collect();
                    js_key_order(&mut ordered, |e| e.0.as_str());
                    map.extend(ordered);
                } else {
                    for (k, v) in entries {
                        map.insert(k, v);
                    }
                }
                Ok(Json::Object(map))
            }
            Some(b'-' | b'0'..=b'9') => Ok(f64_to_json(self.number()?)),
            Some(_) => Err(self.err("unexpected character")),
        }
    }
}

/// Whether a JSON value is the undefined marker (the string U+FFFC).
pub(crate) fn is_undefined_marker(json: &Json) -> bool {
    matches!(json, Json::String(s) if s == UNDEFINED_STR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_as_javascript() {
        for (n, s) in [
            (0.0, "0"),
            (-0.0, "0"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (0.1 + 0.2, "0.30000000000000004"),
            (2f64.powi(53) + 2.0, "9007199254740994"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (-1.5e300, "-1.5e+300"),
            (123.456, "123.456"),
            (18446744073709551616.0, "18446744073709552000"),
            (-2.5e-8, "-2.5e-8"),
        ] {
            assert_eq!(js_number_string(n), s, "{n:e}");
        }
    }

    #[test]
    fn strings_escape_as_javascript() {
        let mut s = String::new();
        write_js_string(&mut s, "a\"b\\c\u{1f}\u{7f}\u{2028}/\n\u{8}");
        assert_eq!(s, "\"a\\\"b\\\\c\\u001f\u{7f}\u{2028}/\\n\\b\"");
    }

    #[test]
    fn objects_order_keys_as_javascript() {
        let v = parse_json(r#"{"b":1,"a":2,"10":3,"2":4,"01":5,"b":6}"#).unwrap();
        assert_eq!(to_json_string(&v), r#"{"2":4,"10":3,"b":6,"a":2,"01":5}"#);
    }

    #[test]
    fn parser_rejects_bad_input() {
        for bad in ["\"\\u+041\"", "", "[1,]", "{\"a\"}", "01", "1.", "\"\\ud800\"", "[1] x", "nul", "\"a\u{1}\""] {
            assert!(parse_json(bad).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(1000) + &"]".repeat(1000);
        assert!(parse_json(&deep).is_err());
        assert_eq!(parse_json("12345678901234567890").unwrap().as_f64(), Some(12345678901234567000.0));
    }
}
