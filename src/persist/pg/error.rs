//! The client's errors: the server's own (an `ErrorResponse` with its SQLSTATE code) apart from
//! failures to reach it, to authenticate, or to understand what it sent.

use std::fmt;

/// An error the server reported (`ErrorResponse`): its severity, SQLSTATE code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbError {
    /// `ERROR`, `FATAL` or `PANIC` (the non-localized field `V` when the server sends it).
    pub severity: String,
    /// The five-character SQLSTATE code, e.g. `42P01`.
    pub code: String,
    /// The primary, human-readable message.
    pub message: String,
    /// An optional second line of detail.
    pub detail: Option<String>,
    /// An optional suggestion what to do about it.
    pub hint: Option<String>,
}

impl DbError {
    /// The SQLSTATE code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The primary message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// What went wrong talking to PostgreSQL.
#[derive(Debug)]
pub enum Error {
    /// The connection string does not parse, or asks for something this client cannot do.
    Config(String),
    /// No host could be reached (the last host's failure).
    Connect(std::io::Error),
    /// Reading from or writing to an established connection failed.
    Io(std::io::Error),
    /// The server reported an error.
    Db(DbError),
    /// Authentication could not proceed (an unsupported method, a server proof that does not
    /// verify). A wrong password is the server's [`Error::Db`] (`28P01`).
    Auth(String),
    /// The server sent something this client does not understand (the connection is then closed).
    Protocol(String),
    /// The connection is closed (by the server, or after an earlier failure).
    Closed,
    /// A query expected to return one row returned another number of rows.
    RowCount(usize),
    /// A result column is NULL or does not convert to the asked type.
    Column(String),
}

impl Error {
    /// The server's error, if this is one.
    pub fn as_db_error(&self) -> Option<&DbError> {
        match self {
            Error::Db(db) => Some(db),
            _ => None,
        }
    }

    /// The server's SQLSTATE code, if this is the server's error.
    pub fn code(&self) -> Option<&str> {
        self.as_db_error().map(DbError::code)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "invalid configuration: {m}"),
            Error::Connect(e) => write!(f, "error connecting to server: {e}"),
            Error::Io(e) => write!(f, "error communicating with the server: {e}"),
            Error::Db(db) => {
                write!(f, "db error: {}: {}", db.severity, db.message)?;
                if let Some(detail) = &db.detail {
                    write!(f, "\nDETAIL: {detail}")?;
                }
                if let Some(hint) = &db.hint {
                    write!(f, "\nHINT: {hint}")?;
                }
                Ok(())
            }
            Error::Auth(m) => write!(f, "authentication error: {m}"),
            Error::Protocol(m) => write!(f, "protocol error: {m}"),
            Error::Closed => write!(f, "connection closed"),
            Error::RowCount(n) => write!(f, "query returned an unexpected number of rows ({n})"),
            Error::Column(m) => write!(f, "error retrieving column: {m}"),
        }
    }
}

impl std::error::Error for Error {}
