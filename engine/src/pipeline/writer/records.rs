//! The record-producing half of a writer: encodes packets into the current
//! file's buffer, frees their mbufs in bulk, writes the buffer out and keeps
//! the books (written, dropped, latency). What to admit is the [`Gate`]'s
//! decision, where records go the [`FileStream`]'s.
//!
//! It knows packets only through [`Packet`] and frees them through
//! [`Release`], so it runs without DPDK in its tests, on files in memory.

use super::gate::{Admit, DropCause, Gate};
use super::packet::{Burst, Packet, Release};
use super::tally::{book, Tally};
use crate::format::{Encoder, RecordMeta};
use crate::output::{ClosingFile, FileStream, Removed};
use crate::pipeline::clock::realtime_ns;
use crate::pipeline::control::Control;
use crate::publish::Mirror;
use crate::stats::histogram::Recorder;
use crate::stats::WriterCounters;
use crate::storage::{FileSink, WriteError};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// Packets whose loads (the bytes of a plain packet, the header of any other)
/// are in flight ahead of the one being written.
pub(crate) const PREFETCH_AHEAD: usize = 8;

/// See the module docs.
pub(crate) struct RecordWriter<F> {
    pub(crate) stream: FileStream,
    pub(crate) gate: Gate,
    pub(crate) encoder: Encoder,
    pub(crate) snaplen: u32,
    pub(crate) counters: Arc<WriterCounters>,
    pub(crate) control: Arc<Control>,
    pub(crate) free: F,
    pub(crate) latency: Recorder,
    pub(crate) ns_per_tick: f64,
    /// The rotation request count last acted on (SIGHUP).
    pub(crate) rotations_seen: u64,
    /// The latest time the file format holds ([`Encoder::latest_ns`]).
    pub(crate) latest_ns: u64,
    /// Closed files whose last writes may be in flight, oldest first.
    pub(crate) closing: VecDeque<ClosingFile>,
    /// `-w` with `--publish`: a copy of every record for JetStream.
    pub(crate) mirror: Option<Mirror>,
}

/// What a [`RecordWriter`] starts with besides its file stream.
pub(crate) struct RecordParts<F> {
    pub(crate) encoder: Encoder,
    pub(crate) snaplen: u32,
    pub(crate) counters: Arc<WriterCounters>,
    pub(crate) control: Arc<Control>,
    /// `-c`, shared by all writers.
    pub(crate) limit: Option<Arc<crate::pipeline::control::CountLimit>>,
    pub(crate) free: F,
    pub(crate) latency: Recorder,
    /// TSC ticks per second, to turn latencies into ns.
    pub(crate) tsc_hz: u64,
    pub(crate) mirror: Option<Mirror>,
}

impl<F: Release> RecordWriter<F> {
    /// A writer into `stream`, whose first file is started.
    pub(crate) fn new(mut stream: FileStream, parts: RecordParts<F>) -> Self {
        let rotates = stream.rotates();
        stream.start(&parts.encoder);
        RecordWriter {
            stream,
            gate: Gate::new(parts.limit, rotates),
            latest_ns: parts.encoder.latest_ns(),
            encoder: parts.encoder,
            snaplen: parts.snaplen,
            counters: parts.counters,
            rotations_seen: parts.control.rotation_requests(),
            control: parts.control,
            free: parts.free,
            latency: parts.latency,
            ns_per_tick: 1e9 / parts.tsc_hz.max(1) as f64,
            closing: VecDeque::new(),
            mirror: parts.mirror,
        }
    }

    /// Frees a packet that will not be written (a second Ctrl-C), counting
    /// it as a writer drop.
    #[inline]
    pub(crate) fn discard(&mut self, packet: F::Packet) {
        self.counters.dropped_writer.add(1);
        self.free.release(packet);
    }

    /// Frees a whole burst unwritten, each packet a writer drop.
    pub(crate) fn discard_all<B: Burst<Packet = F::Packet>>(&mut self, burst: &mut B) {
        self.counters.dropped_writer.add(burst.len() as u64);
        while let Some(packet) = burst.pop_front() {
            self.free.release(packet);
        }
    }

