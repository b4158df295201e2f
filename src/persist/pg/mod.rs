//! A small blocking PostgreSQL client (frontend/backend protocol version 3) over a plain
//! [`std::net::TcpStream`] or a unix socket: what the PostgreSQL persister needs and no more, so
//! that the library links no async runtime.
//!
//! It speaks the simple query protocol ([`Client::batch_execute`], [`Client::simple_query`]),
//! the extended one with text-format parameters and results ([`Client::prepare`],
//! [`Client::query`]), and `COPY ... FROM STDIN` ([`Client::copy_in`]). Authentication: trust,
//! cleartext password, MD5 and SCRAM-SHA-256 (without channel binding). No TLS.

mod auth;
mod base64;
mod config;
mod conn;
mod error;
mod md5;
mod message;
mod param;
mod row;

pub use config::{Config, Host};
pub use conn::{Client, Query, Statement};
pub use error::{DbError, Error};
pub use param::ToParam;
pub use row::Row;

/// SQLSTATE `55P03` (lock_not_available): a lock wait ran past `lock_timeout`.
pub const LOCK_NOT_AVAILABLE: &str = "55P03";
