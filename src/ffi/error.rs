//! Status codes, the per-thread last error, and the panic guard every export runs in.

use crate::ffi::strings::copy_to_buffer;
use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The result of every fallible function. Out-parameters are written only with TB_OK.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tb_status {
    /// Success.
    TB_OK = 0,
    /// A required pointer argument was NULL.
    TB_ERROR_NULL_PARAMETER = 1,
    /// A string argument was not valid UTF-8.
    TB_ERROR_INVALID_UTF8 = 2,
    /// JSON text was malformed (or exceeded the size or depth limits).
    TB_ERROR_INVALID_JSON = 3,
    /// A cell or value was not a string, finite number, boolean, null, object or array, or
    /// was a reserved string, or a tb_value had an unknown or absent kind where one is needed.
    TB_ERROR_INVALID_VALUE = 4,
    /// Valid JSON without the shape the function expects.
    TB_ERROR_INVALID_SHAPE = 5,
    /// A malformed HLC, or one more than five minutes in the future.
    TB_ERROR_INVALID_HLC = 6,
    /// Not allowed in the current state (for example finishing a transaction that was not
    /// started on this thread, or a plain store where a mergeable one is needed).
    TB_ERROR_INVALID_STATE = 7,
    /// An argument out of range (for example an unknown listener kind).
    TB_ERROR_INVALID_ARGUMENT = 8,
    /// An internal error (a Rust panic) was caught at the boundary. The store is unchanged.
    TB_ERROR_PANIC = 9,
    /// Persistence: reading or writing the storage failed (I/O, a database error, a lock held
    /// by another process past the timeout). The store is unchanged.
    TB_ERROR_IO = 10,
    /// Persistence: the stored data cannot be loaded (not TinyBase content, a wrong shape, bad
    /// hashes, an HLC far in the future). Nothing was loaded; the stored data is kept.
    TB_ERROR_CORRUPT = 11,
}

/// A failure on its way to the caller.
pub(crate) struct Fail {
    pub status: tb_status,
    pub message: String,
}

pub(crate) type FfiResult<T> = Result<T, Fail>;

pub(crate) fn fail(status: tb_status, message: impl Into<String>) -> Fail {
    Fail { status, message: message.into() }
}

/// The status code of a library error.
pub(crate) fn status_of(e: &crate::Error) -> tb_status {
    use crate::Error::*;
    match e {
        InvalidJson(_) => tb_status::TB_ERROR_INVALID_JSON,
        InvalidValue(_) => tb_status::TB_ERROR_INVALID_VALUE,
        InvalidShape(_) => tb_status::TB_ERROR_INVALID_SHAPE,
        InvalidHlc(_) => tb_status::TB_ERROR_INVALID_HLC,
        InvalidState(_) => tb_status::TB_ERROR_INVALID_STATE,
        Io(_) => tb_status::TB_ERROR_IO,
        Corrupt(_) => tb_status::TB_ERROR_CORRUPT,
    }
}

impl From<crate::Error> for Fail {
    fn from(e: crate::Error) -> Fail {
        Fail { status: status_of(&e), message: e.to_string() }
    }
}

thread_local! {
    static LAST: RefCell<Option<(tb_status, CString)>> = const { RefCell::new(None) };
}

fn set_last(status: tb_status, message: String) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    let _ = LAST.try_with(|l| *l.borrow_mut() = Some((status, text)));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    format!("internal error (panic): {what}")
}

/// Runs an export body: panics become TB_ERROR_PANIC, failures record the last error.
pub(crate) fn guard(f: impl FnOnce() -> FfiResult<()>) -> tb_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => tb_status::TB_OK,
        Ok(Err(e)) => {
            set_last(e.status, e.message);
            e.status
        }
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            // Dropping the payload may itself panic; never let that escape.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            set_last(tb_status::TB_ERROR_PANIC, message);
            tb_status::TB_ERROR_PANIC
        }
    }
}

/// Runs an export body that has no status to return; a panic yields `default`.
pub(crate) fn guard_or<T>(default: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            set_last(tb_status::TB_ERROR_PANIC, message);
            default
        }
    }
}

static EMPTY: &[u8] = b"\0";

/// The message of the last failed call on this thread ("" if none failed yet). Borrowed:
/// valid until the next failing call on this thread; never free it.
#[no_mangle]
pub extern "C" fn tb_last_error_message() -> *const c_char {
    guard_or(EMPTY.as_ptr() as *const c_char, || {
        LAST.try_with(|l| l.borrow().as_ref().map(|(_, m)| m.as_ptr()))
            .ok()
            .flatten()
            .unwrap_or(EMPTY.as_ptr() as *const c_char)
    })
}

/// The status of the last failed call on this thread (TB_OK if none failed yet).
#[no_mangle]
pub extern "C" fn tb_last_error_status() -> tb_status {
    guard_or(tb_status::TB_OK, || {
        LAST.try_with(|l| l.borrow().as_ref().map(|(s, _)| *s)).ok().flatten().unwrap_or(tb_status::TB_OK)
    })
}

/// Copies the message of the last failed call on this thread into `buf` (at most `len` bytes
/// including the terminating NUL, cut at a UTF-8 character boundary; nothing is written when
/// `buf` is NULL or `len` is 0). Returns the full message length in bytes (without the NUL),
/// as snprintf does: a return value >= len means the copy was truncated.
#[no_mangle]
pub unsafe extern "C" fn tb_last_error_message_copy(buf: *mut c_char, len: usize) -> usize {
    guard_or(0, || {
        LAST.try_with(|l| {
            let l = l.borrow();
            let text = l.as_ref().map(|(_, m)| m.to_str().unwrap_or("")).unwrap_or("");
            copy_to_buffer(text, buf, len)
        })
        .unwrap_or(0)
    })
}

/// Forgets the last error of this thread (tb_last_error_status() is TB_OK afterwards).
#[no_mangle]
pub extern "C" fn tb_last_error_clear() {
    guard_or((), || {
        let _ = LAST.try_with(|l| *l.borrow_mut() = None);
    })
}
