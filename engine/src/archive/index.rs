//! The index beside a capture file (format: docs/INDEX.md). The writer feeds
//! an [`IndexBuilder`] each record it encodes; every [`SEGMENT_RECORDS`]
//! records the builder gives back one self-contained, checksummed segment:
//! where its records lie in the capture file, their time range, a table of
//! the flows they belong to and, per record, its flow and its length. The
//! reader checks each segment on its own, so an index cut short still
//! answers for the segments before the cut.

use super::flow::{self, FlowKey};
use super::wire::{put_varint_pair, Cursor};
pub(crate) use keys::{Packed, PackedMap};
use keys::{SegmentFlows, NO_KEY};

/// The first bytes of an index file.
pub(crate) const FILE_MAGIC: &[u8; 8] = b"ZCAPIDX\0";
pub(crate) const VERSION: u16 = 1;
/// The file header: magic, version, flags, reserved (0).
pub(crate) const FILE_HEADER_BYTES: usize = 16;
/// File header flag: the capture file is a sequence of zstd frames, and
/// each segment is one frame.
pub(crate) const FLAG_FRAMED: u16 = 1;
const SEGMENT_MAGIC: &[u8; 4] = b"SEG1";
const END_MAGIC: &[u8; 4] = b"END1";
/// magic, body length, data start, data end, first ns, last ns, records,
/// flows, skip, the body's CRC-32, the header's own CRC-32 (so a search can
/// trust a header whose body it skips).
pub(crate) const SEGMENT_HEADER_BYTES: usize = 60;
/// The directory of a closed index: every segment header, so a search of
/// a closed file reads its headers without reading its bodies.
const DIRECTORY_MAGIC: &[u8; 4] = b"DIR1";
/// The last bytes of a closed index: the directory's offset, then this.
pub(crate) const TAIL_MAGIC: &[u8; 8] = b"ZIDXTAIL";
pub(crate) const TAIL_BYTES: usize = 16;
/// A directory entry: the header's offset in the index, then the header.
pub(crate) const DIRECTORY_ENTRY_BYTES: usize = 8 + SEGMENT_HEADER_BYTES;

/// Records per segment: large enough that a flow table is shared by many
/// records, small enough that a time window reads little beyond itself.
pub(crate) const SEGMENT_RECORDS: u32 = 8192;
/// Compressing: a segment ends once its writes decompress to this much.
const FRAMED_SEGMENT_BYTES: u64 = 16 << 20;
/// The file name of the index of capture file `path`.
pub(crate) const SUFFIX: &str = ".zidx";

/// The header every index file starts with; `framed`: of a compressed file.
pub(crate) fn file_header(framed: bool) -> [u8; FILE_HEADER_BYTES] {
    let mut header = [0u8; FILE_HEADER_BYTES];
    header[..8].copy_from_slice(FILE_MAGIC);
    header[8..10].copy_from_slice(&VERSION.to_le_bytes());
    let flags = if framed { FLAG_FRAMED } else { 0 };
    header[10..12].copy_from_slice(&flags.to_le_bytes());
    header
}

/// The index path beside capture file `path`.
pub fn index_path(path: &std::path::Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(SUFFIX);
    name.into()
}

/// See the module docs.
pub(crate) struct IndexBuilder {
    flows: SegmentFlows,
    /// The last record's flow: runs of one flow skip the table.
    last_key: Packed,
    last_id: u32,
    flow_bytes: Vec<u8>,
    record_bytes: Vec<u8>,
    records: u32,
    data_start: u64,
    next_offset: u64,
    first_ns: u64,
    last_ns: u64,
    total_records: u64,
    /// Compressing: segments end where a write's frames end (see
    /// [`IndexBuilder::frames_done`]).
    framed: bool,
    frames: FramedSegment,
    /// Where the last segment's data ends (the end marker's position).
    last_end: u64,
    /// Bytes of the index so far (its header included): where the next
    /// segment goes.
    out_offset: u64,
    /// Directory entries of the segments so far.
    directory: Vec<u8>,
}

/// Compressing: the writes' frames the current segment spans so far.
#[derive(Debug, Default)]
struct FramedSegment {
    /// File offsets of its first frame's start and its last frame's end.
    start: Option<u64>,
    end: u64,
    /// Bytes its finished frames decompress to.
    decompressed: u64,
    /// Bytes before the first record in the frames being staged (the file
    /// header, in the first).
    lead: u64,
    /// Where its first record starts in its decompressed bytes.
    skip: Option<u64>,
}

