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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidJson(m) => write!(f, "invalid JSON: {m}"),
            Error::InvalidValue(m) => write!(f, "invalid cell or value: {m}"),
            Error::InvalidShape(m) => write!(f, "invalid shape: {m}"),
            Error::InvalidHlc(m) => write!(f, "invalid HLC: {m}"),
            Error::InvalidState(m) => write!(f, "invalid state: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
