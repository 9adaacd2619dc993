//! One capture file as a source of matching packets, in file order: through
//! its index where it has a usable one (only the segments in the window,
//! only the records of flows the query does not rule out), by a scan where
//! it has none or the index stops.

use super::plan::{IndexPlan, IndexState, Segment};
use super::query::{Query, Tri};
use super::reader::{CaptureReader, Damage, Packet};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// Scattered reads kept in flight: about what a disk queue takes.
const READS_AHEAD: usize = 128;

/// The widest gap between two records read as one (see `start_reads`).
const READ_GAP: u64 = 64 * 1024;

/// What decides on a packet: the window and libpcap's matcher.
pub(crate) trait Judge {
    /// True if `packet` is in the window and the expression accepts it.
    fn accepts(&mut self, link_type: u16, packet: &Packet) -> bool;
    /// The window, to compare with a segment's times.
    fn window(&self) -> (u64, u64);
}

/// How far a source has got.
enum Stage {
    /// Reading segment `next` of the plan onward.
    Indexed {
        next: usize,
    },
    /// Reading every record from the current position to `end` (`None`:
    /// the end of the file), then going back to `then`.
    Range {
        end: Option<u64>,
        then: Option<usize>,
    },
    Done,
}

/// Counts for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SourceCounts {
    /// Records read from the capture file.
    pub(crate) read: u64,
    /// Segments the index let the search skip.
    pub(crate) segments_skipped: u64,
}

/// See the module docs.
pub(crate) struct FileSource {
    pub(crate) path: PathBuf,
    reader: CaptureReader,
    plan: Option<IndexPlan>,
    query: Query,
    stage: Stage,
    /// Records still to read in the current segment: offset and length.
    pending: VecDeque<(u64, u32)>,
    /// Compressing: the frame (file offset, length) `pending` is in; its
    /// offsets are into the decompressed frame.
    frame: Option<(u64, u64)>,
    /// How many of the first `pending` records' reads have been started.
    started: usize,
    pub(crate) counts: SourceCounts,
    /// A one-line warning about the index, said once.
    pub(crate) warning: Option<String>,
}

impl FileSource {
    /// A source over `reader`, whose index is `index`.
    pub(crate) fn new(
        path: &Path,
        mut reader: CaptureReader,
        index: IndexState,
        query: Query,
    ) -> Self {
        let (plan, warning) = match index {
            IndexState::Usable(plan) if plan.framed != reader.is_compressed() => (
                None,
                Some(format!(
                    "{}: damaged index (it is of a {} file); the file is scanned",
                    path.display(),
                    if plan.framed { "compressed" } else { "plain" }
                )),
            ),
            IndexState::Usable(plan)
                if plan.file_len.is_some_and(|len| reader.current_len() > len) =>
            {
                (
                    None,
                    Some(format!(
                        "{}: the index is of a file of {} bytes, and the file now has {}: it changed since; the file is scanned",
                        path.display(),
                        plan.file_len.unwrap_or_default(),
                        reader.current_len()
                    )),
                )
            }
            IndexState::Usable(plan) => {
                let warning = plan.cut_short.then(|| {
                    format!(
                        "{}: the index is cut short; the rest of the file is scanned",
                        path.display()
                    )
                });
                (Some(plan), warning)
            }
            IndexState::Damaged(why) => (
                None,
                Some(format!(
                    "{}: damaged index ({why}); the file is scanned",
                    path.display()
                )),
            ),
            IndexState::Missing => (None, None),
        };
        let stage = match &plan {
            Some(_) => Stage::Indexed { next: 0 },
            None => {
                reader.expect_sequential_reads();
                Stage::Range {
                    end: None,
                    then: None,
                }
            }
        };
        let source = FileSource {
            path: path.to_owned(),
            reader,
            plan,
            query,
            stage,
            pending: VecDeque::new(),
            frame: None,
            started: 0,
            counts: SourceCounts::default(),
            warning,
        };
        // The reader stands where the header ended.
        source
    }

