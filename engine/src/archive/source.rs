//! One capture file as a source of matching packets, in file order: through
//! its index where it has a usable one (only the segments in the window,
//! only the records of flows the query does not rule out), by a scan where
//! it has none or the index stops.

use super::index::SegmentHeader;
use super::plan::{IndexPlan, IndexState, Segment};
use super::query::SharedVerdicts;
use super::reader::{CaptureReader, Damage, Packet};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::PoisonError;

/// Scattered reads kept in flight: about what a disk queue takes.
const READS_AHEAD: usize = 128;

/// The widest gap between two records read as one (see `start_reads`).
/// Measured on the benchmark's disk (docs/BENCHMARKS.md): reading a gap
/// costs about as much as another read at 12-16 KiB; 64 KiB read three
/// times the bytes for a pair spread through the capture, and was slower.
const READ_GAP: u64 = 16 * 1024;

/// Candidate records planned ahead of the one being read: the index
/// bodies of the segments after the current one are read, and their
/// records' reads started, before the current segment's are all read, so
/// the disk never waits for the search to decide what it needs next.
const PLAN_AHEAD: usize = 4096;

/// Index bytes whose reads start at once when a search reaches a run of
/// segments in its window: their bodies are read one after another.
const BODIES_AHEAD: u64 = 4 << 20;

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

/// A record the index does not rule out.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    /// Its offset in the file or, compressed, in `frame` decompressed.
    offset: u64,
    len: u32,
    /// Compressed: the frames (file offset, length) it is in.
    frame: Option<(u64, u64)>,
}

