//! tb_store_*: TinyBase's Store methods (also usable on a mergeable store's tb_store view).

use crate::ffi::error::{guard, tb_status};
use crate::ffi::handle::{handle, held, tb_store};
use crate::ffi::strings::{non_null, str_in, write_string};
use crate::ffi::value::{stored_in, tb_value, value_in, value_owned};
use crate::value::{to_json_string, Stored};
use crate::{Row, Table};
use serde_json::{Map, Value as Json};
use std::cell::Cell as StdCell;
use std::ffi::{c_char, c_void};

fn row_json(row: &Row) -> Json {
    Json::Object(row.iter().map(|(k, c)| (k.clone(), c.to_json())).collect::<Map<String, Json>>())
}

fn table_json(table: &Table) -> Json {
    Json::Object(table.iter().map(|(k, r)| (k.clone(), row_json(r))).collect::<Map<String, Json>>())
}

fn ids_json(ids: Vec<String>) -> String {
    to_json_string(&Json::Array(ids.into_iter().map(Json::String).collect()))
}

/// Reads a JSON string out of the store into `*out`.
unsafe fn get_string(store: *mut tb_store, out: *mut *mut c_char, f: impl FnOnce(&crate::Store) -> String) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let out = non_null(out, "out")?;
        write_string(out, f(&h.store))
    })
}

// ------------------------------------------------------------------------------- getters

/// getTablesJson: all tables as JSON `{tableId: {rowId: {cellId: cell}}}`, object and array
/// cells in wire form (U+FFFD-prefixed strings). `*out` is owned: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_tables_json(store: *mut tb_store, out: *mut *mut c_char) -> tb_status {
    get_string(store, out, |s| s.get_tables_json())
}

/// getValuesJson: all values as JSON `{valueId: value}` (wire form). `*out`: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_values_json(store: *mut tb_store, out: *mut *mut c_char) -> tb_status {
    get_string(store, out, |s| s.get_values_json())
}

/// getJson: `[tables, values]` (wire form). `*out`: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_json(store: *mut tb_store, out: *mut *mut c_char) -> tb_status {
    get_string(store, out, |s| s.get_json())
}

/// getContent as JSON: `[tables, values]` with object and array cells decoded (plain JSON).
/// `*out`: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_content_json(store: *mut tb_store, out: *mut *mut c_char) -> tb_status {
    get_string(store, out, |s| s.get_content_json())
}

/// getTable as JSON `{rowId: {cellId: cell}}` (decoded; `{}` when absent). `*out`:
/// tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_table_json(store: *mut tb_store, table_id: *const c_char, out: *mut *mut c_char) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let t = str_in(table_id, "table_id")?;
        let out = non_null(out, "out")?;
        write_string(out, to_json_string(&table_json(&h.store.get_table(t))))
    })
}

/// getRow as JSON `{cellId: cell}` (decoded; `{}` when absent). `*out`: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_row_json(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char, out: *mut *mut c_char) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let (t, r) = (str_in(table_id, "table_id")?, str_in(row_id, "row_id")?);
        let out = non_null(out, "out")?;
        write_string(out, to_json_string(&row_json(&h.store.get_row(t, r))))
    })
}

/// getTableIds as a JSON array of strings. `*out`: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_table_ids_json(store: *mut tb_store, out: *mut *mut c_char) -> tb_status {
    get_string(store, out, |s| ids_json(s.get_table_ids()))
}

/// getTableCellIds as a JSON array of strings. `*out`: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_table_cell_ids_json(store: *mut tb_store, table_id: *const c_char, out: *mut *mut c_char) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let t = str_in(table_id, "table_id")?;
        let out = non_null(out, "out")?;
        write_string(out, ids_json(h.store.get_table_cell_ids(t)))
    })
}

/// getRowIds as a JSON array of strings. `*out`: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_row_ids_json(store: *mut tb_store, table_id: *const c_char, out: *mut *mut c_char) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let t = str_in(table_id, "table_id")?;
        let out = non_null(out, "out")?;
        write_string(out, ids_json(h.store.get_row_ids(t)))
    })
}

