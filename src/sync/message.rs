//! Protocol messages: numbers, validation of what arrives (PROTOCOL.md 6.6), and the JSON text
//! and framing that TinyBase sends.

use crate::error::{Error, Result};
use crate::value::{parse_json, write_js_string};
use serde_json::Value as Json;

/// TinyBase's message types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Message {
    /// The answer to a request (same request id).
    Response = 0,
    /// Asks for content hashes (body `""`).
    GetContentHashes = 1,
    /// `[tablesHash, valuesHash]`.
    ContentHashes = 2,
    /// MergeableChanges without hashes, with the trailing 1.
    ContentDiff = 3,
    /// Asks for a table diff, body: my table hashes.
    GetTableDiff = 4,
    /// Asks for a row diff, body: my row hashes.
    GetRowDiff = 5,
    /// Asks for a cell diff, body: my cell hashes.
    GetCellDiff = 6,
    /// Asks for a value diff, body: my value hashes.
    GetValueDiff = 7,
}

impl Message {
    /// The message with this number.
    pub fn from_number(n: i64) -> Option<Message> {
        use Message::*;
        Some(match n {
            0 => Response,
            1 => GetContentHashes,
            2 => ContentHashes,
            3 => ContentDiff,
            4 => GetTableDiff,
            5 => GetRowDiff,
            6 => GetCellDiff,
            7 => GetValueDiff,
            _ => return None,
        })
    }
}

/// A received protocol message, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// The request or transaction id (None for null).
    pub request_id: Option<String>,
    /// The message type.
    pub message: Message,
    /// The body (wire encoding).
    pub body: Json,
}

fn is_hash(j: &Json) -> bool {
    j.as_f64().is_some_and(|n| n.fract() == 0.0 && (0.0..=4_294_967_295.0).contains(&n))
}

fn is_hlc(j: &Json) -> bool {
    j.as_str().is_some_and(|s| s.is_empty() || (s.len() == 16 && crate::hlc::Hlc::parse(s).is_ok()))
}

fn is_leaf(j: &Json) -> bool {
    !matches!(j, Json::Number(n) if !n.as_f64().is_some_and(f64::is_finite))
}

/// A stamp without hash: `[thing]` or `[thing, hlc]`.
fn is_stamp(j: &Json, thing: &dyn Fn(&Json) -> bool) -> bool {
    match j.as_array().map(Vec::as_slice) {
        Some([t]) => thing(t),
        Some([t, h]) => is_hlc(h) && thing(t),
        _ => false,
    }
}

fn is_obj(j: &Json, child: &dyn Fn(&Json) -> bool) -> bool {
    j.as_object().is_some_and(|m| m.values().all(child))
}

fn is_values_stamp(j: &Json) -> bool {
    is_stamp(j, &|t| is_obj(t, &|v| is_stamp(v, &is_leaf)))
}

fn is_tables_stamp(j: &Json) -> bool {
    is_stamp(j, &|t| is_obj(t, &|table| is_stamp(table, &|rows| is_obj(rows, &|row| is_values_stamp(row)))))
}

fn is_hashes1(j: &Json) -> bool {
    is_obj(j, &is_hash)
}

fn is_hashes2(j: &Json) -> bool {
    is_obj(j, &is_hashes1)
}

fn is_content_hashes(j: &Json) -> bool {
    matches!(j.as_array().map(Vec::as_slice), Some([a, b]) if is_hash(a) && is_hash(b))
}

/// Validates `[requestId, message, body]` (TinyBase's `isProtocolMessageValid`).
pub fn parse_payload(text: &str) -> Result<Received> {
    let mut parts = match parse_json(text)? {
        Json::Array(parts) if parts.len() == 3 => parts,
        _ => return Err(Error::InvalidShape("a message is [requestId, message, body]".into())),
    };
    let request_id = match &parts[0] {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        _ => return Err(Error::InvalidShape("a request id is a string or null".into())),
    };
    let number = parts[1].as_f64().filter(|n| n.fract() == 0.0).ok_or_else(|| Error::InvalidShape("a message type is an integer".into()))?;
    let message = Message::from_number(number as i64).ok_or_else(|| Error::InvalidShape(format!("unknown message type {number}")))?;
    let body = &parts[2];
    let valid = match message {
        Message::Response => {
            is_content_hashes(body)
                || is_tables_stamp(body)
                || is_values_stamp(body)
                || matches!(body.as_array().map(Vec::as_slice), Some([t, h]) if is_tables_stamp(t) && (is_hashes1(h) || is_hashes2(h)))
        }
        Message::GetContentHashes => body.as_str() == Some(""),
        Message::ContentHashes => is_content_hashes(body),
        Message::ContentDiff => match body.as_array().map(Vec::as_slice) {
            Some([t, v]) => is_tables_stamp(t) && is_values_stamp(v),
            Some([t, v, one]) => is_tables_stamp(t) && is_values_stamp(v) && one.as_f64() == Some(1.0),
            _ => false,
        },
        Message::GetTableDiff | Message::GetValueDiff => is_hashes1(body),
        Message::GetRowDiff => is_hashes2(body),
        Message::GetCellDiff => is_obj(body, &is_hashes2),
    };
    if !valid {
        return Err(Error::InvalidShape(format!("invalid body for message {message:?}")));
    }
    let body = parts.pop().unwrap_or(Json::Null);
    Ok(Received { request_id, message, body })
}

