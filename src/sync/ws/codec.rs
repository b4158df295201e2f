//! TinyBase's WebSocket wire format (PROTOCOL.md 7 and 8.1), without any I/O: fragmenting and
//! reassembling payloads, the multiplexed channel framing, channel id and room path rules, and
//! the close codes for bad traffic. The blocking client and the server crate both build on it.
//!
//! Sizes: TinyBase measures payloads in UTF-8 bytes, counting a lone UTF-16 surrogate as 3.
//! Rust strings are valid UTF-8, so `str::len` is that measure exactly.

use crate::sync::message::{parse_payload, payload_numbered, Received};
use crate::value::parse_json;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

/// The WebSocket subprotocol a multiplexing client asks for (7.4).
pub const SUBPROTOCOL: &str = "tinybase";
/// The largest payload (frame text, in UTF-8 bytes) anyone accepts or sends, and the most
/// fragment bytes buffered per socket (7.3).
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;
/// The most fragments one message may be cut into (7.2).
pub const MAX_FRAGMENTS: usize = 1000;
/// The most partly received fragmented messages per socket (7.2).
pub const MAX_INCOMPLETE_MESSAGES: usize = 100;
/// The most channels on one multiplexed socket (7.4).
pub const MAX_CHANNELS: usize = 100;
/// The most channels plus channel teardowns in progress a server keeps per socket (7.4).
pub const MAX_CHANNEL_RESOURCES: usize = 2 * MAX_CHANNELS;
/// The longest channel id, in UTF-8 bytes (7.4).
pub const MAX_CHANNEL_ID_BYTES: usize = 1024;
/// The most payloads queued per socket or room while waiting (8.2, 8.5).
pub const MAX_QUEUE: usize = 1000;
/// The client id of a server-side store, and the first line of multiplex control frames.
pub const SERVER_CLIENT_ID: &str = "S";
/// The first line of multiplexed data frames.
pub const MULTIPLEX_CLIENT_ID: &str = "M";
/// The message number of multiplex control frames.
pub const MULTIPLEX_MESSAGE: i64 = -1;
/// The multiplexing protocol version, the body of a Hello.
pub const MULTIPLEX_VERSION: i64 = 1;
/// The length of fragment message ids (and of the client's control request ids).
pub const MESSAGE_ID_LEN: usize = 16;

/// A reason to close a socket: 1007 `tinybase:14` (malformed) or 1013 `tinybase:15:<detail>`
/// (overload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Close {
    /// The WebSocket close code.
    pub code: u16,
    /// The close reason, also the error reported to `onIgnoredError`.
    pub reason: String,
}

impl Close {
    /// Close code for malformed traffic.
    pub const MALFORMED_CODE: u16 = 1007;
    /// Close code for overload.
    pub const OVERLOAD_CODE: u16 = 1013;

    /// Malformed traffic: 1007 `tinybase:14`.
    pub fn malformed() -> Close {
        Close { code: Self::MALFORMED_CODE, reason: "tinybase:14".into() }
    }
    /// Overload: 1013 `tinybase:15:<detail>` (`socket`, `fragments`, `channels`, `client`, ...).
    pub fn overload(detail: &str) -> Close {
        Close { code: Self::OVERLOAD_CODE, reason: format!("tinybase:15:{detail}") }
    }
}

impl fmt::Display for Close {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.reason)
    }
}

impl std::error::Error for Close {}

/// The frame `client_id\nrest`.
fn raw(client_id: &str, rest: &str) -> String {
    let mut out = String::with_capacity(client_id.len() + 1 + rest.len());
    out.push_str(client_id);
    out.push('\n');
    out.push_str(rest);
    out
}

/// The largest fragment (UTF-8 bytes) for `remainder`, or None when fragmentation is off: the
/// floor keeps every message within [`MAX_FRAGMENTS`] pieces, the `+ 3` leaves room for a
/// 4-byte code point.
fn max_fragment_bytes(remainder: &str, fragment_size: Option<usize>) -> Option<usize> {
    let size = fragment_size.filter(|&s| s >= 1)?;
    Some(size.max(remainder.len().div_ceil(MAX_FRAGMENTS) + 3))
}

