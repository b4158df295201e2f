//! The incremental layout shared by SQLite's incremental mode and PostgreSQL: one database row
//! per cell, per value and per container stamp, so that saving a one-cell transaction touches a
//! handful of rows whatever the store's size, and loading rebuilds the wire content and checks
//! every hash in it.
//!
//! # Schema (version 1)
//!
//! SQLite (PostgreSQL adds `room TEXT NOT NULL` as the first column of every table and of every
//! primary key, and spells `hash` as `BIGINT`):
//!
//! ```sql
//! CREATE TABLE tinybase_cells (table_id TEXT NOT NULL, row_id TEXT NOT NULL, cell_id TEXT NOT NULL,
//!   value TEXT NOT NULL, hlc TEXT NOT NULL, hash INTEGER NOT NULL,
//!   PRIMARY KEY (table_id, row_id, cell_id));
//! CREATE TABLE tinybase_values (value_id TEXT NOT NULL PRIMARY KEY,
//!   value TEXT NOT NULL, hlc TEXT NOT NULL, hash INTEGER NOT NULL);
//! CREATE TABLE tinybase_containers (kind INTEGER NOT NULL, table_id TEXT NOT NULL, row_id TEXT NOT NULL,
//!   hlc TEXT NOT NULL, hash INTEGER NOT NULL, PRIMARY KEY (kind, table_id, row_id));
//! CREATE TABLE tinybase_meta (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL);
//! INSERT INTO tinybase_meta VALUES ('schema_version', '1');
//! ```
//!
//! - `value` is the cell or value in wire form as JSON text, exactly as the wire content writes it:
//!   `"dog"`, `1`, `true`, `null`, `"\uFFFD{\"a\":1}"` for an object or array (the U+FFFD string
//!   TinyBase keeps, written raw), `"\uFFFC"` for a deletion (tombstone, written raw). Numbers
//!   are JavaScript's Number-to-String.
//! - `hlc` is the 16-character HLC, or `''` for defaulted content.
//! - `hash` is the stamp's hash, an unsigned 32-bit integer (0 ..= 4294967295).
//! - Containers are keyed by `kind` ([`ContainerKind`]) so that no id is reserved (`''` is a
//!   valid TinyBase id): kind 0 the tables stamp `(0, '', '')`, kind 1 a table `(1, t, '')`,
//!   kind 2 a row `(2, t, r)`, kind 3 the values stamp `(3, '', '')`.
//! - Order: rows are read back in the order they were first inserted (SQLite: `ORDER BY rowid`;
//!   PostgreSQL: a `BIGSERIAL` or equivalent column), which is the store's insertion order when
//!   written from it, so a reload keeps TinyBase's iteration order.
//!
//! Writing one transaction: [`rows_from_json`] of its changes with hashes, then [`merge_rows`]
//! against the stored stamps (inside the write transaction) gives the rows to upsert: the cells
//! and values the merge accepts (later HLC wins, as in the store) and the containers on their
//! path with hashes updated by XOR. So several writers (threads, processes, server instances) may
//! write one database incrementally: it holds their merge, and its container hashes always match
//! its cells. Writing the whole content deletes every row and inserts [`rows_from_json`] of the
//! content as it is.
//!
//! Reading ([`content_from_rows`]) rebuilds the wire content with hashes and verifies it: every
//! leaf hash against its value and HLC, every container hash against its children (PROTOCOL.md
//! 3.3), no HLC more than five minutes ahead, every cell under a stored row and table. Anything
//! else is `Error::Corrupt`.

use crate::error::{Error, Result};
use crate::hash::id_hash;
use crate::hlc::Hlc;
use crate::store::core::Core;
use crate::store::write_object;
use crate::value::{parse_json, write_integer, write_js_string, JsonOut, Stored};
use indexmap::IndexMap;
use serde_json::Value as Json;