/// Scans a payload in its plain form, `[requestId, n, body]` with `n` one digit: the request id,
/// the message and the body's byte range, the body unchecked (for a reader that checks it as
/// [`parse_payload`] would). None for any other text, valid or not (then [`parse_payload`] decides).
pub(crate) fn scan_payload(text: &str) -> Option<(Option<String>, Message, std::ops::Range<usize>)> {
    if text.len() > crate::value::MAX_JSON_BYTES {
        return None;
    }
    let mut lx = crate::json_lex::Lexer::new(text);
    lx.ws();
    fn expect(lx: &mut crate::json_lex::Lexer, c: u8) -> Option<()> {
        let ok = lx.b.get(lx.i) == Some(&c);
        lx.i += 1;
        lx.ws();
        ok.then_some(())
    }
    expect(&mut lx, b'[')?;
    let request_id = match lx.b.get(lx.i) {
        Some(b'"') => Some(lx.string().ok()?.into_owned()),
        Some(b'n') => {
            lx.literal(b"null").ok()?;
            None
        }
        _ => return None,
    };
    lx.ws();
    expect(&mut lx, b',')?;
    let digit = lx.b.get(lx.i).filter(|d| d.is_ascii_digit())?;
    let message = Message::from_number(i64::from(digit - b'0'))?;
    lx.i += 1;
    lx.ws();
    expect(&mut lx, b',')?;
    let end = text.trim_end_matches([' ', '\t', '\n', '\r']).len();
    (end > lx.i + 1 && text.as_bytes()[end - 1] == b']').then_some((request_id, message, lx.i..end - 1))
}

/// `[requestId, message, body]` as JSON text, with the body already JSON text.
pub fn payload(request_id: Option<&str>, message: Message, body_json: &str) -> String {
    payload_numbered(request_id, i64::from(message as u8), body_json)
}

/// [`payload`] with any message number (the multiplex controls use -1).
pub(crate) fn payload_numbered(request_id: Option<&str>, message: i64, body_json: &str) -> String {
    let mut out = String::with_capacity(body_json.len() + 32);
    out.push('[');
    match request_id {
        Some(id) => write_js_string(&mut out, id),
        None => out.push_str("null"),
    }
    out.push(',');
    out.push_str(&message.to_string());
    out.push(',');
    out.push_str(body_json);
    out.push(']');
    out
}

/// TinyBase's WebSocket framing of a payload: `toOrFromClientId\n[requestId, message, body]`.
pub fn frame(client_id: Option<&str>, payload: &str) -> String {
    format!("{}\n{payload}", client_id.unwrap_or(""))
}

/// Splits a framed payload into (client id, payload); an empty client id means broadcast.
pub fn unframe(text: &str) -> Result<(Option<&str>, &str)> {
    let (id, rest) = text.split_once('\n').ok_or_else(|| Error::InvalidShape("a frame is clientId\\n[...]".into()))?;
    Ok(((!id.is_empty()).then_some(id), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_like_tinybase() {
        assert!(parse_payload(r#"["x",1,""]"#).is_ok());
        assert!(parse_payload(r#"[null,2,[1,2]]"#).is_ok());
        assert!(parse_payload(r#"["t",3,[[{"p":[{"f":[{"c":["x","NjEtLV-----FnHIC"]}]}]}],[{}],1]]"#).is_ok());
        assert!(parse_payload(r#"["t",3,[[{"p":[{"f":[{"c":["x","NjEtLV-----FnHIC",5]}]}]}],[{}],1]]"#).is_err(), "hashed stamps are invalid on the wire");
        assert!(parse_payload(r#"["x",1,"a"]"#).is_err());
        assert!(parse_payload(r#"["x",8,""]"#).is_err());
        assert!(parse_payload(r#"[1,1,""]"#).is_err());
        assert!(parse_payload(r#"["x",2,[1,-2]]"#).is_err());
        assert!(parse_payload(r#"["x",5,{"t":{"r":1.5}}]"#).is_err());
        assert!(parse_payload(r#"["x",0,[[{}],{"t":{"r":1}}]]"#).is_ok());
        let scanned = |t: &str| scan_payload(t).map(|(id, m, body)| (id, m, t[body].to_string()));
        assert_eq!(scanned(" [ \"a\\u0062\" , 3 ,[[{}],[{}],1] ] \n"), Some((Some("ab".into()), Message::ContentDiff, "[[{}],[{}],1] ".into())));
        assert_eq!(scanned("[null,0,[]]"), Some((None, Message::Response, "[]".into())));
        for other in ["[null,0,]", "[null,0]", "[null,8,1]", "[null,0.0,1]", "[null,03,1]", "[1,0,[]]", "[null,0,[]]x", "[nul,0,[]]"] {
            assert_eq!(scanned(other), None, "{other}");
        }
        assert_eq!(frame(None, "[]"), "\n[]");
        assert_eq!(unframe("abc\n[1]").unwrap(), (Some("abc"), "[1]"));
    }
}
