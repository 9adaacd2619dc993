//! One writer's stream of files: the file being written, the names and limits
//! of the ones after it (`-C`, `-G`, SIGHUP), `-W`'s removals, `-z`, and each
//! file's pcapng statistics. No DPDK: the writer hands it encoded bytes.

use super::helper::{spare_path, FileHelper};
use super::index_file::{IndexFile, IndexSpec};
use super::post_rotate::PostRotate;
use super::Rotation;
use crate::archive::index::index_path;
use crate::format::pcapng::InterfaceStats;
use crate::format::Encoder;
use crate::pipeline::clock::realtime_ns;
use crate::stats::QueueShared;
use crate::storage::Budget;
use crate::storage::{FileSink, SinkSpec};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Per interface: what the poll loops feeding this stream had filtered and
/// dropped for a full ring, as read at a file boundary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PollCounts {
    filtered: u64,
    ring_full: u64,
}

/// See the module docs.
pub(crate) struct FileStream {
    sink: FileSink,
    rotation: Rotation,
    /// Every queue feeding this stream, by pcapng interface.
    sources: Vec<(u32, Arc<QueueShared>)>,
    /// Per interface, in the current file: records written, and packets the
    /// writer took but did not write (`-c`, a failure, an abort).
    delivered: Vec<u64>,
    dropped: Vec<u64>,
    /// Per interface, the poll loops' counts when the current file opened,
    /// and as read for its statistics (the next file's starting point).
    poll_start: Vec<PollCounts>,
    poll_end: Vec<PollCounts>,
    opened_ns: u64,
    post_rotate: Option<PostRotate>,
    /// Closed files, in order, less those `-W` removed.
    paths: Vec<String>,
    /// `--max-disk`, shared by every writer of the capture.
    budget: Option<SharedBudget>,
    /// Index every file (see [`IndexFile`]), and the current file's index.
    index_spec: Option<IndexSpec>,
    index: Option<IndexFile>,
    /// A rotating stream's file-system work off the writer's thread, on
    /// this CPU (see [`FileHelper`]), and where its spare waits.
    helper_cpu: Option<usize>,
    helper: Option<FileHelper>,
    spare: PathBuf,
    /// Indexing: where the spare's index file waits, and the file taken
    /// with the spare for the next file's index (the capture file's path,
    /// the index file).
    spare_index: Option<PathBuf>,
    next_index: Option<(PathBuf, std::fs::File)>,
    /// How the next files are made: as the first was.
    spec: SinkSpec,
}

/// The capture's disk budget, shared by its writers.
pub(crate) type SharedBudget = Arc<Mutex<Budget>>;

/// A file whose last writes may still be in flight, under its final name.
pub(crate) struct ClosingFile {
    pub(crate) sink: FileSink,
    pub(crate) path: PathBuf,
    /// Its index, finished (end marker and all) only once the file is
    /// whole on disk: a reader must not take a file whose last writes are in
    /// flight for a closed one that was cut.
    pub(crate) index: Option<IndexFile>,
}

/// Closed files removed (`-W`, `--max-disk`) at a file boundary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Removed {
    pub(crate) files: u64,
    pub(crate) bytes: u64,
}

impl FileStream {
    /// A stream whose first file, `sink`, was created at `start_ns`; its
    /// header is written by [`FileStream::start`].
    pub(crate) fn new(
        sink: FileSink,
        rotation: Rotation,
        sources: Vec<(u32, Arc<QueueShared>)>,
        interfaces: usize,
        start_ns: u64,
    ) -> Self {
        let post_rotate = rotation.policy().post_rotate.clone().map(PostRotate::start);
        FileStream {
            spec: sink.spec().clone(),
            sink,
            rotation,
            sources,
            delivered: vec![0; interfaces],
            dropped: vec![0; interfaces],
            poll_start: vec![PollCounts::default(); interfaces],
            poll_end: vec![PollCounts::default(); interfaces],
            opened_ns: start_ns,
            post_rotate,
            paths: Vec::new(),
            budget: None,
            index_spec: None,
            index: None,
            helper_cpu: None,
            helper: None,
            spare: PathBuf::new(),
            spare_index: None,
            next_index: None,
        }
    }

    /// Runs the file-system helper on `cpu` (the main lcore's).
    pub(crate) fn with_helper_cpu(mut self, cpu: Option<usize>) -> Self {
        self.helper_cpu = cpu;
        self
    }