    /// Encodes one packet into the buffer and frees its mbuf.
    #[inline(always)]
    pub(crate) fn write(&mut self, interface: u32, queue: u16, packet: F::Packet) {
        let ts_ns = self.in_range(packet.ts_ns());
        if !self.gate.plain() && !self.admit(interface, ts_ns) {
            self.free.release(packet);
            return;
        }
        let orig_len = packet.orig_len();
        let meta = RecordMeta {
            ts_ns,
            orig_len,
            interface,
            queue: u32::from(queue),
            rss_hash: packet.rss_hash(),
        };
        let buffer = self.stream.sink().buffer();
        // A plain packet's bytes are read without its mbuf header.
        let (len, frame) = match packet.contiguous() {
            Some(bytes) => (self.encoder.record_contiguous(buffer, &meta, bytes), bytes),
            None => {
                let mut segments = packet.segments();
                let len = self.encoder.record(buffer, &meta, packet.segments());
                (len, segments.next().unwrap_or(&[]))
            }
        };
        self.stream.index_record(interface, ts_ns, len, frame);
        if self.mirror.is_some() {
            self.mirror_record(&meta, &packet);
        }
        // The same bookkeeping as a burst's, for one record.
        let mut tally = Tally::default();
        let rx_tick = packet.rx_tick();
        let rx_ticks = &mut self.stream.sink().books().rx_ticks;
        tally.add(orig_len, self.snaplen, rx_tick, rx_ticks);
        self.settle(interface, &mut tally);
        self.free.release(packet);
        // Write out as soon as the buffer fills, while it is still in cache.
        if self.stream.current().is_full() {
            self.flush_full();
        }
        if !self.gate.plain() {
            self.gate.set_full(self.stream.is_full());
        }
    }

    /// Writes a burst from one ring, in order. While the capture is plain
    /// (see [`Gate::plain`]), each record's bookkeeping goes into a [`Tally`]
    /// settled once per burst and before any flush (which reads it).
    #[inline(always)]
    pub(crate) fn write_burst<B: Burst<Packet = F::Packet>>(
        &mut self,
        interface: u32,
        queue: u16,
        burst: &mut B,
    ) {
        // Records that are only copied get a loop of their own: asking each
        // time about an index, a mirror and compression cost a fifth of the
        // rate to /dev/null (measured in direct pairs).
        let stream = &self.stream;
        if self.mirror.is_none() && !stream.indexes() && !stream.current().is_framed() {
            self.write_plain::<B, true>(interface, queue, burst);
        } else {
            self.write_plain::<B, false>(interface, queue, burst);
        }
    }

    /// [`RecordWriter::write_burst`]'s loop; `BARE`: the records are only
    /// copied (no index, no mirror, no compression).
    #[inline(always)]
    fn write_plain<B: Burst<Packet = F::Packet>, const BARE: bool>(
        &mut self,
        interface: u32,
        queue: u16,
        burst: &mut B,
    ) {
        // Keep PREFETCH_AHEAD packets' loads in flight, so their misses
        // overlap with the work.
        (0..PREFETCH_AHEAD).for_each(|i| burst.prefetch_ahead(i));
        let mut tally = Tally::default();
        while let Some(packet) = burst.pop_front() {
            burst.prefetch_ahead(PREFETCH_AHEAD - 1);
            let bytes = match packet.contiguous() {
                Some(bytes) if self.gate.plain() => bytes,
                _ => {
                    self.settle(interface, &mut tally);
                    self.write(interface, queue, packet);
                    continue;
                }
            };
            let meta = RecordMeta {
                ts_ns: self.in_range(packet.ts_ns()),
                orig_len: packet.orig_len(),
                interface,
                queue: u32::from(queue),
                rss_hash: packet.rss_hash(),
            };
            let sink = self.stream.sink();
            let buffer = if BARE {
                sink.unframed_buffer()
            } else {
                sink.buffer()
            };
            let len = self.encoder.record_contiguous(buffer, &meta, bytes);
            if !BARE {
                self.stream.index_record(interface, meta.ts_ns, len, bytes);
                if self.mirror.is_some() {
                    self.mirror_record(&meta, &packet);
                }
            }
            let rx_ticks = &mut self.stream.sink().books().rx_ticks;
            tally.add(meta.orig_len, self.snaplen, packet.rx_tick(), rx_ticks);
            self.free.release(packet);
            let sink = self.stream.current();
            let full = if BARE {
                sink.unframed_is_full()
            } else {
                sink.is_full()
            };
            if full {
                self.settle(interface, &mut tally);
                self.flush_full();
            }
        }
        self.settle(interface, &mut tally);
    }

