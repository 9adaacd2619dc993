//! Reads an index file's segment headers into a plan for one capture file:
//! which byte ranges the index answers for, and where scanning must take
//! over. Bodies are read later, only for segments a search needs.

use super::index::{
    parse_directory, SegmentBody, SegmentHeader, FILE_HEADER_BYTES, FILE_MAGIC, FLAG_FRAMED,
    SEGMENT_HEADER_BYTES, TAIL_BYTES, TAIL_MAGIC, VERSION,
};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A segment of the plan: its header, and where its body is in the index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    pub(crate) header: SegmentHeader,
    body_at: u64,
}

/// What an index can do for its capture file.
pub(crate) enum IndexState {
    /// There is no index file.
    Missing,
    /// The index is not one, or a checksum fails: scan the file.
    Damaged(String),
    Usable(IndexPlan),
}

/// See the module docs.
pub(crate) struct IndexPlan {
    file: BufReader<File>,
    pub(crate) segments: Vec<Segment>,
    /// Where the last usable segment ends: scanning starts here.
    /// `None`: no segment yet in a compressed file, whose scan goes on
    /// from where its header ended (in its decompressed bytes).
    pub(crate) covered_end: Option<u64>,
    /// The end marker's data end: where a closed capture file ends.
    pub(crate) end_data: Option<u64>,
    /// The closed capture file's length, as its end marker says (indexes
    /// written before it was recorded say nothing).
    pub(crate) file_len: Option<u64>,
    /// The index ends with its end marker: the capture file was closed.
    pub(crate) closed: bool,
    /// The index ends inside a segment (cut short, or being written).
    pub(crate) cut_short: bool,
    /// The capture file is zstd frames, one per segment.
    pub(crate) framed: bool,
}

impl IndexPlan {
    /// Reads and checks the body of `segment`; `None` if it fails its checksum.
    pub(crate) fn body(&mut self, segment: &Segment) -> io::Result<Option<SegmentBody>> {
        self.file.seek(SeekFrom::Start(segment.body_at))?;
        let mut body = SegmentBody::buffer(segment.header.body_len as usize);
        self.file.read_exact(&mut body)?;
        if !segment.header.checks(&body) {
            return Ok(None);
        }
        Ok(SegmentBody::decode(&segment.header, body, self.framed))
    }

    /// Starts the reads of the bodies of segment `first` and those after it
    /// that may fall in `window`, up to `most` bytes of the index; returns
    /// the first segment whose body's read it did not start.
    pub(crate) fn will_need_bodies(&self, first: usize, window: (u64, u64), most: u64) -> usize {
        let Some(start) = self.segments.get(first).map(|s| s.body_at) else {
            return first;
        };
        let mut end = start;
        let mut next = first;
        for segment in &self.segments[first..] {
            let body_end = segment.body_at + u64::from(segment.header.body_len);
            let beyond = body_end.saturating_sub(start) > most;
            if segment.header.first_ns >= window.1 || (next > first && beyond) {
                break;
            }
            end = body_end;
            next += 1;
        }
        crate::dpdk::advise_willneed(self.file.get_ref(), start, end.saturating_sub(start));
        next
    }
}

/// Reads the index at `index_path` of a capture file of `data_len` bytes
/// whose first record starts at or after `header_end`.
pub(crate) fn read_plan(index_path: &Path, data_len: u64, header_end: u64) -> IndexState {
    let file = match File::open(index_path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return IndexState::Missing,
        Err(e) => return IndexState::Damaged(format!("cannot read it: {e}")),
    };
    let index_len = file.metadata().map_or(0, |m| m.len());
    // Reads come where the directory (or a walk) sends them, no further.
    crate::dpdk::advise_reads(&file, crate::dpdk::ReadPattern::Scattered);
    let mut head = [0u8; FILE_HEADER_BYTES];
    if file.read_exact_at(&mut head, 0).is_err()
        || &head[..8] != FILE_MAGIC
        || u16::from_le_bytes([head[8], head[9]]) != VERSION
    {
        return IndexState::Damaged("not a version 1 zcap index".into());
    }
    let mut file = BufReader::with_capacity(64 * 1024, file);
    if file
        .seek(SeekFrom::Start(FILE_HEADER_BYTES as u64))
        .is_err()
    {
        return IndexState::Damaged("cannot read it".into());
    }
    let mut plan = IndexPlan {
        file,
        segments: Vec::new(),
        covered_end: None,
        end_data: None,
        file_len: None,
        closed: false,
        cut_short: false,
        framed: u16::from_le_bytes([head[10], head[11]]) & FLAG_FRAMED != 0,
    };
    if !plan.framed {
        plan.covered_end = Some(header_end);
    }
    match walk(&mut plan, index_len, data_len, header_end) {
        Ok(()) => IndexState::Usable(plan),
        Err(why) => IndexState::Damaged(why),
    }
}

