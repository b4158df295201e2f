//! Hybrid logical clocks: TinyBase's 16-character HLC strings and its clock rules.

use crate::error::{Error, Result};
use crate::hash::get_hash;
use std::fmt;

const ALPHABET: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
/// How far in the future (ms) an incoming HLC may be before it is refused.
pub const HLC_MAX_FUTURE_OFFSET: f64 = 300_000.0;
const COUNTER_LIMIT: i64 = 1 << 24;
/// The largest time an HLC holds (42 bits of ms).
const MAX_TIME: i64 = (1 << 42) - 1;

/// Each byte's 6-bit value in [`ALPHABET`], 0xFF for bytes outside it (one load per character).
const DECODE: [u8; 256] = {
    let mut t = [0xFF; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// The 96 bits of 16 HLC characters, None if one is outside the alphabet.
#[inline]
pub(crate) fn decode16(b: &[u8; 16]) -> Option<u128> {
    let mut bits: u128 = 0;
    let mut bad = 0u8;
    for &c in b {
        let d = DECODE[c as usize];
        bad |= d;
        bits = (bits << 6) | (d & 63) as u128;
    }
    // Valid values are below 64; 0xFF sets the top bits.
    (bad < 64).then_some(bits)
}

/// A hybrid logical clock stamp, or the empty HLC `""` (lower than every other).
///
/// Held as 96 bits (42 bits time, 24 bits counter, 30 bits client id); ordering is the same as
/// comparing TinyBase's HLC strings. The bits are big-endian bytes (13 bytes, alignment 1) so
/// that the stamps in every row and cell pack without padding (W3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hlc {
    set: bool,
    bytes: [u8; 12],
}

impl Hlc {
    /// The empty HLC `""` that marks default content.
    pub const EMPTY: Hlc = Hlc { set: false, bytes: [0; 12] };

    fn from_bits(bits: u128) -> Hlc {
        let b = bits.to_be_bytes();
        let mut bytes = [0; 12];
        bytes.copy_from_slice(&b[4..]);
        Hlc { set: true, bytes }
    }

    /// The order key: `set` then the bytes, as two integers (the derived byte-by-byte order
    /// cost a memcmp call per comparison, and every write compares several stamps).
    #[inline]
    fn key(&self) -> (u64, u64) {
        let b = &self.bytes;
        let hi = ((self.set as u64) << 32) | u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64;
        let lo = u64::from_be_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]);
        (hi, lo)
    }

    fn bits(&self) -> u128 {
        let mut b = [0; 16];
        b[4..].copy_from_slice(&self.bytes);
        u128::from_be_bytes(b)
    }

    /// Builds an HLC from its parts.
    pub fn new(time: u64, counter: u32, client_id: u32) -> Hlc {
        Hlc::from_bits(
            (((time & ((1 << 42) - 1)) as u128) << 54)
                | (((counter & 0xFF_FFFF) as u128) << 30)
                | (client_id & 0x3FFF_FFFF) as u128,
        )
    }

    /// Parses `""` or a 16-character HLC (no future check).
    pub fn parse(s: &str) -> Result<Hlc> {
        if s.is_empty() {
            return Ok(Hlc::EMPTY);
        }
        let b = s.as_bytes();
        if b.len() != 16 {
            return Err(Error::InvalidHlc(format!("{s:?} is not 16 characters")));
        }
        let b: &[u8; 16] = b.try_into().expect("16 bytes");
        let bits = decode16(b).ok_or_else(|| Error::InvalidHlc(format!("{s:?} has a bad character")))?;
        Ok(Hlc::from_bits(bits))
    }

    /// The HLC of 16 characters of the alphabet (None for anything else), for readers that
    /// find the text in place.
    #[inline]
    pub(crate) fn from_chars(b: &[u8; 16]) -> Option<Hlc> {
        decode16(b).map(Hlc::from_bits)
    }

    /// Whether this is the empty HLC.
    pub fn is_empty(&self) -> bool {
        !self.set
    }
    /// Logical time in ms.
    pub fn time(&self) -> u64 {
        (self.bits() >> 54) as u64
    }
    /// Counter within the millisecond.
    pub fn counter(&self) -> u32 {
        ((self.bits() >> 30) & 0xFF_FFFF) as u32
    }
    /// The 30-bit client id.
    pub fn client_id(&self) -> u32 {
        (self.bits() & 0x3FFF_FFFF) as u32
    }

    /// Writes the 16 characters (nothing for the empty HLC).
    pub fn write_to(&self, out: &mut [u8; 16]) -> usize {
        if !self.set {
            return 0;
        }
        // Eight characters from each 48-bit half: 64-bit shifts instead of 128-bit ones.
        let b = &self.bytes;
        let hi = u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]]);
        let lo = u64::from_be_bytes([0, 0, b[6], b[7], b[8], b[9], b[10], b[11]]);
        for i in 0..8 {
            out[i] = ALPHABET[((hi >> (6 * (7 - i))) & 63) as usize];
            out[8 + i] = ALPHABET[((lo >> (6 * (7 - i))) & 63) as usize];
        }
        16
    }

    /// Calls `f` with the HLC text without allocating.
    #[inline]
    pub fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let mut buf = [0u8; 16];
        let n = self.write_to(&mut buf);
        f(std::str::from_utf8(&buf[..n]).unwrap_or(""))
    }

    /// TinyBase's `getHash` of the HLC string (0 never: the empty HLC hashes too).
    pub fn hash(&self) -> u32 {
        self.with_str(get_hash)
    }

    /// Whether the HLC may be accepted at time `now` (ms): no more than five minutes ahead.
    pub fn is_valid_at(&self, now: f64) -> bool {
        !self.set || (self.time() as f64) <= now + HLC_MAX_FUTURE_OFFSET
    }
}