    /// `ts_ns`, or the latest time the format holds if it is later: a time
    /// is clamped and counted, never wrapped.
    #[inline(always)]
    fn in_range(&mut self, ts_ns: u64) -> u64 {
        if ts_ns <= self.latest_ns {
            ts_ns
        } else {
            self.out_of_range()
        }
    }

    #[cold]
    fn out_of_range(&mut self) -> u64 {
        if self.counters.timestamps_out_of_range.get() == 0 {
            crate::say!(
                "zcap: a packet is stamped later than {} can hold (2106-02-07 06:28:15 UTC); such packets are written with that time and counted as timestamps_out_of_range",
                self.stream.current().path().display()
            );
        }
        self.counters.timestamps_out_of_range.add(1);
        self.latest_ns
    }

    /// Adds what `tally` counted to the pending bookkeeping and clears it.
    #[inline(always)]
    fn settle(&mut self, interface: u32, tally: &mut Tally) {
        if tally.is_empty() {
            return;
        }
        let records = tally.settle_into(self.stream.sink().books());
        self.stream.delivered(interface, records);
    }

    /// Asks the gate about a packet and opens the file it names. False for a
    /// packet that must not be written: it was counted under its drop cause,
    /// and the caller frees it.
    #[inline(never)]
    fn admit(&mut self, interface: u32, ts_ns: u64) -> bool {
        let has_packets = self.stream.has_packets();
        let crosses = self.stream.crosses_period(ts_ns, has_packets);
        let verdict = self.gate.admit(crosses, has_packets);
        if self.gate.count_reached() {
            self.control.set_count_reached();
        }
        let opened = match verdict {
            Admit::Write => return true,
            Admit::Drop(cause) => {
                self.count_drop(interface, cause);
                return false;
            }
            Admit::Rotate => self.rotate(ts_ns),
            Admit::ReplaceEmpty => self.stream.replace_empty(ts_ns, &self.encoder),
        };
        match opened {
            Ok(()) => true,
            Err(message) => {
                self.set_failed(message);
                self.count_drop(interface, DropCause::Writer);
                false
            }
        }
    }

    fn count_drop(&mut self, interface: u32, cause: DropCause) {
        match cause {
            DropCause::Writer => self.counters.dropped_writer.add(1),
            DropCause::CountLimit => self.counters.dropped_count_limit.add(1),
        }
        self.stream.dropped(interface);
    }

    /// `-w -` and the reader closed the pipe (as `| head` does): the
    /// capture stops as on Ctrl-C, exit 0; what could not be written is
    /// counted as writer drops.
    #[cold]
    fn reader_gone(&mut self) {
        crate::say!("zcap: the reader of standard output went away: stopping");
        self.gate.fail();
        self.control.request_stop();
    }

    /// Marks the capture failed: every later packet is a writer drop.
    fn set_failed(&mut self, message: String) {
        self.gate.fail();
        self.control.fail(message);
    }

    /// SIGHUP: a new file now, unless writing already failed.
    pub(crate) fn rotate_on_request(&mut self) {
        let requested = self.control.rotation_requests();
        if requested != self.rotations_seen {
            self.rotations_seen = requested;
            if !self.gate.failed() {
                if let Err(message) = self.rotate(realtime_ns()) {
                    self.set_failed(message);
                }
            }
        }
    }

    /// Opens the next file, for a packet stamped `ts_ns`, then closes the
    /// current one. If the new one cannot be created the current one stays
    /// open (to be finished once, at the end).
    fn rotate(&mut self, ts_ns: u64) -> Result<(), String> {
        let next = self.stream.open_next(ts_ns)?;
        self.close_file(Some(next));
        Ok(())
    }