/// Where the segment headers read so far leave the plan.
#[derive(Default)]
struct Chain {
    expected_start: Option<u64>,
    beyond_data: bool,
}

impl Chain {
    /// Takes the next header (its body at `body_at`); true at the end marker.
    fn accept(
        &mut self,
        plan: &mut IndexPlan,
        header: SegmentHeader,
        body_at: u64,
        (data_len, header_end): (u64, u64),
    ) -> Result<bool, String> {
        let n = plan.segments.len();
        // Writes without records (a header or trailer alone) have no
        // segment: framed segments may leave gaps between them.
        let contiguous = match self.expected_start {
            Some(end) if plan.framed => header.data_start >= end,
            Some(end) => header.data_start == end,
            None if plan.framed => true,
            None => header.data_start >= header_end,
        };
        if !contiguous {
            return Err(format!("segment {n} does not follow the one before it"));
        }
        if header.end_marker {
            plan.closed = true;
            plan.end_data = Some(header.data_end);
            plan.file_len = Some(header.first_ns).filter(|&len| len > 0);
            return Ok(true);
        }
        self.expected_start = Some(header.data_end);
        // Records not yet on disk (the index is written ahead of them) are
        // left to the scan.
        self.beyond_data |= header.data_end > data_len;
        if !self.beyond_data {
            plan.covered_end = Some(header.data_end);
            plan.segments.push(Segment { header, body_at });
        }
        Ok(false)
    }
}

/// A closed index's directory, if it has one that checks out: every header
/// without reading the bodies between them. `Ok(false)`: none (walk).
fn from_directory(
    plan: &mut IndexPlan,
    index_len: u64,
    bounds: (u64, u64),
) -> Result<bool, String> {
    let Some(tail_at) = index_len.checked_sub(TAIL_BYTES as u64) else {
        return Ok(false);
    };
    let mut tail = [0u8; TAIL_BYTES];
    let file = plan.file.get_ref();
    if file.read_exact_at(&mut tail, tail_at).is_err() || &tail[8..] != TAIL_MAGIC {
        return Ok(false);
    }
    let directory_at = u64::from_le_bytes(tail[..8].try_into().expect("8 bytes"));
    let Some(len) = tail_at.checked_sub(directory_at).filter(|&l| l <= 64 << 20) else {
        return Ok(false);
    };
    let mut block = vec![0u8; len as usize];
    let Some(entries) = file
        .read_exact_at(&mut block, directory_at)
        .ok()
        .and_then(|()| parse_directory(&block))
    else {
        return Ok(false);
    };
    let mut chain = Chain::default();
    // Where the segment before ended in the index: each one lies after it.
    let mut previous_end = FILE_HEADER_BYTES as u64;
    for (n, &(at, ref raw)) in entries.iter().enumerate() {
        let header = SegmentHeader::parse(raw).ok_or(format!("segment {n} fails its checksum"))?;
        if at < previous_end {
            return Err(format!(
                "segment {n} lies before the end of the one before it"
            ));
        }
        let body_end = at
            .checked_add(SEGMENT_HEADER_BYTES as u64 + u64::from(header.body_len))
            .filter(|&end| end <= directory_at);
        let Some(body_end) = body_end else {
            return Err(format!("segment {n} lies past the index's end"));
        };
        previous_end = body_end;
        if chain.accept(plan, header, at + SEGMENT_HEADER_BYTES as u64, bounds)? {
            return Ok(true);
        }
    }
    Err("its directory has no end marker".into())
}

/// Reads every segment header, seeking past the bodies.
fn walk(
    plan: &mut IndexPlan,
    index_len: u64,
    data_len: u64,
    header_end: u64,
) -> Result<(), String> {
    if from_directory(plan, index_len, (data_len, header_end))? {
        return Ok(());
    }
    let mut at = FILE_HEADER_BYTES as u64;
    let mut chain = Chain::default();
    while at < index_len {
        if index_len - at < SEGMENT_HEADER_BYTES as u64 {
            plan.cut_short = true;
            return Ok(());
        }
        let mut raw = [0u8; SEGMENT_HEADER_BYTES];
        plan.file
            .read_exact(&mut raw)
            .map_err(|e| format!("cannot read it: {e}"))?;
        let n = plan.segments.len();
        let header = SegmentHeader::parse(&raw).ok_or(format!("segment {n} fails its checksum"))?;
        let body_at = at + SEGMENT_HEADER_BYTES as u64;
        if header.end_marker {
            chain.accept(plan, header, body_at, (data_len, header_end))?;
            return Ok(());
        }
        at = body_at + u64::from(header.body_len);
        if at > index_len {
            plan.cut_short = true;
            return Ok(());
        }
        plan.file
            .seek_relative(i64::from(header.body_len))
            .map_err(|e| format!("cannot read it: {e}"))?;
        chain.accept(plan, header, body_at, (data_len, header_end))?;
    }
    Ok(())
}
