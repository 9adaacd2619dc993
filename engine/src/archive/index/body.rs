//! A segment's body as a search reads it: its flow keys sliced (each
//! decoded by whoever judges it) and its record table read once, for the
//! flows a search wants, checked as it goes.

use super::{flow, Packed, SegmentHeader};
use crate::archive::wire::varint_at;
#[cfg(test)]
use crate::archive::{flow::FlowKey, wire::Cursor};

/// A segment's body: its flow keys, and per record its flow and length.
#[derive(Debug)]
pub(crate) struct SegmentBody {
    /// The flow table (encoded keys), then the record table: a `(flow id,
    /// record length)` pair of varints per record, in file order, read by
    /// [`SegmentBody::records_of`], which checks it as it goes; then
    /// [`KEY_PADDING`] zeros.
    bytes: Vec<u8>,
    /// Where each flow key ends in `bytes`; the last, where the record
    /// table starts.
    key_ends: Vec<u32>,
    records: u32,
    /// The bytes the records' lengths must add up to (`None`: compressed,
    /// checked when the frame is decompressed).
    data_len: Option<u64>,
}

/// Zeros after a body, so that every key in it is followed by six words
/// to load ([`Packed::of_encoded`]).
const KEY_PADDING: usize = 48;

impl SegmentBody {
    /// Zeros to read a body of `len` bytes into, with room for the padding
    /// [`SegmentBody::decode`] adds: the body is not copied again.
    pub(crate) fn buffer(len: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(len + KEY_PADDING);
        bytes.resize(len, 0);
        bytes
    }

    /// Splits a checked body into its flow keys and its record table;
    /// `None` if it is not one (`framed`: its records' lengths are of the
    /// decompressed frame, which the reader checks when it decompresses it).
    /// The keys themselves are decoded by whoever needs them
    /// ([`flow::decode`]): a search decodes each key once for many segments.
    pub(crate) fn decode(header: &SegmentHeader, mut bytes: Vec<u8>, framed: bool) -> Option<Self> {
        // Two varints a record at least: a count the body cannot hold is
        // not allocated for.
        if header.records as usize > bytes.len() / 2 || header.flows as usize > bytes.len() {
            return None;
        }
        let mut key_ends = Vec::with_capacity(header.flows as usize);
        let mut at = 0usize;
        for _ in 0..header.flows {
            at += flow::encoded_len(&bytes[at..])?;
            key_ends.push(at as u32);
        }
        bytes.extend_from_slice(&[0; KEY_PADDING]);
        Some(SegmentBody {
            bytes,
            key_ends,
            records: header.records,
            data_len: (!framed).then(|| header.data_end - header.data_start),
        })
    }

    /// Each flow's encoded key, and the key packed, flow 0 first.
    pub(crate) fn flow_keys(&self) -> impl Iterator<Item = (&[u8], Packed)> {
        let starts = std::iter::once(0).chain(self.key_ends.iter().copied());
        starts.zip(&self.key_ends).map(|(start, &end)| {
            let (start, len) = (start as usize, (end - start) as usize);
            let packed = Packed::of_encoded(&self.bytes[start..], len)
                .expect("a key is at most six words, and the padding follows the last");
            (&self.bytes[start..start + len], packed)
        })
    }

    /// The flow table decoded; `None` if a key is not one.
    #[cfg(test)]
    pub(crate) fn flows(&self) -> Option<Vec<FlowKey>> {
        self.flow_keys()
            .map(|(key, _)| flow::decode(&mut Cursor::new(key)))
            .collect()
    }

    /// The records whose flow `wanted` says may match: their offsets from
    /// the segment's first record, and their lengths. `None` if the record
    /// table does not add up to its header (damage).
    pub(crate) fn records_of(&self, wanted: &[bool]) -> Option<Vec<(u64, u32)>> {
        let table = self.table();
        let (mut at, mut offset) = (0usize, 0u64);
        let mut chosen = Vec::new();
        for _ in 0..self.records {
            let (id, len, used) = match short_pair_at(table, at) {
                Some(pair) => pair,
                None => pair_at(table, at)?,
            };
            at += used;
            let len = u32::try_from(len).ok()?;
            if *wanted.get(usize::try_from(id).ok()?)? {
                chosen.push((offset, len));
            }
            offset += u64::from(len);
        }
        let whole = at == table.len() && self.data_len.is_none_or(|len| len == offset);
        whole.then_some(chosen)
    }

    fn table(&self) -> &[u8] {
        let start = self.key_ends.last().map_or(0, |&end| end as usize);
        &self.bytes[start..self.bytes.len() - KEY_PADDING]
    }

    /// Every record's flow id and length, checked.
    #[cfg(test)]
    pub(crate) fn records(&self) -> Option<Vec<(u32, u32)>> {
        self.records_of(&vec![true; self.key_ends.len()])?;
        let (table, mut at) = (self.table(), 0);
        let mut next = || {
            let (value, len) = varint_at(table, at)?;
            at += len;
            u32::try_from(value).ok()
        };
        (0..self.records)
            .map(|_| Some((next()?, next()?)))
            .collect()
    }
}

/// Two varints at `at` and their bytes together.
pub(super) fn pair_at(table: &[u8], at: usize) -> Option<(u64, u64, usize)> {
    let (first, first_len) = varint_at(table, at)?;
    let (second, second_len) = varint_at(table, at + first_len)?;
    Some((first, second, first_len + second_len))
}

/// [`pair_at`] for two varints of one or two bytes each (a flow id and a
/// record length, nearly always), decoded from one 32-bit load without
/// branching on their lengths: they change from record to record, and a
/// branch on them guesses wrong half the time. `None`: another case.
#[inline(always)]
pub(super) fn short_pair_at(table: &[u8], at: usize) -> Option<(u64, u64, usize)> {
    let word = u32::from_le_bytes(table.get(at..at + 4)?.try_into().ok()?);
    // One varint of one or two bytes at the bottom of `w`.
    let short = |w: u32| {
        let more = (w >> 7) & 1;
        let value = (w & 0x7f) | (((w >> 1) & 0x3f80) * more);
        // A second byte that says more follows: a longer varint.
        let longer = more & (w >> 15);
        (u64::from(value), 1 + more as usize, longer)
    };
    let (first, first_len, first_longer) = short(word);
    let (second, second_len, second_longer) = short(word >> (8 * first_len));
    (first_longer | second_longer == 0).then_some((first, second, first_len + second_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_read_into_its_buffer_is_not_copied_again() {
        // One flow (a key of unknown kind: one byte), two records of it.
        let table = [0u8, 0, 60, 0, 40];
        let header = SegmentHeader {
            end_marker: false,
            body_len: table.len() as u32,
            data_start: 100,
            data_end: 200,
            first_ns: 0,
            last_ns: 0,
            records: 2,
            flows: 1,
            skip: 0,
            body_crc: 0,
        };
        let mut bytes = SegmentBody::buffer(table.len());
        bytes.copy_from_slice(&table);
        let at = bytes.as_ptr();
        let body = SegmentBody::decode(&header, bytes, false).expect("a body");
        assert_eq!(body.bytes.as_ptr(), at, "the padding fits in the buffer");
        assert_eq!(body.records_of(&[true]), Some(vec![(0, 60), (60, 40)]));
    }
}
