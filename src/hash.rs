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
    let mut h = Fnv::default();
    h.write(id.as_bytes());
    h.write(b":");
    let mut buf = [0u8; 20];
    let i = crate::value::decimal_digits(hash as u64, &mut buf);
    h.write(&buf[i..]);
    h.finish()
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
    }
}
