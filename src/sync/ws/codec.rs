//! TinyBase's WebSocket wire format (PROTOCOL.md section 7), without I/O.