/// getCellIds as a JSON array of strings. `*out`: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_cell_ids_json(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char, out: *mut *mut c_char) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let (t, r) = (str_in(table_id, "table_id")?, str_in(row_id, "row_id")?);
        let out = non_null(out, "out")?;
        write_string(out, ids_json(h.store.get_cell_ids(t, r)))
    })
}

/// getValueIds as a JSON array of strings. `*out`: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_value_ids_json(store: *mut tb_store, out: *mut *mut c_char) -> tb_status {
    get_string(store, out, |s| ids_json(s.get_value_ids()))
}

/// getRowCount.
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_row_count(store: *mut tb_store, table_id: *const c_char, out: *mut usize) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let t = str_in(table_id, "table_id")?;
        let out = non_null(out, "out")?;
        *out = h.store.get_row_count(t);
        Ok(())
    })
}

/// getCell: `*out` is the cell, or kind TB_VALUE_ABSENT when there is none. Release it with
/// tb_value_free() (needed for strings and JSON, harmless otherwise).
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_cell(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char, cell_id: *const c_char, out: *mut tb_value) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let (t, r, c) = (str_in(table_id, "table_id")?, str_in(row_id, "row_id")?, str_in(cell_id, "cell_id")?);
        let out = non_null(out, "out")?;
        *out = value_owned(h.store.get_cell(t, r, c).as_ref());
        Ok(())
    })
}

/// getValue: `*out` is the value, or kind TB_VALUE_ABSENT. Release it with tb_value_free().
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_value(store: *mut tb_store, value_id: *const c_char, out: *mut tb_value) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let v = str_in(value_id, "value_id")?;
        let out = non_null(out, "out")?;
        *out = value_owned(h.store.get_value(v).as_ref());
        Ok(())
    })
}

/// hasTables.
#[no_mangle]
pub unsafe extern "C" fn tb_store_has_tables(store: *mut tb_store, out: *mut bool) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let out = non_null(out, "out")?;
        *out = h.store.has_tables();
        Ok(())
    })
}

/// hasTable.
#[no_mangle]
pub unsafe extern "C" fn tb_store_has_table(store: *mut tb_store, table_id: *const c_char, out: *mut bool) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let t = str_in(table_id, "table_id")?;
        let out = non_null(out, "out")?;
        *out = h.store.has_table(t);
        Ok(())
    })
}

/// hasTableCell: whether a cell id is used anywhere in a table.
#[no_mangle]
pub unsafe extern "C" fn tb_store_has_table_cell(store: *mut tb_store, table_id: *const c_char, cell_id: *const c_char, out: *mut bool) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let (t, c) = (str_in(table_id, "table_id")?, str_in(cell_id, "cell_id")?);
        let out = non_null(out, "out")?;
        *out = h.store.has_table_cell(t, c);
        Ok(())
    })
}

/// hasRow.
#[no_mangle]
pub unsafe extern "C" fn tb_store_has_row(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char, out: *mut bool) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let (t, r) = (str_in(table_id, "table_id")?, str_in(row_id, "row_id")?);
        let out = non_null(out, "out")?;
        *out = h.store.has_row(t, r);
        Ok(())
    })
}

/// hasCell.
#[no_mangle]
pub unsafe extern "C" fn tb_store_has_cell(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char, cell_id: *const c_char, out: *mut bool) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let (t, r, c) = (str_in(table_id, "table_id")?, str_in(row_id, "row_id")?, str_in(cell_id, "cell_id")?);
        let out = non_null(out, "out")?;
        *out = h.store.has_cell(t, r, c);
        Ok(())
    })
}

/// hasValues.
#[no_mangle]
pub unsafe extern "C" fn tb_store_has_values(store: *mut tb_store, out: *mut bool) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let out = non_null(out, "out")?;
        *out = h.store.has_values();
        Ok(())
    })
}

/// hasValue.
#[no_mangle]
pub unsafe extern "C" fn tb_store_has_value(store: *mut tb_store, value_id: *const c_char, out: *mut bool) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        let v = str_in(value_id, "value_id")?;
        let out = non_null(out, "out")?;
        *out = h.store.has_value(v);
        Ok(())
    })
}

// ------------------------------------------------------------------------------- setters