/// What the index says of one segment.
enum SegmentPlan {
    /// Past the last segment: what the index does not cover is scanned.
    Beyond,
    /// Nothing in it can match.
    Skip,
    /// These records may match.
    Records(Vec<Candidate>),
    /// Every record in it must be read (the expression rules no flow out).
    Whole,
    /// Its body fails its checksum: scan from here.
    Damaged,
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
    /// The search's verdicts on flows, and whether it has any to give.
    verdicts: SharedVerdicts,
    narrows: bool,
    stage: Stage,
    /// Records the index does not rule out, planned but not yet read.
    pending: VecDeque<Candidate>,
    /// How many of the first `pending` records' reads have been started.
    started: usize,
    /// Segments before this one have had their bodies' reads started.
    bodies_hinted: usize,
    /// The plan of the next segment, when it must wait for the records
    /// pending before it (a segment to read whole or scan).
    deferred: Option<SegmentPlan>,
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
        verdicts: SharedVerdicts,
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
        let narrows = verdicts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .narrows();
        let source = FileSource {
            path: path.to_owned(),
            reader,
            plan,
            narrows,
            verdicts,
            stage,
            pending: VecDeque::new(),
            started: 0,
            bodies_hinted: 0,
            deferred: None,
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
            if self.pending.len() < PLAN_AHEAD / 2 {
                self.plan_ahead(judge.window());
            }
            if let Some(candidate) = self.pending.pop_front() {
                return self.read_candidate(candidate).map(Some);
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
                // Planning stopped at a segment to be read whole or scanned,
                // with nothing pending: it is that segment's turn.
                Stage::Indexed { next } => {
                    let plan = match self.deferred.take() {
                        Some(plan) => plan,
                        None => self.plan_segment(next, judge.window()),
                    };
                    self.follow(next, plan);
                }
            }
        }
    }

    /// Reads a planned record, starting the reads of those after it.
    fn read_candidate(&mut self, candidate: Candidate) -> Result<Packet, Damage> {
        let Candidate { offset, len, frame } = candidate;
        self.started = self.started.saturating_sub(1);
        if let Some(frame) = frame {
            return self.reader.packet_in_frame(frame, offset, len);
        }
        self.start_reads();
        let span_end = self.span_end(offset + u64::from(len));
        self.reader.packet_at(offset, len, span_end)
    }

    /// Plans segments until [`PLAN_AHEAD`] records are pending, or until a
    /// segment must be read whole or scanned (its turn comes once the
    /// records before it are read). Their reads start now.
    pub(crate) fn plan_ahead(&mut self, window: (u64, u64)) {
        while self.pending.len() < PLAN_AHEAD {
            let Stage::Indexed { next } = self.stage else {
                return;
            };
            let plan = match self.deferred.take() {
                Some(plan) => plan,
                None => self.plan_segment(next, window),
            };
            match plan {
                SegmentPlan::Skip | SegmentPlan::Records(_) => self.follow(next, plan),
                _ if self.pending.is_empty() => return self.follow(next, plan),
                // Kept, not planned again at every record read meanwhile.
                _ => {
                    self.deferred = Some(plan);
                    return;
                }
            }
        }
    }

    /// Acts on the plan of segment `next`.
    fn follow(&mut self, next: usize, plan: SegmentPlan) {
        self.stage = Stage::Indexed { next: next + 1 };
        let Some(plan_of_file) = self.plan.as_ref() else {
            return;
        };
        let covered_end = plan_of_file.covered_end;
        let framed = plan_of_file.framed;
        let segment = plan_of_file.segments.get(next).copied();
        match (plan, segment) {
            (SegmentPlan::Skip, _) => self.counts.segments_skipped += 1,
            (SegmentPlan::Records(records), _) => {
                if let Some(frame) = records.first().and_then(|c| c.frame) {
                    self.reader.will_need(frame.0, frame.0 + frame.1);
                }
                self.pending.extend(records);
                self.start_reads();
            }
            (SegmentPlan::Whole, Some(segment)) => self.read_range(&segment, next),
            (SegmentPlan::Damaged, Some(segment)) => {
                let h = &segment.header;
                self.warning = Some(format!(
                    "{}: damaged index (segment {next} fails its checksum); the file is scanned from there",
                    self.path.display()
                ));
                self.scan_from(h.data_start);
                // A compressed segment's frames decompress to `skip` bytes
                // (the file header) before its first record.
                if framed && self.reader.discard(u64::from(h.skip)).is_err() {
                    self.stage = Stage::Done;
                }
            }
            (_, _) => match covered_end {
                Some(end) => self.scan_from(end),
                // Compressed, no segment yet: on from the header's end.
                None => self.scan_on(),
            },
        }
    }

    /// What segment `next` holds for this search (its body read if the
    /// window and the expression need it).
    fn plan_segment(&mut self, next: usize, window: (u64, u64)) -> SegmentPlan {
        let plan = self.plan.as_mut().expect("an indexed stage has a plan");
        let Some(segment) = plan.segments.get(next).copied() else {
            return SegmentPlan::Beyond;
        };
        let h = &segment.header;
        if !in_window(h, window) {
            return SegmentPlan::Skip;
        }
        let framed = plan.framed;
        if !self.narrows && !framed {
            return SegmentPlan::Whole;
        }
        if next >= self.bodies_hinted {
            self.bodies_hinted = plan.will_need_bodies(next, window, BODIES_AHEAD);
        }
        let Ok(Some(body)) = plan.body(&segment) else {
            return SegmentPlan::Damaged;
        };
        let wanted: Option<Vec<bool>> = {
            let mut verdicts = self.verdicts.lock().unwrap_or_else(PoisonError::into_inner);
            let mut judge = |(key, packed)| verdicts.may_match(key, packed);
            body.flow_keys().map(&mut judge).collect()
        };
        // The record table is read even when no flow is wanted: a table
        // that does not add up is damage, and what it hides is scanned.
        let Some(chosen) = wanted.and_then(|wanted| body.records_of(&wanted)) else {
            return SegmentPlan::Damaged;
        };
        if chosen.is_empty() {
            return SegmentPlan::Skip;
        }
        // Compressed: one run of frames holds the segment's records.
        let (start, frame) = if framed {
            let frame = (h.data_start, h.data_end - h.data_start);
            (u64::from(h.skip), Some(frame))
        } else {
            (h.data_start, None)
        };
        let records = chosen.into_iter().map(|(offset, len)| Candidate {
            offset: start + offset,
            len,
            frame,
        });
        SegmentPlan::Records(records.collect())
    }

    /// Where one read starting with a record that ends at `end` should stop:
    /// past the pending records that follow closely (as [`start_reads`]
    /// asked the kernel for them), at most a few MB on.
    fn span_end(&self, mut end: u64) -> u64 {
        const GAP: u64 = READ_GAP;
        const MOST: u64 = 4 << 20;
        let start = end;
        for next in &self.pending {
            let next_end = next.offset + u64::from(next.len);
            if next.frame.is_some() || next.offset > end + GAP || next_end > start + MOST {
                break;
            }
            end = next_end;
        }
        end
    }

    /// Keeps the reads of the next [`READS_AHEAD`] pending records in
    /// flight: scattered reads one at a time would wait on the disk for each.
    /// Records closer than [`READ_GAP`] go in one read, gap and all: the disk
    /// serves fewer, larger reads faster than many small ones.
    fn start_reads(&mut self) {
        let limit = self.pending.len().min(READS_AHEAD);
        while self.started < limit {
            let first = self.pending[self.started];
            self.started += 1;
            if first.frame.is_some() {
                // Compressed: the frames' reads started when planned.
                continue;
            }
            let mut end = first.offset + u64::from(first.len);
            while let Some(next) = self.pending.get(self.started) {
                if next.frame.is_some() || next.offset > end + READ_GAP {
                    break;
                }
                end = next.offset + u64::from(next.len);
                self.started += 1;
            }
            self.reader.will_need(first.offset, end);
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

/// True if a segment's records may fall in the window `[from, to)`.
fn in_window(header: &SegmentHeader, (from, to): (u64, u64)) -> bool {
    header.last_ns >= from && header.first_ns < to
}

#[cfg(test)]
mod tests;
