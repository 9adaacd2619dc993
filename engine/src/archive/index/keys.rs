//! Flow keys as the index builder and a search look them up: packed in six
//! words, compared without memcmp, and hashed with one folded multiply for
//! the builder's table of a segment's flows.

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

/// A key no frame has (its tag word is out of range).
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

    /// A hash for [`SegmentFlows`]: one folded multiply (a map's hash
    /// chains six).
    #[inline(always)]
    fn folded_hash(&self) -> u64 {
        let [a, b, c, d, e, f] = self.0;
        let x = a ^ b.rotate_left(21) ^ c ^ d.rotate_left(13) ^ e.rotate_left(42) ^ f;
        let m = u128::from(x) * 0x9e37_79b9_7f4a_7c15;
        m as u64 ^ (m >> 64) as u64
    }
}

/// Slots of a [`SegmentFlows`] table to start with (32 KiB: beside the
/// packets passing through, it stays in the first-level cache). A segment
/// of many more flows doubles it, and it stays that size.
const FIRST_SLOTS: usize = 4096;

/// The flows of one segment, by packed key, numbered in first-seen order.
/// Open addressing over slot words kept at most half full (a flow's id + 1
/// in the low half, 32 bits of its key's hash in the high half; 0: empty),
/// the keys themselves in a dense array by id: a lookup reads a word and,
/// if the hash bits agree, a key; a flow seen for the first time in the
/// segment (a fifth of the records, measured on the benchmark's mix) is one
/// store of each. It replaced a HashMap behind a direct-mapped cache, whose
/// every first sight went through the map's entry.
pub(super) struct SegmentFlows {
    slots: Vec<u64>,
    keys: Vec<Packed>,
}

impl SegmentFlows {
    pub(super) fn new() -> Self {
        SegmentFlows {
            slots: vec![0; FIRST_SLOTS],
            keys: Vec::with_capacity(FIRST_SLOTS / 2),
        }
    }

    /// Flows so far.
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The id of the flow of `key`, and true if it was seen for the first
    /// time (it takes the next id).
    #[inline(always)]
    pub(super) fn id_of(&mut self, key: Packed) -> (u32, bool) {
        let hash = key.folded_hash();
        let tag = (hash >> 32) << 32;
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            let entry = self.slots[slot];
            if entry == 0 {
                return (self.insert(key, tag, slot), true);
            }
            let id = entry as u32 - 1;
            if entry & !0xffff_ffff == tag && self.keys[id as usize] == key {
                return (id, false);
            }
            slot = (slot + 1) & mask;
        }
    }

    fn insert(&mut self, key: Packed, tag: u64, slot: usize) -> u32 {
        let id = self.keys.len() as u32;
        self.keys.push(key);
        self.slots[slot] = tag | u64::from(id + 1);
        if 2 * self.keys.len() > self.slots.len() {
            self.grow();
        }
        id
    }

    /// Doubles the slots.
    #[inline(never)]
    fn grow(&mut self) {
        self.slots = vec![0; 2 * self.slots.len()];
        let mask = self.slots.len() - 1;
        for (id, key) in self.keys.iter().enumerate() {
            let hash = key.folded_hash();
            let mut slot = hash as usize & mask;
            while self.slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = (hash >> 32) << 32 | (id as u64 + 1);
        }
    }

    /// Forgets every flow: the next segment numbers its own from 0.
    pub(super) fn clear(&mut self) {
        self.slots.fill(0);
        self.keys.clear();
    }
}
