//! The one JSON lexer: whitespace, literals, strings (escapes, `\u` with exactly four hex digits,
//! surrogate pairs) and numbers, as `JSON.parse` reads them. Both JSON readers build on it:
//! `value::parse_json` (JSON text to a value tree) and `mergeable::parse` (wire text straight to
//! validated changes).

use std::borrow::Cow;

/// What went wrong and the byte offset where the lexer stood.
#[derive(Debug)]
pub(crate) struct LexError {
    pub(crate) what: &'static str,
    pub(crate) at: usize,
}

/// A cursor over JSON text.
pub(crate) struct Lexer<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) s: &'a str,
    pub(crate) i: usize,
}

type R<T> = std::result::Result<T, LexError>;

/// The bytes that end a run of plain JSON string content, and that a JSON string cannot hold
/// unescaped: `"`, `\\` and control characters (the lexer's and the wire writer's one table).
pub(crate) const STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

impl<'a> Lexer<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Lexer { b: s.as_bytes(), s, i: 0 }
    }

    #[inline]
    pub(crate) fn fail<T>(&self, what: &'static str) -> R<T> {
        Err(LexError { what, at: self.i })
    }

    /// Skips JSON whitespace.
    #[inline]
    pub(crate) fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// `word` (`true`, `false`, `null`) at the cursor.
    #[inline]
    pub(crate) fn literal(&mut self, word: &[u8]) -> R<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            self.fail("invalid literal")
        }
    }

    /// A JSON number (at its first byte) as a correctly rounded double; out of range is refused.
    pub(crate) fn number(&mut self) -> R<f64> {
        let start = self.i;
        let neg = self.b.get(self.i) == Some(&b'-');
        if neg {
            self.i += 1;
        }
        let int_start = self.i;
        let mut v: u64 = 0;
        // A local cursor (kept in a register) over the integer digits.
        let b = self.b;
        let mut j = int_start;
        while j < b.len() && b[j].is_ascii_digit() {
            v = v.wrapping_mul(10).wrapping_add((b[j] - b'0') as u64);
            j += 1;
        }
        self.i = j;
        let n = self.i - int_start;
        if n == 0 || (n > 1 && self.b[int_start] == b'0') {
            return self.fail("invalid number");
        }
        let mut simple = n <= 15;
        if self.b.get(self.i) == Some(&b'.') {
            simple = false;
            self.i += 1;
            if self.digits() == 0 {
                return self.fail("invalid number");
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            simple = false;
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return self.fail("invalid number");
            }
        }
        if simple {
            // At most 15 digits: exact in a double.
            let f = v as f64;
            return Ok(if neg { -f } else { f });
        }
        let Ok(f) = self.s[start..self.i].parse::<f64>() else { return self.fail("invalid number") };
        if !f.is_finite() {
            return self.fail("number out of range");
        }
        Ok(f)
    }

    fn digits(&mut self) -> usize {
        let s = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - s
    }

    /// Exactly four hex digits (as JSON.parse: no sign, no fewer).
    fn hex4(&mut self) -> R<u32> {
        let Some(h) = self.b.get(self.i..self.i + 4) else { return self.fail("bad \\u escape") };
        let mut v = 0u32;
        for &c in h {
            let Some(d) = (c as char).to_digit(16) else { return self.fail("bad \\u escape") };
            v = v * 16 + d;
        }
        self.i += 4;
        Ok(v)
    }

    /// A string (at its opening quote), borrowed from the text when it has no escapes.
    pub(crate) fn string(&mut self) -> R<Cow<'a, str>> {
        self.i += 1;
        let start = self.i;
        // Plain bytes skipped with one table load each (a local cursor, kept in a register);
        // the stop byte decides below.
        let b = self.b;
        let mut j = start;
        while j < b.len() && !STRING_STOP[b[j] as usize] {
            j += 1;
        }
        self.i = j;
        match b.get(j) {
            None => return self.fail("unterminated string"),
            Some(b'"') => {
                // SAFETY: `start` follows a `"` and `j` is at one: both ASCII, so both are
                // char boundaries of `self.s`.
                let s = unsafe { self.s.get_unchecked(start..j) };
                self.i = j + 1;
                return Ok(Cow::Borrowed(s));
            }
            Some(b'\\') => {}
            Some(_) => return self.fail("control character in string"),
        }
        let mut out = String::with_capacity(self.i - start + 16);
        let mut from = start;
        loop {
            match self.b.get(self.i) {
                None => return self.fail("unterminated string"),
                Some(b'"') => {
                    out.push_str(&self.s[from..self.i]);
                    self.i += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    out.push_str(&self.s[from..self.i]);
                    self.i += 1;
                    let Some(&c) = self.b.get(self.i) else { return self.fail("bad escape") };
                    self.i += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let u = self.hex4()?;
                            let ch = if (0xD800..0xDC00).contains(&u) {
                                if self.b.get(self.i..self.i + 2) == Some(b"\\u") {
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    if !(0xDC00..0xE000).contains(&lo) {
                                        return self.fail("lone surrogate in string");
                                    }
                                    char::from_u32(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00))
                                } else {
                                    None
                                }
                            } else {
                                char::from_u32(u)
                            };
                            let Some(ch) = ch else { return self.fail("lone surrogate in string") };
                            out.push(ch);
                        }
                        _ => return self.fail("bad escape"),
                    }
                    from = self.i;
                }
                Some(0..=0x1f) => return self.fail("control character in string"),
                Some(_) => self.i += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(text: &str) -> Result<String, (&'static str, usize)> {
        let mut lx = Lexer::new(text);
        lx.string().map(Cow::into_owned).map_err(|e| (e.what, e.at))
    }

    fn number(text: &str) -> Result<f64, (&'static str, usize)> {
        let mut lx = Lexer::new(text);
        lx.number().map_err(|e| (e.what, e.at))
    }

    #[test]
    fn strings_escapes_and_surrogates() {
        assert_eq!(string(r#""a\"b\\c\/d\b\f\n\r\t""#).unwrap(), "a\"b\\c/d\u{8}\u{c}\n\r\t");
        assert_eq!(string(r#""\u00e9\u00E9\ud83d\ude00""#).unwrap(), "éé😀");
        assert_eq!(string(r#""\u004""#), Err(("bad \\u escape", 3)));
        assert_eq!(string(r#""\u+041""#), Err(("bad \\u escape", 3)));
        assert_eq!(string(r#""\ud83d""#), Err(("lone surrogate in string", 7)));
        assert_eq!(string(r#""\ud83d\u0041""#), Err(("lone surrogate in string", 13)));
        assert_eq!(string(r#""\ude00""#), Err(("lone surrogate in string", 7)));
        assert_eq!(string(r#""\x""#), Err(("bad escape", 3)));
        assert_eq!(string("\"a\u{1}\""), Err(("control character in string", 2)));
        assert_eq!(string("\"abc"), Err(("unterminated string", 4)));
    }

    #[test]
    fn numbers_as_javascript_reads_them() {
        assert_eq!(number("-0").unwrap().to_bits(), (-0.0f64).to_bits());
        assert_eq!(number("123456789012345").unwrap(), 123456789012345.0);
        assert_eq!(number("12345678901234567890").unwrap(), 12345678901234567000.0);
        assert_eq!(number("9007199254740993").unwrap(), 9007199254740992.0);
        assert_eq!(number("-12.5e3").unwrap(), -12500.0);
        assert_eq!(number("1e400"), Err(("number out of range", 5)));
        assert_eq!(number("01"), Err(("invalid number", 2)));
        assert_eq!(number("1."), Err(("invalid number", 2)));
        assert_eq!(number("1e+"), Err(("invalid number", 3)));
        assert_eq!(number("-"), Err(("invalid number", 1)));
    }
}
