//! `tb_value`: a cell or value as a tagged union (absent, null, boolean, number, string, JSON).

use crate::ffi::error::{fail, tb_status, FfiResult};
use crate::ffi::strings::str_in;
use crate::ffi::{guard_or, live_dec, live_inc};
use crate::value::{parse_json, to_json_string, Stored};
use crate::Cell;
use std::ffi::c_char;

/// The type of a tb_value (a uint32_t; one of the TB_VALUE_* constants).
pub type tb_value_kind = u32;
/// No cell or value there (what a getter returns for a missing one). Not accepted by setters.
pub const TB_VALUE_ABSENT: tb_value_kind = 0;
/// JSON null (a real value, different from absent).
pub const TB_VALUE_NULL: tb_value_kind = 1;
/// A boolean, in `boolean`.
pub const TB_VALUE_BOOLEAN: tb_value_kind = 2;
/// A finite number, in `number`.
pub const TB_VALUE_NUMBER: tb_value_kind = 3;
/// A string, in `string` (NUL-terminated UTF-8; `length` bytes when returned).
pub const TB_VALUE_STRING: tb_value_kind = 4;
/// An object or array, as JSON text in `string` (as JavaScript's JSON.stringify writes it).
pub const TB_VALUE_JSON: tb_value_kind = 5;

/// A cell or value. `kind` says which field holds it.
///
/// Input (setters): the library reads `kind` and the matching field; `string` is
/// NUL-terminated UTF-8 borrowed for the call; `length` and `owned` are ignored. Build one
/// with tb_value_null(), tb_value_boolean(), tb_value_number(), tb_value_string(),
/// tb_value_json().
///
/// Output (tb_store_get_cell, tb_store_get_value): for TB_VALUE_STRING and TB_VALUE_JSON,
/// `string` is NUL-terminated and `length` is its size in bytes without the NUL (a string
/// cell may contain NUL bytes: use `length`); `owned` is true and the caller releases the
/// string with tb_value_free(). Values inside a tb_event are borrowed from the event
/// (`owned` is false).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tb_value {
    /// One of the TB_VALUE_* constants.
    pub kind: tb_value_kind,
    /// The value of a TB_VALUE_BOOLEAN.
    pub boolean: bool,
    /// The value of a TB_VALUE_NUMBER.
    pub number: f64,
    /// The text of a TB_VALUE_STRING or TB_VALUE_JSON (NULL otherwise).
    pub string: *const c_char,
    /// Output only: the byte length of `string`, without the terminating NUL.
    pub length: usize,
    /// Output only: whether `string` is owned by this tb_value (freed by tb_value_free).
    pub owned: bool,
}

impl tb_value {
    fn scalar(kind: tb_value_kind) -> tb_value {
        tb_value { kind, boolean: false, number: 0.0, string: std::ptr::null(), length: 0, owned: false }
    }
}

/// The bytes of a string with a NUL appended (kept in `store` or leaked for an owned value).
fn text_bytes(text: &str) -> Box<[u8]> {
    let mut v = Vec::with_capacity(text.len() + 1);
    v.extend_from_slice(text.as_bytes());
    v.push(0);
    v.into_boxed_slice()
}

/// A cell as a tb_value whose text lives in `store` (borrowed form, for events).
pub(crate) fn value_borrowed(cell: Option<&Cell>, store: &mut Vec<Box<[u8]>>) -> tb_value {
    let (kind, text) = match cell {
        None => return tb_value::scalar(TB_VALUE_ABSENT),
        Some(Cell::Null) => return tb_value::scalar(TB_VALUE_NULL),
        Some(Cell::Bool(b)) => return tb_value { boolean: *b, ..tb_value::scalar(TB_VALUE_BOOLEAN) },
        Some(Cell::Number(n)) => return tb_value { number: *n, ..tb_value::scalar(TB_VALUE_NUMBER) },
        Some(Cell::String(s)) => (TB_VALUE_STRING, s.clone()),
        Some(c @ (Cell::Object(_) | Cell::Array(_))) => (TB_VALUE_JSON, to_json_string(&c.to_json())),
    };
    let bytes = text_bytes(&text);
    let v = tb_value { string: bytes.as_ptr() as *const c_char, length: text.len(), ..tb_value::scalar(kind) };
    store.push(bytes);
    v
}

/// A cell as an owned tb_value (counted as live until tb_value_free when it holds text).
pub(crate) fn value_owned(cell: Option<&Cell>) -> tb_value {
    let mut store = Vec::new();
    let mut v = value_borrowed(cell, &mut store);
    if let Some(bytes) = store.pop() {
        v.string = Box::into_raw(bytes) as *const u8 as *const c_char;
        v.owned = true;
        live_inc();
    }
    v
}