/// Runs a setter taking one JSON argument.
unsafe fn set_json(store: *mut tb_store, json: *const c_char, f: impl FnOnce(&crate::Store, &str) -> crate::Result<()>) -> tb_status {
    guard(|| {
        let h = held(store)?;
        let json = str_in(json, "json")?;
        f(&h.store, json)?;
        Ok(())
    })
}

/// setTablesJson: replaces all tables (`{}` deletes them all). Cells may be plain JSON objects
/// and arrays or their wire form.
#[no_mangle]
pub unsafe extern "C" fn tb_store_set_tables_json(store: *mut tb_store, json: *const c_char) -> tb_status {
    set_json(store, json, |s, j| s.set_tables_json(j))
}

/// setValuesJson: replaces all values (`{}` deletes them all).
#[no_mangle]
pub unsafe extern "C" fn tb_store_set_values_json(store: *mut tb_store, json: *const c_char) -> tb_status {
    set_json(store, json, |s, j| s.set_values_json(j))
}

/// setJson: sets tables and values from `[tables, values]` (wire form accepted); as in
/// TinyBase, a JSON object is taken as the tables alone (setTablesJson).
#[no_mangle]
pub unsafe extern "C" fn tb_store_set_json(store: *mut tb_store, json: *const c_char) -> tb_status {
    set_json(store, json, |s, j| s.set_json(j))
}

/// setContent with `[tables, values]` JSON in plain (decoded) form.
#[no_mangle]
pub unsafe extern "C" fn tb_store_set_content_json(store: *mut tb_store, json: *const c_char) -> tb_status {
    set_json(store, json, |s, j| s.set_content_json(j))
}

/// setPartialValues from JSON `{valueId: value}`.
#[no_mangle]
pub unsafe extern "C" fn tb_store_set_partial_values_json(store: *mut tb_store, json: *const c_char) -> tb_status {
    set_json(store, json, |s, j| s.set_partial_values_json(j))
}

/// applyChanges with `[tables, values, 1]` JSON ("\uFFFC" deletes).
#[no_mangle]
pub unsafe extern "C" fn tb_store_apply_changes_json(store: *mut tb_store, json: *const c_char) -> tb_status {
    set_json(store, json, |s, j| s.apply_changes_json(j))
}

/// setTable from JSON `{rowId: {cellId: cell}}`.
#[no_mangle]
pub unsafe extern "C" fn tb_store_set_table_json(store: *mut tb_store, table_id: *const c_char, json: *const c_char) -> tb_status {
    guard(|| {
        let h = held(store)?;
        let (t, json) = (str_in(table_id, "table_id")?, str_in(json, "json")?);
        h.store.set_table_json(t, json)?;
        Ok(())
    })
}

/// setRow from JSON `{cellId: cell}`.
#[no_mangle]
pub unsafe extern "C" fn tb_store_set_row_json(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char, json: *const c_char) -> tb_status {
    guard(|| {
        let h = held(store)?;
        let (t, r, json) = (str_in(table_id, "table_id")?, str_in(row_id, "row_id")?, str_in(json, "json")?);
        h.store.set_row_json(t, r, json)?;
        Ok(())
    })
}

/// setPartialRow from JSON `{cellId: cell}`.
#[no_mangle]
pub unsafe extern "C" fn tb_store_set_partial_row_json(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char, json: *const c_char) -> tb_status {
    guard(|| {
        let h = held(store)?;
        let (t, r, json) = (str_in(table_id, "table_id")?, str_in(row_id, "row_id")?, str_in(json, "json")?);
        h.store.set_partial_row_json(t, r, json)?;
        Ok(())
    })
}

/// addRow from JSON `{cellId: cell}`: `*out_row_id` is the new row's id (owned:
/// tb_string_free()). With reuse_row_ids, ids of deleted rows are used first.
#[no_mangle]
pub unsafe extern "C" fn tb_store_add_row_json(store: *mut tb_store, table_id: *const c_char, json: *const c_char, reuse_row_ids: bool, out_row_id: *mut *mut c_char) -> tb_status {
    guard(|| {
        let h = held(store)?;
        let (t, json) = (str_in(table_id, "table_id")?, str_in(json, "json")?);
        let out = non_null(out_row_id, "out_row_id")?;
        let id = h.store.add_row_json(t, json, reuse_row_ids)?;
        write_string(out, id)
    })
}

