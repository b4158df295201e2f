//! Strings across the boundary: NUL-terminated UTF-8 in (validated), owned `char*` out.

use crate::ffi::error::{fail, tb_status, FfiResult};
use crate::ffi::{guard_or, live_dec, live_inc};
use std::ffi::{c_char, CStr, CString};

/// A required string argument.
pub(crate) unsafe fn str_in<'a>(p: *const c_char, name: &str) -> FfiResult<&'a str> {
    if p.is_null() {
        return Err(fail(tb_status::TB_ERROR_NULL_PARAMETER, format!("{name} is NULL")));
    }
    CStr::from_ptr(p)
        .to_str()
        .map_err(|e| fail(tb_status::TB_ERROR_INVALID_UTF8, format!("{name} is not valid UTF-8: {e}")))
}

/// An optional string argument (NULL is None: a wildcard or "pick one").
pub(crate) unsafe fn opt_str_in<'a>(p: *const c_char, name: &str) -> FfiResult<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        str_in(p, name).map(Some)
    }
}

/// A required pointer argument.
pub(crate) fn non_null<T>(p: *mut T, name: &str) -> FfiResult<*mut T> {
    if p.is_null() {
        Err(fail(tb_status::TB_ERROR_NULL_PARAMETER, format!("{name} is NULL")))
    } else {
        Ok(p)
    }
}

/// A new owned C string (counted as live until `tb_string_free`).
pub(crate) fn string_out(s: String) -> FfiResult<*mut c_char> {
    let c = CString::new(s).map_err(|_| fail(tb_status::TB_ERROR_INVALID_VALUE, "the result contains a NUL byte"))?;
    live_inc();
    Ok(c.into_raw())
}

/// Writes an owned string to a (checked) out-parameter.
pub(crate) unsafe fn write_string(out: *mut *mut c_char, s: String) -> FfiResult<()> {
    let p = string_out(s)?;
    *out = p;
    Ok(())
}

/// snprintf-style copy used by the `_copy` functions.
pub(crate) unsafe fn copy_to_buffer(text: &str, buf: *mut c_char, len: usize) -> usize {
    if !buf.is_null() && len > 0 {
        let mut n = text.len().min(len - 1);
        while n > 0 && !text.is_char_boundary(n) {
            n -= 1;
        }
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf as *mut u8, n);
        *buf.add(n) = 0;
    }
    text.len()
}

/// Frees a string returned by this library through a `char **` out-parameter. NULL is fine.
/// Never pass strings from elsewhere, borrowed strings, or memory from libc malloc.
#[no_mangle]
pub unsafe extern "C" fn tb_string_free(s: *mut c_char) {
    guard_or((), || {
        if !s.is_null() {
            drop(CString::from_raw(s));
            live_dec();
        }
    })
}
