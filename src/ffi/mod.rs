//! The C ABI: `extern "C"` functions, handles, status codes, strings and callbacks.
//!
//! No logic lives here: every function validates its arguments, calls the Rust API and converts
//! the result. `build.rs` runs cbindgen over this module to produce `include/tinybase.h`; the
//! contracts (ownership, threads, callbacks) are written at the top of that header
//! (`cbindgen.toml`) and on each function below.
#![allow(non_camel_case_types, clippy::missing_safety_doc)]

pub mod error;
pub mod handle;
pub mod listener;
pub mod mergeable;
pub mod persister;
pub mod store;
pub mod strings;
pub mod synchronizer;
pub mod value;
pub mod ws;

pub use error::*;
pub use handle::*;
pub use listener::*;
pub use mergeable::*;
pub use persister::*;
pub use store::*;
pub use strings::*;
pub use synchronizer::*;
pub use value::*;
pub use ws::*;

use std::ffi::c_char;
use std::sync::atomic::{AtomicI64, Ordering};

/// Objects currently owned by the host (see `tb_debug_live_handles`).
static LIVE: AtomicI64 = AtomicI64::new(0);

pub(crate) fn live_inc() {
    LIVE.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn live_dec() {
    LIVE.fetch_sub(1, Ordering::Relaxed);
}

/// The number of objects currently owned by the host that need a free: store and mergeable
/// store references, queues, events, strings and values returned by the library,
/// synchronizers, local buses, WebSocket clients and persisters, plus registered listeners
/// whose user_data has not been released yet. A debugging aid: a program that frees
/// everything and removes every listener gets back the value it started with.
#[no_mangle]
pub extern "C" fn tb_debug_live_handles() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

static VERSION_C: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library's version, "MAJOR.MINOR.PATCH" (equal to TB_VERSION_STRING of the header the
/// library was built with). A static string: never free it.
#[no_mangle]
pub extern "C" fn tb_version() -> *const c_char {
    VERSION_C.as_ptr() as *const c_char
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_matches_cargo() {
        let v = unsafe { std::ffi::CStr::from_ptr(super::tb_version()) };
        assert_eq!(v.to_str().ok(), Some(env!("CARGO_PKG_VERSION")));
    }
}