impl Ord for Hlc {
    #[inline]
    fn cmp(&self, other: &Hlc) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Hlc {
    #[inline]
    fn partial_cmp(&self, other: &Hlc) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|s| f.write_str(s))
    }
}

impl fmt::Debug for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hlc({self})")
    }
}

/// The 30-bit client id TinyBase derives from a store's unique id.
pub fn client_id_from_unique_id(unique_id: &str) -> u32 {
    get_hash(unique_id) & 0x3FFF_FFFF
}

/// The source of "now" in ms since the epoch, as TinyBase's `getNow`.
pub type GetNow = Box<dyn Fn() -> f64 + Send + Sync>;

/// TinyBase's HLC clock: `next` for local writes, `seen` for remote stamps.
pub struct Clock {
    last_time: i64,
    last_counter: i64,
    client_id: u32,
    get_now: GetNow,
    /// The reading `prime` took for the write it checked, for that write's first `next`: one
    /// local write reads the clock once, as TinyBase's `getNextHlc` does.
    primed: Option<f64>,
}

impl Clock {
    /// A clock for `unique_id` (random client id when None), reading time from `get_now`.
    pub fn new(unique_id: Option<&str>, get_now: GetNow) -> Clock {
        let client_id = match unique_id {
            Some(id) => client_id_from_unique_id(id),
            None => {
                let bytes = crate::util::random_bytes(5);
                bytes.iter().fold(0u32, |acc, b| (acc << 6) | (b & 63) as u32)
            }
        };
        Clock { last_time: 0, last_counter: -1, client_id, get_now, primed: None }
    }

    /// Current time per the clock source (ms, floored, never negative or non-finite).
    pub fn now(&self) -> f64 {
        Self::ms((self.get_now)())
    }

    fn ms(n: f64) -> f64 {
        if n.is_finite() && n > 0.0 {
            // Truncation is the floor of a positive number, without a libm call.
            (n.min(MAX_TIME as f64) as u64) as f64
        } else {
            0.0
        }
    }

    /// This clock's 30-bit client id.
    pub fn client_id(&self) -> u32 {
        self.client_id
    }

    /// `(last logical time, last counter)`, for tests.
    pub fn state(&self) -> (i64, i64) {
        (self.last_time, self.last_counter)
    }

    /// Observes a remote HLC (None or empty: just the current time). Invalid or far-future
    /// stamps are ignored.
    pub fn seen(&mut self, remote: Option<Hlc>) {
        let now = self.now();
        self.seen_at(remote, now);
    }

