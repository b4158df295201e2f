//! TEMPORARY stand-in for `codec.rs` (branch ws-codec, not merged yet), with the contract's
//! signatures and just enough behaviour for the client to run: no fragmenting. Deleted when
//! ws-codec is merged.
#![allow(dead_code, missing_docs)]

use crate::sync::message::parse_payload;
use std::time::{Duration, Instant};

pub const SUBPROTOCOL: &str = "tinybase";
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;
pub const MAX_FRAGMENTS: usize = 1000;
pub const MAX_INCOMPLETE_MESSAGES: usize = 100;
pub const MAX_CHANNELS: usize = 100;
pub const MAX_CHANNEL_ID_BYTES: usize = 1024;
pub const MAX_QUEUE: usize = 1000;
pub const SERVER_CLIENT_ID: &str = "S";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: String,
}
impl Close {
    pub fn malformed() -> Close {
        Close { code: 1007, reason: "tinybase:14".into() }
    }
    pub fn overload(detail: &str) -> Close {
        Close { code: 1013, reason: format!("tinybase:15:{detail}") }
    }
}

pub fn fragment(client_id: &str, remainder: &str, _fragment_size: Option<usize>) -> Vec<String> {
    vec![format!("{client_id}\n{remainder}")]
}

pub struct Reassembler {
    _timeout: Duration,
}
pub struct Payload {
    pub client_id: String,
    pub remainder: String,
    pub fragments: Vec<String>,
}
impl Reassembler {
    pub fn new(timeout: Duration) -> Reassembler {
        Reassembler { _timeout: timeout }
    }
    pub fn push(&mut self, frame: &str, _now: Instant) -> Result<Option<Payload>, Close> {
        let (id, rest) = frame.split_once('\n').ok_or_else(Close::malformed)?;
        parse_payload(rest).map_err(|_| Close::malformed())?;
        Ok(Some(Payload { client_id: id.into(), remainder: rest.into(), fragments: vec![] }))
    }
    pub fn expire(&mut self, _now: Instant) {}
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Hello = 0,
    Subscribe = 1,
    Unsubscribe = 2,
}
pub enum MuxFrame<'a> {
    Control { request_id: Option<String>, control: Control, body: serde_json::Value },
    Data { channel_id: &'a str, payload: &'a str },
}
pub fn parse_mux(frame: &str) -> Result<MuxFrame<'_>, Close> {
    if let Some(rest) = frame.strip_prefix("S\n") {
        let v: serde_json::Value = serde_json::from_str(rest).map_err(|_| Close::malformed())?;
        let a = v.as_array().filter(|a| a.len() == 3).ok_or_else(Close::malformed)?;
        let request_id = a[0].as_str().map(str::to_string);
        let inner = a[2].as_array().filter(|a| a.len() == 2).ok_or_else(Close::malformed)?;
        let control = match inner[0].as_i64() {
            Some(0) => Control::Hello,
            Some(1) => Control::Subscribe,
            Some(2) => Control::Unsubscribe,
            _ => return Err(Close::malformed()),
        };
        return Ok(MuxFrame::Control { request_id, control, body: inner[1].clone() });
    }
    let rest = frame.strip_prefix("M\n").ok_or_else(Close::malformed)?;
    let (channel_id, payload) = rest.split_once('\n').ok_or_else(Close::malformed)?;
    Ok(MuxFrame::Data { channel_id, payload })
}
pub fn control_frame(request_id: Option<&str>, control: Control, body_json: &str) -> String {
    let id = request_id.map_or("null".to_string(), |r| format!("\"{r}\""));
    format!("S\n[{id},-1,[{},{body_json}]]", control as u8)
}
pub fn data_frame(channel_id: &str, payload: &str) -> String {
    format!("M\n{channel_id}\n{payload}")
}
pub fn check_channel_id(id: &str) -> Result<(), Close> {
    if id.len() > MAX_CHANNEL_ID_BYTES {
        return Err(Close::overload("channels"));
    }
    if id.is_empty() || id.contains(['\n', '\r', '?', '#']) || id.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(Close::malformed());
    }
    Ok(())
}