/// Consecutive slices of `text`, each as long as possible within `max` UTF-8 bytes, never
/// splitting a code point (a code point longer than `max` gets a slice of its own).
fn pieces(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if i > start && i + c.len_utf8() - start > max {
            out.push(&text[start..i]);
            start = i;
        }
    }
    out.push(&text[start..]);
    out
}

/// Cuts `remainder` (the JSON text of a payload) into frames `<client_id>\n...` per 7.2: one
/// unfragmented frame when fragmentation is off (`fragment_size` None or 0) or one piece
/// suffices, else `<client_id>\n<messageId>\n<i>\n<n>\n<piece>` with a fresh random message
/// id. `client_id` is the recipient ("" broadcast) from a client, or the sender from a server.
pub fn fragment(client_id: &str, remainder: &str, fragment_size: Option<usize>) -> Vec<String> {
    let Some(max) = max_fragment_bytes(remainder, fragment_size) else {
        return vec![raw(client_id, remainder)];
    };
    let pieces = pieces(remainder, max);
    if pieces.len() == 1 {
        return vec![raw(client_id, remainder)];
    }
    let id = crate::util::random_id(MESSAGE_ID_LEN);
    let n = pieces.len();
    pieces.iter().enumerate().map(|(i, piece)| raw(client_id, &format!("{id}\n{i}\n{n}\n{piece}"))).collect()
}

/// A whole payload, received unfragmented or reassembled, and validated (6.6).
#[derive(Clone, Debug, PartialEq)]
pub struct Payload {
    /// The first line: the recipient ("" broadcast) in a client's frame, the sender in a
    /// server's.
    pub client_id: String,
    /// The whole JSON text `[requestId, message, body]`.
    pub remainder: String,
    /// When it came in fragments: each fragment frame's text after `client_id\n`
    /// (`messageId\ni\nn\npiece`), in index order, so a server can relay them as they came.
    /// Empty when it came whole.
    pub fragments: Vec<String>,
    /// The parsed message.
    pub received: Received,
}

/// The digits of `\d+` as a number, saturating (as `parseInt` then `> 1000` behaves).
fn decimal(digits: &str) -> u64 {
    digits.bytes().fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(d - b'0')))
}

fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The parts of a fragment remainder,
/// `^([-0-9A-Z_a-z]{16})\n(\d+)\n(\d+)\n([\s\S]*)$`: (message id, index, total, piece).
fn split_fragment(remainder: &str) -> Option<(&str, u64, u64, &str)> {
    let b = remainder.as_bytes();
    if b.len() <= MESSAGE_ID_LEN || !b[..MESSAGE_ID_LEN].iter().all(|&c| is_id_char(c)) || b[MESSAGE_ID_LEN] != b'\n' {
        return None;
    }
    let id = &remainder[..MESSAGE_ID_LEN];
    let mut rest = &remainder[MESSAGE_ID_LEN + 1..];
    let mut number = || {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || rest.as_bytes().get(digits) != Some(&b'\n') {
            return None;
        }
        let n = decimal(&rest[..digits]);
        rest = &rest[digits + 1..];
        Some(n)
    };
    let index = number()?;
    let total = number()?;
    Some((id, index, total, rest))
}

/// Whether a frame looks like a fragment (`^[^\n]*\n[-0-9A-Z_a-z]{16}\n\d+\n\d+\n`), to name
/// the overload of an oversized one.
fn looks_like_fragment(frame: &str) -> bool {
    frame.split_once('\n').and_then(|(_, rest)| split_fragment(rest)).is_some()
}

/// A fragmented message's key: (channel id, client id, message id).
type Key = (String, String, String);

/// A fragmented message being received.
#[derive(Debug)]
struct Pending {
    /// Each index's whole remainder (`messageId\ni\nn\npiece`) and where its piece starts,
    /// once received.
    parts: Vec<Option<(String, usize)>>,
    missing: usize,
    /// UTF-8 bytes counted against the socket's buffer limit.
    retained: usize,
    started: Instant,
}