impl IndexBuilder {
    /// A builder for a file whose first record starts at `offset` (framed:
    /// that far into the first frame).
    pub(crate) fn new(offset: u64, framed: bool) -> Self {
        IndexBuilder {
            flows: SegmentFlows::new(),
            last_key: NO_KEY,
            last_id: 0,
            flow_bytes: Vec::new(),
            record_bytes: Vec::new(),
            records: 0,
            data_start: offset,
            next_offset: offset,
            first_ns: u64::MAX,
            last_ns: 0,
            total_records: 0,
            framed,
            frames: FramedSegment {
                lead: offset,
                ..FramedSegment::default()
            },
            last_end: if framed { 0 } else { offset },
            out_offset: FILE_HEADER_BYTES as u64,
            directory: Vec::new(),
        }
    }

    /// Indexes one record of `record_len` bytes in the file, stamped `ts_ns`,
    /// whose captured bytes are `frame`; `ethernet`: an Ethernet frame (the
    /// flows of other link types are unknown: only time narrows a search
    /// for them). Returns true when a segment is full (take it with
    /// [`IndexBuilder::take_segment`]).
    #[inline]
    pub(crate) fn add(
        &mut self,
        ts_ns: u64,
        record_len: usize,
        frame: &[u8],
        ethernet: bool,
    ) -> bool {
        let packed = Packed(if ethernet {
            FlowKey::packed_of_ethernet(frame)
        } else {
            FlowKey::UNKNOWN.packed()
        });
        let id = if packed == self.last_key {
            self.last_id
        } else {
            let (id, new) = self.flows.id_of(packed);
            if new {
                flow::encode(&FlowKey::unpacked(packed.0), &mut self.flow_bytes);
            }
            (self.last_key, self.last_id) = (packed, id);
            id
        };
        if self.framed && self.frames.skip.is_none() {
            self.frames.skip = Some(self.frames.decompressed + self.frames.lead);
        }
        put_varint_pair(&mut self.record_bytes, u64::from(id), record_len as u64);
        self.records += 1;
        self.next_offset += record_len as u64;
        self.first_ns = self.first_ns.min(ts_ns);
        self.last_ns = self.last_ns.max(ts_ns);
        self.records >= SEGMENT_RECORDS && !self.framed
    }

    /// Compressing: the records added since the last call went out in the
    /// frames of one write, `len` bytes at file offset `offset` that
    /// decompress to `decompressed` bytes. A segment ends with the write in
    /// which it reaches [`SEGMENT_RECORDS`]; it is appended to `out`.
    pub(crate) fn frames_done(
        &mut self,
        offset: u64,
        len: u64,
        decompressed: u64,
        out: &mut Vec<u8>,
    ) {
        let f = &mut self.frames;
        f.start.get_or_insert(offset);
        f.end = offset + len;
        f.decompressed += decompressed;
        f.lead = 0;
        // Large records (jumbo frames) end a segment by their bytes, so a
        // reader never decompresses more than a few writes for one.
        if self.records >= SEGMENT_RECORDS || f.decompressed >= FRAMED_SEGMENT_BYTES {
            self.emit_framed(out);
        }
    }

    fn emit_framed(&mut self, out: &mut Vec<u8>) {
        let f = std::mem::take(&mut self.frames);
        if let (Some(start), Some(skip)) = (f.start, f.skip) {
            self.emit(out, (start, f.end), skip);
        }
    }

    /// Appends the segment of the records added since the last one (nothing
    /// if there were none) to `out`, and starts the next.
    pub(crate) fn take_segment(&mut self, out: &mut Vec<u8>) {
        let range = (self.data_start, self.next_offset);
        self.emit(out, range, 0);
        self.data_start = self.next_offset;
    }