/// setCell from a tb_value (TB_VALUE_ABSENT is refused: use tb_store_del_cell).
#[no_mangle]
pub unsafe extern "C" fn tb_store_set_cell(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char, cell_id: *const c_char, cell: *const tb_value) -> tb_status {
    guard(|| {
        let h = held(store)?;
        let (t, r, c) = (str_in(table_id, "table_id")?, str_in(row_id, "row_id")?, str_in(cell_id, "cell_id")?);
        h.store.set_stored_cell(t, r, c, stored_in(cell, "cell")?)?;
        Ok(())
    })
}

/// setCell with a string cell (a NUL-terminated UTF-8 string): the common case without a
/// tb_value (bindings use it for speed).
#[no_mangle]
pub unsafe extern "C" fn tb_store_set_cell_string(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char, cell_id: *const c_char, cell: *const c_char) -> tb_status {
    guard(|| {
        let h = held(store)?;
        let (t, r, c) = (str_in(table_id, "table_id")?, str_in(row_id, "row_id")?, str_in(cell_id, "cell_id")?);
        let v = Stored::from_str_cell(str_in(cell, "cell")?)?;
        h.store.set_stored_cell(t, r, c, v)?;
        Ok(())
    })
}

/// setCell from the JSON text of the cell (`"text"`, `1`, `true`, `null`, `{...}`, `[...]`).
#[no_mangle]
pub unsafe extern "C" fn tb_store_set_cell_json(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char, cell_id: *const c_char, json: *const c_char) -> tb_status {
    guard(|| {
        let h = held(store)?;
        let (t, r, c) = (str_in(table_id, "table_id")?, str_in(row_id, "row_id")?, str_in(cell_id, "cell_id")?);
        let json = str_in(json, "json")?;
        h.store.set_cell_json(t, r, c, json)?;
        Ok(())
    })
}

/// setValue from a tb_value (TB_VALUE_ABSENT is refused: use tb_store_del_value).
#[no_mangle]
pub unsafe extern "C" fn tb_store_set_value(store: *mut tb_store, value_id: *const c_char, value: *const tb_value) -> tb_status {
    guard(|| {
        let h = held(store)?;
        let id = str_in(value_id, "value_id")?;
        let v = value_in(value, "value")?;
        h.store.set_value(id, v)?;
        Ok(())
    })
}

/// setValue from the JSON text of the value.
#[no_mangle]
pub unsafe extern "C" fn tb_store_set_value_json(store: *mut tb_store, value_id: *const c_char, json: *const c_char) -> tb_status {
    guard(|| {
        let h = held(store)?;
        let (id, json) = (str_in(value_id, "value_id")?, str_in(json, "json")?);
        h.store.set_value_json(id, json)?;
        Ok(())
    })
}

/// delTables.
#[no_mangle]
pub unsafe extern "C" fn tb_store_del_tables(store: *mut tb_store) -> tb_status {
    guard(|| {
        let h = held(store)?;
        h.store.check_nesting()?;
        h.store.del_tables();
        Ok(())
    })
}

/// delTable.
#[no_mangle]
pub unsafe extern "C" fn tb_store_del_table(store: *mut tb_store, table_id: *const c_char) -> tb_status {
    guard(|| {
        let h = held(store)?;
        h.store.check_nesting()?;
        h.store.del_table(str_in(table_id, "table_id")?);
        Ok(())
    })
}

/// delRow.
#[no_mangle]
pub unsafe extern "C" fn tb_store_del_row(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char) -> tb_status {
    guard(|| {
        let h = held(store)?;
        let (t, r) = (str_in(table_id, "table_id")?, str_in(row_id, "row_id")?);
        h.store.check_nesting()?;
        h.store.del_row(t, r);
        Ok(())
    })
}