/// Reassembles fragments per socket (7.2): the limits, duplicate and mismatch checks, and
/// expiry of incomplete messages after a timeout (the request timeout).
///
/// A multiplexed socket uses one `Reassembler` for all its channels (the limits are per socket)
/// with [`Reassembler::push_channel`]; a legacy socket uses [`Reassembler::push`]. After an
/// `Err`, the caller closes the socket; the buffers have been dropped.
#[derive(Debug)]
pub struct Reassembler {
    timeout: Duration,
    pending: HashMap<Key, Pending>,
    buffered: usize,
}

impl Reassembler {
    /// A reassembler dropping incomplete messages `timeout` after their first fragment.
    pub fn new(timeout: Duration) -> Reassembler {
        Reassembler { timeout, pending: HashMap::new(), buffered: 0 }
    }

    /// Takes one basic payload (`client_id\nrest`). `Ok(None)`: a fragment was buffered.
    /// `Ok(Some(p))`: a whole, validated protocol payload. `Err(close)`: the socket must be
    /// closed with that code and reason (the payload must not be relayed).
    pub fn push(&mut self, frame: &str, now: Instant) -> Result<Option<Payload>, Close> {
        self.push_channel("", frame, now)
    }

    /// [`Reassembler::push`] for a multiplexed channel's basic payload: fragments of different
    /// channels never mix, while the limits count them all.
    pub fn push_channel(&mut self, channel_id: &str, frame: &str, now: Instant) -> Result<Option<Payload>, Close> {
        let result = self.decode(channel_id, frame, now);
        if result.is_err() {
            self.clear();
        }
        result
    }

    fn decode(&mut self, channel_id: &str, frame: &str, now: Instant) -> Result<Option<Payload>, Close> {
        if frame.len() > MAX_PAYLOAD_BYTES {
            return Err(Close::overload(if looks_like_fragment(frame) { "fragments" } else { "socket" }));
        }
        self.expire(now);
        let (client_id, remainder) = frame.split_once('\n').ok_or_else(Close::malformed)?;
        if let Ok(received) = parse_payload(remainder) {
            return Ok(Some(Payload { client_id: client_id.into(), remainder: remainder.into(), fragments: Vec::new(), received }));
        }
        let (id, index, total, piece) = split_fragment(remainder).ok_or_else(Close::malformed)?;
        if total > MAX_FRAGMENTS as u64 {
            return Err(Close::overload("fragments"));
        }
        if total == 0 || index >= total {
            return Err(Close::malformed());
        }
        let (total, index) = (total as usize, index as usize);
        let key = (channel_id.to_string(), client_id.to_string(), id.to_string());
        let existing = self.pending.get(&key);
        if existing.is_none() && self.pending.len() >= MAX_INCOMPLETE_MESSAGES {
            return Err(Close::overload("fragments"));
        }
        if existing.is_some_and(|p| p.parts.len() != total || p.parts[index].is_some()) {
            return Err(Close::malformed());
        }
        // The key's bytes count once per message, as TinyBase counts `clientId\nmessageId`.
        let retained = remainder.len() + if existing.is_some() { 0 } else { client_id.len() + 1 + MESSAGE_ID_LEN };
        if self.buffered + retained > MAX_PAYLOAD_BYTES {
            return Err(Close::overload("fragments"));
        }
        let pending = self.pending.entry(key.clone()).or_insert_with(|| Pending {
            parts: vec![None; total],
            missing: total,
            retained: 0,
            started: now,
        });
        pending.parts[index] = Some((remainder.to_string(), remainder.len() - piece.len()));
        pending.missing -= 1;
        pending.retained += retained;
        self.buffered += retained;
        if pending.missing > 0 {
            return Ok(None);
        }
        let done = self.pending.remove(&key).expect("the message just completed");
        self.buffered -= done.retained;
        let parts: Vec<(String, usize)> = done.parts.into_iter().flatten().collect();
        let whole: String = parts.iter().map(|(fragment, piece)| &fragment[*piece..]).collect();
        let fragments = parts.into_iter().map(|(fragment, _)| fragment).collect();
        let received = parse_payload(&whole).map_err(|_| Close::malformed())?;
        Ok(Some(Payload { client_id: client_id.into(), remainder: whole, fragments, received }))
    }