    /// True if the file has a usable index.
    pub(crate) fn indexed(&self) -> bool {
        self.plan.is_some()
    }

    /// The file's interfaces' link types.
    pub(crate) fn reader(&self) -> &CaptureReader {
        &self.reader
    }

    /// True when a cut-short end of this file is damage, not a file still
    /// being written: it has no index, or its index says it was closed and
    /// the file is (still, now) shorter than that. A file closed while it
    /// was being read was merely being written.
    fn end_must_be_whole(&self) -> bool {
        match self.plan.as_ref().map(|p| p.end_data) {
            None => true,
            Some(None) => false,
            Some(Some(end)) => self.reader.current_len() < end,
        }
    }

    /// The next packet the judge accepts; `Ok(None)` at the end. A file cut
    /// inside its last record while it is still being written ends cleanly.
    pub(crate) fn next_match(&mut self, judge: &mut dyn Judge) -> Result<Option<Packet>, Damage> {
        loop {
            let packet = match self.next_candidate(judge) {
                Ok(Some(packet)) => packet,
                Ok(None) => return self.check_whole(),
                Err(Damage::CutShort { .. } | Damage::CutFrame) if !self.end_must_be_whole() => {
                    self.stage = Stage::Done;
                    return Ok(None);
                }
                Err(damage) => {
                    self.stage = Stage::Done;
                    return Err(damage);
                }
            };
            self.counts.read += 1;
            let link_type = self
                .reader
                .interfaces()
                .get(packet.interface as usize)
                .map_or(1, |i| i.link_type);
            if judge.accepts(link_type, &packet) {
                return Ok(Some(packet));
            }
        }
    }

    /// At the end: a closed file (its index has its end marker) shorter than
    /// its index says was cut, even on a record boundary.
    fn check_whole(&mut self) -> Result<Option<Packet>, Damage> {
        let closed = self.plan.as_ref().is_some_and(|p| p.end_data.is_some());
        if closed && self.end_must_be_whole() {
            self.plan = None;
            return Err(Damage::Garbage {
                at: self.reader.current_len(),
                what: "the end of a file shorter than its index says (cut short)".into(),
            });
        }
        Ok(None)
    }

    /// The next packet the index does not rule out.
    fn next_candidate(&mut self, judge: &mut dyn Judge) -> Result<Option<Packet>, Damage> {
        loop {
            if let (Some((offset, len)), Some(frame)) = (self.pending.front().copied(), self.frame)
            {
                self.pending.pop_front();
                return self.reader.packet_in_frame(frame, offset, len).map(Some);
            }
            if let Some((offset, len)) = self.pending.pop_front() {
                self.started = self.started.saturating_sub(1);
                self.start_reads();
                let span_end = self.span_end(offset + u64::from(len));
                return self.reader.packet_at(offset, len, span_end).map(Some);
            }
            match self.stage {
                Stage::Done => return Ok(None),
                Stage::Range { end, then } => {
                    if end.is_none_or(|end| self.reader.position() < end) {
                        match self.reader.next_packet()? {
                            Some(packet) => return Ok(Some(packet)),
                            None => self.stage = Stage::Done,
                        }
                    } else {
                        self.stage = then.map_or(Stage::Done, |next| Stage::Indexed { next });
                    }
                }
                Stage::Indexed { next } => self.plan_segment(next, judge),
            }
        }
    }