/// The schema version written to `tinybase_meta` (`schema_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// SQLite's DDL of the incremental layout (idempotent).
pub const SQLITE_DDL: &str = "\
CREATE TABLE IF NOT EXISTS tinybase_cells (table_id TEXT NOT NULL, row_id TEXT NOT NULL, cell_id TEXT NOT NULL, \
value TEXT NOT NULL, hlc TEXT NOT NULL, hash INTEGER NOT NULL, PRIMARY KEY (table_id, row_id, cell_id));
CREATE TABLE IF NOT EXISTS tinybase_values (value_id TEXT NOT NULL PRIMARY KEY, \
value TEXT NOT NULL, hlc TEXT NOT NULL, hash INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tinybase_containers (kind INTEGER NOT NULL, table_id TEXT NOT NULL, row_id TEXT NOT NULL, \
hlc TEXT NOT NULL, hash INTEGER NOT NULL, PRIMARY KEY (kind, table_id, row_id));
CREATE TABLE IF NOT EXISTS tinybase_meta (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO tinybase_meta (key, value) VALUES ('schema_version', '1');
";

/// Which container stamp a [`ContainerRow`] holds (the `kind` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContainerKind {
    /// The tables stamp (`table_id` and `row_id` are `''`).
    Tables = 0,
    /// A table's stamp (`row_id` is `''`).
    Table = 1,
    /// A row's stamp.
    Row = 2,
    /// The values stamp (`table_id` and `row_id` are `''`).
    Values = 3,
}

impl ContainerKind {
    /// The kind stored as `n`; None for anything else.
    pub fn from_i64(n: i64) -> Option<ContainerKind> {
        Some(match n {
            0 => ContainerKind::Tables,
            1 => ContainerKind::Table,
            2 => ContainerKind::Row,
            3 => ContainerKind::Values,
            _ => return None,
        })
    }
}

/// One row of `tinybase_cells`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellRow {
    /// The table id.
    pub table_id: String,
    /// The row id.
    pub row_id: String,
    /// The cell id.
    pub cell_id: String,
    /// The cell in wire form as JSON text (a tombstone is `"\u{FFFC}"`).
    pub value: String,
    /// The cell's HLC (`""` for defaulted content).
    pub hlc: String,
    /// The cell's stamp hash.
    pub hash: u32,
}

/// One row of `tinybase_values`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueRow {
    /// The value id.
    pub value_id: String,
    /// The value in wire form as JSON text (a tombstone is `"\u{FFFC}"`).
    pub value: String,
    /// The value's HLC.
    pub hlc: String,
    /// The value's stamp hash.
    pub hash: u32,
}

/// One row of `tinybase_containers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRow {
    /// Which stamp.
    pub kind: ContainerKind,
    /// The table id (`""` for the tables and values stamps).
    pub table_id: String,
    /// The row id (`""` unless `kind` is [`ContainerKind::Row`]).
    pub row_id: String,
    /// The container's HLC (usually `""`: local writes never set container HLCs).
    pub hlc: String,
    /// The container's hash.
    pub hash: u32,
}

/// The database rows of some content or of one transaction's changes, in order (containers
/// before what they contain).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rows {
    /// Container stamps: the tables stamp, then each table followed by its rows, then the
    /// values stamp.
    pub containers: Vec<ContainerRow>,
    /// Cells.
    pub cells: Vec<CellRow>,
    /// Values.
    pub values: Vec<ValueRow>,
}

impl Rows {
    /// Whether there is no row at all (nothing stored).
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.cells.is_empty() && self.values.is_empty()
    }
}

fn shape(what: &str) -> Error {
    Error::InvalidShape(format!("incremental rows: {what}"))
}

/// `[thing, hlc, hash]` with a string HLC and a valid hash.
fn stamp<'a>(json: &'a Json, what: &str) -> Result<(&'a Json, String, u32)> {
    match json.as_array().map(Vec::as_slice) {
        Some([thing, hlc, hash]) => {
            let hlc = hlc.as_str().ok_or_else(|| shape(&format!("{what} HLC must be a string")))?;
            let hash = hash
                .as_f64()
                .and_then(crate::mergeable::wire::valid_hash)
                .ok_or_else(|| shape(&format!("{what} hash must be an integer from 0 to 4294967295")))?;
            Ok((thing, hlc.to_string(), hash))
        }
        _ => Err(shape(&format!("{what} stamp must be [thing, hlc, hash]"))),
    }
}

fn object<'a>(json: &'a Json, what: &str) -> Result<&'a serde_json::Map<String, Json>> {
    json.as_object().ok_or_else(|| shape(&format!("{what} must be an object")))
}

/// The leaf's value as the stored JSON text (checked to be a valid wire cell).
fn leaf_text(value: &Json) -> Result<String> {
    let stored = Stored::from_json_wire(value)?;
    let mut out = String::new();
    stored.write_json(&mut out, true);
    Ok(out)
}

