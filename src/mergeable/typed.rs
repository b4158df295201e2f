//! Typed Rust values for mergeable content, changes, hashes and diffs. The JSON methods carry
//! the same data in TinyBase's wire encoding; use those to relay content between replicas
//! byte for byte (typed object cells are re-encoded with JavaScript rules).

use super::MergeableStore;
use crate::error::{Error, Result};
use crate::value::{parse_json, to_json_string, Cell};
use indexmap::IndexMap;
use serde_json::{Map, Value as Json};

/// A stamp: a thing with its HLC (`""` when empty) and, in content, its hash.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stamp<T> {
    /// The cell or value (None when deleted), or the map of child stamps.
    pub thing: T,
    /// The HLC, `""` for none.
    pub hlc: String,
    /// The hash (content and changes with hashes), None in changes without hashes.
    pub hash: Option<u32>,
}

/// A cell or value stamp: None is a deletion (a tombstone).
pub type CellStamp = Stamp<Option<Cell>>;
/// A row's cell stamps.
pub type RowStamp = Stamp<IndexMap<String, CellStamp>>;
/// A table's row stamps.
pub type TableStamp = Stamp<IndexMap<String, RowStamp>>;
/// All table stamps.
pub type TablesStamp = Stamp<IndexMap<String, TableStamp>>;
/// All value stamps.
pub type ValuesStamp = Stamp<IndexMap<String, CellStamp>>;
/// `{tableId: hash}`.
pub type TableHashes = IndexMap<String, u32>;
/// `{tableId: {rowId: hash}}`.
pub type RowHashes = IndexMap<String, IndexMap<String, u32>>;
/// `{tableId: {rowId: {cellId: hash}}}`.
pub type CellHashes = IndexMap<String, IndexMap<String, IndexMap<String, u32>>>;
/// `{valueId: hash}`.
pub type ValueHashes = IndexMap<String, u32>;

/// MergeableContent (`[tables, values]`), or MergeableChanges (`[tables, values, 1]`) when
/// `is_changes`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MergeableContent {
    /// The tables stamp.
    pub tables: TablesStamp,
    /// The values stamp.
    pub values: ValuesStamp,
    /// Whether this is MergeableChanges (written with the trailing `1`).
    pub is_changes: bool,
}

// ---------------------------------------------------------------------- JSON to typed

fn shape(what: &str) -> Error {
    Error::InvalidShape(format!("unexpected {what} in the library's own JSON"))
}

fn stamp<T>(json: &Json, thing: impl Fn(&Json) -> Result<T>) -> Result<Stamp<T>> {
    let parts = json.as_array().ok_or_else(|| shape("stamp"))?;
    Ok(Stamp {
        thing: thing(parts.first().ok_or_else(|| shape("stamp"))?)?,
        hlc: parts.get(1).and_then(Json::as_str).unwrap_or("").to_string(),
        hash: parts.get(2).and_then(Json::as_f64).map(|h| h as u32),
    })
}

fn map<T>(json: &Json, child: impl Fn(&Json) -> Result<T>) -> Result<IndexMap<String, T>> {
    json.as_object().ok_or_else(|| shape("object"))?.iter().map(|(k, v)| Ok((k.clone(), child(v)?))).collect()
}

/// Wire or decoded leaves alike: U+FFFD strings are decoded, U+FFFC is a deletion.
fn leaf(json: &Json) -> Result<CellStamp> {
    stamp(json, |v| Ok(crate::value::Stored::from_json_wire(v)?.to_cell()))
}

fn leaves(json: &Json) -> Result<RowStamp> {
    stamp(json, |m| map(m, leaf))
}

fn tables(json: &Json) -> Result<TablesStamp> {
    stamp(json, |m| map(m, |t| stamp(t, |rows| map(rows, leaves))))
}

fn content(json: &Json) -> Result<MergeableContent> {
    let parts = json.as_array().ok_or_else(|| shape("content"))?;
    Ok(MergeableContent {
        tables: tables(parts.first().ok_or_else(|| shape("content"))?)?,
        values: leaves(parts.get(1).ok_or_else(|| shape("content"))?)?,
        is_changes: parts.len() == 3,
    })
}

