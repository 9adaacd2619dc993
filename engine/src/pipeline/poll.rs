//! The poll loop: one per RX queue, on its own lcore. Receive a burst, stamp
//! it, hand the mbuf pointers to the writer's ring. No packet is copied here.

use super::control::Control;
use super::handoff::HandOff;
pub(crate) use super::handoff::RingFullPolicy;
use super::stamp::Stamper;
use super::MAX_BURST;
use crate::dpdk::{pause, rdtsc, Filter, MbufBurst, Mempool, RingProducer, RxQueue, StampedBurst};
use crate::stats::counters::burst_size_bucket;
use crate::stats::histogram::{Mailbox, Recorder};
use crate::stats::QueueShared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a poll loop or writer does when it finds nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdlePolicy {
    /// Always spin: the loop has a CPU of its own (`--idle busy`, or auto on
    /// dedicated CPUs).
    Spin,
    /// Sleep once idle for [`SPIN_BEFORE_SLEEP`]: the CPU is shared only with
    /// threads that mostly sleep (the main lcore's stats core).
    Sleep,
    /// As `Sleep`, and give the CPU up after a few idle rounds: another
    /// poll loop or writer runs on the same CPU and may have work.
    YieldThenSleep,
}

impl IdlePolicy {
    /// The policy of a loop on a CPU that is `crowded` (it hosts another poll
    /// loop or writer) when the session backs off (`backoff`) at all.
    pub(crate) fn new(backoff: bool, crowded: bool) -> Self {
        match (backoff, crowded) {
            (false, _) => IdlePolicy::Spin,
            (true, false) => IdlePolicy::Sleep,
            (true, true) => IdlePolicy::YieldThenSleep,
        }
    }
}

/// Spin-then-sleep back-off for idle loops on shared cores.
///
/// A loop sleeps only once it has found nothing to do for [`SPIN_BEFORE_SLEEP`]:
/// the gaps between a busy queue's bursts are microseconds, and a loop that
/// slept in them would come back (sleep plus timer slack) to a ring that
/// overflowed meanwhile: 4096 slots last 68 µs at 60 Mpps. A loop sharing its
/// CPU with another loop yields in those gaps instead, so the other one runs.
#[derive(Debug)]
pub(crate) struct Backoff {
    policy: IdlePolicy,
    idle_rounds: u32,
    idle_since: Option<Instant>,
}

/// What one idle round of a loop does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdleAction {
    Spin,
    Yield,
    Sleep,
}

/// Idle rounds before the clock is read or the CPU given up.
const SPIN_ROUNDS: u32 = 64;
/// How long a loop must have been idle before it sleeps.
const SPIN_BEFORE_SLEEP: Duration = Duration::from_millis(1);
/// One nap of an idle loop.
const IDLE_SLEEP: Duration = Duration::from_micros(50);

impl Backoff {
    /// A back-off following `policy`.
    pub(crate) fn new(policy: IdlePolicy) -> Self {
        Backoff {
            policy,
            idle_rounds: 0,
            idle_since: None,
        }
    }

    /// Called after a round that found nothing to do.
    #[inline(always)]
    pub(crate) fn idle(&mut self) {
        match self.next_idle(Instant::now) {
            IdleAction::Spin => pause(),
            IdleAction::Yield => std::thread::yield_now(),
            IdleAction::Sleep => std::thread::sleep(IDLE_SLEEP),
        }
    }

    /// What an idle round does; `now` is read only once the loop has spun
    /// [`SPIN_ROUNDS`] rounds (a clock read costs more than a spin).
    #[inline(always)]
    fn next_idle(&mut self, now: impl FnOnce() -> Instant) -> IdleAction {
        self.idle_rounds = self.idle_rounds.saturating_add(1);
        if self.policy == IdlePolicy::Spin || self.idle_rounds <= SPIN_ROUNDS {
            return IdleAction::Spin;
        }
        let now = now();
        let since = *self.idle_since.get_or_insert(now);
        if now.duration_since(since) >= SPIN_BEFORE_SLEEP {
            IdleAction::Sleep
        } else if self.policy == IdlePolicy::YieldThenSleep {
            IdleAction::Yield
        } else {
            IdleAction::Spin
        }
    }

    /// Called after a round that did work.
    #[inline(always)]
    pub(crate) fn busy(&mut self) {
        self.idle_rounds = 0;
        self.idle_since = None;
    }
}

/// Keeps a replay from receiving into an empty pool. A vdev such as
/// net_pcap reads the next packet from its file before it allocates the
/// mbuf, so a receive that finds the pool dry loses a packet for good
/// (`rx_nombuf`). A finite source can wait instead: its poll loop receives
/// only while at least `reserve` mbufs are free, enough for one burst of
/// every poll loop at once (the pool has no per-lcore caches then, so the
/// count is exact).
pub(crate) struct PoolGuard {
    /// The pool the port receives into.
    pub pool: Arc<Mempool>,
    /// Free mbufs needed before a receive.
    pub reserve: u32,
}