/// Turns wire JSON with hashes at every level into database rows: one transaction's changes
/// `[[{t:[{r:[{c:[v,hlc,hash]},hlc,hash]},hlc,hash]},hlc,hash],[{v:[v,hlc,hash]},hlc,hash],1]`
/// (a commit hook's with-hashes changes) to upsert, or whole content (two elements, TinyBase's
/// file format) to write after deleting every row. Errors (`InvalidShape`, `InvalidValue`) mean
/// the input is not wire JSON with hashes.
pub fn rows_from_json(json: &str) -> Result<Rows> {
    let json = parse_json(json)?;
    let parts = json.as_array().ok_or_else(|| shape("content or changes must be an array"))?;
    match parts.len() {
        2 => {}
        3 if parts[2].as_f64() == Some(1.0) => {}
        _ => return Err(shape("content is [tables, values], changes [tables, values, 1]")),
    }
    let mut rows = Rows::default();
    let (tables, hlc, hash) = stamp(&parts[0], "the tables")?;
    rows.containers.push(ContainerRow { kind: ContainerKind::Tables, table_id: String::new(), row_id: String::new(), hlc, hash });
    for (t, table) in object(tables, "the tables")? {
        let (table_rows, hlc, hash) = stamp(table, "a table")?;
        rows.containers.push(ContainerRow { kind: ContainerKind::Table, table_id: t.clone(), row_id: String::new(), hlc, hash });
        for (r, row) in object(table_rows, "a table")? {
            let (cells, hlc, hash) = stamp(row, "a row")?;
            rows.containers.push(ContainerRow { kind: ContainerKind::Row, table_id: t.clone(), row_id: r.clone(), hlc, hash });
            for (c, cell) in object(cells, "a row")? {
                let (value, hlc, hash) = stamp(cell, "a cell")?;
                rows.cells.push(CellRow {
                    table_id: t.clone(),
                    row_id: r.clone(),
                    cell_id: c.clone(),
                    value: leaf_text(value)?,
                    hlc,
                    hash,
                });
            }
        }
    }
    let (values, hlc, hash) = stamp(&parts[1], "the values")?;
    rows.containers.push(ContainerRow { kind: ContainerKind::Values, table_id: String::new(), row_id: String::new(), hlc, hash });
    for (v, value) in object(values, "the values")? {
        let (value, hlc, hash) = stamp(value, "a value")?;
        rows.values.push(ValueRow { value_id: v.clone(), value: leaf_text(value)?, hlc, hash });
    }
    Ok(rows)
}

/// The stamps already stored, as [`merge_rows`] needs them: `(hlc, hash)` of one cell, value or
/// container, None when there is none. Implemented over the database transaction that will
/// write the merged rows (SQLite: inside `BEGIN IMMEDIATE`; PostgreSQL: inside a transaction
/// holding the room's write lock), so nothing changes between the lookups and the upserts.
pub trait StoredStamps {
    /// A cell's stored stamp.
    fn cell(&mut self, table_id: &str, row_id: &str, cell_id: &str) -> Result<Option<(String, u32)>>;
    /// A value's stored stamp.
    fn value(&mut self, value_id: &str) -> Result<Option<(String, u32)>>;
    /// A container's stored stamp (`table_id`/`row_id` `""` where [`ContainerKind`] says so).
    fn container(&mut self, kind: ContainerKind, table_id: &str, row_id: &str) -> Result<Option<(String, u32)>>;
}

/// `replaceHlc` (PROTOCOL.md 4.4): the container hash term when its HLC rises from `old` to `new`.
fn replace_hlc_term(old: &str, new: &str) -> u32 {
    let (old, new) = (Hlc::parse(old).unwrap_or(Hlc::EMPTY), Hlc::parse(new).unwrap_or(Hlc::EMPTY));
    if new > old {
        hlc_term(old) ^ new.hash()
    } else {
        0
    }
}

fn max_hlc(a: &str, b: &str) -> String {
    if b > a {
        b.to_string()
    } else {
        a.to_string()
    }
}

