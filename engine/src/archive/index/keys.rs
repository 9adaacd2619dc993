//! Flow keys as the index builder and a search look them up: packed in six
//! words, compared without memcmp, hashed for the flow map and, more
//! cheaply, for the table of recent flows.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A multiply-rotate hash (after FxHash): flow keys are hashed once per
/// record, and SipHash's flood resistance buys nothing here.
#[derive(Default)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    #[inline(always)]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline(always)]
    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline(always)]
    fn write_u8(&mut self, b: u8) {
        self.write_u64(u64::from(b));
    }

    #[inline(always)]
    fn write_u16(&mut self, b: u16) {
        self.write_u64(u64::from(b));
    }

    #[inline(always)]
    fn write_u32(&mut self, b: u32) {
        self.write_u64(u64::from(b));
    }

    #[inline(always)]
    fn write_usize(&mut self, b: usize) {
        self.write_u64(b as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by packed flow keys.
pub(crate) type PackedMap<V> = HashMap<Packed, V, BuildHasherDefault<FastHasher>>;

pub(super) type FlowIds = PackedMap<u32>;

/// A [`FlowKey::packed`] key, hashed word by word and compared without a
/// call to memcmp: the writer looks one up per record.
#[derive(Clone, Copy, Eq)]
pub(crate) struct Packed(pub(super) [u64; 6]);

impl PartialEq for Packed {
    #[inline(always)]
    fn eq(&self, other: &Self) -> bool {
        self.0
            .iter()
            .zip(&other.0)
            .fold(0, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Hash for Packed {
    #[inline(always)]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.iter().for_each(|&w| state.write_u64(w));
    }
}

/// Slots of [`IndexBuilder`]'s recent-flows table (a power of two).
pub(super) const RECENT_FLOWS: usize = 1024;
/// A key no frame has (its tag word is out of range): an empty slot.
pub(super) const NO_KEY: Packed = Packed([u64::MAX; 6]);

impl Packed {
    /// An encoded flow key (docs/INDEX.md) in six words, zero-padded: its
    /// kind byte says how long it is, so the padding cannot make two keys
    /// one. `bytes` holds the key's `len` bytes and at least six words in
    /// all (what follows the key is masked off): six loads, no copy.
    #[inline(always)]
    pub(crate) fn of_encoded(bytes: &[u8], len: usize) -> Option<Packed> {
        let bytes: &[u8; 48] = bytes.get(..48)?.try_into().ok()?;
        if len > 48 {
            return None;
        }
        let mut words = [0u64; 6];
        for (i, (word, chunk)) in words.iter_mut().zip(bytes.chunks_exact(8)).enumerate() {
            let kept = len.saturating_sub(8 * i).min(8);
            let mask = if kept == 8 {
                u64::MAX
            } else {
                (1u64 << (8 * kept)) - 1
            };
            *word = u64::from_le_bytes(chunk.try_into().expect("8 bytes")) & mask;
        }
        Some(Packed(words))
    }

    /// Its slot in the recent-flows table: one folded multiply (the map's
    /// hash chains six).
    #[inline(always)]
    pub(super) fn recent_slot(&self) -> usize {
        let [a, b, c, d, e, f] = self.0;
        let x = a ^ b.rotate_left(21) ^ c ^ d.rotate_left(13) ^ e.rotate_left(42) ^ f;
        let m = u128::from(x) * 0x9e37_79b9_7f4a_7c15;
        ((m as u64 ^ (m >> 64) as u64) as usize) & (RECENT_FLOWS - 1)
    }
}
