//! The writer: drains its rings ([`drain`]: direct, merged by timestamp, or
//! discarded), encodes records into a large buffer and writes it out
//! ([`records`], deciding with [`gate`] what to admit), frees mbufs in bulk.
//! Where the files go is the [`FileStream`]'s business.

mod drain;
mod gate;
mod mirrored;
mod packet;
mod records;
mod tally;
#[cfg(test)]
mod tests;

use super::backoff::{Backoff, IdlePolicy};
use super::control::{Control, CountLimit};
use super::MAX_BURST;
use crate::dpdk::{HomePool, ReceivedFree, RingConsumer, StampedBurst, ThreadRegistration};
use crate::format::Encoder;
use crate::output::{FileStream, IndexSpec, Rotation, SharedBudget};
use crate::publish::Mirror;
use crate::stats::histogram::{Mailbox, Recorder};
use crate::stats::{QueueShared, ThreadCpu, WriterCounters};
use crate::storage::{FileSink, IoMode};
use drain::Drain;
pub(crate) use drain::LIVE_MERGE_STALL;
use records::{RecordParts, RecordWriter};

/// A capture writer's record half: DPDK packets, freed in bulk.
type CaptureRecords = RecordWriter<ReceivedFree<MAX_BURST>>;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One ring this writer drains.
pub(crate) struct WriterFeed {
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
pub(crate) struct Writer {
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
    /// How long a quiet queue may hold the merge back.
    pub merge_stall: Duration,
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
    /// `--max-disk`, shared by every writer.
    pub budget: Option<SharedBudget>,
    /// Index every file.
    pub index: Option<IndexSpec>,
    /// `-w` with `--publish`: a copy of every record for JetStream.
    pub mirror: Option<Mirror>,
    /// Where the file-system work of rotation runs (the main lcore's CPU).
    pub helper_cpu: Option<usize>,
}

/// What a finished writer hands back.
pub(crate) struct WriterOutcome {
    /// The files written, in order (those `-W` removed excluded).
    pub paths: Vec<String>,
    /// The thread's CPU time over its run (`None` without `/proc`).
    pub cpu_time: Option<ThreadCpu>,
    /// How its files were written.
    pub io_mode: IoMode,
    /// Seconds it waited on storage.
    pub storage_wait_s: f64,
    /// `--publish`: what became of its messages.
    pub publish: Option<crate::stats::PublishReport>,
}

impl Writer {
    /// Runs until every poll loop is done and every ring and hold is empty.
    pub(crate) fn run(self) -> WriterOutcome {
        // A registered thread gets an lcore id, hence mempool caches for frees.
        let _registration = ThreadRegistration::register().ok();
        let cpu_at_start = ThreadCpu::of_current_thread();
        let control = self.control.clone();
        let counters = self.counters.clone();
        let io_mode = self.sink.spec().mode;
        let mut drain = Drain::new(
            self.feeds.len(),
            self.merge,
            self.hand_off_only,
            self.hold_limit,
            self.merge_stall,
        );
        let mut backoff = Backoff::new(self.idle);
        let (mut feeds, mut out) = self.into_parts();
        let mut burst = StampedBurst::new(HomePool::NONE);
        loop {
            // Read before draining: if set, nothing can arrive after this round.
            let producers_done = control.producers_done();
            let aborting = control.abort_requested();
            out.gate.set_aborting(aborting);
            let now = Instant::now();
            let got = drain.round(&mut feeds, &mut out, &mut burst, now, aborting);
            out.free.flush();
            out.flush(now, false);
            out.mirror_round(now, false);
            out.finish_closed(false);
            out.rotate_on_request();
            // An idle writer answers the stats core too (nothing to hand over).
            out.latency.answer();
            if got > 0 {
                backoff.busy();
            } else if producers_done && drain.held() == 0 {
                break;
            } else {
                backoff.idle();
            }
        }
        out.close_file(None);
        out.mirror_round(Instant::now(), true);
        let publish = out
            .stream
            .current()
            .publish_counts()
            .or_else(|| out.mirror.as_ref().map(Mirror::counts));
        drop(feeds);
        out.latency.finish();
        let paths = out.stream.finish(|| control.abort_requested());
        let cpu_time = cpu_at_start
            .zip(ThreadCpu::of_current_thread())
            .map(|(start, end)| end.since(start));
        WriterOutcome {
            paths,
            cpu_time,
            io_mode,
            storage_wait_s: counters.storage_wait_ns.get() as f64 / 1e9,
            publish,
        }
    }

    /// The rings, and the record writer over the first file.
    fn into_parts(self) -> (Vec<WriterFeed>, CaptureRecords) {
        let sources: Vec<(u32, Arc<QueueShared>)> = self
            .feeds
            .iter()
            .map(|f| (f.interface, f.shared.clone()))
            .collect();
        // Plain packets go back to their rings' pool unread: one pool for all.
        let free: ReceivedFree<MAX_BURST> = self
            .feeds
            .first()
            .expect("a writer drains at least one ring")
            .ring
            .free_batch();
        assert!(
            self.feeds.iter().all(|f| f.ring.home() == free.home()),
            "a writer's rings share one pool"
        );
        let stream = FileStream::new(
            self.sink,
            self.rotation,
            sources,
            self.interfaces,
            self.start_ns,
        )
        .with_budget(self.budget)
        .with_index(self.index)
        .with_helper_cpu(self.helper_cpu);
        let parts = RecordParts {
            encoder: self.encoder,
            snaplen: self.snaplen,
            counters: self.counters,
            control: self.control,
            limit: self.limit,
            free,
            latency: Recorder::new(self.latency),
            tsc_hz: self.tsc_hz,
            mirror: self.mirror,
        };
        (self.feeds, RecordWriter::new(stream, parts))
    }
}