/// Merges one transaction's rows (from [`rows_from_json`] of its changes) into what is stored,
/// as a MergeableStore merges (PROTOCOL.md 4.4: a cell or value is taken when nothing is stored,
/// the stored HLC is `""`, or the incoming HLC is later), and returns the rows to upsert: the
/// accepted cells and values with their hashes recomputed from value and HLC, and every
/// container on their path with its HLC raised and its hash updated by XOR from the stored one.
/// So several writers (threads, processes, server instances) can write incrementally into one
/// database and it holds their merge, with container hashes that always match the stored cells.
/// Lookups go through `stored`; costs are per touched cell, not per stored cell.
pub fn merge_rows(changes: &Rows, stored: &mut dyn StoredStamps) -> Result<Rows> {
    let mut out = Rows::default();
    // Incoming container HLCs (changes always carry every container on a touched path).
    let incoming = |kind: ContainerKind, t: &str, r: &str| {
        changes.containers.iter().find(|c| c.kind == kind && c.table_id == t && c.row_id == r).map(|c| c.hlc.as_str()).unwrap_or("")
    };
    // Touched rows in order: (table, row) -> cells.
    let mut tables: IndexMap<&str, IndexMap<&str, Vec<&CellRow>>> = IndexMap::new();
    for c in &changes.containers {
        match c.kind {
            ContainerKind::Table => {
                tables.entry(c.table_id.as_str()).or_default();
            }
            ContainerKind::Row => {
                tables.entry(c.table_id.as_str()).or_default().entry(c.row_id.as_str()).or_default();
            }
            _ => {}
        }
    }
    for cell in &changes.cells {
        tables.entry(cell.table_id.as_str()).or_default().entry(cell.row_id.as_str()).or_default().push(cell);
    }

    /// Merges leaves into a leaf container; returns the container's (old, new) stamps.
    fn merge_leaves<'a>(
        leaves: impl Iterator<Item = (&'a str, &'a str, &'a str)>,
        container: Option<(String, u32)>,
        in_hlc: &str,
        stored_leaf: &mut dyn FnMut(&str) -> Result<Option<(String, u32)>>,
        accepted: &mut dyn FnMut(&str, String, String, u32),
    ) -> Result<(Option<(String, u32)>, (String, u32))> {
        let (old_hlc, mut hash) = container.clone().unwrap_or_default();
        for (id, value, hlc) in leaves {
            let old = stored_leaf(id)?;
            let take = match &old {
                None => true,
                Some((old_hlc, _)) => old_hlc.is_empty() || hlc > old_hlc.as_str(),
            };
            if !take {
                continue;
            }
            let json = parse_json(value)?;
            let new_hash = Core::leaf_hash(&Stored::from_json_wire(&json)?, Hlc::parse(hlc)?);
            hash ^= id_hash(id, old.map(|o| o.1).unwrap_or(0)) ^ id_hash(id, new_hash);
            accepted(id, value.to_string(), hlc.to_string(), new_hash);
        }
        hash ^= replace_hlc_term(&old_hlc, in_hlc);
        Ok((container, (max_hlc(&old_hlc, in_hlc), hash)))
    }

    let tables_old = stored.container(ContainerKind::Tables, "", "")?;
    let (tables_old_hlc, mut tables_hash) = tables_old.clone().unwrap_or_default();
    let mut tables_changed = tables_old.is_none();
    for (t, rows) in &tables {
        let table_old = stored.container(ContainerKind::Table, t, "")?;
        let (table_old_hlc, mut table_hash) = table_old.clone().unwrap_or_default();
        let mut table_changed = table_old.is_none();
        for (r, cells) in rows {
            let row_old = stored.container(ContainerKind::Row, t, r)?;
            let mut accepted_cells = Vec::new();
            let (old, (hlc, hash)) = merge_leaves(
                cells.iter().map(|c| (c.cell_id.as_str(), c.value.as_str(), c.hlc.as_str())),
                row_old,
                incoming(ContainerKind::Row, t, r),
                &mut |c| stored.cell(t, r, c),
                &mut |c, value, hlc, hash| {
                    accepted_cells.push(CellRow { table_id: t.to_string(), row_id: r.to_string(), cell_id: c.to_string(), value, hlc, hash })
                },
            )?;
            if old.as_ref() != Some(&(hlc.clone(), hash)) {
                table_hash ^= old.as_ref().map(|o| id_hash(r, o.1)).unwrap_or(0) ^ id_hash(r, hash);
                table_changed = true;
                out.containers.push(ContainerRow { kind: ContainerKind::Row, table_id: t.to_string(), row_id: r.to_string(), hlc, hash });
            }
            out.cells.extend(accepted_cells);
        }
        let in_hlc = incoming(ContainerKind::Table, t, "");
        table_hash ^= replace_hlc_term(&table_old_hlc, in_hlc);
        let table_hlc = max_hlc(&table_old_hlc, in_hlc);
        if table_changed || table_hlc != table_old_hlc {
            tables_hash ^= table_old.as_ref().map(|o| id_hash(t, o.1)).unwrap_or(0) ^ id_hash(t, table_hash);
            tables_changed = true;
            // Containers go before what they contain (the order rows are first inserted in).
            let at = out.containers.iter().position(|c| c.kind == ContainerKind::Row && c.table_id == *t).unwrap_or(out.containers.len());
            out.containers.insert(at, ContainerRow { kind: ContainerKind::Table, table_id: t.to_string(), row_id: String::new(), hlc: table_hlc, hash: table_hash });
        }
    }
    let in_hlc = incoming(ContainerKind::Tables, "", "");
    tables_hash ^= replace_hlc_term(&tables_old_hlc, in_hlc);
    let tables_hlc = max_hlc(&tables_old_hlc, in_hlc);
    if tables_changed || tables_hlc != tables_old_hlc {
        out.containers.insert(0, ContainerRow { kind: ContainerKind::Tables, table_id: String::new(), row_id: String::new(), hlc: tables_hlc, hash: tables_hash });
    }

    let values_old = stored.container(ContainerKind::Values, "", "")?;
    let mut accepted_values = Vec::new();
    let (old, (hlc, hash)) = merge_leaves(
        changes.values.iter().map(|v| (v.value_id.as_str(), v.value.as_str(), v.hlc.as_str())),
        values_old,
        incoming(ContainerKind::Values, "", ""),
        &mut |v| stored.value(v),
        &mut |v, value, hlc, hash| accepted_values.push(ValueRow { value_id: v.to_string(), value, hlc, hash }),
    )?;
    if old.as_ref() != Some(&(hlc.clone(), hash)) {
        out.containers.push(ContainerRow { kind: ContainerKind::Values, table_id: String::new(), row_id: String::new(), hlc, hash });
    }
    out.values = accepted_values;
    Ok(out)
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("incremental rows: {what}"))
}

