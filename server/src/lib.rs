//! `tinybase-server`: a WebSocket sync server for TinyBase MergeableStores, wire-compatible with
//! TinyBase's `createWsServer` (rooms by path, relay rules, multiplexed channels, fragments, a
//! server store per room with client id `S`), plus what production needs: rooms kept in files,
//! SQLite or PostgreSQL ([`StoreKind`]),
//! auth, limits, health and metrics, graceful shutdown.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use tinybase_server::{Server, ServerOptions};
//! let handle = Server::start(ServerOptions { data_dir: Some("./tinybase-data".into()), ..Default::default() }).await?;
//! println!("listening on {}", handle.local_addr());
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

pub mod auth;
mod conn;
pub mod files;
pub mod jwt;
pub mod metrics;
mod outbox;
pub mod persist;
mod room;
mod server;

pub use auth::{Access, AuthHook, AuthKind, AuthRequest};
pub use metrics::Metrics;
pub use persist::StoreKind;
pub use server::{ClientIdsListener, ListenerId, PathIdsListener, Server, ServerHandle, ServerOptions, ServerStats};
