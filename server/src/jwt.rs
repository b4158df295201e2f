//! HS256 JSON Web Tokens: the binary's authorization (`--jwt-secret-file`).
//!
//! Only what a sync server needs, on RustCrypto's HMAC-SHA256 (no JWT library):
//!
//! * The header's `alg` must be `HS256`; `none` and every other algorithm are refused, whatever
//!   the signature (no algorithm confusion). `typ`, if present, must be `JWT`.
//! * The signature is checked in constant time before any claim is looked at.
//! * `exp` (seconds since the Unix epoch) is **required** unless [`JwtOptions::require_exp`] is
//!   off (the binary's `--jwt-allow-no-exp`); `nbf` is optional. Both allow
//!   [`JwtOptions::leeway_seconds`] of clock skew.
//! * `rooms`: the rooms the token opens, a string or an array of strings. A pattern is either
//!   exact (`"shop/pets"` opens exactly that room path) or ends in `*`, which matches any room
//!   path starting with what comes before it: `"shop/*"` opens `shop/pets` and `shop/a/b` (and
//!   `shop/`), not `shop`; `"shop*"` also opens `shop` and `shopping`; `"*"` opens every room.
//!   Room paths are compared as the server sees them (PROTOCOL.md 8.1: no percent-decoding; the
//!   path `/` is the room `""`). No `rooms` claim opens no room.
//! * `ro: true` or `read_only: true` makes the client read-only (it can pull, nothing it sends
//!   reaches anyone); otherwise it is read-write.
//!
//! A multiplexed connection is let in when its token could open some channel under its base path
//! (`"shop/*"` lets a socket on `/shop` in, and `"shop/pets"` too); each Subscribe is then
//! checked against the channel's room (`shop/pets`) like a legacy connection's room.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::auth::{Access, AuthHook, AuthKind, AuthRequest};

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url parts, or a part that is not the JSON object it should be.
    Malformed,
    /// The header names another algorithm than HS256 (including `none`), or another `typ`.
    Algorithm(String),
    /// The signature does not match the secret.
    Signature,
    /// No `exp` claim while one is required, or an `exp`/`nbf` that is not a number.
    Claims(&'static str),
    /// `exp` is in the past.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::Malformed => f.write_str("malformed token"),
            JwtError::Algorithm(alg) => write!(f, "algorithm {alg:?} refused (only HS256)"),
            JwtError::Signature => f.write_str("bad signature"),
            JwtError::Claims(what) => write!(f, "bad claims: {what}"),
            JwtError::Expired => f.write_str("token expired"),
            JwtError::NotYetValid => f.write_str("token not yet valid (nbf)"),
        }
    }
}

impl std::error::Error for JwtError {}

/// How tokens are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JwtOptions {
    /// Refuse tokens without `exp` (default true: a leaked token without expiry is forever).
    pub require_exp: bool,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds (default 30).
    pub leeway_seconds: u64,
}

impl Default for JwtOptions {
    fn default() -> Self {
        JwtOptions {
            require_exp: true,
            leeway_seconds: 30,
        }
    }
}

/// The claims of a verified token that matter here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// Room patterns (see the module documentation).
    pub rooms: Vec<String>,
    /// `ro` or `read_only` was `true`.
    pub read_only: bool,
    /// `exp`, seconds since the Unix epoch.
    pub exp: Option<u64>,
}

impl Claims {
    /// Whether one of the token's patterns opens the room `path`.
    pub fn allows(&self, path: &str) -> bool {
        self.rooms.iter().any(|pattern| room_matches(pattern, path))
    }

    /// Whether one of the token's patterns opens some room under the base path `base`: a room
    /// `base/<channel>` (just `<channel>` when `base` is empty) with a non-empty channel id.
    pub fn allows_under(&self, base: &str) -> bool {
        let prefix = if base.is_empty() {
            String::new()
        } else {
            format!("{base}/")
        };
        self.rooms
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(start) => start.starts_with(&prefix) || prefix.starts_with(start),
                None => pattern.len() > prefix.len() && pattern.starts_with(&prefix),
            })
    }

    /// The access these claims give to what `kind` and `path` describe (see [`AuthKind`]).
    pub fn access(&self, kind: AuthKind, path: &str) -> Access {
        let allowed = match kind {
            AuthKind::Connect | AuthKind::Subscribe => self.allows(path),
            AuthKind::Multiplexed => self.allows_under(path),
        };
        match (allowed, self.read_only) {
            (false, _) => Access::Refuse,
            (true, true) => Access::ReadOnly,
            (true, false) => Access::ReadWrite,
        }
    }
}

/// Whether the room pattern `pattern` matches the room path `path`: exact, or a prefix when the
/// pattern ends in `*`.
pub fn room_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

