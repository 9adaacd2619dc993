//! The writer: drains its rings, merges queues by timestamp (optionally),
//! encodes records into a large buffer, writes it out, frees mbufs in bulk.

use super::control::{Control, CountLimit};
use super::merge::Merger;
use super::poll::{Backoff, IdlePolicy};
use super::{MAX_BURST, WRITER_BURST};
use crate::dpdk::{
    cycles_since_rx, rdtsc, HomePool, Received, ReceivedFree, RingConsumer, StampedBurst,
    ThreadRegistration,
};
use crate::format::pcapng::InterfaceStats;
use crate::format::{Encoder, RecordMeta};
use crate::output::{FileSink, Rotation};
use crate::pipeline::clock::realtime_ns;
use crate::stats::histogram::{Mailbox, Recorder};
use crate::stats::{QueueShared, ThreadCpu, WriterCounters};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// A queue whose watermark has not moved for this long stops holding back the merge.
const MERGE_STALL: Duration = Duration::from_millis(200);
/// Bursts taken from one ring before looking at the next.
const BURSTS_PER_ROUND: usize = 4;
/// Packets whose loads (the bytes of a plain packet, the header of any other)
/// are in flight ahead of the one being written.
const PREFETCH_AHEAD: usize = 8;

/// One ring this writer drains.
pub struct WriterFeed {
    /// The consumer half of the queue's ring.
    pub ring: RingConsumer,
    /// The queue's counters and watermark.
    pub shared: Arc<QueueShared>,
    /// pcapng interface index (the port's position on the command line).
    pub interface: u32,
    /// RX queue index on its port.
    pub queue: u16,
}

/// Everything a writer needs; [`Writer::run`] consumes it.
pub struct Writer {
    /// The rings to drain.
    pub feeds: Vec<WriterFeed>,
    /// The first file (already created).
    pub sink: FileSink,
    /// Names and limits for the files after it.
    pub rotation: Rotation,
    /// The record encoder.
    pub encoder: Encoder,
    /// Bytes kept per packet.
    pub snaplen: u32,
    /// This writer's counters.
    pub counters: Arc<WriterCounters>,
    /// Run state.
    pub control: Arc<Control>,
    /// `-c`, shared by all writers.
    pub limit: Option<Arc<CountLimit>>,
    /// Merge the feeds into timestamp order.
    pub merge: bool,
    /// Most packets held back for ordering before the oldest is forced out.
    pub hold_limit: usize,
    /// Number of pcapng interfaces (ports).
    pub interfaces: usize,
    /// Capture start, ns since the epoch (pcapng statistics).
    pub start_ns: u64,
    /// TSC ticks per second, to turn latencies into ns.
    pub tsc_hz: u64,
    /// Where rx → written latencies go to the stats core.
    pub latency: Mailbox,
    /// What the writer does when its rings are empty.
    pub idle: IdlePolicy,
    /// Free every packet unencoded (see [`crate::config::CaptureConfig::hand_off_only`]).
    pub hand_off_only: bool,
}

/// What a finished writer hands back.
pub struct WriterOutcome {
    /// The files written, in order (those `-W` removed excluded).
    pub paths: Vec<String>,
    /// The thread's CPU time over its run (`None` without `/proc`).
    pub cpu_time: Option<ThreadCpu>,
}

/// The record-producing half of a writer, apart from the feeds it drains.
struct RecordOut {
    sink: FileSink,
    rotation: Rotation,
    /// Rotate before the next record: the current file reached `-C`.
    full: bool,
    /// The rotation request count last acted on (SIGHUP).
    rotations_seen: u64,
    /// Every queue feeding this writer, by pcapng interface.
    sources: Vec<(u32, Arc<QueueShared>)>,
    /// Per interface (received, dropped, filtered) when the current file opened.
    file_start: Vec<(u64, u64, u64)>,
    file_start_ns: u64,
    post_rotate: Option<PostRotate>,
    paths: Vec<String>,
    encoder: Encoder,
    snaplen: u32,
    counters: Arc<WriterCounters>,
    control: Arc<Control>,
    limit: Option<Arc<CountLimit>>,
    free: ReceivedFree<MAX_BURST>,
    pending_bytes: u64,
    pending_wire: u64,
    /// Receive ticks of the buffered records (see [`Received::rx_tick`]), as
    /// (tick, records) runs.
    pending_rx_ticks: Vec<(u32, u64)>,
    delivered: Vec<u64>,
    failed: bool,
    /// A second Ctrl-C: discard instead of writing.
    aborting: bool,
    /// Nothing but encoding to do per packet (see [`RecordOut::admit`]).
    plain: bool,
    latency: Recorder,
    ns_per_tick: f64,
}

