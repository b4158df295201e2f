//! tb_mergeable_store_*: the MergeableStore operations beyond the Store ones (for those, use
//! tb_mergeable_store_as_store() and the tb_store_* functions).

use crate::ffi::error::{guard, tb_status};
use crate::ffi::handle::{held_mergeable, mergeable, tb_mergeable_store};
use crate::ffi::strings::{non_null, str_in, write_string};
use crate::MergeableStore;
use std::ffi::c_char;

unsafe fn get_string(store: *mut tb_mergeable_store, out: *mut *mut c_char, f: impl FnOnce(&MergeableStore) -> String) -> tb_status {
    guard(|| {
        let (_, m) = mergeable(store)?;
        let out = non_null(out, "out")?;
        write_string(out, f(m))
    })
}

unsafe fn set_json(store: *mut tb_mergeable_store, json: *const c_char, f: impl FnOnce(&MergeableStore, &str) -> crate::Result<()>) -> tb_status {
    guard(|| {
        let h = held_mergeable(store)?;
        let json = str_in(json, "json")?;
        f(h.mergeable(), json)?;
        Ok(())
    })
}

unsafe fn diff(store: *mut tb_mergeable_store, other: *const c_char, out: *mut *mut c_char, f: impl FnOnce(&MergeableStore, &str) -> crate::Result<String>) -> tb_status {
    guard(|| {
        let (_, m) = mergeable(store)?;
        let other = str_in(other, "other_hashes_json")?;
        let out = non_null(out, "out")?;
        let s = f(m, other)?;
        write_string(out, s)
    })
}

/// getMergeableContent as JSON `[tablesStamp, valuesStamp]` with hashes, object and array
/// cells decoded. `*out`: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_get_mergeable_content_json(store: *mut tb_mergeable_store, out: *mut *mut c_char) -> tb_status {
    get_string(store, out, |m| m.get_mergeable_content_json())
}

/// getMergeableContent in wire form (object and array cells as U+FFFD-prefixed strings): what
/// a synchronizer sends and a persisted file holds; tb_mergeable_store_set_mergeable_content_json
/// and tb_mergeable_store_apply_mergeable_changes_json take it. `*out`: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_get_encoded_mergeable_content_json(store: *mut tb_mergeable_store, out: *mut *mut c_char) -> tb_status {
    get_string(store, out, |m| m.get_encoded_mergeable_content_json())
}

/// getMergeableContentHashes: the tables hash and the values hash.
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_get_mergeable_content_hashes(store: *mut tb_mergeable_store, out_tables_hash: *mut u32, out_values_hash: *mut u32) -> tb_status {
    guard(|| {
        let (_, m) = mergeable(store)?;
        let t = non_null(out_tables_hash, "out_tables_hash")?;
        let v = non_null(out_values_hash, "out_values_hash")?;
        (*t, *v) = m.get_mergeable_content_hashes();
        Ok(())
    })
}

/// getMergeableContentHashes as JSON `[tablesHash, valuesHash]`. `*out`: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_get_mergeable_content_hashes_json(store: *mut tb_mergeable_store, out: *mut *mut c_char) -> tb_status {
    get_string(store, out, |m| {
        let (t, v) = m.get_mergeable_content_hashes();
        format!("[{t},{v}]")
    })
}

/// getTransactionMergeableChanges as JSON (decoded form), with or without hashes, for the
/// transaction open on this thread or whose did-finish listeners are running. `*out`:
/// tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_get_transaction_mergeable_changes_json(store: *mut tb_mergeable_store, with_hashes: bool, out: *mut *mut c_char) -> tb_status {
    get_string(store, out, |m| m.get_transaction_mergeable_changes_json(with_hashes))
}

/// getTransactionMergeableChanges in wire form (without hashes: the body of a ContentDiff
/// sync message; apply it elsewhere with tb_mergeable_store_apply_mergeable_changes_json).
/// `*out`: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_get_encoded_transaction_mergeable_changes_json(store: *mut tb_mergeable_store, with_hashes: bool, out: *mut *mut c_char) -> tb_status {
    get_string(store, out, |m| m.get_encoded_transaction_mergeable_changes_json(with_hashes))
}

/// applyMergeableChanges with wire-form JSON (mergeable changes `[tables, values, 1]` or
/// mergeable content). All or nothing: any invalid part (including an HLC more than five
/// minutes ahead) refuses the whole input.
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_apply_mergeable_changes_json(store: *mut tb_mergeable_store, json: *const c_char) -> tb_status {
    set_json(store, json, |m, j| m.apply_mergeable_changes_json(j))
}

/// applyMergeableChanges with decoded-form JSON (object and array cells as plain JSON).
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_apply_decoded_mergeable_changes_json(store: *mut tb_mergeable_store, json: *const c_char) -> tb_status {
    set_json(store, json, |m, j| m.apply_decoded_mergeable_changes_json(j))
}

