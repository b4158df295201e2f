//! WebSockets: TinyBase's wire framing (codec: fragments, multiplexed channels, limits, close
//! codes; shared with the server crate) and the blocking WebSocket client (no async runtime:
//! one I/O thread per socket beside each synchronizer's worker).

pub mod client;
pub mod codec;
mod conn;
mod connect;
mod poll;

pub use client::{WsClient, WsOptions, WsSynchronizer};
