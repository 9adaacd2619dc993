//! The poll loop: one per RX queue, on its own lcore. Receive a burst, stamp
//! it, hand the mbuf pointers to the writer's ring. No packet is copied here.

use super::control::Control;
use super::stamp::Stamper;
use super::MAX_BURST;
use crate::dpdk::{pause, rdtsc, Filter, MbufBurst, Mempool, RingProducer, RxQueue, StampedBurst};
use crate::stats::counters::burst_size_bucket;
use crate::stats::histogram::{Mailbox, Recorder};
use crate::stats::QueueShared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the poll loop does when the ring to the writer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingFullPolicy {
    /// Free the packets that did not fit and count them as `ring_full`; keep
    /// polling so the NIC never backs up (live ports).
    Drop,
    /// Keep them and retry before receiving more (replayed files, which can wait:
    /// a finite source should be captured whole).
    Wait,
}

/// What a poll loop or writer does when it finds nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePolicy {
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
    pub fn new(backoff: bool, crowded: bool) -> Self {
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
pub struct Backoff {
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
    pub fn new(policy: IdlePolicy) -> Self {
        Backoff {
            policy,
            idle_rounds: 0,
            idle_since: None,
        }
    }

    /// Called after a round that found nothing to do.
    #[inline(always)]
    pub fn idle(&mut self) {
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
    pub fn busy(&mut self) {
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
pub struct PoolGuard {
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
pub struct PollLoop {
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
    /// Runs until a stop is requested, then marks the queue done.
    pub fn run(mut self) {
        let mut received = MbufBurst::<MAX_BURST>::new();
        // Stamped packets on their way to the ring: a batch being gathered,
        // or what the ring refused under RingFullPolicy::Wait.
        let mut outgoing: StampedBurst<HAND_OFF_MAX> = self.ring.burst();
        let mut refused = false;
        // The last hand-off found the ring full.
        let mut overflowing = false;
        // The newest timestamp in `outgoing`.
        let mut newest = 0u64;
        let mut backoff = Backoff::new(self.idle);
        let mut burst_cycles = Recorder::new(self.burst_cycles.clone());
        let mut bursts_since_hand_over = 0u32;
        let mut idle_since: Option<u64> = None;
        let counters = &self.shared.counters;
        let watermark = &self.shared.watermark_ns;
        if self.stamper.uses_tsc() {
            watermark.store(self.stamper.now_ns(rdtsc()), Ordering::Release);
        }
        // Start of the last non-empty burst: its cycles run to the next
        // iteration's TSC reading (one reading per burst, not two).
        let mut busy_since: Option<u64> = None;
        while !self.control.stop_requested() {
            let start = rdtsc();
            if let Some(since) = busy_since.take() {
                let cycles = start - since;
                counters.busy_cycles.add(cycles);
                burst_cycles.record(cycles);
            }
            // Packets the ring refused go first.
            if refused {
                self.ring.enqueue(&mut outgoing);
                if !outgoing.is_empty() {
                    backoff.idle();
                    continue;
                }
                refused = false;
                watermark.store(newest, Ordering::Release);
            }
            // A starved replay takes the empty-receive path: what it gathered
            // goes to the writer, which frees mbufs.
            let starved = self.pool_guard.as_ref().is_some_and(PoolGuard::starved);
            if starved {
                counters.pool_waits.add(1);
            }
            let n = if starved {
                0
            } else {
                self.rxq.rx_burst(&mut received, self.burst_size)
            };
            if n > 0 {
                if let Some(since) = idle_since.take() {
                    counters.idle_cycles.add(start - since);
                }
                backoff.busy();
                let burst_ns = self.stamper.now_ns(start);
                let mut bytes = 0u64;
                let gathered = outgoing.len();
                while let Some(m) = received.pop_front() {
                    let stamp = self.stamper.stamp(&m, start, burst_ns);
                    newest = newest.max(stamp.ts_ns);
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
            }
            // Hand a batch to the ring once no further full burst fits, or
            // when the queue came back short or empty (it is not backlogged:
            // waiting for more would only add latency). Fewer, larger
            // hand-offs move the ring's indexes between the cores less often.
            // While the ring overflows, every burst goes at once instead: the
            // writer is behind, and each slot it frees is best refilled now.
            let due = n < self.burst_size
                || overflowing
                || outgoing.len() + self.burst_size > HAND_OFF_MAX;
            if due && (n > 0 || !outgoing.is_empty()) {
                let batch = outgoing.len();
                let sent = self.ring.enqueue(&mut outgoing);
                overflowing = sent < batch;
                if overflowing && self.ring_full == RingFullPolicy::Drop {
                    counters.ring_full.add((batch - sent) as u64);
                    outgoing.free_all();
                }
                refused = !outgoing.is_empty();
                if !refused {
                    // Everything up to `newest` is in the ring: the writer may merge past it.
                    watermark.store(newest, Ordering::Release);
                }
            }
            if n == 0 {
                counters.empty_polls.add(1);
                idle_since.get_or_insert(start);
                if self.stamper.uses_tsc() && outgoing.is_empty() {
                    watermark.store(self.stamper.now_ns(start), Ordering::Release);
                }
                backoff.idle();
                continue;
            }
            busy_since = Some(start);
            bursts_since_hand_over += 1;
            // Tried once per HAND_OVER_EVERY bursts, whether or not it works:
            // the mailbox stays full until the stats core's next tick, and
            // retrying on every burst meanwhile cost ~2% of the loop.
            if bursts_since_hand_over >= HAND_OVER_EVERY {
                burst_cycles.try_hand_over();
                bursts_since_hand_over = 0;
            }
        }
        if let Some(since) = busy_since {
            let cycles = rdtsc() - since;
            counters.busy_cycles.add(cycles);
            burst_cycles.record(cycles);
        }
        burst_cycles.finish();
        // Stopping: whatever is still held back could not be handed on.
        if !outgoing.is_empty() {
            self.ring.enqueue(&mut outgoing);
            counters.ring_full.add(outgoing.len() as u64);
            outgoing.free_all();
        }
        watermark.store(u64::MAX, Ordering::Release);
        self.shared.done.store(true, Ordering::Release);
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
