//! Errors returned by every fallible operation.

use std::fmt;

/// Why an operation was refused. The store is unchanged whenever one is returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The text is not valid JSON (or exceeds the size or depth limits).
    InvalidJson(String),
    /// A cell or value is not a string, finite number, boolean, null, object or array,
    /// or is a reserved string.
    InvalidValue(String),
    /// The JSON is valid but does not have the shape the operation expects.
    InvalidShape(String),
    /// An HLC is malformed or more than five minutes in the future.
    InvalidHlc(String),
    /// The operation is not allowed in the current state (for example finishing a
    /// transaction that was never started).
    InvalidState(String),
    /// Persistence: reading or writing the storage failed (I/O, a database error, a lock held
    /// elsewhere past the timeout). The store is unchanged.
    Io(String),
    /// Persistence: the stored data cannot be loaded (not TinyBase content, a wrong shape, hashes
    /// that are not the content's, an HLC far in the future). Nothing was loaded, and the stored
    /// data is never written over (PROTOCOL.md 12.8).
    Corrupt(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidJson(m) => write!(f, "invalid JSON: {m}"),
            Error::InvalidValue(m) => write!(f, "invalid cell or value: {m}"),
            Error::InvalidShape(m) => write!(f, "invalid shape: {m}"),
            Error::InvalidHlc(m) => write!(f, "invalid HLC: {m}"),
            Error::InvalidState(m) => write!(f, "invalid state: {m}"),
            Error::Io(m) => write!(f, "storage failed: {m}"),
            Error::Corrupt(m) => write!(f, "stored data cannot be loaded: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