    /// Writes an index beside every file.
    pub(crate) fn with_index(mut self, spec: Option<IndexSpec>) -> Self {
        self.index_spec = spec;
        self
    }

    /// Keeps this stream's closed files within `budget`.
    pub(crate) fn with_budget(mut self, budget: Option<SharedBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// Writes the first file's header.
    pub(crate) fn start(&mut self, encoder: &Encoder) {
        // Published messages are bare records; their headers say the rest.
        if !self.sink.is_published() {
            encoder.file_header(self.sink.buffer());
        }
        self.index = self.open_index();
        if self.rotates() && self.sink.on_file_system() {
            self.helper = FileHelper::start(self.helper_cpu);
            self.spare = spare_path(self.sink.path());
            let index = self.index.is_some();
            self.spare_index = index.then(|| spare_path(&index_path(self.sink.path())));
            self.order_spare();
        }
    }

    /// Has the helper make the next file, for the next rotation.
    fn order_spare(&mut self) {
        if let Some(helper) = &mut self.helper {
            helper.order_spare(&self.spare, &self.spec, self.spare_index.as_deref());
        }
    }

    /// A closed file about to be listed and handed to `-z`: the command sees
    /// it as it stays, its unused blocks given back first.
    pub(crate) fn before_post_rotate(&self, sink: &mut FileSink) {
        if self.post_rotate.is_some() {
            sink.release_reserve();
        }
    }

    /// A closed file is all on disk: its unused blocks go back, and its
    /// descriptors and buffers are freed, off the writer's thread if it can.
    pub(crate) fn retire(&mut self, mut sink: FileSink) {
        match &mut self.helper {
            Some(helper) => helper.retire(sink),
            None => sink.release_reserve(),
        }
    }

    /// Removes `path`, off the writer's thread if it can.
    fn remove_file(&mut self, path: PathBuf) {
        match &mut self.helper {
            Some(helper) => helper.remove(path),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// The index of the current file, its header written (in the file the
    /// helper made with the spare, if that became the current file).
    fn open_index(&mut self) -> Option<IndexFile> {
        let made = self.next_index.take();
        // Without indexing, an index an earlier capture left beside this
        // file is removed: it would describe another file.
        if self.sink.is_published() {
            return None;
        }
        let Some(spec) = self.index_spec.as_ref() else {
            let _ = std::fs::remove_file(index_path(self.sink.path()));
            return None;
        };
        let offset = self.sink.next_record_offset();
        // Taken with the spare that became this file (open_next's callers
        // open its index at once).
        debug_assert!(made.as_ref().is_none_or(|(c, _)| c == self.sink.path()));
        let made = made.filter(|(capture, _)| capture == self.sink.path());
        Some(IndexFile::create(
            self.sink.path(),
            offset,
            spec,
            self.sink.is_framed(),
            made.map(|(_, file)| file),
        ))
    }

    /// True if the current file has an index beside it.
    pub(crate) fn indexes(&self) -> bool {
        self.index.is_some()
    }

    /// Indexes the record of `record_len` bytes just encoded, whose captured
    /// bytes start with `frame`.
    #[inline(always)]
    pub(crate) fn index_record(
        &mut self,
        interface: u32,
        ts_ns: u64,
        record_len: usize,
        frame: &[u8],
    ) {
        if let Some(index) = &mut self.index {
            index.add(interface, ts_ns, record_len, frame);
        }
    }

    /// Compressing: indexes the frames the current file's last writes made
    /// (call after every flush).
    pub(crate) fn index_frames(&mut self) {
        if !self.sink.is_framed() {
            return;
        }
        let frames = self.sink.take_frames();
        if let (Some(index), false) = (&mut self.index, frames.is_empty()) {
            index.frames_done(&frames);
        }
    }

    /// Writing the current file failed: its index ends where it is.
    pub(crate) fn abandon_index(&mut self) {
        if let Some(index) = &mut self.index {
            index.abandon();
        }
    }

    /// Finishes the current file's index; returns its size.
    fn finish_index(&mut self) -> u64 {
        let file_len = self.sink.total_bytes();
        self.index.as_mut().map_or(0, |index| {
            index.finish(file_len);
            index.bytes()
        })
    }

    /// The file being written.
    #[inline(always)]
    pub(crate) fn sink(&mut self) -> &mut FileSink {
        &mut self.sink
    }

    /// True if the files rotate (`-C` or `-G`).
    pub(crate) fn rotates(&self) -> bool {
        self.rotation.policy().rotates()
    }

    /// The file being written, to read.
    #[inline(always)]
    pub(crate) fn current(&self) -> &FileSink {
        &self.sink
    }

    /// `records` records of `interface` went into the current file.
    #[inline(always)]
    pub(crate) fn delivered(&mut self, interface: u32, records: u64) {
        self.delivered[interface as usize] += records;
    }

    /// A packet of `interface` was taken for the current file but not written.
    pub(crate) fn dropped(&mut self, interface: u32) {
        self.dropped[interface as usize] += 1;
    }

    /// True once the current file holds a record.
    pub(crate) fn has_packets(&self) -> bool {
        self.delivered.iter().any(|&d| d > 0)
    }

    /// True when the current file reached `-C`.
    pub(crate) fn is_full(&self) -> bool {
        self.rotation.is_full(self.sink.total_bytes())
    }

    /// True when a packet stamped `ts_ns` belongs in a new file by `-G`;
    /// `has_packets` is [`FileStream::has_packets`], which the caller needs too.
    pub(crate) fn crosses_period(&self, ts_ns: u64, has_packets: bool) -> bool {
        self.rotation.crosses_period(ts_ns, has_packets)
    }

    /// Appends the current file's trailer (pcapng: one statistics block per
    /// interface). Each block describes this file alone: `isb_usrdeliv` its
    /// records; `isb_ifrecv` those, the packets the writer took for it but
    /// did not write, and what the poll loops filtered or dropped while it
    /// was open; so every file's counts are consistent and, over all files,
    /// add up to the capture's.
    pub(crate) fn write_trailer(&mut self, encoder: &Encoder) {
        self.poll_end = self.poll_counts();
        let end_ns = realtime_ns();
        let stats: Vec<InterfaceStats> = (0..self.delivered.len())
            .map(|i| {
                let filtered = self.poll_end[i].filtered - self.poll_start[i].filtered;
                let ring_full = self.poll_end[i].ring_full - self.poll_start[i].ring_full;
                let received = self.delivered[i] + self.dropped[i] + filtered + ring_full;
                InterfaceStats {
                    start_ns: self.opened_ns,
                    end_ns,
                    received,
                    dropped: ring_full + self.dropped[i],
                    filter_accepted: received - filtered,
                    delivered: self.delivered[i],
                }
            })
            .collect();
        encoder.file_trailer(self.sink.buffer(), &stats);
    }

    /// Per interface, the feeding poll loops' counts now. `filtered` and
    /// `ring_full` only ever grow, so later readings are never smaller.
    fn poll_counts(&self) -> Vec<PollCounts> {
        let mut counts = vec![PollCounts::default(); self.delivered.len()];
        for (interface, shared) in &self.sources {
            let c = &mut counts[*interface as usize];
            c.filtered += shared.counters.filtered.get();
            c.ring_full += shared.counters.ring_full.get();
        }
        counts
    }

    /// Creates the next file, for a first packet stamped `ts_ns`, without
    /// switching to it. An error names the file.
    pub(crate) fn open_next(&mut self, ts_ns: u64) -> Result<FileSink, String> {
        let path = self.rotation.next_path(ts_ns);
        if let Some(helper) = &self.helper {
            helper.settle();
        }
        let reserve = self.spec.preallocate;
        let spare = self
            .helper
            .as_mut()
            .and_then(|h| h.take_spare(&path, reserve));
        let next = match spare {
            Some((sink, index)) => {
                self.next_index = index.map(|file| (path.clone(), file));
                Ok(sink)
            }
            None => FileSink::create(&path, &self.spec),
        };
        self.order_spare();
        next.map_err(|err| format!("cannot create {}: {err}", path.display()))
    }

    /// The current file's trailer is written: `next` takes its place, its
    /// header written and its counts started where the trailer's ended.
    /// Returns the old file, to hand to [`FileStream::finished`] once it is
    /// all on disk.
    pub(crate) fn switch_to(&mut self, next: FileSink, encoder: &Encoder) -> ClosingFile {
        let path = self.sink.path().to_owned();
        let path = self.renumber_first(path);
        let index = self.index.take();
        let sink = std::mem::replace(&mut self.sink, next);
        encoder.file_header(self.sink.buffer());
        self.index = self.open_index();
        self.poll_start = self.poll_end.clone();
        self.opened_ns = realtime_ns();
        self.delivered.iter_mut().for_each(|d| *d = 0);
        self.dropped.iter_mut().for_each(|d| *d = 0);
        ClosingFile { sink, path, index }
    }

    /// A closed file of `size` bytes is all on disk: lists it, runs `-z` on
    /// it and applies `-W` and `--max-disk`. `last`: no file follows it.
    /// Returns what was removed.
    pub(crate) fn finished(&mut self, path: PathBuf, size: u64, last: bool) -> Removed {
        self.paths.push(path.display().to_string());
        if let Some(post) = &self.post_rotate {
            post.run(&path);
        }
        self.remove_old(path, size, last)
    }

    /// The last file is closed and on disk (see [`FileStream::finished`]).
    pub(crate) fn finished_last(&mut self) -> Removed {
        let path = self.sink.path().to_owned();
        // Its reservation (and every order before it) done, the spare gone.
        self.helper = None;
        self.sink.release_reserve();
        let size = self.sink.total_bytes() + self.finish_index();
        self.finished(path, size, true)
    }

    /// Removes what `-W` and the budget no longer keep, after `closed`
    /// (`size` bytes) joined the closed files.
    fn remove_old(&mut self, closed: PathBuf, size: u64, last: bool) -> Removed {
        let mut old = self.rotation.closed(closed.clone(), last);
        let mut removed = Removed::default();
        if let Some(budget) = &self.budget {
            let mut budget = budget.lock().unwrap_or_else(|e| e.into_inner());
            // A file the budget removed already is not removed twice.
            old.retain(|p| !budget.removed(p));
            old.iter().for_each(|p| budget.forget(p));
            let over = budget.closed(closed, size);
            old.extend(over);
        }
        for old in old {
            self.rotation.forget(&old);
            removed.files += 1;
            removed.bytes += old.metadata().map_or(0, |m| m.len());
            let index = index_path(&old);
            if let Ok(meta) = index.metadata() {
                removed.bytes += meta.len();
                self.remove_file(index);
            }
            self.paths.retain(|p| Path::new(p) != old);
            // After its -z command, which runs in order on the same thread.
            match &self.post_rotate {
                Some(post) => post.remove(&old),
                None => self.remove_file(old),
            }
        }
        removed
    }

    /// The plain-named first file of a SIGHUP rotation becomes number 0 (see
    /// [`Rotation::renumbered_first`]); it stays as it is if the rename fails.
    fn renumber_first(&mut self, path: PathBuf) -> PathBuf {
        match self.rotation.renumbered_first(&path) {
            Some(numbered) if std::fs::rename(&path, &numbered).is_ok() => {
                if let Some(index) = &mut self.index {
                    index.rename_with(&numbered);
                }
                numbered
            }
            _ => path,
        }
    }

    /// `-G`: the file opened at the start (named by the wall clock) holds no
    /// packet, and the first one belongs to another period. That file is
    /// removed unseen, not closed: no `-z`, no place among `-W`'s files, not
    /// listed. Its name goes back first, so the replacement can take it
    /// (`-G` with no strftime field, or `-C`'s first number); its counts'
    /// starting point carries over.
    pub(crate) fn replace_empty(&mut self, ts_ns: u64, encoder: &Encoder) -> Result<(), String> {
        let empty_path = self.sink.path().to_owned();
        self.rotation.discard_last(&empty_path);
        let _ = std::fs::remove_file(&empty_path);
        if let Some(index) = self.index.take() {
            let _ = std::fs::remove_file(index.path());
        }
        let next = self.open_next(ts_ns)?;
        // The empty file's buffered header goes to the unlinked file.
        drop(std::mem::replace(&mut self.sink, next));
        encoder.file_header(self.sink.buffer());
        self.index = self.open_index();
        Ok(())
    }

    /// Waits for the last `-z` commands, unless `stop_waiting` turns true (a
    /// second signal): then the files whose command did not run are named
    /// on stderr. Returns the files written, in order.
    pub(crate) fn finish(mut self, stop_waiting: impl Fn() -> bool) -> Vec<String> {
        if let Some(post) = self.post_rotate.take() {
            for file in post.finish(stop_waiting) {
                crate::say!(
                    "zcap: -z did not run on {}: stopped by a second signal",
                    file.display()
                );
            }
        }
        // Another writer's budget may have removed some of this one's files.
        if let Some(budget) = &self.budget {
            let budget = budget.lock().unwrap_or_else(|e| e.into_inner());
            self.paths.retain(|p| !budget.removed(Path::new(p)));
        }
        self.paths
    }
}

#[cfg(test)]
mod tests;