fn hashes1(json: &Json) -> Result<IndexMap<String, u32>> {
    map(json, |h| h.as_f64().map(|h| h as u32).ok_or_else(|| shape("hash")))
}

fn hashes2(json: &Json) -> Result<RowHashes> {
    map(json, hashes1)
}

fn pair<A, B>(json: &Json, a: impl Fn(&Json) -> Result<A>, b: impl Fn(&Json) -> Result<B>) -> Result<(A, B)> {
    match json.as_array().map(Vec::as_slice) {
        Some([x, y]) => Ok((a(x)?, b(y)?)),
        _ => Err(shape("pair")),
    }
}

// ---------------------------------------------------------------------- typed to JSON

fn stamp_json<T>(s: &Stamp<T>, thing: impl Fn(&T) -> Json) -> Json {
    let mut parts = vec![thing(&s.thing)];
    match s.hash {
        Some(h) => {
            parts.push(Json::String(s.hlc.clone()));
            parts.push(Json::from(h));
        }
        None if !s.hlc.is_empty() => parts.push(Json::String(s.hlc.clone())),
        None => {}
    }
    Json::Array(parts)
}

fn map_json<T>(m: &IndexMap<String, T>, child: impl Fn(&T) -> Json) -> Json {
    Json::Object(m.iter().map(|(k, v)| (k.clone(), child(v))).collect::<Map<String, Json>>())
}

fn leaf_json(s: &CellStamp) -> Json {
    stamp_json(s, |c| c.as_ref().map(Cell::to_json).unwrap_or_else(|| Json::String("\u{FFFC}".into())))
}

fn leaves_json(s: &RowStamp) -> Json {
    stamp_json(s, |m| map_json(m, leaf_json))
}

fn tables_json(s: &TablesStamp) -> Json {
    stamp_json(s, |m| map_json(m, |t| stamp_json(t, |rows| map_json(rows, leaves_json))))
}

fn content_json(c: &MergeableContent) -> String {
    let mut parts = vec![tables_json(&c.tables), leaves_json(&c.values)];
    if c.is_changes {
        parts.push(Json::from(1));
    }
    to_json_string(&Json::Array(parts))
}

fn hashes_json<T>(m: &IndexMap<String, T>, child: impl Fn(&T) -> Json) -> String {
    to_json_string(&map_json(m, child))
}

fn parsed<T>(text: Result<String>, f: impl Fn(&Json) -> Result<T>) -> Result<T> {
    f(&parse_json(&text?)?)
}

impl MergeableStore {
    /// `getMergeableContent`: every stamp with its hash (objects and arrays decoded).
    pub fn get_mergeable_content(&self) -> MergeableContent {
        parsed(Ok(self.get_mergeable_content_json()), content).unwrap_or_default()
    }

    /// `setMergeableContent` (hashes required and trusted; objects and arrays given decoded
    /// are encoded with JavaScript rules).
    pub fn set_mergeable_content(&self, content: &MergeableContent) -> Result<()> {
        self.set_decoded_mergeable_content_json(&content_json(content))
    }

    /// `applyMergeableChanges`: changes or content (hashes ignored), refused whole if invalid.
    pub fn apply_mergeable_changes(&self, changes: &MergeableContent) -> Result<()> {
        self.apply_decoded_mergeable_changes_json(&content_json(changes))
    }

    /// `getTransactionMergeableChanges(withHashes)` (decoded form).
    pub fn get_transaction_mergeable_changes(&self, with_hashes: bool) -> MergeableContent {
        parsed(Ok(self.get_transaction_mergeable_changes_json(with_hashes)), content).unwrap_or_default()
    }

    /// `getMergeableTableHashes`.
    pub fn get_mergeable_table_hashes(&self) -> TableHashes {
        parsed(Ok(self.get_mergeable_table_hashes_json()), hashes1).unwrap_or_default()
    }

