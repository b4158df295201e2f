//! TinyBase's hashing: 32-bit FNV-1a over UTF-8, and the terms of its hash tree.

use crate::value::JsonOut;

const OFFSET: u32 = 0x811C_9DC5;
const PRIME: u32 = 0x0100_0193;

/// An incremental FNV-1a hasher that JSON text can be written into without allocating.
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u32);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(OFFSET)
    }
}

impl Fnv {
    /// Feeds bytes.
    #[inline]
    pub fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h = (h ^ b as u32).wrapping_mul(PRIME);
        }
        self.0 = h;
    }
    /// The hash so far.
    pub fn finish(self) -> u32 {
        self.0
    }
}

impl JsonOut for Fnv {
    #[inline]
    fn push_str(&mut self, s: &str) {
        self.write(s.as_bytes())
    }
}

/// TinyBase's `getHash`: FNV-1a of the UTF-8 bytes of a string.
pub fn get_hash(s: &str) -> u32 {
    let mut h = Fnv::default();
    h.write(s.as_bytes());
    h.finish()
}

/// `H(id ++ ":" ++ decimal(hash))`: a child's contribution to its container's hash.
#[inline]
pub fn id_hash(id: &str, hash: u32) -> u32 {
    id_prefix(id).with_decimal(hash)
}

/// `id_hash(id, old) ^ id_hash(id, new)` (no old term when `old` is None): the change to a
/// container's hash when one child's hash changes, hashing the id once for both terms.
#[inline]
pub fn id_hash_delta(id: &str, old: Option<u32>, new: u32) -> u32 {
    let prefix = id_prefix(id);
    old.map_or(0, |old| prefix.with_decimal(old)) ^ prefix.with_decimal(new)
}

#[inline]
fn id_prefix(id: &str) -> Fnv {
    let mut h = Fnv::default();
    h.write(id.as_bytes());
    h.write(b":");
    h
}

impl Fnv {
    /// The hash of what was written so far followed by `v` in decimal.
    #[inline]
    fn with_decimal(mut self, v: u32) -> u32 {
        let mut buf = [0u8; 10];
        let i = crate::value::decimal_digits_u32(v, &mut buf);
        self.write(&buf[i..]);
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_examples() {
        assert_eq!(get_hash(""), 2166136261);
        assert_eq!(get_hash("a"), 3826002220);
        assert_eq!(get_hash("s1"), 139573449);
        assert_eq!(id_hash("a", 0), get_hash("a:0"));
        for n in [0, 7, 10, 99, 100, 101, 999, 1000, 65536, 4294967295] {
            assert_eq!(id_hash("r7", n), get_hash(&format!("r7:{n}")));
        }
        assert_eq!(id_hash_delta("t", Some(12), 345), get_hash("t:12") ^ get_hash("t:345"));
        assert_eq!(id_hash_delta("t", None, 345), get_hash("t:345"));
    }
}
