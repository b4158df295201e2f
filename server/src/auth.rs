//! Authorization of connections and multiplexed subscriptions.
//!
//! TinyBase's servers let anyone join any room. Here the server asks an [`AuthHook`] before it
//! upgrades a connection (for the room of the request path) and again on each multiplexed
//! Subscribe (for the channel's room path), and the hook answers with an [`Access`]: refuse
//! (HTTP 401 before the upgrade; a refused subscribe closes nothing else), read-only or
//! read-write. The binary's hook is [`jwt_auth`] (HS256 tokens); embedders
//! write their own closure.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;

pub use crate::jwt::jwt_auth;

/// What a client may do in a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Not allowed in: the upgrade is answered 401 (or the subscribe is not acknowledged).
    Refuse,
    /// May pull the room's content; nothing it sends ever reaches another client or the room.
    ReadOnly,
    /// A full peer.
    ReadWrite,
}

/// What an [`AuthRequest`] asks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKind {
    /// A legacy (single-room) connection: `path` is its room.
    Connect,
    /// A multiplexed connection (subprotocol `tinybase`): `path` is its base path, under which
    /// its channels' rooms will be (PROTOCOL.md 7.4). Each Subscribe is asked again; what this
    /// answer grants is the most any channel gets (read-only here: read-only everywhere).
    Multiplexed,
    /// A multiplexed Subscribe: `path` is the channel's room (base path joined with the channel id).
    Subscribe,
}

/// What the hook is asked about: one room (or base path), for one upgrade request.
#[derive(Clone, Copy, Debug)]
pub struct AuthRequest<'a> {
    /// What is asked: see [`AuthKind`].
    pub kind: AuthKind,
    /// The room path (PROTOCOL.md 8.1, no percent-decoding) being joined; for a multiplexed
    /// connection its base path; for a Subscribe the channel's room path.
    pub path: &'a str,
    /// The upgrade request's headers.
    pub headers: &'a HeaderMap,
    /// The upgrade request's raw query string (without the `?`), if it had one.
    pub query: Option<&'a str>,
    /// The peer's address.
    pub remote: SocketAddr,
}

/// Decides the [`Access`] of one request. Called on the server's threads: keep it quick and
/// non-blocking (look-ups in memory, signature checks), it runs before every upgrade.
pub type AuthHook = Arc<dyn Fn(&AuthRequest) -> Access + Send + Sync>;

/// A hook that lets everyone in read-write (what having no hook means; useful to combine).
pub fn allow_all() -> AuthHook {
    Arc::new(|_| Access::ReadWrite)
}

/// A hook that lets everyone in read-only: a public mirror of rooms filled by other means.
pub fn read_only_all() -> AuthHook {
    Arc::new(|_| Access::ReadOnly)
}

impl AuthRequest<'_> {
    /// The value of the query parameter `name`, percent-decoded (`+` stays `+`: tokens are
    /// base64url and never contain spaces). The first occurrence wins.
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        query_param(self.query?, name)
    }

    /// The bearer token the client presented: the `token` query parameter (browsers cannot set
    /// headers on a WebSocket), else an `Authorization: Bearer <token>` header (scheme
    /// case-insensitive). Empty values count as absent.
    pub fn token(&self) -> Option<Cow<'_, str>> {
        if let Some(token) = self.query_param("token").filter(|t| !t.is_empty()) {
            return Some(token);
        }
        bearer_token(self.headers).map(Cow::Borrowed)
    }
}

/// The token of an `Authorization: Bearer <token>` header, if there is exactly such a header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The value of `name` in a raw query string (`a=1&token=x`), percent-decoded; `None` when the
/// parameter is absent or its decoding is not UTF-8.
pub fn query_param<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key)? == name)
            .then(|| percent_decode(value))
            .flatten()
    })
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits is kept as it is.
fn percent_decode(text: &str) -> Option<Cow<'_, str>> {
    if !text.contains('%') {
        return Some(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, ..) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn request<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> AuthRequest<'a> {
        AuthRequest {
            kind: AuthKind::Connect,
            path: "room",
            headers,
            query,
            remote: "127.0.0.1:1".parse().unwrap(),
        }
    }

    #[test]
    fn token_from_query_then_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(request(&headers, None).token(), None);
        assert_eq!(
            request(&headers, Some("a=1&token=abc.def.g-h_&b"))
                .token()
                .as_deref(),
            Some("abc.def.g-h_")
        );
        assert_eq!(
            request(&headers, Some("tok%65n=a%2Eb")).token().as_deref(),
            Some("a.b")
        );
        assert_eq!(request(&headers, Some("token=")).token(), None);
        assert_eq!(request(&headers, Some("xtoken=1")).token(), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bEaReR  h.e.ader "));
        assert_eq!(
            request(&headers, Some("x=1")).token().as_deref(),
            Some("h.e.ader")
        );
        assert_eq!(
            request(&headers, Some("token=q")).token().as_deref(),
            Some("q")
        );
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwdw=="),
        );
        assert_eq!(request(&headers, None).token(), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer"));
        assert_eq!(request(&headers, None).token(), None);
    }

    #[test]
    fn percent_decoding_is_lenient_but_utf8_only() {
        assert_eq!(query_param("k=%zz%4", "k").as_deref(), Some("%zz%4"));
        assert_eq!(query_param("k=%C3%A9", "k").as_deref(), Some("é"));
        assert_eq!(query_param("k=%FF", "k"), None);
        assert_eq!(query_param("k", "k").as_deref(), Some(""));
        assert_eq!(query_param("k=1&k=2", "k").as_deref(), Some("1"));
    }

    #[test]
    fn helpers_answer_as_named() {
        let headers = HeaderMap::new();
        assert_eq!(allow_all()(&request(&headers, None)), Access::ReadWrite);
        assert_eq!(read_only_all()(&request(&headers, None)), Access::ReadOnly);
    }
}
