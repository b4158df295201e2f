//! The store's JSON in and out: TinyBase's `…Json` getters and setters, the JSON shapes they
//! accept, and the writers shared with the mergeable wire format.

use super::core::{ChangesIn, Core, RowIn, TableIn, TablesIn};
use super::tree::{leaf_order, row_order, Key, Leaves};
use super::{nonempty, Changes, Store};
use crate::error::{Error, Result};
use crate::value::{is_undefined_marker, js_key_order, parse_json, write_js_string, Cell, JsonOut, Stored};
use serde_json::Value as Json;

impl Store {
    /// The tables as JSON (objects and arrays in cells as U+FFFD-prefixed strings, as TinyBase's
    /// `getTablesJson`).
    pub fn get_tables_json(&self) -> String {
        self.read(|core| {
            let mut out = String::new();
            write_tables(core, &mut out, true);
            out
        })
    }

    /// The values as JSON (TinyBase's `getValuesJson`).
    pub fn get_values_json(&self) -> String {
        self.read(|core| {
            let mut out = String::new();
            write_leaves(&core.content.values, &mut out, true);
            out
        })
    }

    /// `[tables, values]` as JSON (TinyBase's `getJson`).
    pub fn get_json(&self) -> String {
        self.read(|core| {
            let mut out = String::from("[");
            write_tables(core, &mut out, true);
            out.push(',');
            write_leaves(&core.content.values, &mut out, true);
            out.push(']');
            out
        })
    }

    /// `[tables, values]` as JSON with objects and arrays decoded (what `getContent` returns).
    pub fn get_content_json(&self) -> String {
        self.read(|core| {
            let mut out = String::from("[");
            write_tables(core, &mut out, false);
            out.push(',');
            write_leaves(&core.content.values, &mut out, false);
            out.push(']');
            out
        })
    }

    /// Sets the tables from JSON (cells may be objects, or U+FFFD-prefixed strings as
    /// `get_tables_json` writes them); an empty object deletes all tables.
    pub fn set_tables_json(&self, json: &str) -> Result<()> {
        self.set_tables_parsed(&parse_json(json)?)
    }
    fn set_tables_parsed(&self, json: &Json) -> Result<()> {
        let tables = tables_in_json(json, true)?;
        self.write(|c| if tables.is_empty() { c.del_tables() } else { c.set_tables(&tables) })
    }
    /// Sets the values from JSON; an empty object deletes all values.
    pub fn set_values_json(&self, json: &str) -> Result<()> {
        let values = row_in_json(&parse_json(json)?, true)?;
        self.write(|c| if values.is_empty() { c.del_values() } else { c.set_values(&values) })
    }
    /// Sets tables and values from `[tables, values]` JSON (TinyBase's `setJson`). As in
    /// TinyBase, a JSON object is taken as tables alone (`setTablesJson`).
    pub fn set_json(&self, json: &str) -> Result<()> {
        let json = parse_json(json)?;
        if json.is_object() {
            return self.set_tables_parsed(&json);
        }
        let (tables, values) = content_in_json(&json, true)?;
        self.write(|c| c.set_content(&tables, &values))
    }
    /// `setContent` with `[tables, values]` JSON in the decoded form.
    pub fn set_content_json(&self, json: &str) -> Result<()> {
        let (tables, values) = content_in_json(&parse_json(json)?, false)?;
        self.write(|c| c.set_content(&tables, &values))
    }
    /// Sets a table from JSON.
    pub fn set_table_json(&self, table_id: &str, json: &str) -> Result<()> {
        let table = table_in_json(&parse_json(json)?, false)?;
        self.write(|c| c.set_table(table_id, &table))
    }
    /// Sets a row from JSON.
    pub fn set_row_json(&self, table_id: &str, row_id: &str, json: &str) -> Result<()> {
        let row = nonempty(row_in_json(&parse_json(json)?, false)?, "row")?;
        self.write(|c| c.set_row(table_id, row_id, &row))
    }
    /// Adds a row from JSON, returning its new id (see [`Store::add_row`]).
    pub fn add_row_json(&self, table_id: &str, json: &str, reuse_row_ids: bool) -> Result<String> {
        let row = nonempty(row_in_json(&parse_json(json)?, false)?, "row")?;
        Ok(self.write(|c| c.add_row(table_id, &row, reuse_row_ids))?.to_string())
    }
    /// Sets some cells of a row from JSON.
    pub fn set_partial_row_json(&self, table_id: &str, row_id: &str, json: &str) -> Result<()> {
        let row = nonempty(row_in_json(&parse_json(json)?, false)?, "row")?;
        self.write(|c| c.set_partial_row(table_id, row_id, &row))
    }
    /// Sets a cell from JSON text of the cell.
    pub fn set_cell_json(&self, table_id: &str, row_id: &str, cell_id: &str, json: &str) -> Result<()> {
        self.set_stored_cell(table_id, row_id, cell_id, Stored::from_json_api(&parse_json(json)?, false)?)
    }
    /// Sets some values from JSON.
    pub fn set_partial_values_json(&self, json: &str) -> Result<()> {
        let values = nonempty(row_in_json(&parse_json(json)?, false)?, "values")?;
        self.write(|c| c.set_partial_values(&values))
    }
    /// Sets a value from JSON text of the value.
    pub fn set_value_json(&self, value_id: &str, json: &str) -> Result<()> {
        let v = Stored::from_json_api(&parse_json(json)?, false)?;
        self.write(|c| c.set_value(value_id, v))
    }
    /// Applies `[tables, values, 1]` changes JSON (U+FFFC deletes).
    pub fn apply_changes_json(&self, json: &str) -> Result<()> {
        let changes = changes_in_json(&parse_json(json)?)?;
        self.write(|c| c.apply_changes(&changes))
    }
}