    /// Drops the incomplete messages whose first fragment came `timeout` or longer before `now`.
    pub fn expire(&mut self, now: Instant) {
        let timeout = self.timeout;
        self.drop_where(|_, p| now.saturating_duration_since(p.started) >= timeout);
    }

    /// Drops the incomplete messages of one channel (when it is unsubscribed).
    pub fn drop_channel(&mut self, channel_id: &str) {
        self.drop_where(|(channel, _, _), _| channel == channel_id);
    }

    fn drop_where(&mut self, drop: impl Fn(&Key, &Pending) -> bool) {
        let mut freed = 0;
        self.pending.retain(|k, p| {
            let dropped = drop(k, p);
            if dropped {
                freed += p.retained;
            }
            !dropped
        });
        self.buffered -= freed;
    }

    /// Drops every incomplete message.
    pub fn clear(&mut self) {
        self.pending.clear();
        self.buffered = 0;
    }

    /// The number of incomplete messages buffered.
    pub fn incomplete(&self) -> usize {
        self.pending.len()
    }

    /// The UTF-8 bytes buffered (counted as TinyBase counts them against [`MAX_PAYLOAD_BYTES`]).
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// When the oldest incomplete message expires, if any: when to call [`Reassembler::expire`].
    pub fn next_expiry(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.started + self.timeout).min()
    }
}

/// A multiplex control (7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Control {
    /// Opens multiplexing (body: the protocol version, 1; request id: a string).
    Hello = 0,
    /// Joins a channel (body: the channel id; request id: a string).
    Subscribe = 1,
    /// Leaves a channel (body: the channel id; request id: null). Never answered.
    Unsubscribe = 2,
}

/// A frame on a multiplexed socket (7.4).
#[derive(Clone, Debug, PartialEq)]
pub enum MuxFrame<'a> {
    /// `S\n[requestId, -1, [control, body]]`, validated: a Hello has a string request id and body
    /// 1; a Subscribe a string request id and a string body; an Unsubscribe a null request id and
    /// a string body. A Subscribe's or Unsubscribe's channel id is structurally valid but may be
    /// too long: check it with [`check_channel_id`] before acting on it (TinyBase answers a too
    /// long one with overload `channels`, and only once Hello was done).
    Control {
        /// The request id (None: null).
        request_id: Option<String>,
        /// The control.
        control: Control,
        /// The body: 1 for Hello, the channel id (a string) otherwise.
        body: Json,
    },
    /// `M\n<channelId>\n<payload>`, with a valid channel id.
    Data {
        /// The channel id.
        channel_id: &'a str,
        /// A basic payload (7.1 or 7.2), for [`Reassembler::push_channel`].
        payload: &'a str,
    },
}