fn now_ms() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as f64).unwrap_or(0.0)
}

/// A stored HLC: valid, and not more than five minutes ahead of this machine's clock.
fn checked_hlc(hlc: &str, now: f64, at: &dyn Fn() -> String) -> Result<Hlc> {
    let parsed = Hlc::parse(hlc).map_err(|e| corrupt(format!("{}: {e}", at())))?;
    if !parsed.is_valid_at(now) {
        return Err(corrupt(format!("{}: the HLC {hlc:?} is more than five minutes in the future", at())));
    }
    Ok(parsed)
}

fn hlc_term(hlc: Hlc) -> u32 {
    if hlc.is_empty() {
        0
    } else {
        hlc.hash()
    }
}

/// A verified leaf: its value, HLC and hash.
struct Leaf {
    value: Stored,
    hlc: String,
    hash: u32,
}

fn checked_leaf(value: &str, hlc: &str, hash: u32, now: f64, at: &dyn Fn() -> String) -> Result<Leaf> {
    let json = parse_json(value).map_err(|e| corrupt(format!("{}: {e}", at())))?;
    let stored = Stored::from_json_wire(&json).map_err(|e| corrupt(format!("{}: {e}", at())))?;
    let parsed = checked_hlc(hlc, now, at)?;
    let computed = Core::leaf_hash(&stored, parsed);
    if computed != hash {
        return Err(corrupt(format!("{}: the stored hash {hash} is not the stamp's {computed}", at())));
    }
    Ok(Leaf { value: stored, hlc: hlc.to_string(), hash })
}

/// A container being rebuilt: its stored stamp and its children in order.
struct Node<C> {
    hlc: String,
    hash: u32,
    children: IndexMap<String, C>,
}

fn node<C>(hlc: &str, hash: u32) -> Node<C> {
    Node { hlc: hlc.to_string(), hash, children: IndexMap::new() }
}

fn write_hlc_hash<O: JsonOut + ?Sized>(out: &mut O, hlc: &str, hash: u32) {
    out.push_str(",");
    write_js_string(out, hlc);
    out.push_str(",");
    write_integer(out, hash as i64);
    out.push_str("]");
}

fn write_leaves<O: JsonOut + ?Sized>(out: &mut O, leaves: &Node<Leaf>) {
    out.push_str("[");
    let items: Vec<(&str, &Leaf)> = leaves.children.iter().map(|(k, l)| (k.as_str(), l)).collect();
    write_object(out, items, |out, leaf| {
        out.push_str("[");
        leaf.value.write_json(out, true);
        write_hlc_hash(out, &leaf.hlc, leaf.hash);
    });
    write_hlc_hash(out, &leaves.hlc, leaves.hash);
}

/// The hash a leaf container (a row, the values) must have: PROTOCOL.md 3.3.
fn leaves_hash(hlc: Hlc, leaves: &Node<Leaf>) -> u32 {
    leaves.children.iter().fold(hlc_term(hlc), |h, (id, leaf)| h ^ id_hash(id, leaf.hash) ^ id_hash(id, 0))
}

