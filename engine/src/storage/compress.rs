//! `--compress zstd[:LEVEL]`: every write's worth of records becomes a run
//! of independent zstd frames, so a reader (and the index) can start at any
//! write, and a file cut inside a frame still holds every frame before it.
//!
//! The frames are laid out for Wireshark 4.0 (Debian 12), which reads a
//! file of several zstd frames only if every frame that ends inside one of
//! its 131,075-byte read buffers is in a buffer that starts with a zstd
//! frame: at the end of a frame it looks for the next frame's magic number
//! at the start of its buffer, not where the frame ended
//! (wiretap/file_wrappers.c). So no frame crosses a multiple of
//! [`WINDOW`]: a frame that would is moved to the next one, and the gap is a
//! zstd skippable frame, which every zstd reader passes over.

use std::io;

/// Wireshark's read buffer for zstd files: `ZSTD_DStreamInSize()`, the
/// larger of that, `ZSTD_DStreamOutSize()` and the file system's block size
/// (4 KiB on ext4, xfs and tmpfs).
pub(crate) const WINDOW: u64 = 131_075;
/// Records per frame, uncompressed: a frame's bound stays under a window.
const FRAME_INPUT: usize = 64 * 1024;
/// A skippable frame's magic number and its smallest size.
const SKIPPABLE_MAGIC: u32 = 0x184d_2a50;
const SKIPPABLE_MIN: u64 = 8;

/// The frames one flush wrote: where they start in the file, how many bytes
/// they take (padding included), and how many bytes they decompress to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) decompressed: u64,
}

/// Parses `zstd` or `zstd:LEVEL` (1 to 19); the level, or why not.
pub fn parse_compression(text: &str) -> Result<i32, String> {
    let level = match text.split_once(':') {
        None if text == "zstd" => 1,
        Some(("zstd", level)) => level
            .parse()
            .map_err(|_| format!("{level:?} is not a zstd level (1 to 19)"))?,
        _ => return Err(format!("{text:?}: expected zstd or zstd:LEVEL")),
    };
    if !(1..=19).contains(&level) {
        return Err(format!("zstd level {level} is not between 1 and 19"));
    }
    Ok(level)
}

/// The records of one flush, staged uncompressed, and the compressor.
pub(crate) struct Framer {
    compressor: zstd::bulk::Compressor<'static>,
    /// What the encoder appends to until the next flush.
    pub(crate) staged: Vec<u8>,
    scratch: Vec<u8>,
    /// Frames written and not yet taken by [`Framer::take_frames`].
    frames: Vec<Frame>,
}

impl Framer {
    /// A framer at `level` for flushes of about `bytes` bytes.
    pub(crate) fn new(level: i32, bytes: usize) -> io::Result<Self> {
        let mut compressor = zstd::bulk::Compressor::new(level)?;
        // The frame says its decompressed size, so a reader sizes its buffer.
        compressor.include_contentsize(true)?;
        compressor.include_checksum(true)?;
        Ok(Framer {
            compressor,
            staged: Vec::with_capacity(bytes + super::aligned::RESERVE),
            scratch: Vec::new(),
            frames: Vec::new(),
        })
    }

    /// Compresses what is staged into frames appended to `out`, which
    /// starts at file offset `out_offset`; the stage is emptied.
    pub(crate) fn frame_into(&mut self, out: &mut Vec<u8>, out_offset: u64) -> io::Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let first = out.len();
        for chunk in self.staged.chunks(FRAME_INPUT) {
            self.scratch.clear();
            self.scratch
                .reserve(zstd::zstd_safe::compress_bound(chunk.len()));
            self.compressor
                .compress_to_buffer(chunk, &mut self.scratch)?;
            let at = out_offset + (out.len() - first) as u64;
            pad_to_window(out, at, self.scratch.len() as u64);
            out.extend_from_slice(&self.scratch);
        }
        self.frames.push(Frame {
            offset: out_offset,
            len: (out.len() - first) as u64,
            decompressed: self.staged.len() as u64,
        });
        self.staged.clear();
        Ok(())
    }

    /// The frames written since the last call, oldest first.
    pub(crate) fn take_frames(&mut self) -> Vec<Frame> {
        std::mem::take(&mut self.frames)
    }
}

/// Before a frame of `len` bytes at file offset `at`: if it would cross a
/// multiple of [`WINDOW`], a skippable frame that fills up to that multiple
/// (or the one after, where the gap is too small for one).
fn pad_to_window(out: &mut Vec<u8>, at: u64, len: u64) {
    let window_end = (at / WINDOW + 1) * WINDOW;
    if at + len <= window_end {
        return;
    }
    let mut gap = window_end - at;
    if gap < SKIPPABLE_MIN {
        gap += WINDOW;
    }
    out.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    out.extend_from_slice(&((gap - SKIPPABLE_MIN) as u32).to_le_bytes());
    out.resize(out.len() + (gap - SKIPPABLE_MIN) as usize, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_frames_decode_on_their_own() {
        assert_eq!(parse_compression("zstd"), Ok(1));
        assert_eq!(parse_compression("zstd:7"), Ok(7));
        for bad in ["zstd:0", "zstd:20", "zstd:x", "gzip", "zstd:"] {
            assert!(parse_compression(bad).is_err(), "{bad}");
        }
        let mut framer = Framer::new(3, 1 << 16).unwrap();
        let mut out = b"xy".to_vec();
        for part in [&b"first frame "[..], b"second"] {
            framer.staged.extend_from_slice(&part.repeat(100));
            let at = out.len() as u64;
            framer.frame_into(&mut out, at).unwrap();
        }
        let frames = framer.take_frames();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].offset, 2);
        assert_eq!(frames[1].offset, 2 + frames[0].len);
        assert_eq!(frames[1].decompressed, 600);
        let second = &out[frames[1].offset as usize..];
        let back = zstd::stream::decode_all(second).unwrap();
        assert_eq!(
            back,
            b"second".repeat(100),
            "a write decodes without the ones before it"
        );
    }

    #[test]
    fn no_frame_crosses_a_window_and_padding_decodes_to_nothing() {
        // Pseudo-random bytes: frames near their bound.
        let mut x = 1u64;
        let noise: Vec<u8> = (0..400_000)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (x >> 56) as u8
            })
            .collect();
        let mut framer = Framer::new(1, 1 << 20).unwrap();
        let mut out = Vec::new();
        for piece in noise.chunks(90_000) {
            framer.staged.extend_from_slice(piece);
            let at = out.len() as u64;
            framer.frame_into(&mut out, at).unwrap();
        }
        // Walk the frames: data frames never cross a multiple of WINDOW.
        let mut at = 0usize;
        while at < out.len() {
            let len = zstd::zstd_safe::find_frame_compressed_size(&out[at..]).unwrap();
            let skippable = out[at..at + 4] == SKIPPABLE_MAGIC.to_le_bytes();
            let (start, end) = (at as u64, (at + len) as u64);
            if !skippable {
                assert_eq!(
                    start / WINDOW,
                    (end - 1) / WINDOW,
                    "a frame at {start} crosses a window"
                );
            } else {
                assert_eq!(end % WINDOW, 0, "padding ends on a window");
            }
            at += len;
        }
        assert_eq!(zstd::stream::decode_all(&out[..]).unwrap(), noise);
    }
}