    /// Plans segment `next`: skips it, queues its candidate records, or
    /// reads it whole; past the last segment, scans what the index does not
    /// cover.
    fn plan_segment(&mut self, next: usize, judge: &mut dyn Judge) {
        let plan = self.plan.as_mut().expect("an indexed stage has a plan");
        let Some(segment) = plan.segments.get(next).copied() else {
            match plan.covered_end {
                Some(end) => self.scan_from(end),
                // Compressed, no segment yet: on from the header's end.
                None => self.scan_on(),
            }
            return;
        };
        self.stage = Stage::Indexed { next: next + 1 };
        let (from, to) = judge.window();
        let h = &segment.header;
        if h.last_ns < from || h.first_ns >= to {
            self.counts.segments_skipped += 1;
            return;
        }
        let framed = plan.framed;
        if !self.query.narrows() && !framed {
            self.read_range(&segment, next);
            return;
        }
        match plan.body(&segment) {
            Ok(Some(body)) => {
                let wanted: Vec<bool> = body
                    .flows
                    .iter()
                    .map(|f| self.query.eval(f) != Tri::No)
                    .collect();
                if !wanted.contains(&true) {
                    self.counts.segments_skipped += 1;
                    return;
                }
                let mut offset = h.data_start;
                self.frame = None;
                if framed {
                    // One frame holds the segment's records: read it whole.
                    let frame = (h.data_start, h.data_end - h.data_start);
                    self.reader.will_need(frame.0, h.data_end);
                    self.frame = Some(frame);
                    offset = u64::from(h.skip);
                }
                for (flow, len) in body.records {
                    if wanted[flow as usize] {
                        self.pending.push_back((offset, len));
                    }
                    offset += u64::from(len);
                }
            }
            _ => {
                let why = format!("segment {next} fails its checksum");
                self.warning = Some(format!(
                    "{}: damaged index ({why}); the file is scanned from there",
                    self.path.display()
                ));
                self.scan_from(h.data_start);
                // A compressed segment's frames decompress to `skip` bytes
                // (the file header) before its first record.
                if framed && self.reader.discard(u64::from(h.skip)).is_err() {
                    self.stage = Stage::Done;
                }
            }
        }
    }

    /// Where one read starting with a record that ends at `end` should stop:
    /// past the pending records that follow closely (as [`start_reads`]
    /// asked the kernel for them), at most a few MB on.
    fn span_end(&self, mut end: u64) -> u64 {
        const GAP: u64 = READ_GAP;
        const MOST: u64 = 4 << 20;
        let start = end;
        for &(offset, len) in &self.pending {
            if offset > end + GAP || offset + u64::from(len) > start + MOST {
                break;
            }
            end = offset + u64::from(len);
        }
        end
    }

    /// Keeps the reads of the next [`READS_AHEAD`] pending records in
    /// flight: scattered reads one at a time would wait on the disk for each.
    /// Records closer than [`READ_GAP`] go in one read, gap and all: the disk
    /// serves fewer, larger reads faster than many small ones.
    fn start_reads(&mut self) {
        if self.frame.is_some() {
            return;
        }
        let limit = self.pending.len().min(READS_AHEAD);
        while self.started < limit {
            let (offset, len) = self.pending[self.started];
            let mut end = offset + u64::from(len);
            self.started += 1;
            while let Some(&(next, next_len)) = self.pending.get(self.started) {
                if next > end + READ_GAP {
                    break;
                }
                end = next + u64::from(next_len);
                self.started += 1;
            }
            self.reader.will_need(offset, end);
        }
    }

    /// Reads every record from `offset` (a record's start, or in a
    /// compressed file a write's first frame) to the end of the file (as it
    /// was when opened).
    fn scan_from(&mut self, offset: u64) {
        if offset >= self.reader.len() {
            self.stage = Stage::Done;
            return;
        }
        self.seek_or_stop(offset);
        self.scan_on();
    }

    /// Reads every record from where the reader stands to the end.
    fn scan_on(&mut self) {
        self.reader.expect_sequential_reads();
        if !matches!(self.stage, Stage::Done) {
            self.stage = Stage::Range {
                end: None,
                then: None,
            };
        }
    }

    fn read_range(&mut self, segment: &Segment, index: usize) {
        self.reader.expect_sequential_reads();
        self.seek_or_stop(segment.header.data_start);
        self.stage = Stage::Range {
            end: Some(segment.header.data_end),
            then: Some(index + 1),
        };
    }

    fn seek_or_stop(&mut self, offset: u64) {
        if self.reader.seek(offset).is_err() {
            self.stage = Stage::Done;
            self.pending.clear();
            self.started = 0;
        }
    }
}
