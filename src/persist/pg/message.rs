//! Protocol v3 framing: frontend messages written into a buffer, backend messages read one at a
//! time with their length bounded, and a cursor that reads fields without ever panicking on
//! short or malformed bodies.

use super::{DbError, Error};
use std::io::Read;

/// The largest backend message accepted. PostgreSQL's own limit for a field is 1 GB; a length
/// beyond this is a corrupt or hostile stream, refused before anything is allocated for it.
pub const MAX_MESSAGE: usize = 1 << 30;

/// Bodies up to this size are read into a buffer sized up front; larger ones grow as they arrive.
const SMALL_MESSAGE: usize = 1 << 20;

/// Reads one backend message into `body` (replacing its content) and returns its type byte.
/// End of stream before a message starts is [`Error::Closed`]; inside one, an I/O error.
pub fn read_message(reader: &mut impl Read, body: &mut Vec<u8>) -> Result<u8, Error> {
    let mut header = [0u8; 5];
    let mut filled = 0;
    while filled < header.len() {
        match reader.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Err(Error::Closed),
            Ok(0) => return Err(truncated()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    // The length counts itself (4 bytes) but not the type byte.
    let len = usize::try_from(len).ok().filter(|&l| (4..=MAX_MESSAGE).contains(&l)).ok_or_else(|| {
        Error::Protocol(format!("message {:?} with an invalid length {len}", header[0] as char))
    })? - 4;
    body.clear();
    if len <= SMALL_MESSAGE {
        // The common case (a row, a status): one exact read into a buffer of the right size.
        body.resize(len, 0);
        return match reader.read_exact(body) {
            Ok(()) => Ok(header[0]),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(truncated()),
            Err(e) => Err(Error::Io(e)),
        };
    }
    // take + read_to_end grows the buffer as bytes arrive: a false length costs no allocation.
    reader.take(len as u64).read_to_end(body).map_err(Error::Io)?;
    if body.len() != len {
        return Err(truncated());
    }
    Ok(header[0])
}

fn truncated() -> Error {
    Error::Io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the server closed the connection in the middle of a message"))
}

/// Reads the fields of one message body.
pub struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf }
    }

    fn short() -> Error {
        Error::Protocol("a message ends before its fields do".into())
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.buf.len() {
            return Err(Self::short());
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// A big-endian 32-bit integer.
    pub fn i32(&mut self) -> Result<i32, Error> {
        let b = self.bytes(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A byte.
    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.bytes(1)?[0])
    }

    /// A NUL-terminated string (its bytes, without the NUL).
    pub fn cstr(&mut self) -> Result<&'a [u8], Error> {
        let end = self.buf.iter().position(|&b| b == 0).ok_or_else(Self::short)?;
        let s = &self.buf[..end];
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }

    /// What is left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}

/// Parses the fields of an `ErrorResponse` (or `NoticeResponse`).
pub fn parse_error(body: &[u8]) -> Result<DbError, Error> {
    let mut cursor = Cursor::new(body);
    let mut error = DbError { severity: String::new(), code: String::new(), message: String::new(), detail: None, hint: None };
    let mut localized_severity = String::new();
    loop {
        let field = cursor.u8()?;
        if field == 0 {
            break;
        }
        let value = String::from_utf8_lossy(cursor.cstr()?).into_owned();
        match field {
            b'S' => localized_severity = value,
            b'V' => error.severity = value,
            b'C' => error.code = value,
            b'M' => error.message = value,
            b'D' => error.detail = Some(value),
            b'H' => error.hint = Some(value),
            _ => {}
        }
    }
    if error.severity.is_empty() {
        error.severity = localized_severity;
    }
    Ok(error)
}

/// Frontend messages appended to a buffer, sent together (one write per round trip).
pub struct Writer {
    /// The bytes not yet sent.
    pub buf: Vec<u8>,
}

impl Writer {
    /// Appends a message of type `tag` whose body `body` writes; the length is filled in after.
    pub fn message(&mut self, tag: u8, body: impl FnOnce(&mut Vec<u8>)) -> Result<(), Error> {
        self.buf.push(tag);
        self.framed(body)
    }

    /// A length-prefixed body without a type byte (the startup message).
    pub fn framed(&mut self, body: impl FnOnce(&mut Vec<u8>)) -> Result<(), Error> {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        body(&mut self.buf);
        let len = i32::try_from(self.buf.len() - at)
            .map_err(|_| Error::Protocol("a message to the server is larger than 2 GB".into()))?;
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }
}

/// Appends `s` and its terminating NUL; a NUL inside `s` cannot be sent this way.
pub fn put_cstr(buf: &mut Vec<u8>, s: &[u8]) {
    buf.extend_from_slice(s);
    buf.push(0);
}

/// Checks that `s` can travel as a NUL-terminated string.
pub fn check_cstr<'s>(s: &'s str, what: &str) -> Result<&'s str, Error> {
    if s.contains('\0') {
        return Err(Error::Config(format!("the {what} holds a NUL character")));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<(u8, Vec<u8>), Error> {
        let mut body = Vec::new();
        let tag = read_message(&mut &bytes[..], &mut body)?;
        Ok((tag, body))
    }

    #[test]
    fn frames() {
        assert_eq!(read(b"Z\0\0\0\x05I").unwrap(), (b'Z', b"I".to_vec()));
        assert_eq!(read(b"1\0\0\0\x04rest").unwrap(), (b'1', vec![]));
        assert!(matches!(read(b""), Err(Error::Closed)));
    }

    #[test]
    fn malformed_frames_are_errors() {
        // Truncated header, truncated body, lengths below 4, negative, beyond the limit.
        assert!(matches!(read(b"Z\0\0"), Err(Error::Io(_))));
        assert!(matches!(read(b"D\0\0\0\x10abc"), Err(Error::Io(_))));
        assert!(matches!(read(b"Z\0\0\0\x03"), Err(Error::Protocol(_))));
        assert!(matches!(read(b"Z\xff\xff\xff\xff"), Err(Error::Protocol(_))));
        assert!(matches!(read(b"D\x40\0\0\x05"), Err(Error::Protocol(_))));
        // A claimed 1 GiB body that is not there: an error, without allocating 1 GiB.
        assert!(matches!(read(b"D\x40\0\0\0abc"), Err(Error::Io(_))));
    }

    #[test]
    fn cursor_never_reads_past_the_end() {
        let mut c = Cursor::new(b"\0\0\0\x01ab\0x");
        assert_eq!(c.i32().unwrap(), 1);
        assert_eq!(c.cstr().unwrap(), b"ab");
        assert!(c.i32().is_err());
        assert!(c.cstr().is_err());
        assert_eq!(c.u8().unwrap(), b'x');
        assert!(c.u8().is_err());
        assert!(c.bytes(usize::MAX).is_err());
    }

    #[test]
    fn error_fields() {
        let e = parse_error(b"SERREUR\0VERROR\0C42P01\0Mrelation \"x\" does not exist\0P15\0\0").unwrap();
        assert_eq!((e.severity.as_str(), e.code.as_str(), e.message.as_str()), ("ERROR", "42P01", "relation \"x\" does not exist"));
        assert!(parse_error(b"SERROR\0C4").is_err());
        assert!(parse_error(b"").is_err());
    }

    #[test]
    fn written_lengths() {
        let mut w = Writer { buf: Vec::new() };
        w.message(b'Q', |b| put_cstr(b, b"SELECT 1")).unwrap();
        assert_eq!(w.buf, b"Q\0\0\0\x0dSELECT 1\0");
    }
}