    /// Ends the current file with its trailer. With a `next` file, the old
    /// one's last writes go out without waiting and it is finished (books,
    /// `-z`, `-W`, budget) once they are on disk, so a rotation does not
    /// stall the writer; at the end (no `next`), everything is waited for.
    pub(crate) fn close_file(&mut self, next: Option<FileSink>) {
        self.free.flush();
        self.stream.write_trailer(&self.encoder);
        match next {
            Some(next) => {
                let result = self.stream.sink().start_close();
                self.book_landed(result);
                let closing = self.stream.switch_to(next, &self.encoder);
                self.closing.push_back(closing);
                self.finish_closed(false);
            }
            None => {
                self.finish_closed(true);
                self.flush(Instant::now(), true);
                let removed = self.stream.finished_last();
                self.count_removed(removed);
            }
        }
    }

    /// Finishes, in order, the closed files whose last writes are on disk
    /// (all of them, waiting, if `wait`).
    pub(crate) fn finish_closed(&mut self, wait: bool) {
        while let Some(front) = self.closing.front_mut() {
            let result = if wait {
                front.sink.finish_close()
            } else {
                match front.sink.poll_close() {
                    Some(result) => result,
                    None => return,
                }
            };
            let mut closed = self.closing.pop_front().expect("the front exists");
            let failed = match self.book(&mut closed.sink, result) {
                Some(err) => {
                    self.write_failed(closed.sink.path(), err);
                    true
                }
                None => false,
            };
            // On disk and whole: now its index may say the file is closed
            // (abandoned instead if its last writes failed).
            let file_len = closed.sink.total_bytes();
            let index_bytes = closed.index.as_mut().map_or(0, |index| {
                if failed {
                    index.abandon();
                }
                index.finish(file_len);
                index.bytes()
            });
            let size = closed.sink.total_bytes() + index_bytes;
            self.stream.before_post_rotate(&mut closed.sink);
            let removed = self.stream.finished(closed.path, size, false);
            self.count_removed(removed);
            self.stream.retire(closed.sink);
        }
    }

    fn count_removed(&mut self, removed: Removed) {
        self.counters.files_removed.add(removed.files);
        self.counters.bytes_removed.add(removed.bytes);
    }

    /// Writes the buffer out when due (or everything, `force`), then books
    /// what reached the disk.
    pub(crate) fn flush(&mut self, now: Instant, force: bool) {
        let sink = self.stream.sink();
        let result = if force {
            sink.flush()
        } else {
            sink.maybe_flush(now)
        };
        self.book_landed(result);
    }

    /// Writes out a full buffer (kept out of line: once per buffer).
    #[inline(never)]
    fn flush_full(&mut self) {
        let result = self.stream.sink().flush_full();
        self.book_landed(result);
    }

    /// Books the records that reached the current file's disk, and the
    /// ones a failed write lost (writer drops: the capture stops with the
    /// error).
    fn book_landed(&mut self, result: Result<(), WriteError>) {
        self.stream.index_frames();
        let sink = self.stream.sink();
        if let Some(err) = book(
            sink,
            &self.counters,
            &mut self.latency,
            self.ns_per_tick,
            result,
        ) {
            let path = self.stream.current().path().to_owned();
            self.stream.abandon_index();
            self.write_failed(&path, err);
        }
    }

    /// [`book`] for a file other than the current one.
    fn book(&mut self, sink: &mut FileSink, result: Result<(), WriteError>) -> Option<WriteError> {
        book(
            sink,
            &self.counters,
            &mut self.latency,
            self.ns_per_tick,
            result,
        )
    }

    fn write_failed(&mut self, path: &std::path::Path, err: WriteError) {
        self.counters.dropped_writer.add(err.lost_records);
        if self.gate.failed() {
            return; // the first failure was reported; this one only counts
        }
        if crate::storage::is_stdout(path) && err.error.kind() == std::io::ErrorKind::BrokenPipe {
            return self.reader_gone();
        }
        let (kept, error) = (err.kept_bytes, err.error);
        let message = if self.stream.current().is_published() {
            format!("cannot publish on {}: {error}", path.display())
        } else if crate::storage::is_stdout(path) {
            format!("cannot write standard output: {error}")
        } else {
            format!(
                "cannot write {}: {error} (the file keeps its first {kept} bytes, whole records)",
                path.display()
            )
        };
        self.set_failed(message);
    }
}
