//! Flow keys as the index builder and a search look them up: packed in six
//! words, compared without memcmp, and hashed with three multiplies of
//! seeded words: the builder's table of a segment's flows and a search's
//! map of verdicts.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

/// Six random words, drawn once per table: flow keys come from the traffic,
/// and without a seed a sender could make a flood of flows of one hash,
/// each lookup then walking them all (found in review: the first, unseeded
/// hash XORed rotated words, and such floods were easy to build).
#[derive(Clone, Copy)]
pub(crate) struct Seeds([u64; 6]);

impl Seeds {
    pub(crate) fn random() -> Seeds {
        let state = RandomState::new();
        let mut seeds = [0u64; 6];
        for (i, seed) in seeds.iter_mut().enumerate() {
            *seed = state.hash_one(i);
        }
        Seeds(seeds)
    }
}

/// `x * y` in 128 bits, its halves folded: the mixing step of wyhash.
#[inline(always)]
fn folded_multiply(x: u64, y: u64) -> u64 {
    let m = u128::from(x) * u128::from(y);
    m as u64 ^ (m >> 64) as u64
}

/// The builder of a [`PackedMap`]'s hashers: seeded, as [`Seeds`] says.
#[derive(Clone, Copy)]
pub(crate) struct SeededState(Seeds);

impl Default for SeededState {
    fn default() -> Self {
        SeededState(Seeds::random())
    }
}

impl BuildHasher for SeededState {
    type Hasher = PackedHasher;

    fn build_hasher(&self) -> PackedHasher {
        PackedHasher {
            seeds: self.0,
            words: [0; 6],
            written: 0,
        }
    }
}

/// Takes a [`Packed`] key's six words and gives [`Packed::seeded_hash`].
pub(crate) struct PackedHasher {
    seeds: Seeds,
    words: [u64; 6],
    written: usize,
}

impl Hasher for PackedHasher {
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
        self.words[self.written % 6] ^= word;
        self.written += 1;
    }

    #[inline(always)]
    fn finish(&self) -> u64 {
        Packed(self.words).seeded_hash(&self.seeds)
    }
}

/// A map keyed by packed flow keys.
pub(crate) type PackedMap<V> = HashMap<Packed, V, SeededState>;

/// A flow key in six words, compared without a call to memcmp. Two layouts,
/// never held in one table: the builder's keys are [`FlowKey::packed`]'s
/// (the writer looks one up per record), a search's are the encoded bytes
/// ([`Packed::of_encoded`]: no key decoded to look it up).
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

    /// Its hash under `seeds`: three multiplies that do not wait on each
    /// other (a hash that chains one per word waits on six).
    #[inline(always)]
    fn seeded_hash(&self, seeds: &Seeds) -> u64 {
        let ([a, b, c, d, e, f], s) = (self.0, seeds.0);
        folded_multiply(a ^ s[0], b ^ s[1])
            ^ folded_multiply(c ^ s[2], d ^ s[3])
            ^ folded_multiply(e ^ s[4], f ^ s[5])
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
    seeds: Seeds,
}

impl SegmentFlows {
    pub(super) fn new() -> Self {
        SegmentFlows {
            slots: vec![0; FIRST_SLOTS],
            keys: Vec::with_capacity(FIRST_SLOTS / 2),
            seeds: Seeds::random(),
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
        let hash = key.seeded_hash(&self.seeds);
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
            let hash = key.seeded_hash(&self.seeds);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// TCP flows from 10.0.0.0/16 whose source address and source port
    /// change together: under an unseeded XOR of rotated words (the first
    /// version of this table's hash) every one of them had the same hash.
    fn crafted(s: u64) -> Packed {
        let kind = 1 << 32 | 6 << 40 | 1 << 48;
        let ports = (40_000 ^ s) << 16 | 443;
        let addresses = (0x0a00_0000 ^ (s << 5)) << 32 | 0x0a01_0101;
        Packed([kind, ports, addresses, 0, 0, 0])
    }

    #[test]
    fn flows_made_to_collide_without_a_seed_do_not() {
        let seeds = Seeds::random();
        let hashes: std::collections::HashSet<u64> =
            (0..2000).map(|s| crafted(s).seeded_hash(&seeds)).collect();
        assert_eq!(hashes.len(), 2000);
        let mut flows = SegmentFlows::new();
        for s in 0..2000 {
            assert_eq!(flows.id_of(crafted(s)), (s as u32, true));
        }
        for s in 0..2000 {
            assert_eq!(flows.id_of(crafted(s)), (s as u32, false));
        }
    }

    #[test]
    fn a_map_of_packed_keys_finds_them() {
        let mut map = PackedMap::default();
        for s in 0..300 {
            map.insert(crafted(s), s);
        }
        assert!((0..300).all(|s| map.get(&crafted(s)) == Some(&s)));
        assert_eq!(map.get(&crafted(300)), None);
    }
}
