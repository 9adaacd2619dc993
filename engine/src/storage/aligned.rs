//! Buffers for direct I/O without `unsafe`: a plain `Vec<u8>` whose content
//! starts at the first `align`-aligned address inside it. The bytes before
//! that start are padding that is never written. The vector is made large
//! enough never to grow; if it ever does (a record past the reserve), the
//! content is moved back onto an aligned address before it is written.

/// Room past the write size for the record that crosses it (the largest
/// snaplen's record and its framing), the carried tail and the padding.
pub(crate) const RESERVE: usize = 300 * 1024;

/// A buffer of at least `bytes` content bytes; returns it with its content
/// start (the vector's length: it holds only the padding so far).
pub(crate) fn aligned_buffer(bytes: usize, align: usize) -> (Vec<u8>, usize) {
    let mut buffer: Vec<u8> = Vec::with_capacity(bytes + RESERVE + 2 * align);
    let start = buffer.as_ptr().align_offset(align);
    buffer.resize(start, 0);
    (buffer, start)
}

/// Makes `buffer[*start..]` start on an aligned address again, moving the
/// content if the vector was reallocated. True if it had to move.
pub(crate) fn realign(buffer: &mut Vec<u8>, start: &mut usize, align: usize) -> bool {
    if buffer[*start..].as_ptr().align_offset(align) == 0 {
        return false;
    }
    let (mut fresh, fresh_start) = aligned_buffer(buffer.len() - *start, align);
    fresh.extend_from_slice(&buffer[*start..]);
    *buffer = fresh;
    *start = fresh_start;
    true
}

/// `n` rounded up to a multiple of `block`.
pub(crate) fn round_up(n: usize, block: usize) -> usize {
    n.div_ceil(block) * block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_starts_aligned_and_stays_so_while_it_fits() {
        let (mut buffer, start) = aligned_buffer(1 << 20, 4096);
        assert_eq!(buffer[start..].as_ptr() as usize % 4096, 0);
        assert_eq!(buffer.len(), start);
        let before = buffer.as_ptr();
        buffer.extend(std::iter::repeat_n(7u8, (1 << 20) + 200 * 1024));
        assert_eq!(
            buffer.as_ptr(),
            before,
            "the reserve held a crossing record"
        );
        let mut s = start;
        assert!(!realign(&mut buffer, &mut s, 4096));
        assert_eq!(s, start);
    }

    #[test]
    fn a_grown_buffer_is_moved_back_onto_an_aligned_start() {
        // A plain vector is rarely page-aligned: treat it as the grown case.
        for offset in [1usize, 100, 4095] {
            let mut buffer = vec![0u8; offset];
            let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
            buffer.extend_from_slice(&content);
            let mut start = offset;
            realign(&mut buffer, &mut start, 4096);
            assert_eq!(buffer[start..].as_ptr() as usize % 4096, 0);
            assert_eq!(&buffer[start..], &content[..], "offset {offset}");
        }
    }

    #[test]
    fn rounding() {
        assert_eq!(round_up(0, 4096), 0);
        assert_eq!(round_up(1, 4096), 4096);
        assert_eq!(round_up(8192, 4096), 8192);
    }
}
