//! The poll loop: one per RX queue, on its own lcore. Receive a burst, stamp
//! it, hand the mbuf pointers to the writer's ring. No packet is copied here.
//!
//! The loop is generic over where packets come from ([`RxSource`]) and where
//! they go ([`RingIn`]), monomorphised, so the hot path has no `dyn`. The
//! DPDK ends are in [`super::rx`]; the tests drive the loop with fakes.

use super::backoff::{Backoff, IdlePolicy};
use super::control::Control;
use super::handoff::HandOff;
pub(crate) use super::handoff::RingFullPolicy;
use super::MAX_BURST;
use crate::dpdk::rdtsc;
use crate::stats::counters::burst_size_bucket;
use crate::stats::histogram::{Mailbox, Recorder};
use crate::stats::QueueShared;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Packets on their way from a receive to the ring.
pub(crate) trait Batch {
    /// Packets held.
    fn len(&self) -> usize;
    /// Frees every packet held (the caller counts them).
    fn free_all(&mut self);
}

/// Where a poll loop's packets come from.
pub(crate) trait RxSource<B> {
    /// The loop reads the TSC every iteration, for stamps and the cycles of
    /// each burst. Without it (rxonly: testpmd's reads no clock) it only
    /// counts its cycles from start to stop, as a loop running flat out.
    const TIMED: bool = true;
    /// Receives at most `max` packets at TSC reading `tsc` and appends the
    /// ones the filter keeps to `batch`, stamped.
    fn receive(&mut self, batch: &mut B, max: usize, tsc: u64) -> Receipt;
    /// The wall-clock time at `tsc` if this source stamps by that clock (so
    /// nothing it receives later is older); `None` for device stamps.
    fn clock_ns(&mut self, tsc: u64) -> Option<u64>;
}

/// What one receive brought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Receipt {
    /// Packets received, the filtered ones included.
    pub(crate) packets: usize,
    /// Their bytes.
    pub(crate) bytes: u64,
    /// Packets the filter rejected: freed, not in the batch.
    pub(crate) filtered: usize,
    /// The newest stamp among them.
    pub(crate) newest_ns: u64,
    /// Nothing was received: a replay's pool is short of mbufs.
    pub(crate) starved: bool,
}

/// Where a poll loop's packets go: the ring to the writer.
pub(crate) trait RingIn {
    /// What it takes packets in.
    type Batch: Batch;
    /// An empty batch for it.
    fn batch(&self) -> Self::Batch;
    /// Moves as many packets as fit from the front of `batch` into the ring;
    /// returns how many. The rest stay in `batch`.
    fn enqueue(&mut self, batch: &mut Self::Batch) -> usize;
}

/// Most packets a capture's poll loop gathers before a hand-off.
pub(crate) const HAND_OFF_MAX: usize = 4 * MAX_BURST;

/// Bursts between attempts to hand the cycles histogram to the stats core.
const HAND_OVER_EVERY: u32 = 4096;

/// One RX queue's poll loop and everything it owns.
pub(crate) struct PollLoop<S, R> {
    /// The queue (stamping and filtering included).
    pub source: S,
    /// The ring to the writer.
    pub ring: R,
    /// Counters and watermark shared with the writer and the stats core.
    pub shared: Arc<QueueShared>,
    /// Run state.
    pub control: Arc<Control>,
    /// Packets asked for per receive call (at most [`MAX_BURST`]).
    pub burst_size: usize,
    /// Most packets gathered before a hand-off: at least `burst_size`, and
    /// exactly that to hand every burst on at once.
    pub gather: usize,
    /// What to do when the ring is full.
    pub ring_full: RingFullPolicy,
    /// What the loop does when the queue is empty.
    pub idle: IdlePolicy,
    /// Where cycles-per-burst samples go to the stats core.
    pub burst_cycles: Mailbox,
}

impl<S: RxSource<R::Batch>, R: RingIn> PollLoop<S, R> {
    /// Runs until a stop is requested; the watermark then says the queue is done.
    pub(crate) fn run(self) {
        let mut running = Running::new(self, rdtsc());
        while !running.poll.control.stop_requested() {
            running.step(if S::TIMED { rdtsc() } else { 0 });
        }
        running.stop(rdtsc());
    }
}

/// What one iteration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A burst of this many packets came in.
    Received(usize),
    /// Nothing came in.
    Idle,
    /// The ring still refuses what it refused before (`Wait`): nothing was
    /// received.
    Refused,
}

/// A poll loop at work: the batch being gathered (or what the ring refused
/// under [`RingFullPolicy::Wait`]) and the decisions about it.
struct Running<S, R: RingIn> {
    poll: PollLoop<S, R>,
    batch: R::Batch,
    hand_off: HandOff,
    backoff: Backoff,
    cycles: BurstCycles,
    /// TSC reading at the start.
    started: u64,
}

impl<S: RxSource<R::Batch>, R: RingIn> Running<S, R> {
    /// Starts at TSC reading `now`; a queue stamped by the clock publishes
    /// the time at once, so a merge need not wait for its first packet.
    fn new(mut poll: PollLoop<S, R>, now: u64) -> Self {
        let batch = poll.ring.batch();
        let hand_off = HandOff::new(poll.ring_full, poll.burst_size, poll.gather);
        let backoff = Backoff::new(poll.idle);
        let cycles = BurstCycles::new(poll.burst_cycles.clone());
        let watermark = poll.source.clock_ns(now);
        let running = Running {
            poll,
            batch,
            hand_off,
            backoff,
            cycles,
            started: now,
        };
        if let Some(watermark) = watermark {
            running.publish(watermark);
        }
        running
    }