/// Reads a cell from a host tb_value.
pub(crate) unsafe fn value_in(v: *const tb_value, name: &str) -> FfiResult<Cell> {
    if v.is_null() {
        return Err(fail(tb_status::TB_ERROR_NULL_PARAMETER, format!("{name} is NULL")));
    }
    let v = &*v;
    Ok(match v.kind {
        TB_VALUE_NULL => Cell::Null,
        TB_VALUE_BOOLEAN => Cell::Bool(v.boolean),
        TB_VALUE_NUMBER => Cell::Number(v.number),
        TB_VALUE_STRING => Cell::String(string_of(v, name)?.to_string()),
        TB_VALUE_JSON => Cell::from_json(&parse_json(string_of(v, name)?)?)?,
        TB_VALUE_ABSENT => {
            return Err(fail(
                tb_status::TB_ERROR_INVALID_VALUE,
                format!("{name} is absent: use the del_ function to delete"),
            ))
        }
        other => return Err(fail(tb_status::TB_ERROR_INVALID_VALUE, format!("{name} has unknown kind {other}"))),
    })
}

/// A setter's tb_value encoded for the store: a string goes straight in, with no [`Cell`] (and
/// no copy) on the way.
pub(crate) unsafe fn stored_in(v: *const tb_value, name: &str) -> FfiResult<Stored> {
    match v.as_ref() {
        Some(tv) if tv.kind == TB_VALUE_STRING => Ok(Stored::from_str_cell(string_of(tv, name)?)?),
        _ => Ok(Stored::from_cell(&value_in(v, name)?)?),
    }
}

/// The text of a string or JSON tb_value (its error names `{name}.string`: formatted only
/// then, since setters run this on every call).
unsafe fn string_of<'a>(v: &tb_value, name: &str) -> FfiResult<&'a str> {
    if !v.string.is_null() {
        if let Ok(s) = std::ffi::CStr::from_ptr(v.string).to_str() {
            return Ok(s);
        }
    }
    str_in(v.string, &format!("{name}.string"))
}

/// A value of kind TB_VALUE_ABSENT.
#[no_mangle]
pub extern "C" fn tb_value_absent() -> tb_value {
    tb_value::scalar(TB_VALUE_ABSENT)
}

/// A value of kind TB_VALUE_NULL.
#[no_mangle]
pub extern "C" fn tb_value_null() -> tb_value {
    tb_value::scalar(TB_VALUE_NULL)
}

/// A TB_VALUE_BOOLEAN value.
#[no_mangle]
pub extern "C" fn tb_value_boolean(boolean: bool) -> tb_value {
    tb_value { boolean, ..tb_value::scalar(TB_VALUE_BOOLEAN) }
}

/// A TB_VALUE_NUMBER value (setters refuse non-finite numbers).
#[no_mangle]
pub extern "C" fn tb_value_number(number: f64) -> tb_value {
    tb_value { number, ..tb_value::scalar(TB_VALUE_NUMBER) }
}

/// A TB_VALUE_STRING value borrowing `string` (NUL-terminated UTF-8; not copied, not freed).
#[no_mangle]
pub extern "C" fn tb_value_string(string: *const c_char) -> tb_value {
    tb_value { string, ..tb_value::scalar(TB_VALUE_STRING) }
}

/// A TB_VALUE_JSON value borrowing `json` (the JSON text of an object or array).
#[no_mangle]
pub extern "C" fn tb_value_json(json: *const c_char) -> tb_value {
    tb_value { string: json, ..tb_value::scalar(TB_VALUE_JSON) }
}

/// Releases the text a library-written tb_value owns (when `owned` is true) and resets it to
/// TB_VALUE_ABSENT. NULL, scalar values and values with `owned` false are left alone, so it is
/// always safe to call on a value a getter wrote. Calling it twice is harmless.
#[no_mangle]
pub unsafe extern "C" fn tb_value_free(value: *mut tb_value) {
    guard_or((), || {
        if value.is_null() {
            return;
        }
        let v = &mut *value;
        if v.owned && !v.string.is_null() {
            let slice = std::ptr::slice_from_raw_parts_mut(v.string as *mut u8, v.length + 1);
            drop(Box::from_raw(slice));
            live_dec();
        }
        *v = tb_value::scalar(TB_VALUE_ABSENT);
    })
}