/// Whether a channel id is structurally valid (7.4), length aside.
fn channel_id_structure_ok(id: &str) -> bool {
    !id.is_empty()
        && !id.contains(['\n', '\r', '?', '#'])
        && id.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

/// Checks a channel id (7.4): longer than [`MAX_CHANNEL_ID_BYTES`] → overload `channels`;
/// empty, containing `\n`, `\r`, `?` or `#`, or with an empty, `.` or `..` segment → malformed.
pub fn check_channel_id(id: &str) -> Result<(), Close> {
    if id.len() > MAX_CHANNEL_ID_BYTES {
        Err(Close::overload("channels"))
    } else if channel_id_structure_ok(id) {
        Ok(())
    } else {
        Err(Close::malformed())
    }
}

/// The control frame `S\n[requestId, -1, ...]`, if it is a valid one.
fn parse_control(remainder: &str) -> Option<MuxFrame<'static>> {
    let Json::Array(mut parts) = parse_json(remainder).ok()? else { return None };
    if parts.len() != 3 || parts[1].as_f64() != Some(MULTIPLEX_MESSAGE as f64) {
        return None;
    }
    let Json::Array(mut control_body) = parts.pop()? else { return None };
    let request_id = match &parts[0] {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        _ => return None,
    };
    if control_body.len() != 2 {
        return None;
    }
    let body = control_body.pop()?;
    // TinyBase reads the U+FFFC marker as undefined, which is no channel id.
    let channel_ok = |b: &Json| b.as_str().is_some_and(|s| s != "\u{FFFC}" && (s.len() > MAX_CHANNEL_ID_BYTES || channel_id_structure_ok(s)));
    let (control, body) = match (control_body[0].as_f64(), &request_id) {
        // The version as an integer, however it was written (`1.0`, `1e0`).
        (Some(0.0), Some(_)) if body.as_f64() == Some(MULTIPLEX_VERSION as f64) => (Control::Hello, Json::from(MULTIPLEX_VERSION)),
        (Some(1.0), Some(_)) if channel_ok(&body) => (Control::Subscribe, body),
        (Some(2.0), None) if channel_ok(&body) => (Control::Unsubscribe, body),
        _ => return None,
    };
    Some(MuxFrame::Control { request_id, control, body })
}

/// Parses a frame of a multiplexed socket (7.3, 7.4). Longer than [`MAX_PAYLOAD_BYTES`] →
/// overload `socket`; a data frame's channel id too long → overload `channels`; anything else
/// that is not a valid control or data frame → malformed.
pub fn parse_mux(frame: &str) -> Result<MuxFrame<'_>, Close> {
    if frame.len() > MAX_PAYLOAD_BYTES {
        return Err(Close::overload("socket"));
    }
    match frame.split_once('\n') {
        Some((SERVER_CLIENT_ID, remainder)) => parse_control(remainder).ok_or_else(Close::malformed),
        Some((MULTIPLEX_CLIENT_ID, rest)) => {
            let (channel_id, payload) = rest.split_once('\n').ok_or_else(Close::malformed)?;
            check_channel_id(channel_id)?;
            Ok(MuxFrame::Data { channel_id, payload })
        }
        _ => Err(Close::malformed()),
    }
}

/// The control frame `S\n[requestId,-1,[control,body]]`; `body_json` is JSON text (`1`, or a
/// channel id as a JSON string). Clients use 16-char random request ids
/// (`crate::util::random_id(16)`), and Unsubscribe has none.
pub fn control_frame(request_id: Option<&str>, control: Control, body_json: &str) -> String {
    raw(SERVER_CLIENT_ID, &payload_numbered(request_id, MULTIPLEX_MESSAGE, &format!("[{},{body_json}]", control as u8)))
}

/// The data frame `M\n<channelId>\n<payload>` (payload: a basic payload, maybe a fragment).
pub fn data_frame(channel_id: &str, payload: &str) -> String {
    raw(MULTIPLEX_CLIENT_ID, &raw(channel_id, payload))
}

/// The room a multiplexed channel joins (7.4): `base_path/channel_id`, or `channel_id` when the
/// socket's base path is empty.
pub fn room_path(base_path: &str, channel_id: &str) -> String {
    if base_path.is_empty() {
        channel_id.to_string()
    } else {
        format!("{base_path}/{channel_id}")
    }
}

/// The path ("room") of an HTTP request URI (8.1): everything after the first `/` up to the
/// first `?`, not percent-decoded, a trailing slash kept (`/room1?x=1` → `room1`, `/` → ``).
/// A URI without `/` gives `` (HTTP request targets always have one).
pub fn path_of_request_uri(uri: &str) -> String {
    let Some(slash) = uri.find('/') else { return String::new() };
    let rest = &uri[slash + 1..];
    rest.split('?').next().unwrap_or("").to_string()
}