// ---------------------------------------------------------------------- JSON in


fn object<'a>(json: &'a Json, what: &str) -> Result<&'a serde_json::Map<String, Json>> {
    json.as_object().ok_or_else(|| Error::InvalidShape(format!("{what} must be a JSON object")))
}

/// Cells of a row from JSON; `encoded` accepts U+FFFD-prefixed strings for objects and arrays.
pub(crate) fn row_in_json(json: &Json, encoded: bool) -> Result<RowIn> {
    object(json, "a row")?
        .iter()
        .map(|(k, v)| {
            let cell = if encoded { Stored::from_json_wire(v)? } else { Stored::from_json_api(v, false)? };
            if cell.is_deleted() {
                return Err(Error::InvalidValue("undefined is not a cell".into()));
            }
            Ok((Key::from(k.as_str()), cell))
        })
        .collect()
}

fn table_in_json(json: &Json, encoded: bool) -> Result<TableIn> {
    let rows = object(json, "a table")?
        .iter()
        .map(|(k, v)| Ok((Key::from(k.as_str()), nonempty(row_in_json(v, encoded)?, "row")?)))
        .collect::<Result<Vec<_>>>()?;
    nonempty(rows, "table")
}

/// Tables from JSON (empty allowed: the caller decides what it means).
pub(crate) fn tables_in_json(json: &Json, encoded: bool) -> Result<TablesIn> {
    object(json, "tables")?.iter().map(|(k, v)| Ok((Key::from(k.as_str()), table_in_json(v, encoded)?))).collect()
}

/// `[tables, values]` from JSON.
pub(crate) fn content_in_json(json: &Json, encoded: bool) -> Result<(TablesIn, RowIn)> {
    match json.as_array().map(Vec::as_slice) {
        Some([tables, values]) => Ok((tables_in_json(tables, encoded)?, row_in_json(values, encoded)?)),
        _ => Err(Error::InvalidShape("content must be [tables, values]".into())),
    }
}

/// `[tables, values, 1]` changes from JSON in the decoded form, U+FFFC meaning undefined.
pub(crate) fn changes_in_json(json: &Json) -> Result<ChangesIn> {
    let parts = json.as_array().map(Vec::as_slice);
    let (tables, values) = match parts {
        Some([t, v]) => (t, v),
        Some([t, v, one]) if one.as_f64() == Some(1.0) => (t, v),
        _ => return Err(Error::InvalidShape("changes must be [tables, values, 1]".into())),
    };
    let cell = |v: &Json| -> Result<Stored> {
        if is_undefined_marker(v) {
            Ok(Stored::Deleted)
        } else {
            Stored::from_json_api(v, false)
        }
    };
    let mut t_out = Vec::new();
    for (t, table) in object(tables, "changed tables")? {
        let table = if is_undefined_marker(table) {
            None
        } else {
            let mut rows = Vec::new();
            for (r, row) in object(table, "a changed table")? {
                let row = if is_undefined_marker(row) {
                    None
                } else {
                    Some(object(row, "a changed row")?.iter().map(|(c, v)| Ok((Key::from(c.as_str()), cell(v)?))).collect::<Result<Vec<_>>>()?)
                };
                rows.push((Key::from(r.as_str()), row));
            }
            Some(rows)
        };
        t_out.push((Key::from(t.as_str()), table));
    }
    let v_out = object(values, "changed values")?.iter().map(|(k, v)| Ok((Key::from(k.as_str()), cell(v)?))).collect::<Result<Vec<_>>>()?;
    Ok((t_out, v_out))
}