/// setMergeableContent with wire-form content (as from
/// tb_mergeable_store_get_encoded_mergeable_content_json).
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_set_mergeable_content_json(store: *mut tb_mergeable_store, json: *const c_char) -> tb_status {
    set_json(store, json, |m, j| m.set_mergeable_content_json(j))
}

/// setMergeableContent with decoded-form content (as from
/// tb_mergeable_store_get_mergeable_content_json).
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_set_decoded_mergeable_content_json(store: *mut tb_mergeable_store, json: *const c_char) -> tb_status {
    set_json(store, json, |m, j| m.set_decoded_mergeable_content_json(j))
}

/// setDefaultContent with `[tables, values]` JSON: sets them with empty HLCs, only where no
/// stamp exists yet.
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_set_default_content_json(store: *mut tb_mergeable_store, json: *const c_char) -> tb_status {
    set_json(store, json, |m, j| m.set_default_content_json(j))
}

/// merge: both stores apply each other's full content. BLOCKS while another thread is in a
/// transaction on either store. Merging a store with itself is allowed (no change).
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_merge(store: *mut tb_mergeable_store, other: *mut tb_mergeable_store) -> tb_status {
    guard(|| {
        let (h, other) = (held_mergeable(store)?, held_mergeable(other)?);
        h.mergeable().merge(other.mergeable())?;
        Ok(())
    })
}

/// getMergeableTableHashes as JSON `{tableId: hash}`. `*out`: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_get_mergeable_table_hashes_json(store: *mut tb_mergeable_store, out: *mut *mut c_char) -> tb_status {
    get_string(store, out, |m| m.get_mergeable_table_hashes_json())
}

/// getMergeableTableDiff(otherTableHashes): `[newTables, differingTableHashes]`. `*out`:
/// tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_get_mergeable_table_diff_json(store: *mut tb_mergeable_store, other_hashes_json: *const c_char, out: *mut *mut c_char) -> tb_status {
    diff(store, other_hashes_json, out, |m, o| m.get_mergeable_table_diff_json(o))
}

/// getMergeableRowHashes(otherTableHashes): `{tableId: {rowId: hash}}`. `*out`:
/// tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_get_mergeable_row_hashes_json(store: *mut tb_mergeable_store, other_hashes_json: *const c_char, out: *mut *mut c_char) -> tb_status {
    diff(store, other_hashes_json, out, |m, o| m.get_mergeable_row_hashes_json(o))
}

/// getMergeableRowDiff(otherRowHashes): `[newRows, differingRowHashes]`. `*out`:
/// tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_get_mergeable_row_diff_json(store: *mut tb_mergeable_store, other_hashes_json: *const c_char, out: *mut *mut c_char) -> tb_status {
    diff(store, other_hashes_json, out, |m, o| m.get_mergeable_row_diff_json(o))
}

/// getMergeableCellHashes(otherRowHashes): `{tableId: {rowId: {cellId: hash}}}`. `*out`:
/// tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_get_mergeable_cell_hashes_json(store: *mut tb_mergeable_store, other_hashes_json: *const c_char, out: *mut *mut c_char) -> tb_status {
    diff(store, other_hashes_json, out, |m, o| m.get_mergeable_cell_hashes_json(o))
}

/// getMergeableCellDiff(otherCellHashes): a TablesStamp of the differing cells. `*out`:
/// tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_get_mergeable_cell_diff_json(store: *mut tb_mergeable_store, other_hashes_json: *const c_char, out: *mut *mut c_char) -> tb_status {
    diff(store, other_hashes_json, out, |m, o| m.get_mergeable_cell_diff_json(o))
}

/// getMergeableValueHashes as JSON `{valueId: hash}`. `*out`: tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_get_mergeable_value_hashes_json(store: *mut tb_mergeable_store, out: *mut *mut c_char) -> tb_status {
    get_string(store, out, |m| m.get_mergeable_value_hashes_json())
}

/// getMergeableValueDiff(otherValueHashes): a ValuesStamp of the differing values. `*out`:
/// tb_string_free().
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_get_mergeable_value_diff_json(store: *mut tb_mergeable_store, other_hashes_json: *const c_char, out: *mut *mut c_char) -> tb_status {
    diff(store, other_hashes_json, out, |m, o| m.get_mergeable_value_diff_json(o))
}

/// Recomputes every hash from scratch (a consistency check): equal to
/// tb_mergeable_store_get_mergeable_content_hashes() for content that grew normally.
#[no_mangle]
pub unsafe extern "C" fn tb_mergeable_store_compute_content_hashes(store: *mut tb_mergeable_store, out_tables_hash: *mut u32, out_values_hash: *mut u32) -> tb_status {
    guard(|| {
        let (_, m) = mergeable(store)?;
        let t = non_null(out_tables_hash, "out_tables_hash")?;
        let v = non_null(out_values_hash, "out_values_hash")?;
        (*t, *v) = m.compute_content_hashes();
        Ok(())
    })
}