    /// `getMergeableTableDiff`: (new tables, differing table hashes).
    pub fn get_mergeable_table_diff(&self, other: &TableHashes) -> Result<(TablesStamp, TableHashes)> {
        parsed(self.get_mergeable_table_diff_json(&hashes_json(other, |h| Json::from(*h))), |j| pair(j, tables, hashes1))
    }

    /// `getMergeableRowHashes`.
    pub fn get_mergeable_row_hashes(&self, other: &TableHashes) -> Result<RowHashes> {
        parsed(self.get_mergeable_row_hashes_json(&hashes_json(other, |h| Json::from(*h))), hashes2)
    }

    /// `getMergeableRowDiff`: (new rows, differing row hashes).
    pub fn get_mergeable_row_diff(&self, other: &RowHashes) -> Result<(TablesStamp, RowHashes)> {
        let input = hashes_json(other, |m| map_json(m, |h| Json::from(*h)));
        parsed(self.get_mergeable_row_diff_json(&input), |j| pair(j, tables, hashes2))
    }

    /// `getMergeableCellHashes`.
    pub fn get_mergeable_cell_hashes(&self, other: &RowHashes) -> Result<CellHashes> {
        let input = hashes_json(other, |m| map_json(m, |h| Json::from(*h)));
        parsed(self.get_mergeable_cell_hashes_json(&input), |j| map(j, hashes2))
    }

    /// `getMergeableCellDiff`.
    pub fn get_mergeable_cell_diff(&self, other: &CellHashes) -> Result<TablesStamp> {
        let input = hashes_json(other, |t| map_json(t, |r| map_json(r, |h| Json::from(*h))));
        parsed(self.get_mergeable_cell_diff_json(&input), tables)
    }

    /// `getMergeableValueHashes`.
    pub fn get_mergeable_value_hashes(&self) -> ValueHashes {
        parsed(Ok(self.get_mergeable_value_hashes_json()), hashes1).unwrap_or_default()
    }

    /// `getMergeableValueDiff`.
    pub fn get_mergeable_value_diff(&self, other: &ValueHashes) -> Result<ValuesStamp> {
        parsed(self.get_mergeable_value_diff_json(&hashes_json(other, |h| Json::from(*h))), leaves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_content_round_trips_and_diffs_converge() {
        let a = MergeableStore::with_clock(Some("a"), || 1_700_000_000_000.0);
        let b = MergeableStore::with_clock(Some("b"), || 1_700_000_000_000.0);
        a.set_cell_json("t", "r", "o", r#"{"b":1,"2":[true]}"#).unwrap();
        a.set_cell("t", "r", "x", 1).unwrap();
        a.del_cell("t", "r", "x");
        a.set_value("v", "s").unwrap();
        let content = a.get_mergeable_content();
        assert_eq!(content.tables.thing["t"].thing["r"].thing["x"].thing, None);
        assert!(content.tables.hash.is_some());
        b.set_mergeable_content(&content).unwrap();
        assert_eq!(b.get_mergeable_content_hashes(), a.get_mergeable_content_hashes());
        assert_eq!(b.get_encoded_mergeable_content_json(), a.get_encoded_mergeable_content_json());
        // The pull procedure, typed.
        let c = MergeableStore::with_clock(Some("c"), || 1_700_000_000_000.0);
        c.set_cell("t", "q", "y", 2).unwrap();
        let (new_tables, differing) = a.get_mergeable_table_diff(&c.get_mergeable_table_hashes()).unwrap();
        assert!(new_tables.thing.is_empty());
        let (new_rows, differing_rows) = a.get_mergeable_row_diff(&c.get_mergeable_row_hashes(&differing).unwrap()).unwrap();
        assert!(differing_rows.is_empty());
        let values = a.get_mergeable_value_diff(&c.get_mergeable_value_hashes()).unwrap();
        c.apply_mergeable_changes(&MergeableContent { tables: new_rows, values, is_changes: true }).unwrap();
        assert_eq!(c.get_cell("t", "r", "o"), a.get_cell("t", "r", "o"));
        assert_eq!(c.get_value("v"), Some(Cell::from("s")));
    }
}