pub(super) fn changes_from_json(json: &Json) -> Changes {
    let cell = |v: &Json| if is_undefined_marker(v) { None } else { Cell::from_json(v).ok() };
    let mut changes = Changes::default();
    if let Some([tables, values, ..]) = json.as_array().map(Vec::as_slice) {
        for (t, table) in tables.as_object().into_iter().flatten() {
            let table = table.as_object().map(|rows| {
                rows.iter()
                    .map(|(r, row)| (r.clone(), row.as_object().map(|cells| cells.iter().map(|(c, v)| (c.clone(), cell(v))).collect())))
                    .collect()
            });
            changes.tables.insert(t.clone(), table);
        }
        for (v, value) in values.as_object().into_iter().flatten() {
            changes.values.insert(v.clone(), cell(value));
        }
    }
    changes
}


// ---------------------------------------------------------------------- JSON out

/// Writes `{id: ...}` with ids in JavaScript order (integer-like first) given the store order.
pub(crate) fn write_object<O: JsonOut + ?Sized, T>(out: &mut O, mut items: Vec<(&str, T)>, mut write: impl FnMut(&mut O, T)) {
    js_key_order(&mut items, |e| e.0);
    out.push_str("{");
    for (i, (k, v)) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(",");
        }
        write_js_string(out, k);
        out.push_str(":");
        write(out, v);
    }
    out.push_str("}");
}

pub(crate) fn write_leaves<O: JsonOut + ?Sized>(leaves: &Leaves, out: &mut O, wire: bool) {
    let items: Vec<(&str, &Stored)> = leaf_order(leaves)
        .into_iter()
        .map(|ci| {
            let (k, l) = leaves.map.get_index(ci).expect("leaf");
            (k.as_str(), &l.value)
        })
        .collect();
    write_object(out, items, |out, v| v.write_json(out, wire));
}

fn write_tables<O: JsonOut + ?Sized>(core: &Core, out: &mut O, wire: bool) {
    let items: Vec<(&str, usize)> =
        core.content.table_order().into_iter().map(|ti| (core.content.tables.get_index(ti).expect("t").0.as_str(), ti)).collect();
    write_object(out, items, |out, ti| {
        let table = &core.content.tables[ti];
        let rows: Vec<(&str, usize)> = row_order(table).into_iter().map(|ri| (table.rows.get_index(ri).expect("r").0.as_str(), ri)).collect();
        write_object(out, rows, |out, ri| write_leaves(&table.rows[ri].cells, out, wire));
    });
}

/// TinyBase's `getTransactionChanges` as JSON (wire encoding: U+FFFC for deletions).
pub(crate) fn transaction_changes_json(core: &Core) -> String {
    let track = &core.track;
    let mut tables: Vec<(&Key, Vec<(&Key, Vec<(&Key, Stored)>)>)> = Vec::new();
    for (t, r, c, old) in track.cells.grouped() {
        let new = core.present_cell(t, r, c).cloned().unwrap_or(Stored::Deleted);
        if tables.last().map(|e| e.0) != Some(t) {
            tables.push((t, Vec::new()));
        }
        let rows = &mut tables.last_mut().expect("pushed").1;
        if rows.last().map(|e| e.0) != Some(r) {
            rows.push((r, Vec::new()));
        }
        if !new.same(old) {
            rows.last_mut().expect("pushed").1.push((c, new));
        }
    }
    let mut out = String::from("[");
    let table_items: Vec<(&str, _)> = tables
        .into_iter()
        .filter_map(|(t, rows)| {
            if track.table_ids.get(t.as_str()) == Some(&-1) {
                return Some((t.as_str(), None));
            }
            let rows: Vec<(&str, Option<Vec<(&Key, Stored)>>)> = rows
                .into_iter()
                .filter_map(|(r, cells)| {
                    if track.row_ids.get(t, r) == Some(&-1) {
                        Some((r.as_str(), None))
                    } else if cells.is_empty() {
                        None
                    } else {
                        Some((r.as_str(), Some(cells)))
                    }
                })
                .collect();
            (!rows.is_empty()).then_some((t.as_str(), Some(rows)))
        })
        .collect();
    let undefined = Stored::Deleted;
    write_object(&mut out, table_items, |out, rows| match rows {
        None => undefined.write_json(out, false),
        Some(rows) => write_object(out, rows, |out, cells| match cells {
            None => undefined.write_json(out, false),
            Some(cells) => {
                let items: Vec<(&str, Stored)> = cells.into_iter().map(|(c, v)| (c.as_str(), v)).collect();
                write_object(out, items, |out, v| v.write_json(out, false))
            }
        }),
    });
    out.push(',');
    let values: Vec<(&str, Stored)> = track
        .values
        .iter()
        .filter_map(|(v, old)| {
            let new = core.present_value(v).cloned().unwrap_or(Stored::Deleted);
            (!new.same(old)).then_some((v.as_str(), new))
        })
        .collect();
    write_object(&mut out, values, |out, v| v.write_json(out, false));
    out.push_str(",1]");
    out
}