impl RecordOut {
    /// Frees a packet that will not be written, counting it as a writer drop.
    #[inline]
    fn discard(&mut self, packet: Received) {
        self.counters.dropped_writer.add(1);
        self.free.push(packet);
    }

    /// Frees a whole burst unwritten, each packet a writer drop.
    fn discard_all<const N: usize>(&mut self, burst: &mut StampedBurst<N>) {
        self.counters.dropped_writer.add(burst.len() as u64);
        while let Some(packet) = burst.pop_front() {
            self.free.push(packet);
        }
    }

    /// Encodes one packet into the buffer and frees its mbuf.
    #[inline(always)]
    fn write(&mut self, interface: u32, queue: u16, packet: Received) {
        let ts_ns = packet.ts_ns();
        if !self.plain && !self.admit(ts_ns) {
            self.free.push(packet);
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
        // A plain packet's bytes are read without its mbuf header.
        match packet.contiguous() {
            Some(bytes) => self
                .encoder
                .record_contiguous(self.sink.buffer(), &meta, bytes),
            None => self
                .encoder
                .record(self.sink.buffer(), &meta, packet.mbuf().segments()),
        };
        // The same bookkeeping as a burst's, for one record.
        let mut tally = Tally::default();
        let rx_tick = packet.rx_tick();
        tally.add(orig_len, self.snaplen, rx_tick, &mut self.pending_rx_ticks);
        self.settle(interface, &mut tally);
        self.free.push(packet);
        // Write out as soon as the buffer fills, while it is still in cache.
        if self.sink.is_full() {
            self.flush_full();
        }
        if !self.plain {
            self.full = self.rotation.is_full(self.sink.total_bytes());
        }
    }

    /// Writes a burst from one ring, in order. While the capture is plain
    /// (see [`RecordOut::admit`]), each record's bookkeeping goes into a
    /// [`Tally`] settled once per burst and before any flush (which reads it).
    #[inline(always)]
    fn write_burst<const N: usize>(
        &mut self,
        interface: u32,
        queue: u16,
        burst: &mut StampedBurst<N>,
    ) {
        // Keep PREFETCH_AHEAD packets' loads in flight, so their misses
        // overlap with the work.
        (0..PREFETCH_AHEAD).for_each(|i| burst.prefetch_ahead(i));
        let mut tally = Tally::default();
        while let Some(packet) = burst.pop_front() {
            burst.prefetch_ahead(PREFETCH_AHEAD - 1);
            let bytes = match packet.contiguous() {
                Some(bytes) if self.plain => bytes,
                _ => {
                    self.settle(interface, &mut tally);
                    self.write(interface, queue, packet);
                    continue;
                }
            };
            let meta = RecordMeta {
                ts_ns: packet.ts_ns(),
                orig_len: packet.orig_len(),
                interface,
                queue: u32::from(queue),
                rss_hash: packet.rss_hash(),
            };
            self.encoder
                .record_contiguous(self.sink.buffer(), &meta, bytes);
            tally.add(
                meta.orig_len,
                self.snaplen,
                packet.rx_tick(),
                &mut self.pending_rx_ticks,
            );
            self.free.push(packet);
            if self.sink.is_full() {
                self.settle(interface, &mut tally);
                self.flush_full();
            }
        }
        self.settle(interface, &mut tally);
    }

    /// Adds what `tally` counted to the pending bookkeeping and clears it.
    #[inline(always)]
    fn settle(&mut self, interface: u32, tally: &mut Tally) {
        if tally.records == 0 {
            return;
        }
        self.sink.records_appended(tally.records);
        self.pending_bytes += tally.bytes;
        self.pending_wire += tally.wire;
        self.delivered[interface as usize] += tally.records;
        push_tick_run(&mut self.pending_rx_ticks, tally.tick, tally.tick_records);
        *tally = Tally::default();
    }

    /// The checks a plain capture (no failure, no abort, no `-c`, `-C` or
    /// `-G`) never needs. False for a packet that must not be written; it has
    /// been counted under its drop cause and the caller frees it.
    #[inline(never)]
    fn admit(&mut self, ts_ns: u64) -> bool {
        if self.failed || self.aborting {
            self.counters.dropped_writer.add(1);
            return false;
        }
        if let Some(limit) = &self.limit {
            if !limit.take_one() {
                self.counters.dropped_count_limit.add(1);
                return false;
            }
            if limit.exhausted() {
                self.control.set_count_reached();
            }
        }
        let file_has_packets = self.delivered.iter().any(|&d| d > 0);
        let crosses_period = self.rotation.crosses_period(ts_ns, file_has_packets);
        if crosses_period && !file_has_packets && !self.full {
            self.replace_empty_file(ts_ns);
            if self.failed {
                self.counters.dropped_writer.add(1);
                return false;
            }
        } else if self.full || crosses_period {
            self.rotate(ts_ns);
            if self.failed {
                self.counters.dropped_writer.add(1);
                return false;
            }
        }
        true
    }

    /// Recomputes [`RecordOut::plain`]; called whenever what it depends on changes.
    fn update_plain(&mut self) {
        self.plain = !self.failed
            && !self.aborting
            && self.limit.is_none()
            && !self.rotation.policy().rotates();
    }

    /// Marks the capture failed: every later packet is a writer drop.
    fn set_failed(&mut self, message: String) {
        self.failed = true;
        self.update_plain();
        self.control.fail(message);
    }

    /// Follows a second Ctrl-C: from now on packets are discarded, not written.
    fn set_aborting(&mut self, aborting: bool) {
        if aborting != self.aborting {
            self.aborting = aborting;
            self.update_plain();
        }
    }

    /// Per-interface (received, dropped, filtered) of the feeding queues now.
    /// `filtered` is read first: the poll loop counts a packet received before
    /// it can count it filtered, so filtered never exceeds received here.
    fn source_totals(&self) -> Vec<(u64, u64, u64)> {
        let mut totals = vec![(0, 0, 0); self.delivered.len()];
        for (interface, shared) in &self.sources {
            let c = &shared.counters;
            let filtered = c.filtered.get();
            let t = &mut totals[*interface as usize];
            t.2 += filtered;
            t.0 += c.rx_packets.get();
            t.1 += c.ring_full.get();
        }
        totals
    }

    /// Ends the current file: its statistics (pcapng), the last write, `-z`,
    /// and `-W`'s removals. `last`: no file follows. Returns the counters it
    /// closed the file with (the next file's starting point).
    fn finish_file(&mut self, last: bool) -> Vec<(u64, u64, u64)> {
        let now = realtime_ns();
        let totals = self.source_totals();
        let stats: Vec<InterfaceStats> = totals
            .iter()
            .zip(&self.file_start)
            .zip(&self.delivered)
            .map(|((end, start), &delivered)| {
                let received = end.0.saturating_sub(start.0);
                InterfaceStats {
                    start_ns: self.file_start_ns,
                    end_ns: now,
                    received,
                    dropped: end.1.saturating_sub(start.1),
                    filter_accepted: received.saturating_sub(end.2.saturating_sub(start.2)),
                    delivered,
                }
            })
            .collect();
        self.free.flush();
        self.encoder.file_trailer(self.sink.buffer(), &stats);
        self.flush(Instant::now(), true);
        let path = self.sink.path().to_owned();
        self.paths.push(path.display().to_string());
        if let Some(post) = &self.post_rotate {
            post.run(&path);
        }
        for old in self.rotation.closed(path, last) {
            self.paths.retain(|p| Path::new(p) != old);
            // After its -z command, which runs in order on the same thread.
            match &self.post_rotate {
                Some(post) => post.remove(&old),
                None => {
                    let _ = std::fs::remove_file(&old);
                }
            }
        }
        totals
    }

    /// Opens the next file, for a packet stamped `ts_ns`, then closes the
    /// current one. If the new one cannot be created the current one stays
    /// open (to be finished once, at the end) and the capture fails.
    fn rotate(&mut self, ts_ns: u64) {
        self.full = false;
        let path = self.rotation.next_path(ts_ns);
        let next =
            match FileSink::create(&path, self.sink.flush_bytes(), self.sink.flush_interval()) {
                Ok(sink) => sink,
                Err(err) => {
                    self.set_failed(format!("cannot create {}: {err}", path.display()));
                    return;
                }
            };
        let totals = self.finish_file(false);
        self.sink = next;
        self.encoder.file_header(self.sink.buffer());
        self.file_start = totals;
        self.file_start_ns = realtime_ns();
        self.delivered.iter_mut().for_each(|d| *d = 0);
    }

    /// `-G`: the file opened at the start (named by the wall clock) holds no
    /// packet, and the first one belongs to another period. That file is
    /// removed unseen, not closed: no `-z`, no place among `-W`'s files, not
    /// in the report. Its statistics' starting point carries over to the
    /// file that replaces it.
    fn replace_empty_file(&mut self, ts_ns: u64) {
        // Its name goes back first, so the replacement can take it (`-G` with
        // no strftime field, or `-C`'s first number).
        let empty_path = self.sink.path().to_owned();
        self.rotation.discard_last(&empty_path);
        let _ = std::fs::remove_file(&empty_path);
        let path = self.rotation.next_path(ts_ns);
        let next =
            match FileSink::create(&path, self.sink.flush_bytes(), self.sink.flush_interval()) {
                Ok(sink) => sink,
                Err(err) => {
                    self.set_failed(format!("cannot create {}: {err}", path.display()));
                    return;
                }
            };
        // The empty file's buffered header goes to the unlinked file.
        drop(std::mem::replace(&mut self.sink, next));
        self.encoder.file_header(self.sink.buffer());
    }

    /// Writes the buffer out when due (or `force`), then does the accounting.
    fn flush(&mut self, now: Instant, force: bool) {
        let before = self.sink.total_bytes();
        let records = self.sink.pending_records();
        let result = if force {
            self.sink.flush()
        } else {
            self.sink.maybe_flush(now)
        };
        match result {
            Ok(0) => {}
            Ok(bytes) => {
                self.counters.writes.add(1);
                self.counters.file_bytes.add(bytes as u64);
                self.counters.written_packets.add(records);
                self.counters.written_bytes.add(self.pending_bytes);
                self.counters.written_wire_bytes.add(self.pending_wire);
                let written_at = rdtsc();
                for &(rx_tick, count) in &self.pending_rx_ticks {
                    let ns = cycles_since_rx(rx_tick, written_at) as f64 * self.ns_per_tick;
                    self.latency.record_n(ns as u64, count);
                }
                self.latency.answer();
                self.clear_pending();
            }
            Err(err) => {
                self.counters.dropped_writer.add(records);
                self.clear_pending();
                self.set_failed(format!(
                    "cannot write {} (at byte {before}): {err}",
                    self.sink.path().display()
                ));
            }
        }
    }

    /// Writes out a full buffer (kept out of line: once per buffer).
    #[inline(never)]
    fn flush_full(&mut self) {
        self.flush(Instant::now(), true);
    }

    fn clear_pending(&mut self) {
        self.pending_bytes = 0;
        self.pending_wire = 0;
        self.pending_rx_ticks.clear();
    }
}

/// What a run of plain records adds to a writer's pending bookkeeping.
#[derive(Default)]
struct Tally {
    records: u64,
    bytes: u64,
    wire: u64,
    /// The receive tick of the latest records, and how many share it.
    tick: u32,
    tick_records: u64,
}

impl Tally {
    /// Counts one record of `orig_len` bytes on the wire; a finished run of
    /// equal receive ticks goes to `runs`.
    #[inline(always)]
    fn add(&mut self, orig_len: u32, snaplen: u32, rx_tick: u32, runs: &mut Vec<(u32, u64)>) {
        self.records += 1;
        self.bytes += u64::from(orig_len.min(snaplen));
        self.wire += u64::from(orig_len);
        if rx_tick != self.tick && self.tick_records > 0 {
            push_tick_run(runs, self.tick, self.tick_records);
            self.tick_records = 0;
        }
        self.tick = rx_tick;
        self.tick_records += 1;
    }
}

/// Appends `records` records received at `tick` to `runs`: a burst shares one
/// TSC reading, so one entry per run of equal readings.
#[inline(always)]
fn push_tick_run(runs: &mut Vec<(u32, u64)>, tick: u32, records: u64) {
    match runs.last_mut() {
        Some((last, count)) if *last == tick => *count += records,
        _ => runs.push((tick, records)),
    }
}

impl Writer {
    /// Runs until every poll loop is done and every ring and hold is empty.
    pub fn run(self) -> WriterOutcome {
        // A registered thread gets an lcore id, hence mempool caches for frees.
        let _registration = ThreadRegistration::register().ok();
        let cpu_at_start = ThreadCpu::of_current_thread();
        let Writer {
            mut feeds,
            sink,
            rotation,
            encoder,
            snaplen,
            counters,
            control,
            limit,
            merge,
            hold_limit,
            interfaces,
            start_ns,
            tsc_hz,
            latency,
            idle,
            hand_off_only,
        } = self;
        let sources: Vec<(u32, Arc<QueueShared>)> = feeds
            .iter()
            .map(|f| (f.interface, f.shared.clone()))
            .collect();
        // Plain packets go back to their rings' pool unread: one pool for all.
        let free: ReceivedFree<MAX_BURST> = feeds
            .first()
            .expect("a writer drains at least one ring")
            .ring
            .free_batch();
        assert!(
            feeds.iter().all(|f| f.ring.home() == free.home()),
            "a writer's rings share one pool"
        );
        let post_rotate = rotation.policy().post_rotate.clone().map(PostRotate::start);
        let rotations_seen = control.rotation_requests();
        let mut out = RecordOut {
            sink,
            rotation,
            full: false,
            rotations_seen,
            sources,
            file_start: vec![(0, 0, 0); interfaces],
            file_start_ns: start_ns,
            post_rotate,
            paths: Vec::new(),
            encoder,
            snaplen,
            counters,
            control: control.clone(),
            limit,
            free,
            pending_bytes: 0,
            pending_wire: 0,
            pending_rx_ticks: Vec::with_capacity(64 * 1024),
            delivered: vec![0; interfaces],
            failed: false,
            aborting: false,
            plain: false,
            latency: Recorder::new(latency),
            ns_per_tick: 1e9 / tsc_hz.max(1) as f64,
        };
        out.update_plain();
        out.encoder.file_header(out.sink.buffer());

        let mut merger =
            merge.then(|| Merger::new(feeds.len(), hold_limit, MERGE_STALL, Instant::now()));
        let mut burst = StampedBurst::<WRITER_BURST>::new(HomePool::NONE);
        let mut backoff = Backoff::new(idle);
        loop {
            // Read before draining: if set, nothing can arrive after this round.
            let producers_done = control.producers_done();
            out.set_aborting(control.abort_requested());
            let now = Instant::now();
            let mut got = 0;
            for (index, feed) in feeds.iter_mut().enumerate() {
                // The watermark is read before the dequeue, so every packet older
                // than it is in this round's dequeue or already held. Only a
                // merge needs it (the poll loop's core writes it all the time).
                let watermark = if merger.is_some() {
                    feed.shared.watermark_ns.load(Ordering::Acquire)
                } else {
                    0
                };
                let mut drained = false;
                for _ in 0..BURSTS_PER_ROUND {
                    let n = feed.ring.dequeue(&mut burst);
                    drained = n < WRITER_BURST;
                    got += n;
                    match merger.as_mut() {
                        _ if hand_off_only => out.discard_all(&mut burst),
                        // Merged packets are prefetched when they leave the merger.
                        Some(m) => {
                            while let Some(packet) = burst.pop_front() {
                                m.push(index, packet.ts_ns(), packet);
                            }
                        }
                        None => out.write_burst(feed.interface, feed.queue, &mut burst),
                    }
                    if drained {
                        break;
                    }
                }
                // The watermark vouches only for a ring emptied this round; if
                // packets are left in it, this feed holds packets and blocks nothing.
                if let Some(m) = merger.as_mut() {
                    if drained {
                        m.set_watermark(index, watermark, now);
                    } else {
                        m.touch(index, now);
                    }
                }
            }
            if let Some(m) = merger.as_mut() {
                if control.abort_requested() {
                    for packet in m.drain_all() {
                        out.discard(packet);
                    }
                }
                while let Some((index, run)) = m.next_run(now) {
                    let feed = &feeds[index];
                    for ahead in 0..PREFETCH_AHEAD {
                        if let Some(p) = m.peek(index, ahead) {
                            p.prefetch();
                        }
                    }
                    for _ in 0..run {
                        if let Some(p) = m.peek(index, PREFETCH_AHEAD) {
                            p.prefetch();
                        }
                        if let Some((_, packet)) = m.pop_front(index) {
                            out.write(feed.interface, feed.queue, packet);
                        }
                    }
                }
            }
            out.free.flush();
            out.flush(now, false);
            let requested = control.rotation_requests();
            if requested != out.rotations_seen {
                out.rotations_seen = requested;
                if !out.failed {
                    out.rotate(realtime_ns());
                }
            }
            let held = merger.as_ref().map_or(0, |m| m.held());
            // An idle writer answers the stats core too (nothing to hand over).
            out.latency.answer();
            if got == 0 {
                if producers_done && held == 0 {
                    break;
                }
                backoff.idle();
            } else {
                backoff.busy();
            }
        }

        out.finish_file(true);
        drop(feeds);
        if let Some(post) = out.post_rotate.take() {
            post.finish();
        }
        out.latency.finish();
        let cpu_time = cpu_at_start
            .zip(ThreadCpu::of_current_thread())
            .map(|(start, end)| end.since(start));
        WriterOutcome {
            paths: out.paths,
            cpu_time,
        }
    }
}

/// Runs the `-z` command on closed files, one at a time and in order, off the
/// writer's thread so a slow command never stalls capture. `-W`'s removals go
/// through the same queue, so a file is removed only after its command ran.
struct PostRotate {
    queue: Option<mpsc::Sender<PostJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

enum PostJob {
    Run(PathBuf),
    Remove(PathBuf),
}

impl PostRotate {
    fn start(command: String) -> Self {
        let (queue, jobs) = mpsc::channel::<PostJob>();
        let thread = std::thread::Builder::new()
            .name("zcap-post-rotate".into())
            .spawn(move || {
                for job in jobs {
                    match job {
                        PostJob::Run(file) => run_post_rotate(&command, &file),
                        PostJob::Remove(file) => {
                            let _ = std::fs::remove_file(file);
                        }
                    }
                }
            })
            .ok();
        PostRotate {
            queue: Some(queue),
            thread,
        }
    }

    fn run(&self, file: &Path) {
        if let Some(queue) = &self.queue {
            let _ = queue.send(PostJob::Run(file.to_owned()));
        }
    }

    fn remove(&self, file: &Path) {
        if let Some(queue) = &self.queue {
            let _ = queue.send(PostJob::Remove(file.to_owned()));
        }
    }

    /// Waits for every queued job to finish.
    fn finish(mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `CMD FILE` through `sh -c 'CMD "$1"'`, so CMD may carry arguments.
fn run_post_rotate(command: &str, file: &Path) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{command} \"$1\""))
        .arg("zcap-post-rotate")
        .arg(file)
        .status();
    if !matches!(&status, Ok(s) if s.success()) {
        eprintln!(
            "zcap: -z {command:?} failed on {}: {status:?}",
            file.display()
        );
    }
}