    /// Appends the segment of the records added since the last one, whose
    /// data is `range` of the file, `skip` bytes into it.
    fn emit(&mut self, out: &mut Vec<u8>, (data_start, data_end): (u64, u64), skip: u64) {
        if self.records == 0 {
            return;
        }
        let start = out.len();
        let body_len = self.flow_bytes.len() + self.record_bytes.len();
        out.extend_from_slice(SEGMENT_MAGIC);
        out.extend_from_slice(&(body_len as u32).to_le_bytes());
        for word in [data_start, data_end, self.first_ns, self.last_ns] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&self.records.to_le_bytes());
        out.extend_from_slice(&(self.flows.len() as u32).to_le_bytes());
        out.extend_from_slice(&(skip as u32).to_le_bytes());
        let mut body_crc = crc32fast::Hasher::new();
        body_crc.update(&self.flow_bytes);
        body_crc.update(&self.record_bytes);
        out.extend_from_slice(&body_crc.finalize().to_le_bytes());
        seal(out, start);
        self.note_header(&out[start..]);
        out.extend_from_slice(&self.flow_bytes);
        out.extend_from_slice(&self.record_bytes);
        self.out_offset += (out.len() - start) as u64;
        self.last_end = data_end;
        self.total_records += u64::from(self.records);
        self.flows.clear();
        self.last_key = NO_KEY;
        self.flow_bytes.clear();
        self.record_bytes.clear();
        self.records = 0;
        self.first_ns = u64::MAX;
        self.last_ns = 0;
    }

    /// Appends the last segment and the end marker, which says the index
    /// covers every record of a closed file of `file_len` bytes.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>, file_len: u64) {
        if self.framed {
            self.emit_framed(out);
        } else {
            self.take_segment(out);
        }
        let start = out.len();
        out.extend_from_slice(END_MAGIC);
        out.extend_from_slice(&0u32.to_le_bytes());
        let end = self.last_end;
        // The end marker's "first time" holds the file's length instead:
        // a file changed since (longer, rewritten) no longer matches it.
        for word in [end, end, file_len, 0] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&(self.total_records as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&[]).to_le_bytes());
        seal(out, start);
        self.note_header(&out[start..]);
        self.out_offset += (out.len() - start) as u64;
        // The directory, and the tail that finds it.
        let directory_at = self.out_offset;
        let block = out.len();
        out.extend_from_slice(DIRECTORY_MAGIC);
        let entries = self.directory.len() / DIRECTORY_ENTRY_BYTES;
        out.extend_from_slice(&(entries as u32).to_le_bytes());
        out.extend_from_slice(&self.directory);
        let crc = crc32fast::hash(&out[block..]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&directory_at.to_le_bytes());
        out.extend_from_slice(TAIL_MAGIC);
    }

    /// Adds the segment header `header`, about to be written at
    /// `out_offset`, to the directory.
    fn note_header(&mut self, header: &[u8]) {
        self.directory
            .extend_from_slice(&self.out_offset.to_le_bytes());
        self.directory
            .extend_from_slice(&header[..SEGMENT_HEADER_BYTES]);
    }
}

/// Appends the CRC-32 of the header begun at `start`.
fn seal(out: &mut Vec<u8>, start: usize) {
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// A segment's header, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) end_marker: bool,
    pub(crate) body_len: u32,
    pub(crate) data_start: u64,
    pub(crate) data_end: u64,
    pub(crate) first_ns: u64,
    pub(crate) last_ns: u64,
    pub(crate) records: u32,
    pub(crate) flows: u32,
    /// Framed: bytes of the decompressed frame before its first record.
    pub(crate) skip: u32,
    body_crc: u32,
}

impl SegmentHeader {
    /// Parses a segment header; `None` if it is not one or its checksum
    /// fails.
    pub(crate) fn parse(bytes: &[u8; SEGMENT_HEADER_BYTES]) -> Option<Self> {
        let (fields, crc) = bytes.split_at(SEGMENT_HEADER_BYTES - 4);
        if crc32fast::hash(fields) != u32::from_le_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut c = Cursor::new(bytes);
        let end_marker = match c.take(4)? {
            m if m == SEGMENT_MAGIC => false,
            m if m == END_MAGIC => true,
            _ => return None,
        };
        let header = SegmentHeader {
            end_marker,
            body_len: c.u32()?,
            data_start: c.u64()?,
            data_end: c.u64()?,
            first_ns: c.u64()?,
            last_ns: c.u64()?,
            records: c.u32()?,
            flows: c.u32()?,
            skip: c.u32()?,
            body_crc: c.u32()?,
        };
        let sane = header.data_start <= header.data_end && header.flows <= header.records.max(1);
        sane.then_some(header)
    }

    /// True when `body` carries the CRC it was sealed with.
    pub(crate) fn checks(&self, body: &[u8]) -> bool {
        crc32fast::hash(body) == self.body_crc
    }
}

/// Reads a directory block (see [`IndexBuilder::finish`]): each entry's
/// header offset and header bytes; `None` unless it checks out.
pub(crate) fn parse_directory(block: &[u8]) -> Option<Vec<(u64, [u8; SEGMENT_HEADER_BYTES])>> {
    let (content, crc) = block.split_at(block.len().checked_sub(4)?);
    if crc32fast::hash(content) != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    let mut c = Cursor::new(content);
    if c.take(4)? != DIRECTORY_MAGIC {
        return None;
    }
    let count = c.u32()? as usize;
    let entries = (0..count)
        .map(|_| Some((c.u64()?, c.array()?)))
        .collect::<Option<Vec<_>>>()?;
    c.rest().is_empty().then_some(entries)
}

mod body;
mod keys;
#[cfg(test)]
mod tests;

pub(crate) use body::SegmentBody;
