//! WebSockets: TinyBase's wire framing (codec: fragments, multiplexed channels, limits, close
//! codes; shared with the server crate) and the blocking WebSocket client.

pub mod codec;
