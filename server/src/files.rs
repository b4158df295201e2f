//! Room file names: one file per room in the data folder, named by a reversible encoding of the
//! room path that is safe on every file system.
//!
//! Lower-case ASCII letters, digits, `_` and `-` stand for themselves; every other byte of the
//! path (upper-case letters too, so that case-insensitive file systems never merge two rooms)
//! is `%XX` (upper-case hex). `room-` prefixes every name (so the empty room `""` and names like
//! `..` are ordinary files) and `.json` ends it. An encoding longer than [`MAX_ENCODED`] is cut
//! and followed by `~` and a SHA-256 digest of the path, so names stay within file-system limits
//! (those are the only names that cannot be decoded).
//!
//! With `--store sqlite` each room is one SQLite database with the same name ending in `.sqlite`
//! instead ([`room_database_name`]), so a folder can hold both kinds side by side.

use sha2::{Digest, Sha256};
use std::fmt::Write;

/// The longest encoded room path kept whole in a file name.
pub const MAX_ENCODED: usize = 160;
const PREFIX: &str = "room-";
const SUFFIX: &str = ".json";
const DATABASE_SUFFIX: &str = ".sqlite";

fn plain(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
}

/// The file name of a room.
pub fn room_file_name(path: &str) -> String {
    format!("{PREFIX}{}{SUFFIX}", encode(path))
}

/// The SQLite database name of a room (`--store sqlite`): [`room_file_name`] ending in
/// `.sqlite`.
pub fn room_database_name(path: &str) -> String {
    format!("{PREFIX}{}{DATABASE_SUFFIX}", encode(path))
}

fn encode(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len() + 16);
    for b in path.bytes() {
        if plain(b) {
            encoded.push(b as char);
        } else {
            let _ = write!(encoded, "%{b:02X}");
        }
    }
    if encoded.len() > MAX_ENCODED {
        encoded.truncate(MAX_ENCODED - 48);
        encoded.push('~');
        for b in &Sha256::digest(path.as_bytes())[..20] {
            let _ = write!(encoded, "{b:02x}");
        }
    }
    encoded
}

/// The room path of a name made by [`room_file_name`] or [`room_database_name`]; None for other
/// names and for the digest form of long paths.
pub fn room_of_file_name(name: &str) -> Option<String> {
    let name = name.strip_prefix(PREFIX)?;
    let encoded = name.strip_suffix(SUFFIX).or_else(|| name.strip_suffix(DATABASE_SUFFIX))?;
    let mut out = Vec::with_capacity(encoded.len());
    let mut bytes = encoded.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else if plain(b) {
            out.push(b);
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_distinct_and_reversible() {
        for path in ["", "room1", "a/b", "../x", "..", "A", "a", "a%20b/c?", "ünï", "a b/"] {
            let name = room_file_name(path);
            assert!(!name.contains('/') && !name.contains('\\') && name != ".." && name.is_ascii(), "{name}");
            assert_eq!(room_of_file_name(&name).as_deref(), Some(path));
            assert_eq!(room_of_file_name(&room_database_name(path)).as_deref(), Some(path));
            assert_eq!(room_database_name(path).strip_suffix(".sqlite"), name.strip_suffix(".json"));
        }
        assert_ne!(room_file_name("A"), room_file_name("a"));
        let long = "x/".repeat(500);
        let name = room_file_name(&long);
        assert!(name.len() <= MAX_ENCODED + 10, "{}", name.len());
        assert_ne!(name, room_file_name(&"x/".repeat(501)));
        assert_eq!(room_of_file_name(&name), None);
    }
}
