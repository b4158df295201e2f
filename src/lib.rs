//! The native TinyBase: TinyBase's Store and MergeableStore in Rust, exactly compatible with
//! TinyBase 10 (same JSON, HLCs, hashes and sync messages), thread-safe, with a C ABI.
//!
//! ```
//! use tinybase::MergeableStore;
//! let a = MergeableStore::new(Some("a"));
//! let b = MergeableStore::new(Some("b"));
//! a.set_cell("pets", "fido", "species", "dog").unwrap();
//! b.set_value("open", true).unwrap();
//! a.merge(&b).unwrap();
//! assert_eq!(a.get_mergeable_content_hashes(), b.get_mergeable_content_hashes());
//! ```

#![allow(clippy::type_complexity)]

pub mod error;
pub mod ffi;
pub mod hash;
pub mod hlc;
pub(crate) mod json_lex;
pub(crate) mod lifetime;
pub mod mergeable;
pub mod persist;
#[allow(unused_imports, dead_code)]
pub(crate) mod prim;
pub mod store;
pub mod sync;
pub(crate) mod util;
pub mod value;

pub use error::{Error, Result};
pub use hlc::Hlc;
pub use mergeable::typed::{CellHashes, CellStamp, MergeableContent, RowHashes, RowStamp, Stamp, TableHashes, TableStamp, TablesStamp, ValueHashes, ValuesStamp};
pub use mergeable::MergeableStore;
pub use store::{Changes, EventQueue, ListenerEvent, ListenerId, ListenerKind, Row, Store, Table, Tables, Values};
pub use value::{Cell, CellArg, Value};

/// This library's version (the crate version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