/// delCell.
#[no_mangle]
pub unsafe extern "C" fn tb_store_del_cell(store: *mut tb_store, table_id: *const c_char, row_id: *const c_char, cell_id: *const c_char) -> tb_status {
    guard(|| {
        let h = held(store)?;
        let (t, r, c) = (str_in(table_id, "table_id")?, str_in(row_id, "row_id")?, str_in(cell_id, "cell_id")?);
        h.store.check_nesting()?;
        h.store.del_cell(t, r, c);
        Ok(())
    })
}

/// delValues.
#[no_mangle]
pub unsafe extern "C" fn tb_store_del_values(store: *mut tb_store) -> tb_status {
    guard(|| {
        let h = held(store)?;
        h.store.check_nesting()?;
        h.store.del_values();
        Ok(())
    })
}

/// delValue.
#[no_mangle]
pub unsafe extern "C" fn tb_store_del_value(store: *mut tb_store, value_id: *const c_char) -> tb_status {
    guard(|| {
        let h = held(store)?;
        h.store.check_nesting()?;
        h.store.del_value(str_in(value_id, "value_id")?);
        Ok(())
    })
}

// ------------------------------------------------------------------------------- transactions

/// A transaction body: called once, synchronously, on the calling thread, with the store's
/// lock held (other threads wait). May call any tb_store_* function on `store` (borrowed for the
/// call). Return true to roll the transaction back, false to commit.
pub type tb_transaction_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, store: *mut tb_store) -> bool>;

/// transaction: runs `actions` in a transaction (nested calls join the outer one); listeners
/// are called once, after the outermost transaction commits. Rolled back when `actions`
/// returns true. BLOCKS while another thread is in a transaction on this store.
#[no_mangle]
pub unsafe extern "C" fn tb_store_transaction(store: *mut tb_store, actions: tb_transaction_fn, user_data: *mut c_void) -> tb_status {
    guard(|| {
        let h = held(store)?;
        let f = actions.ok_or_else(|| crate::ffi::error::fail(tb_status::TB_ERROR_NULL_PARAMETER, "actions is NULL"))?;
        let _entered = h.enter(); // `actions` runs with the store locked: a free in it must not wait
        let rollback = StdCell::new(false);
        h.store.transaction_with(|_| rollback.set(unsafe { f(user_data, store) }), |_| rollback.get());
        Ok(())
    })
}

/// startTransaction: begins a transaction that tb_store_finish_transaction() ends on the same
/// thread. Other threads wait for the store until then. Nested starts join the outer one (each
/// needs its finish). A thread that ends with a started transaction still open does not leave
/// the store locked: as the thread exits, the transaction is rolled back without calling any
/// listener, its lock released, a line is written to stderr and
/// tb_store_get_abandoned_transaction_count() counts it.
#[no_mangle]
pub unsafe extern "C" fn tb_store_start_transaction(store: *mut tb_store) -> tb_status {
    guard(|| {
        held(store)?.store.start_transaction();
        Ok(())
    })
}

/// finishTransaction: ends a transaction begun on this thread with
/// tb_store_start_transaction(), rolling it back when `rollback` is true, then calls the
/// listeners. TB_ERROR_INVALID_STATE, changing nothing, when this thread has no started
/// transaction open on this store: in particular from inside tb_store_transaction() or a
/// transaction listener, which cannot end a transaction they did not start.
#[no_mangle]
pub unsafe extern "C" fn tb_store_finish_transaction(store: *mut tb_store, rollback: bool) -> tb_status {
    guard(|| {
        held(store)?.store.finish_transaction(rollback)?;
        Ok(())
    })
}

/// How many transactions were rolled back because the thread that started them with
/// tb_store_start_transaction() ended without finishing them (see there).
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_abandoned_transaction_count(store: *mut tb_store, out: *mut u64) -> tb_status {
    guard(|| {
        let h = handle(store)?;
        *non_null(out, "out")? = h.store.get_abandoned_transaction_count();
        Ok(())
    })
}

/// getTransactionChanges as `[tables, values, 1]` JSON ("\uFFFC" for deletions): the changes
/// of the transaction open on this thread, or of the one whose did-finish listeners are
/// running; `[{},{},1]` otherwise. `*out`: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_store_get_transaction_changes_json(store: *mut tb_store, out: *mut *mut c_char) -> tb_status {
    get_string(store, out, |s| s.get_transaction_changes_json())
}