/// Rebuilds wire content with hashes (`[[tables, hlc, hash], [values, hlc, hash]]`, TinyBase's
/// file format, ready for `file::merge_text`) from the stored rows, in their order, verifying
/// every hash and HLC. `Ok(None)` when there are no rows at all (nothing stored). Rows that do
/// not make valid content (a hash that is not its stamp's or its children's, a bad HLC or one
/// more than five minutes ahead, a cell without its row or table stamp, a duplicate) are
/// `Error::Corrupt`.
pub fn content_from_rows(rows: &Rows) -> Result<Option<String>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let now = now_ms();
    let mut tables: Option<Node<Node<Node<Leaf>>>> = None;
    let mut values: Option<Node<Leaf>> = None;
    // Containers may come in any order; tables and values first, then tables, then rows.
    let mut sorted: Vec<&ContainerRow> = rows.containers.iter().collect();
    sorted.sort_by_key(|c| match c.kind {
        ContainerKind::Tables | ContainerKind::Values => 0,
        ContainerKind::Table => 1,
        ContainerKind::Row => 2,
    });
    for c in sorted {
        let at = || match c.kind {
            ContainerKind::Tables => "the tables stamp".to_string(),
            ContainerKind::Values => "the values stamp".to_string(),
            ContainerKind::Table => format!("the stamp of table {:?}", c.table_id),
            ContainerKind::Row => format!("the stamp of row {:?} of table {:?}", c.row_id, c.table_id),
        };
        checked_hlc(&c.hlc, now, &at)?;
        let duplicate = || corrupt(format!("{} is stored twice", at()));
        match c.kind {
            ContainerKind::Tables | ContainerKind::Values if !c.table_id.is_empty() || !c.row_id.is_empty() => {
                return Err(corrupt(format!("{} has ids", at())))
            }
            ContainerKind::Table if !c.row_id.is_empty() => return Err(corrupt(format!("{} has a row id", at()))),
            ContainerKind::Tables if tables.is_some() => return Err(duplicate()),
            ContainerKind::Tables => tables = Some(node(&c.hlc, c.hash)),
            ContainerKind::Values if values.is_some() => return Err(duplicate()),
            ContainerKind::Values => values = Some(node(&c.hlc, c.hash)),
            ContainerKind::Table => {
                let all = tables.as_mut().ok_or_else(|| corrupt(format!("{} without the tables stamp", at())))?;
                if all.children.insert(c.table_id.clone(), node(&c.hlc, c.hash)).is_some() {
                    return Err(duplicate());
                }
            }
            ContainerKind::Row => {
                let table = tables
                    .as_mut()
                    .and_then(|t| t.children.get_mut(&c.table_id))
                    .ok_or_else(|| corrupt(format!("{} without its table's stamp", at())))?;
                if table.children.insert(c.row_id.clone(), node(&c.hlc, c.hash)).is_some() {
                    return Err(duplicate());
                }
            }
        }
    }
    let mut tables = tables.ok_or_else(|| corrupt("the tables stamp is missing"))?;
    let mut values = values.ok_or_else(|| corrupt("the values stamp is missing"))?;
    for cell in &rows.cells {
        let at = || format!("cell {:?} of row {:?} of table {:?}", cell.cell_id, cell.row_id, cell.table_id);
        let leaf = checked_leaf(&cell.value, &cell.hlc, cell.hash, now, &at)?;
        let row = tables
            .children
            .get_mut(&cell.table_id)
            .and_then(|t| t.children.get_mut(&cell.row_id))
            .ok_or_else(|| corrupt(format!("{} without its row's stamp", at())))?;
        if row.children.insert(cell.cell_id.clone(), leaf).is_some() {
            return Err(corrupt(format!("{} is stored twice", at())));
        }
    }
    for value in &rows.values {
        let at = || format!("value {:?}", value.value_id);
        let leaf = checked_leaf(&value.value, &value.hlc, value.hash, now, &at)?;
        if values.children.insert(value.value_id.clone(), leaf).is_some() {
            return Err(corrupt(format!("{} is stored twice", at())));
        }
    }

    // Every container hash against its children's (HLCs were checked above).
    let parsed = |hlc: &str| Hlc::parse(hlc).unwrap_or(Hlc::EMPTY);
    let mismatch = |what: String, stored: u32, computed: u32| {
        corrupt(format!("{what}: the stored hash {stored} is not its content's {computed}"))
    };
    let mut tables_computed = hlc_term(parsed(&tables.hlc));
    for (t, table) in &tables.children {
        let mut table_computed = hlc_term(parsed(&table.hlc));
        for (r, row) in &table.children {
            let computed = leaves_hash(parsed(&row.hlc), row);
            if computed != row.hash {
                return Err(mismatch(format!("row {r:?} of table {t:?}"), row.hash, computed));
            }
            table_computed ^= id_hash(r, row.hash);
        }
        if table_computed != table.hash {
            return Err(mismatch(format!("table {t:?}"), table.hash, table_computed));
        }
        tables_computed ^= id_hash(t, table.hash);
    }
    if tables_computed != tables.hash {
        return Err(mismatch("the tables".into(), tables.hash, tables_computed));
    }
    let values_computed = leaves_hash(parsed(&values.hlc), &values);
    if values_computed != values.hash {
        return Err(mismatch("the values".into(), values.hash, values_computed));
    }

    let mut out = String::with_capacity(64 + rows.cells.len() * 64 + rows.values.len() * 48);
    out.push_str("[[");
    let items: Vec<(&str, &Node<Node<Leaf>>)> = tables.children.iter().map(|(k, t)| (k.as_str(), t)).collect();
    write_object(&mut out, items, |out, table| {
        out.push('[');
        let items: Vec<(&str, &Node<Leaf>)> = table.children.iter().map(|(k, r)| (k.as_str(), r)).collect();
        write_object(out, items, write_leaves);
        write_hlc_hash(out, &table.hlc, table.hash);
    });
    write_hlc_hash(&mut out, &tables.hlc, tables.hash);
    out.push(',');
    write_leaves(&mut out, &values);
    out.push(']');
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mergeable::MergeableStore;

    fn sample() -> MergeableStore {
        let s = MergeableStore::new(Some("s"));
        s.set_cell("pets", "fido", "species", "dog").unwrap();
        s.set_cell("pets", "fido", "legs", 4.0).unwrap();
        s.set_cell("pets", "1", "o", crate::Cell::from_json(&parse_json("{\"a\":[1,2]}").unwrap()).unwrap()).unwrap();
        s.set_cell("pets", "felix", "species", "cat").unwrap();
        s.del_cell("pets", "felix", "species");
        s.set_value("open", true).unwrap();
        s
    }

    #[test]
    fn content_round_trips_through_rows() {
        let s = sample();
        let content = s.get_encoded_mergeable_content_json();
        let rows = rows_from_json(&content).unwrap();
        assert_eq!(rows.cells.len(), 4);
        assert_eq!(rows.containers.len(), 1 + 1 + 3 + 1);
        assert!(rows.cells.iter().any(|c| c.value == "\"\u{FFFC}\""), "the tombstone is kept");
        assert_eq!(content_from_rows(&rows).unwrap().as_deref(), Some(content.as_str()));
        assert_eq!(content_from_rows(&Rows::default()).unwrap(), None);
    }

    #[test]
    fn changes_upserted_give_the_store_content() {
        let s = sample();
        let mut db = MemDb(rows_from_json(&s.get_encoded_mergeable_content_json()).unwrap());
        // One more transaction: its changes' rows replace or join the stored ones.
        let seen = capture(&s);
        s.transaction(|s| {
            s.set_cell("pets", "fido", "legs", 3.0).unwrap();
            s.set_value("closed", "x").unwrap();
        });
        let changes = seen.lock().pop().expect("a commit");
        assert!(changes.ends_with(",1]"), "{changes}");
        let rows = rows_from_json(&changes).unwrap();
        assert_eq!(rows.cells.len(), 1);
        assert_eq!(rows.containers.len(), 4, "tables, table, row, values");
        // As they come (the store's own container hashes) and merged: the same content.
        let mut plain = MemDb(db.0.clone());
        plain.upsert(&rows);
        assert_eq!(content_from_rows(&plain.0).unwrap().unwrap(), s.get_encoded_mergeable_content_json());
        db.write_changes(&changes);
        assert_eq!(content_from_rows(&db.0).unwrap().unwrap(), s.get_encoded_mergeable_content_json());
    }

    /// Rows held in memory, upserted as the database does.
    #[derive(Default)]
    struct MemDb(Rows);

    impl MemDb {
        fn upsert(&mut self, rows: &Rows) {
            fn upsert<T: Clone>(into: &mut Vec<T>, from: &[T], same: impl Fn(&T, &T) -> bool) {
                for x in from {
                    match into.iter_mut().find(|y| same(y, x)) {
                        Some(y) => *y = x.clone(),
                        None => into.push(x.clone()),
                    }
                }
            }
            upsert(&mut self.0.containers, &rows.containers, |a, b| (a.kind, &a.table_id, &a.row_id) == (b.kind, &b.table_id, &b.row_id));
            upsert(&mut self.0.cells, &rows.cells, |a, b| (&a.table_id, &a.row_id, &a.cell_id) == (&b.table_id, &b.row_id, &b.cell_id));
            upsert(&mut self.0.values, &rows.values, |a, b| a.value_id == b.value_id);
        }
        fn write_changes(&mut self, changes: &str) {
            let merged = merge_rows(&rows_from_json(changes).unwrap(), self).unwrap();
            self.upsert(&merged);
        }
    }

    impl StoredStamps for MemDb {
        fn cell(&mut self, t: &str, r: &str, c: &str) -> Result<Option<(String, u32)>> {
            Ok(self.0.cells.iter().find(|x| x.table_id == t && x.row_id == r && x.cell_id == c).map(|x| (x.hlc.clone(), x.hash)))
        }
        fn value(&mut self, v: &str) -> Result<Option<(String, u32)>> {
            Ok(self.0.values.iter().find(|x| x.value_id == v).map(|x| (x.hlc.clone(), x.hash)))
        }
        fn container(&mut self, kind: ContainerKind, t: &str, r: &str) -> Result<Option<(String, u32)>> {
            Ok(self.0.containers.iter().find(|x| x.kind == kind && x.table_id == t && x.row_id == r).map(|x| (x.hlc.clone(), x.hash)))
        }
    }

    fn capture(s: &MergeableStore) -> std::sync::Arc<parking_lot::Mutex<Vec<String>>> {
        let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let into = seen.clone();
        s.add_commit_hook(std::sync::Arc::new(crate::store::CommitHookFns {
            wants: Box::new(|| true),
            with_hashes: true,
            stamps: true,
            call: Box::new(move |_, changes| into.lock().push(changes.to_string())),
        }));
        seen
    }

    #[test]
    fn two_writers_merge_into_one_database() {
        let a = MergeableStore::new(Some("a"));
        let b = MergeableStore::new(Some("b"));
        let (seen_a, seen_b) = (capture(&a), capture(&b));
        let mut db = MemDb::default();
        a.set_cell("pets", "fido", "species", "dog").unwrap();
        b.set_cell("pets", "felix", "species", "cat").unwrap();
        b.set_cell("pets", "fido", "species", "wolf").unwrap(); // later than a's
        a.set_value("open", true).unwrap();
        b.del_row("pets", "felix");
        // Written out of order: b's later fido arrives before a's earlier one.
        let (ca, cb) = (seen_a.lock().clone(), seen_b.lock().clone());
        for changes in cb.iter().chain(ca.iter()) {
            db.write_changes(changes);
        }
        a.merge(&b).unwrap();
        assert_eq!(a.get_cell("pets", "fido", "species"), Some(crate::Cell::from("wolf")));
        let content = content_from_rows(&db.0).unwrap().unwrap();
        let check = MergeableStore::new(None);
        check.set_mergeable_content_json(&content).unwrap();
        assert_eq!(check.get_mergeable_content_hashes(), a.get_mergeable_content_hashes(), "the database holds the merge");
        assert_eq!(check.get_cell("pets", "fido", "species"), Some(crate::Cell::from("wolf")));
        assert!(content.contains("\"felix\":[{\"species\":[\"\u{FFFC}\""), "the deletion is stored: {content}");
        // Writing the same changes again changes nothing.
        let before = db.0.clone();
        for changes in ca.iter().chain(cb.iter()) {
            db.write_changes(changes);
        }
        assert_eq!(content_from_rows(&db.0).unwrap(), content_from_rows(&before).unwrap());
    }

    #[test]
    fn corrupt_rows_are_refused() {
        let rows = rows_from_json(&sample().get_encoded_mergeable_content_json()).unwrap();
        let refused = |change: &dyn Fn(&mut Rows)| {
            let mut bad = rows.clone();
            change(&mut bad);
            match content_from_rows(&bad) {
                Err(Error::Corrupt(m)) => m,
                other => panic!("not refused: {other:?}"),
            }
        };
        assert!(refused(&|r| r.cells[0].value = "\"wolf\"".into()).contains("hash"));
        assert!(refused(&|r| r.cells[0].value = "{".into()).contains("JSON"));
        assert!(refused(&|r| r.cells[0].hash ^= 1).contains("hash"));
        assert!(refused(&|r| r.values[0].hash ^= 1).contains("hash"));
        assert!(refused(&|r| r.containers[2].hash ^= 1).contains("hash"));
        assert!(refused(&|r| r.containers[0].hash ^= 1).contains("tables"));
        assert!(refused(&|r| r.containers.retain(|c| c.kind != ContainerKind::Row)).contains("row's stamp"));
        assert!(refused(&|r| r.containers.retain(|c| c.kind != ContainerKind::Values)).contains("values stamp"));
        assert!(refused(&|r| r.cells[0].hlc = "zzzzzzzzzzzzzzzz".into()).contains("future"));
        assert!(refused(&|r| r.cells[0].hlc = "short".into()).contains("16"));
        assert!(refused(&|r| {
            let c = r.cells[0].clone();
            r.cells.push(c)
        })
        .contains("twice"));
        // A leaf whose value and hash were both forged still breaks its row's hash.
        assert!(refused(&|r| {
            let hlc = Hlc::parse(&r.cells[0].hlc).unwrap();
            r.cells[0].value = "\"wolf\"".into();
            r.cells[0].hash = Core::leaf_hash(&Stored::Str("wolf".into()), hlc);
        })
        .contains("row"));
    }
}
