//! Query parameters in PostgreSQL's text format: the server parses them as the types the
//! statement gives them (`$2::text[]`, a column's type), so one encoding serves every type.

/// A value that can be a query parameter.
pub trait ToParam {
    /// Appends the value's text form (what PostgreSQL's input function for its type reads).
    fn write_text(&self, out: &mut Vec<u8>);
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn write_text(&self, out: &mut Vec<u8>) {
        (**self).write_text(out)
    }
}

impl ToParam for str {
    fn write_text(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl ToParam for String {
    fn write_text(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl ToParam for i32 {
    fn write_text(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_string().as_bytes());
    }
}

impl ToParam for i64 {
    fn write_text(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_string().as_bytes());
    }
}

/// A one-dimensional array literal: `{"a","b\"c"}`. Every element is quoted (so empty strings,
/// spaces, commas, braces and the word NULL stay plain text); inside quotes only `"` and `\`
/// need a backslash.
impl<T: ToParam> ToParam for [T] {
    fn write_text(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut element = Vec::new();
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            element.clear();
            item.write_text(&mut element);
            out.push(b'"');
            for &b in &element {
                if b == b'"' || b == b'\\' {
                    out.push(b'\\');
                }
                out.push(b);
            }
            out.push(b'"');
        }
        out.push(b'}');
    }
}

impl<T: ToParam> ToParam for Vec<T> {
    fn write_text(&self, out: &mut Vec<u8>) {
        self.as_slice().write_text(out)
    }
}

#[cfg(test)]
mod tests {
    use super::ToParam;

    fn text(p: &dyn ToParam) -> String {
        let mut out = Vec::new();
        p.write_text(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_forms() {
        assert_eq!(text(&"it's"), "it's");
        assert_eq!(text(&-7i32), "-7");
        assert_eq!(text(&i64::MIN), "-9223372036854775808");
        assert_eq!(text(&Vec::<&str>::new()), "{}");
        assert_eq!(text(&vec!["a", "", "NULL", "x,y {z}", "q\"b\\s"]), r#"{"a","","NULL","x,y {z}","q\"b\\s"}"#);
        assert_eq!(text(&vec![1i32, -2]), r#"{"1","-2"}"#);
    }
}
