//! The bytes of a capture file front to back: as they are, or decompressed
//! if the file is zstd frames (`--compress`). Positioned reads of the raw
//! file go through [`Stream::file`].

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

/// A zstd frame's first bytes.
pub(crate) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Bytes per read of a scan (the kernel reads ahead of it).
const READ_BUFFER: usize = 64 * 1024;
/// Bytes per read until a scan starts: a file opened for its header and
/// searched through its index reads a page, not a scan's worth.
const FIRST_READ: usize = 4096;

type ZstdReader = zstd::stream::read::Decoder<'static, BufReader<File>>;

/// See the module docs.
pub(crate) enum Stream {
    Plain(BufReader<File>),
    Zstd(Box<ZstdReader>),
}

impl Stream {
    /// The stream of `file`, decompressing if it starts with a zstd frame.
    pub(crate) fn open(file: File) -> io::Result<Stream> {
        let mut magic = [0u8; 4];
        let zstd = file.read_exact_at(&mut magic, 0).is_ok() && magic == ZSTD_MAGIC;
        if zstd {
            Ok(Stream::Zstd(Box::new(decoder(file)?)))
        } else {
            Ok(Stream::Plain(BufReader::with_capacity(FIRST_READ, file)))
        }
    }

    /// A scan starts: reads of a scan's size from here on.
    pub(crate) fn widen(&mut self) -> io::Result<()> {
        if let Stream::Plain(reader) = self {
            if reader.capacity() < READ_BUFFER {
                // The same file, at the same place, read in larger pieces.
                let at = reader.stream_position()?;
                let mut file = reader.get_ref().try_clone()?;
                file.seek(SeekFrom::Start(at))?;
                *reader = BufReader::with_capacity(READ_BUFFER, file);
            }
        }
        Ok(())
    }

    /// True for a file of zstd frames.
    pub(crate) fn is_zstd(&self) -> bool {
        matches!(self, Stream::Zstd(_))
    }

    /// The file itself, for positioned reads and advice.
    pub(crate) fn file(&self) -> &File {
        match self {
            Stream::Plain(reader) => reader.get_ref(),
            Stream::Zstd(decoder) => decoder.get_ref().get_ref(),
        }
    }

    /// Moves from `from` to `to`: in a plain file, offsets of the file; in a
    /// zstd file, `to` is where a frame starts, and decompression starts
    /// again there.
    pub(crate) fn seek(&mut self, from: u64, to: u64) -> io::Result<()> {
        match self {
            Stream::Plain(reader) => reader.seek_relative(to as i64 - from as i64),
            Stream::Zstd(decoder) => {
                let mut file = decoder.get_ref().get_ref().try_clone()?;
                file.seek(SeekFrom::Start(to))?;
                **decoder = decoder_of(BufReader::with_capacity(READ_BUFFER, file))?;
                Ok(())
            }
        }
    }
}

fn decoder(file: File) -> io::Result<ZstdReader> {
    decoder_of(BufReader::with_capacity(READ_BUFFER, file))
}

fn decoder_of(reader: BufReader<File>) -> io::Result<ZstdReader> {
    zstd::stream::read::Decoder::with_buffer(reader)
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(reader) => reader.read(buf),
            Stream::Zstd(decoder) => decoder.read(buf),
        }
    }
}

/// The most one segment's frames may decompress to: a segment is a few MB
/// of records, and frames that claim more are damage (or a bomb).
const MOST_DECOMPRESSED: u64 = 256 << 20;

/// The decompressed bytes of the `len` bytes of zstd frames at `offset`
/// of `file` (skippable frames decode to nothing).
pub(crate) fn read_frames(file: &File, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    if len > MOST_DECOMPRESSED {
        return Err(io::Error::other("a segment of more than 256 MB of frames"));
    }
    let mut compressed = vec![0u8; len as usize];
    file.read_exact_at(&mut compressed, offset)?;
    let decoder = zstd::stream::read::Decoder::with_buffer(&compressed[..])?;
    let mut out = Vec::new();
    decoder.take(MOST_DECOMPRESSED + 1).read_to_end(&mut out)?;
    if out.len() as u64 > MOST_DECOMPRESSED {
        return Err(io::Error::other(
            "frames that decompress to more than 256 MB",
        ));
    }
    Ok(out)
}
