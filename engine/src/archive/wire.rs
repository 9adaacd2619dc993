//! Little-endian fields and LEB128 varints, for the index's encoding.

/// Reads fields from the front of a byte slice; every read is checked.
pub(crate) struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor { rest: bytes }
    }

    /// What is left to read.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }
}

/// The unsigned LEB128 varint (at most 64 bits) at `at` in `bytes`, and its
/// length in bytes; `None` if there is none.
#[inline(always)]
pub(crate) fn varint_at(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
    match bytes.get(at..)? {
        &[low, ..] if low < 0x80 => Some((u64::from(low), 1)),
        &[low, high, ..] if high < 0x80 => Some((u64::from(low & 0x7f) | u64::from(high) << 7, 2)),
        rest => long_varint(rest),
    }
}

/// A varint of three bytes or more (or none: cut short, or over 64 bits).
#[inline(never)]
fn long_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Appends `a` then `b` as varints: [`put_varint`] twice, with one store
/// for the common pair of values under 2^14 (a flow id and a record
/// length): four bytes written, the unused ones cut off again.
#[inline(always)]
pub(crate) fn put_varint_pair(out: &mut Vec<u8>, a: u64, b: u64) {
    if a >= 1 << 14 || b >= 1 << 14 {
        put_varint(out, a);
        put_varint(out, b);
        return;
    }
    // One or two bytes, without a branch on which.
    let short = |v: u64| {
        let more = u64::from(v >= 0x80);
        ((v & 0x7f) | more << 7 | (v >> 7) << 8, 1 + more as usize)
    };
    let ((a, a_len), (b, b_len)) = (short(a), short(b));
    let word = (a | b << (8 * a_len)) as u32;
    out.extend_from_slice(&word.to_le_bytes());
    out.truncate(out.len() - 4 + a_len + b_len);
}

/// Appends `value` as an unsigned LEB128 varint.
#[inline(always)]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_refuse_garbage() {
        let values = [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            65_535,
            u32::MAX as u64,
            u64::MAX,
        ];
        let mut out = Vec::new();
        values.iter().for_each(|&v| put_varint(&mut out, v));
        let mut at = 0;
        for v in values {
            let (got, len) = varint_at(&out, at).expect("a varint");
            assert_eq!(got, v);
            at += len;
        }
        assert_eq!(varint_at(&out, at), None, "nothing left");
        assert_eq!(varint_at(&[0x80; 11], 0), None, "too long");
        assert_eq!(varint_at(&[0x80], 0), None, "cut short");
        assert_eq!(varint_at(&[0x80, 0x80], 0), None, "cut short");
        assert_eq!(
            varint_at(&[0x81, 0x80, 0x00], 0),
            Some((1, 3)),
            "a long one"
        );
    }
}