    fn seen_at(&mut self, remote: Option<Hlc>, now: f64) {
        if let Some(r) = remote {
            if !r.is_valid_at(now) {
                return;
            }
        }
        let previous = self.last_time;
        let (rt, rc) = match remote {
            Some(r) if !r.is_empty() => (r.time() as i64, r.counter() as i64),
            _ => (0, 0),
        };
        self.last_time = previous.max(rt).max(now as i64);
        self.last_counter = if self.last_time == previous {
            if self.last_time == rt {
                self.last_counter.max(rc)
            } else {
                self.last_counter
            }
        } else if self.last_time == rt {
            rc
        } else {
            -1
        };
    }

    /// Whether `next` can give an HLC newer than every one this clock has made or seen: not once
    /// `get_now` reaches 2^42 ms (TinyBase's HLC time then wraps to 0), nor when the counter
    /// would carry past the largest time (after a peer's `zzzzzzzzzzzzzzzz`). TinyBase throws
    /// `tinybase:13` for a local write it cannot stamp newer; local writes check this first.
    pub fn can_stamp(&self) -> bool {
        self.can_stamp_at((self.get_now)())
    }

    /// [`Clock::can_stamp`], keeping the reading for the next [`Clock::next`] (until
    /// [`Clock::unprime`]).
    pub(crate) fn prime(&mut self) -> bool {
        let raw = (self.get_now)();
        let ok = self.can_stamp_at(raw);
        self.primed = ok.then_some(raw);
        ok
    }

    /// Forgets the reading [`Clock::prime`] kept, once the write it was for is over.
    pub(crate) fn unprime(&mut self) {
        self.primed = None;
    }

    fn can_stamp_at(&self, raw: f64) -> bool {
        if raw > MAX_TIME as f64 {
            return false;
        }
        let time = self.last_time.max(Self::ms(raw) as i64);
        let counter = if time == self.last_time { self.last_counter } else { -1 } + 1;
        time < MAX_TIME || counter < COUNTER_LIMIT
    }

    /// A fresh local HLC (TinyBase's `getNextHlc`).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Hlc {
        let now = match self.primed.take() {
            Some(raw) => Self::ms(raw),
            None => self.now(),
        };
        self.seen_at(None, now);
        self.last_counter += 1;
        if self.last_counter == COUNTER_LIMIT {
            self.last_time += 1;
            self.last_counter = 0;
        }
        Hlc::new(self.last_time as u64, self.last_counter as u32, self.client_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_examples() {
        assert_eq!(Hlc::new(1_700_000_000_000, 0, client_id_from_unique_id("store1")).to_string(), "NjEtLV-----FnHIC");
        assert_eq!(Hlc::new(1_704_067_200_000, 1, client_id_from_unique_id("s1")).to_string(), "Nn1JUF----07JQY8");
        assert_eq!(Hlc::new((1 << 42) - 1, 0, client_id_from_unique_id("s2")).to_string(), "zzzzzzz----4JQFF");
        let h = Hlc::parse("NjEtLV-----FnHIC").unwrap();
        assert_eq!(h.to_string(), "NjEtLV-----FnHIC");
        assert!(Hlc::EMPTY < h);
        assert!(Hlc::parse("NjEtLV-----zzzzz").unwrap() > Hlc::parse("NjEtLV-----RFqR7").unwrap());
        assert!(Hlc::parse("NjEtLV-----FnHI").is_err());
        // The integer order key agrees with the strings' order.
        let hlcs = [
            Hlc::EMPTY,
            Hlc::new(0, 0, 0),
            Hlc::new(0, 0, 1),
            Hlc::new(0, 1, 0),
            Hlc::new(1, 0, 0),
            Hlc::new(1_700_000_000_000, 0xFF_FFFF, 0x3FFF_FFFF),
            Hlc::new((1 << 42) - 1, 0, 0),
            Hlc::new((1 << 42) - 1, 0xFF_FFFF, 0x3FFF_FFFF),
        ];
        for a in hlcs {
            for b in hlcs {
                assert_eq!(a.cmp(&b), a.to_string().cmp(&b.to_string()), "{a} vs {b}");
            }
        }
        assert!(Hlc::parse("NjEtLV-----FnHI!").is_err());
    }
}