/// Checks `token` against `secret` at the time `now` (seconds since the Unix epoch) and returns
/// its claims.
pub fn verify(
    secret: &[u8],
    token: &str,
    now: u64,
    options: JwtOptions,
) -> Result<Claims, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header = decode_object(header)?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "HS256" => {}
        Some(Value::String(alg)) => return Err(JwtError::Algorithm(alg.clone())),
        other => {
            return Err(JwtError::Algorithm(
                other.map_or_else(String::new, Value::to_string),
            ))
        }
    }
    if header
        .get("typ")
        .is_some_and(|typ| !typ.as_str().is_some_and(|t| t.eq_ignore_ascii_case("JWT")))
    {
        return Err(JwtError::Algorithm("typ".into()));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| JwtError::Malformed)?;
    let signed = &token[..token.rfind('.').expect("three parts")];
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(signed.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| JwtError::Signature)?;

    let claims = decode_object(payload)?;
    let time = |name: &'static str| -> Result<Option<u64>, JwtError> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            // NumericDate may be fractional; whole seconds are all that matters here.
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|t| *t >= 0.0)
                .map(|t| Some(t as u64))
                .ok_or(JwtError::Claims(name)),
            Some(_) => Err(JwtError::Claims(name)),
        }
    };
    let exp = time("exp")?;
    match exp {
        None if options.require_exp => return Err(JwtError::Claims("exp missing")),
        Some(exp) if now >= exp.saturating_add(options.leeway_seconds) => {
            return Err(JwtError::Expired)
        }
        _ => {}
    }
    if time("nbf")?.is_some_and(|nbf| now.saturating_add(options.leeway_seconds) < nbf) {
        return Err(JwtError::NotYetValid);
    }
    let rooms = match claims.get("rooms") {
        None => Vec::new(),
        Some(Value::String(room)) => vec![room.clone()],
        Some(Value::Array(rooms)) => rooms
            .iter()
            .map(|room| {
                room.as_str()
                    .map(str::to_owned)
                    .ok_or(JwtError::Claims("rooms"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(JwtError::Claims("rooms")),
    };
    let flag = |name| claims.get(name).and_then(Value::as_bool).unwrap_or(false);
    Ok(Claims {
        rooms,
        read_only: flag("ro") || flag("read_only"),
        exp,
    })
}

fn decode_object(part: &str) -> Result<serde_json::Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(JwtError::Malformed),
    }
}

/// Signs `claims_json` (a JSON object's text, used verbatim) with HS256: for tests and for
/// operators (`tinybase-server token`).
pub fn sign_hs256(secret: &[u8], claims_json: &str) -> String {
    let mut token = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims_json)
    );
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(token.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    token.push('.');
    token.push_str(&signature);
    token
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The binary's auth hook with the default [`JwtOptions`]: refuses requests without a token
/// (see [`AuthRequest::token`]), with an invalid or expired one, or for a room its claims do not
/// open; otherwise read-only or read-write as the claims say.
pub fn jwt_auth(secret: Vec<u8>) -> AuthHook {
    jwt_auth_with(secret, JwtOptions::default())
}

/// [`jwt_auth`] with explicit options.
pub fn jwt_auth_with(secret: Vec<u8>, options: JwtOptions) -> AuthHook {
    Arc::new(move |request: &AuthRequest| match request.token() {
        None => Access::Refuse,
        Some(token) => verify(&secret, &token, unix_now(), options)
            .map_or(Access::Refuse, |c| c.access(request.kind, request.path)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_800_000_000;

    fn check(token: &str) -> Result<Claims, JwtError> {
        verify(SECRET, token, NOW, JwtOptions::default())
    }

    fn part(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn jwt_io_example_vector() {
        // jwt.io's HS256 example (secret "your-256-bit-secret"): an independent implementation's output.
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        let options = JwtOptions {
            require_exp: false,
            ..JwtOptions::default()
        };
        let claims = verify(b"your-256-bit-secret", token, NOW, options).unwrap();
        assert_eq!(claims, Claims::default());
        assert_eq!(
            verify(b"your-256-bit-secreT", token, NOW, options),
            Err(JwtError::Signature)
        );
        assert_eq!(
            verify(b"your-256-bit-secret", token, NOW, JwtOptions::default()),
            Err(JwtError::Claims("exp missing"))
        );
    }

    #[test]
    fn valid_tokens_give_their_rooms_and_access() {
        let token = sign_hs256(
            SECRET,
            &format!(r#"{{"rooms":["shop/*","exact/room"],"exp":{}}}"#, NOW + 60),
        );
        let claims = check(&token).unwrap();
        assert_eq!(
            claims.access(AuthKind::Connect, "shop/pets"),
            Access::ReadWrite
        );
        assert_eq!(claims.access(AuthKind::Connect, "shop/"), Access::ReadWrite);
        assert_eq!(claims.access(AuthKind::Connect, "shop"), Access::Refuse);
        assert_eq!(
            claims.access(AuthKind::Connect, "exact/room"),
            Access::ReadWrite
        );
        assert_eq!(
            claims.access(AuthKind::Connect, "exact/room2"),
            Access::Refuse
        );
        assert_eq!(claims.access(AuthKind::Connect, "exact"), Access::Refuse);

        for ro in [r#""ro":true"#, r#""read_only":true"#] {
            let token = sign_hs256(
                SECRET,
                &format!(r#"{{"rooms":"*",{ro},"exp":{}}}"#, NOW + 60),
            );
            assert_eq!(
                check(&token).unwrap().access(AuthKind::Connect, ""),
                Access::ReadOnly
            );
        }
        let token = sign_hs256(
            SECRET,
            &format!(r#"{{"rooms":"a","ro":false,"exp":{}.5}}"#, NOW + 60),
        );
        assert_eq!(
            check(&token).unwrap().access(AuthKind::Connect, "a"),
            Access::ReadWrite
        );
        let token = sign_hs256(SECRET, &format!(r#"{{"exp":{}}}"#, NOW + 60));
        assert_eq!(
            check(&token).unwrap().access(AuthKind::Connect, ""),
            Access::Refuse,
            "no rooms claim opens nothing"
        );
    }

    #[test]
    fn patterns() {
        assert!(room_matches("*", ""));
        assert!(room_matches("*", "a/b"));
        assert!(room_matches("shop*", "shopping"));
        assert!(room_matches("shop/*", "shop/a/b"));
        assert!(!room_matches("shop/*", "shopping"));
        assert!(room_matches("", ""));
        assert!(!room_matches("", "a"));
        assert!(!room_matches("a%20b", "a b"));
    }

    #[test]
    fn expiry_and_not_before() {
        let at = |claims: String| check(&sign_hs256(SECRET, &claims));
        assert_eq!(
            at(format!(r#"{{"exp":{}}}"#, NOW - 31)),
            Err(JwtError::Expired)
        );
        assert!(
            at(format!(r#"{{"exp":{}}}"#, NOW - 29)).is_ok(),
            "within the leeway"
        );
        assert_eq!(
            at(format!(r#"{{"exp":{},"nbf":{}}}"#, NOW + 100, NOW + 31)),
            Err(JwtError::NotYetValid)
        );
        assert!(at(format!(r#"{{"exp":{},"nbf":{}}}"#, NOW + 100, NOW + 29)).is_ok());
        assert_eq!(at(r#"{"exp":"soon"}"#.into()), Err(JwtError::Claims("exp")));
        assert_eq!(at(r#"{"exp":-5}"#.into()), Err(JwtError::Claims("exp")));
        assert_eq!(
            at(r#"{"rooms":"*"}"#.into()),
            Err(JwtError::Claims("exp missing"))
        );
        assert_eq!(
            at(format!(r#"{{"exp":{},"rooms":[1]}}"#, NOW + 9)),
            Err(JwtError::Claims("rooms"))
        );
        let lax = JwtOptions {
            require_exp: false,
            leeway_seconds: 0,
        };
        assert!(verify(SECRET, &sign_hs256(SECRET, r#"{"rooms":"*"}"#), NOW, lax).is_ok());
        let token = sign_hs256(SECRET, &format!(r#"{{"exp":{NOW}}}"#));
        assert_eq!(
            verify(SECRET, &token, NOW, lax),
            Err(JwtError::Expired),
            "exp is exclusive"
        );
    }

    #[test]
    fn other_algorithms_and_forgeries_are_refused() {
        let claims = part(&format!(r#"{{"rooms":"*","exp":{}}}"#, NOW + 60));
        let none = format!("{}.{claims}.", part(r#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(check(&none), Err(JwtError::Algorithm("none".into())));
        let none_signed = format!("{}.{claims}.{}", part(r#"{"alg":"none"}"#), part("x"));
        assert_eq!(check(&none_signed), Err(JwtError::Algorithm("none".into())));
        for alg in [
            r#"{"alg":"HS512"}"#,
            r#"{"alg":"RS256"}"#,
            r#"{"alg":"hs256"}"#,
            r#"{}"#,
            r#"{"alg":1}"#,
        ] {
            let token = format!("{}.{claims}.{}", part(alg), part("sig"));
            assert!(
                matches!(check(&token), Err(JwtError::Algorithm(_))),
                "{alg}"
            );
        }
        let typ = format!(
            "{}.{claims}.{}",
            part(r#"{"alg":"HS256","typ":"JWE"}"#),
            part("sig")
        );
        assert_eq!(check(&typ), Err(JwtError::Algorithm("typ".into())));

        let good = sign_hs256(SECRET, &format!(r#"{{"rooms":"a","exp":{}}}"#, NOW + 60));
        assert!(check(&good).is_ok());
        assert_eq!(
            verify(b"another secret", &good, NOW, JwtOptions::default()),
            Err(JwtError::Signature)
        );
        // Claims swapped under the same signature.
        let mut pieces: Vec<&str> = good.split('.').collect();
        pieces[1] = &claims;
        assert_eq!(check(&pieces.join(".")), Err(JwtError::Signature));
        // A truncated signature and an empty one.
        assert_eq!(check(&good[..good.len() - 3]), Err(JwtError::Signature));
        let unsigned = &good[..good.rfind('.').unwrap() + 1];
        assert_eq!(check(unsigned), Err(JwtError::Signature));

        for bad in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            &format!("{}.{claims}.x", part("[1]")),
        ] {
            assert_eq!(check(bad), Err(JwtError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn the_hook_refuses_what_it_should() {
        let hook = jwt_auth(SECRET.to_vec());
        let now = unix_now();
        let headers = HeaderMap::new();
        let ask_as = |kind, path: &str, query: &str| {
            hook(&AuthRequest {
                kind,
                path,
                headers: &headers,
                query: Some(query),
                remote: "127.0.0.1:9".parse().unwrap(),
            })
        };
        let ask = |path: &str, query: &str| ask_as(AuthKind::Connect, path, query);
        let rw = sign_hs256(
            SECRET,
            &format!(r#"{{"rooms":["shop/*"],"exp":{}}}"#, now + 60),
        );
        let ro = sign_hs256(
            SECRET,
            &format!(r#"{{"rooms":["shop/*"],"ro":true,"exp":{}}}"#, now + 60),
        );
        let old = sign_hs256(
            SECRET,
            &format!(r#"{{"rooms":["shop/*"],"exp":{}}}"#, now - 3600),
        );
        assert_eq!(ask("shop/a", &format!("token={rw}")), Access::ReadWrite);
        assert_eq!(ask("shop/a", &format!("token={ro}")), Access::ReadOnly);
        assert_eq!(ask("other", &format!("token={rw}")), Access::Refuse);
        assert_eq!(ask("shop/a", &format!("token={old}")), Access::Refuse);
        assert_eq!(ask("shop/a", ""), Access::Refuse);
        assert_eq!(ask("shop/a", "token=garbage"), Access::Refuse);

        let rw = format!("token={rw}");
        assert_eq!(
            ask_as(AuthKind::Multiplexed, "shop", &rw),
            Access::ReadWrite
        );
        assert_eq!(ask_as(AuthKind::Multiplexed, "", &rw), Access::ReadWrite);
        assert_eq!(ask_as(AuthKind::Multiplexed, "other", &rw), Access::Refuse);
        assert_eq!(
            ask_as(AuthKind::Subscribe, "shop/pets", &rw),
            Access::ReadWrite
        );
        assert_eq!(ask_as(AuthKind::Subscribe, "shop", &rw), Access::Refuse);
        let ro = format!("token={ro}");
        assert_eq!(ask_as(AuthKind::Multiplexed, "shop", &ro), Access::ReadOnly);
        assert_eq!(ask_as(AuthKind::Multiplexed, "shop", ""), Access::Refuse);
    }

    #[test]
    fn multiplexed_base_paths_open_when_some_channel_could() {
        let claims = |rooms: &[&str]| Claims {
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            ..Claims::default()
        };
        let under = |rooms: &[&str], base: &str| claims(rooms).allows_under(base);
        assert!(under(&["shop/*"], "shop"));
        assert!(
            under(&["shop/*"], "shop/pets"),
            "channel a/b under shop/pets"
        );
        assert!(under(&["shop/*"], ""), "channel shop/x under the root");
        assert!(!under(&["shop/*"], "shopping"));
        assert!(!under(&["shop/*"], "sho"), "sho/x never starts with shop/");
        assert!(under(&["sho*"], "shop"));
        assert!(under(&["*"], "anything"));
        assert!(under(&["shop/pets"], "shop"));
        assert!(under(&["shop/pets"], ""));
        assert!(
            !under(&["shop"], "shop"),
            "the base path's own room is no channel"
        );
        assert!(!under(&["shop/"], "shop"), "a channel id is never empty");
        assert!(!under(&[""], ""));
        assert!(!under(&[], ""));
    }
}