impl PoolGuard {
    #[inline(always)]
    fn starved(&self) -> bool {
        self.pool.available() < self.reserve
    }
}

/// One RX queue's poll loop and everything it owns.
pub(crate) struct PollLoop {
    /// The queue, owned by this loop alone.
    pub rxq: RxQueue,
    /// The ring to the writer.
    pub ring: RingProducer,
    /// Counters and watermark shared with the writer and the stats core.
    pub shared: Arc<QueueShared>,
    /// Timestamps.
    pub stamper: Stamper,
    /// Run state.
    pub control: Arc<Control>,
    /// Packets asked for per receive call (at most [`MAX_BURST`]).
    pub burst_size: usize,
    /// What to do when the ring is full.
    pub ring_full: RingFullPolicy,
    /// What the loop does when the queue is empty.
    pub idle: IdlePolicy,
    /// Packets this rejects are freed and counted as filtered, before the ring.
    pub filter: Option<Arc<Filter>>,
    /// Where cycles-per-burst samples go to the stats core.
    pub burst_cycles: Mailbox,
    /// Set for finite sources: receive only while the pool can take a burst.
    pub pool_guard: Option<PoolGuard>,
}

/// Most packets a poll loop gathers before handing them to its ring.
const HAND_OFF_MAX: usize = 4 * MAX_BURST;

/// Bursts between attempts to hand the cycles histogram to the stats core.
const HAND_OVER_EVERY: u32 = 4096;

impl PollLoop {
    /// Runs until a stop is requested; the watermark then says the queue is done.
    pub(crate) fn run(mut self) {
        let mut received = MbufBurst::<MAX_BURST>::new();
        // Stamped packets on their way to the ring: a batch being gathered,
        // or what the ring refused under RingFullPolicy::Wait.
        let mut outgoing: StampedBurst<HAND_OFF_MAX> = self.ring.burst();
        let mut hand_off = HandOff::new(self.ring_full, self.burst_size, HAND_OFF_MAX);
        let mut backoff = Backoff::new(self.idle);
        let mut cycles = BurstCycles::new(self.burst_cycles.clone());
        if self.stamper.uses_tsc() {
            let now_ns = self.stamper.now_ns(rdtsc());
            self.publish(now_ns);
        }
        while !self.control.stop_requested() {
            let start = rdtsc();
            cycles.close_burst(&self.shared, start);
            // Packets the ring refused go first.
            if hand_off.must_retry() {
                self.ring.enqueue(&mut outgoing);
                match hand_off.retried(outgoing.len()) {
                    Some(watermark) => self.publish(watermark),
                    None => {
                        backoff.idle();
                        continue;
                    }
                }
            }
            let n = self.receive(&mut received, &mut outgoing, &mut hand_off, start);
            if hand_off.due(n, outgoing.len()) {
                self.hand_over(&mut outgoing, &mut hand_off);
            }
            if n == 0 {
                cycles.idle(start);
                self.shared.counters.empty_polls.add(1);
                let uses_tsc = self.stamper.uses_tsc();
                let now_ns = || self.stamper.now_ns(start);
                if let Some(watermark) = hand_off.idle_watermark(uses_tsc, outgoing.len(), now_ns) {
                    self.publish(watermark);
                }
                backoff.idle();
                continue;
            }
            backoff.busy();
            cycles.busy(&self.shared, start);
        }
        cycles.finish(&self.shared);
        self.stop(&mut outgoing);
    }

    /// Receives a burst (unless a replay's pool is short of mbufs), stamps it
    /// into `outgoing` and runs the filter; returns how many were received.
    #[inline(always)]
    fn receive(
        &mut self,
        received: &mut MbufBurst<MAX_BURST>,
        outgoing: &mut StampedBurst<HAND_OFF_MAX>,
        hand_off: &mut HandOff,
        start: u64,
    ) -> usize {
        let counters = &self.shared.counters;
        // A starved replay takes the empty-receive path: what it gathered
        // goes to the writer, which frees mbufs.
        if self.pool_guard.as_ref().is_some_and(PoolGuard::starved) {
            counters.pool_waits.add(1);
            return 0;
        }
        let n = self.rxq.rx_burst(received, self.burst_size);
        if n == 0 {
            return 0;
        }
        let burst_ns = self.stamper.now_ns(start);
        // Per burst, not while idle: a device clock's once-a-second anchor.
        let rxq = &self.rxq;
        self.stamper.resync(start, || rxq.read_clock());
        let mut bytes = 0u64;
        let gathered = outgoing.len();
        while let Some(m) = received.pop_front() {
            let stamp = self.stamper.stamp(&m, start, burst_ns);
            hand_off.gathered(stamp.ts_ns);
            bytes += u64::from(m.pkt_len());
            outgoing.push(m, stamp);
        }
        counters.rx_packets.add(n as u64);
        counters.rx_bytes.add(bytes);
        counters.bursts.add(1);
        counters.burst_sizes[burst_size_bucket(n)].add(1);
        if let Some(filter) = &self.filter {
            let rejected = outgoing.retain_from(gathered, |m| filter.accepts(m));
            counters.filtered.add(rejected as u64);
        }
        n
    }

