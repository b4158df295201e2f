//! `tinybase-server`: a WebSocket sync server for TinyBase MergeableStores, wire-compatible with
//! TinyBase's `createWsServer` (rooms by path, relay rules, multiplexed channels, fragments, a
//! server store per room with client id `S`), plus what production needs: rooms kept on disk,
//! auth, limits, health and metrics, graceful shutdown.

pub mod auth;
pub mod jwt;
pub mod metrics;