    /// One iteration, started at TSC reading `start`.
    #[inline(always)]
    fn step(&mut self, start: u64) -> Step {
        if S::TIMED {
            self.cycles.close_burst(&self.poll.shared, start);
        }
        // Packets the ring refused go first.
        if self.hand_off.must_retry() {
            self.poll.ring.enqueue(&mut self.batch);
            match self.hand_off.retried(self.batch.len()) {
                Some(watermark) => self.publish(watermark),
                None => {
                    self.backoff.idle();
                    return Step::Refused;
                }
            }
        }
        let n = self.receive(start);
        if self.hand_off.due(n, self.batch.len()) {
            self.hand_over();
        }
        if n == 0 {
            if S::TIMED {
                self.cycles.idle(start);
            }
            self.poll.shared.counters.empty_polls.add(1);
            let source = &mut self.poll.source;
            let now_ns = || source.clock_ns(start);
            if let Some(watermark) = self.hand_off.idle_watermark(self.batch.len(), now_ns) {
                self.publish(watermark);
            }
            self.backoff.idle();
            return Step::Idle;
        }
        self.backoff.busy();
        if S::TIMED {
            self.cycles.busy(&self.poll.shared, start);
        }
        Step::Received(n)
    }

    /// Receives a burst into the batch and counts it; returns how many
    /// packets came (filtered ones included).
    #[inline(always)]
    fn receive(&mut self, start: u64) -> usize {
        let poll = &mut self.poll;
        let got = poll.source.receive(&mut self.batch, poll.burst_size, start);
        let counters = &poll.shared.counters;
        if got.starved {
            // The empty-receive path: what was gathered goes to the writer,
            // which frees mbufs.
            counters.pool_waits.add(1);
            return 0;
        }
        let n = got.packets;
        if n == 0 {
            return 0;
        }
        self.hand_off.gathered(got.newest_ns);
        counters.rx_packets.add(n as u64);
        counters.rx_bytes.add(got.bytes);
        counters.bursts.add(1);
        counters.burst_sizes[burst_size_bucket(n)].add(1);
        if got.filtered > 0 {
            counters.filtered.add(got.filtered as u64);
        }
        n
    }

    /// Hands the batch to the ring and does what the hand-off decides with
    /// what did not fit.
    #[inline(always)]
    fn hand_over(&mut self) {
        let batch = self.batch.len();
        let sent = self.poll.ring.enqueue(&mut self.batch);
        let after = self.hand_off.enqueued(batch, sent);
        if after.drop > 0 {
            self.poll.shared.counters.ring_full.add(after.drop as u64);
            self.batch.free_all();
        }
        if let Some(watermark) = after.publish {
            self.publish(watermark);
        }
    }

    /// Every packet this queue enqueues from now on is stamped at or after
    /// `watermark_ns`.
    #[inline(always)]
    fn publish(&self, watermark_ns: u64) {
        let watermark = &self.poll.shared.watermark_ns;
        watermark.store(watermark_ns, Ordering::Release);
    }

    /// Stopping at TSC reading `now`: whatever is still held back could not
    /// be handed on; the watermark says the queue is done.
    fn stop(self, now: u64) {
        let Running {
            mut poll,
            mut batch,
            cycles,
            started,
            ..
        } = self;
        if !S::TIMED {
            poll.shared.counters.busy_cycles.add(now - started);
        }
        cycles.finish(&poll.shared, now);
        if batch.len() > 0 {
            poll.ring.enqueue(&mut batch);
            poll.shared.counters.ring_full.add(batch.len() as u64);
            batch.free_all();
        }
        poll.shared.watermark_ns.store(u64::MAX, Ordering::Release);
    }
}

/// Where a poll loop's cycles go: busy bursts (each runs to the next
/// iteration's TSC reading, one reading per burst) and idle polls, and the
/// per-burst histogram handed to the stats core now and then.
struct BurstCycles {
    recorder: Recorder,
    /// Start of the last non-empty burst.
    busy_since: Option<u64>,
    /// Start of the current run of empty polls.
    idle_since: Option<u64>,
    bursts_since_hand_over: u32,
}

impl BurstCycles {
    fn new(mailbox: Mailbox) -> Self {
        BurstCycles {
            recorder: Recorder::new(mailbox),
            busy_since: None,
            idle_since: None,
            bursts_since_hand_over: 0,
        }
    }

    /// A new iteration starts at `now`: the last burst, if any, ends here.
    #[inline(always)]
    fn close_burst(&mut self, shared: &QueueShared, now: u64) {
        if let Some(since) = self.busy_since.take() {
            let cycles = now - since;
            shared.counters.busy_cycles.add(cycles);
            self.recorder.record(cycles);
        }
    }

    /// This iteration, started at `start`, found nothing.
    #[inline(always)]
    fn idle(&mut self, start: u64) {
        self.idle_since.get_or_insert(start);
    }

    /// This iteration, started at `start`, received a burst.
    #[inline(always)]
    fn busy(&mut self, shared: &QueueShared, start: u64) {
        if let Some(since) = self.idle_since.take() {
            shared.counters.idle_cycles.add(start - since);
        }
        self.busy_since = Some(start);
        self.bursts_since_hand_over += 1;
        // Tried once per HAND_OVER_EVERY bursts, whether or not it works:
        // the mailbox stays full until the stats core's next tick, and
        // retrying on every burst meanwhile cost ~2% of the loop.
        if self.bursts_since_hand_over >= HAND_OVER_EVERY {
            self.recorder.try_hand_over();
            self.bursts_since_hand_over = 0;
        }
    }

    /// The loop ended at `now`: the last burst's cycles, and the histogram
    /// handed over.
    fn finish(mut self, shared: &QueueShared, now: u64) {
        self.close_burst(shared, now);
        self.recorder.finish();
    }
}

#[cfg(test)]
mod tests;
