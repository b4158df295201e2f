//! A result row in text format: the `DataRow` body kept whole, columns read on demand.

use super::Error;

/// One row of a query's result.
pub struct Row {
    /// The `DataRow` body, checked by [`Row::parse`]: a column count, then each column's length
    /// (-1 for NULL) and bytes. Columns are found by walking it, which for a handful of columns
    /// costs less than a second allocation per row for their offsets.
    body: Vec<u8>,
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Row {
    /// Checks a `DataRow` body: every length within it, nothing left over.
    pub(super) fn parse(body: Vec<u8>) -> Result<Row, Error> {
        let bad = || Error::Protocol("a DataRow's columns do not fit in it".into());
        let count = u16::from_be_bytes([*body.first().ok_or_else(bad)?, *body.get(1).ok_or_else(bad)?]) as usize;
        let mut at = 2;
        for _ in 0..count {
            let len = be_i32(body.get(at..at + 4).ok_or_else(bad)?);
            at += 4;
            if len >= 0 {
                at = at.checked_add(len as usize).filter(|&e| e <= body.len()).ok_or_else(bad)?;
            }
        }
        if at != body.len() {
            return Err(bad());
        }
        Ok(Row { body })
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        u16::from_be_bytes([self.body[0], self.body[1]]) as usize
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Column `i`'s bytes (None for NULL), or None when there is no column `i`.
    fn column(&self, i: usize) -> Option<Option<&[u8]>> {
        if i >= self.len() {
            return None;
        }
        let mut at = 2;
        for _ in 0..i {
            let len = be_i32(&self.body[at..at + 4]);
            at += 4 + len.max(0) as usize;
        }
        let len = be_i32(&self.body[at..at + 4]);
        Some((len >= 0).then(|| &self.body[at + 4..at + 4 + len as usize]))
    }

    /// Column `i` as text; an error for NULL, a missing column or bytes that are not UTF-8.
    pub fn str(&self, i: usize) -> Result<&str, Error> {
        match self.column(i) {
            None => Err(Error::Column(format!("no column {i} (the row has {})", self.len()))),
            Some(None) => Err(Error::Column(format!("column {i} is NULL"))),
            Some(Some(bytes)) => std::str::from_utf8(bytes).map_err(|_| Error::Column(format!("column {i} is not UTF-8"))),
        }
    }

    /// Column `i` as an owned string.
    pub fn string(&self, i: usize) -> Result<String, Error> {
        self.str(i).map(str::to_string)
    }

    /// Column `i` as a 32-bit integer.
    pub fn i32(&self, i: usize) -> Result<i32, Error> {
        let text = self.str(i)?;
        text.parse().map_err(|_| Error::Column(format!("column {i} ({text:?}) is not a 32-bit integer")))
    }

    /// Column `i` as a 64-bit integer.
    pub fn i64(&self, i: usize) -> Result<i64, Error> {
        let text = self.str(i)?;
        text.parse().map_err(|_| Error::Column(format!("column {i} ({text:?}) is not a 64-bit integer")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns() {
        let row = Row::parse(b"\0\x03\0\0\0\x02ab\xff\xff\xff\xff\0\0\0\x02-7".to_vec()).unwrap();
        assert_eq!(row.len(), 3);
        assert_eq!(row.str(0).unwrap(), "ab");
        assert!(row.str(1).is_err());
        assert_eq!(row.i32(2).unwrap(), -7);
        assert_eq!(row.i64(2).unwrap(), -7);
        assert!(row.i32(0).is_err());
        assert!(row.str(3).is_err());
    }

    #[test]
    fn malformed_rows_are_errors() {
        for body in [&b""[..], b"\0", b"\0\x01\0\0", b"\0\x01\0\0\0\x05abc", b"\0\x01\x7f\xff\xff\xffab", b"\0\x00x", b"\0\x01\0\0\0\x01ab"] {
            assert!(Row::parse(body.to_vec()).is_err(), "{body:?}");
        }
    }
}