    /// Hands the batch to the ring and does what the hand-off decides with
    /// what did not fit.
    #[inline(always)]
    fn hand_over(&mut self, outgoing: &mut StampedBurst<HAND_OFF_MAX>, hand_off: &mut HandOff) {
        let batch = outgoing.len();
        let sent = self.ring.enqueue(outgoing);
        let after = hand_off.enqueued(batch, sent);
        if after.drop > 0 {
            self.shared.counters.ring_full.add(after.drop as u64);
            outgoing.free_all();
        }
        if let Some(watermark) = after.publish {
            self.publish(watermark);
        }
    }

    /// Every packet this queue enqueues from now on is stamped at or after
    /// `watermark_ns`.
    #[inline(always)]
    fn publish(&self, watermark_ns: u64) {
        self.shared
            .watermark_ns
            .store(watermark_ns, Ordering::Release);
    }

    /// Stopping: whatever is still held back could not be handed on.
    fn stop(&mut self, outgoing: &mut StampedBurst<HAND_OFF_MAX>) {
        if !outgoing.is_empty() {
            self.ring.enqueue(outgoing);
            self.shared.counters.ring_full.add(outgoing.len() as u64);
            outgoing.free_all();
        }
        self.publish(u64::MAX);
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

    /// The loop ended: the last burst's cycles, and the histogram handed over.
    fn finish(mut self, shared: &QueueShared) {
        self.close_burst(shared, rdtsc());
        self.recorder.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::{Backoff, IdleAction, IdlePolicy, SPIN_BEFORE_SLEEP, SPIN_ROUNDS};
    use std::time::{Duration, Instant};

    /// Runs `rounds` idle rounds at `at`; returns the last round's action.
    fn idle_rounds(backoff: &mut Backoff, rounds: u32, at: Instant) -> IdleAction {
        (0..rounds)
            .map(|_| backoff.next_idle(|| at))
            .last()
            .expect("at least one round")
    }

    #[test]
    fn sleeps_only_after_being_idle_for_a_while() {
        let start = Instant::now();
        let mut backoff = Backoff::new(IdlePolicy::Sleep);
        // However many rounds: no sleep before SPIN_BEFORE_SLEEP has passed.
        assert_eq!(
            idle_rounds(&mut backoff, SPIN_ROUNDS + 10_000, start),
            IdleAction::Spin
        );
        let almost = start + SPIN_BEFORE_SLEEP - Duration::from_micros(1);
        assert_eq!(idle_rounds(&mut backoff, 1, almost), IdleAction::Spin);
        let after = start + SPIN_BEFORE_SLEEP;
        assert_eq!(idle_rounds(&mut backoff, 1, after), IdleAction::Sleep);
        // Work resets it: the next gap spins again from the start.
        backoff.busy();
        let later = after + Duration::from_secs(1);
        assert_eq!(
            idle_rounds(&mut backoff, SPIN_ROUNDS + 1, later),
            IdleAction::Spin
        );
        let much_later = later + SPIN_BEFORE_SLEEP;
        assert_eq!(idle_rounds(&mut backoff, 1, much_later), IdleAction::Sleep);
    }

    #[test]
    fn the_clock_is_not_read_in_the_first_rounds() {
        let mut backoff = Backoff::new(IdlePolicy::YieldThenSleep);
        for _ in 0..SPIN_ROUNDS {
            assert_eq!(
                backoff.next_idle(|| panic!("clock read too early")),
                IdleAction::Spin
            );
        }
    }

    #[test]
    fn busy_polling_never_sleeps() {
        let start = Instant::now();
        let mut backoff = Backoff::new(IdlePolicy::Spin);
        idle_rounds(&mut backoff, SPIN_ROUNDS + 1, start);
        let after = start + Duration::from_secs(10);
        assert_eq!(idle_rounds(&mut backoff, 1, after), IdleAction::Spin);
    }

    #[test]
    fn a_loop_sharing_its_cpu_with_another_yields_in_short_gaps() {
        let start = Instant::now();
        let mut backoff = Backoff::new(IdlePolicy::YieldThenSleep);
        assert_eq!(
            idle_rounds(&mut backoff, SPIN_ROUNDS, start),
            IdleAction::Spin
        );
        assert_eq!(idle_rounds(&mut backoff, 1, start), IdleAction::Yield);
        let after = start + SPIN_BEFORE_SLEEP;
        assert_eq!(idle_rounds(&mut backoff, 1, after), IdleAction::Sleep);
    }

    #[test]
    fn policies_follow_the_session_and_the_cpu() {
        assert_eq!(IdlePolicy::new(false, true), IdlePolicy::Spin);
        assert_eq!(IdlePolicy::new(true, false), IdlePolicy::Sleep);
        assert_eq!(IdlePolicy::new(true, true), IdlePolicy::YieldThenSleep);
    }
}
