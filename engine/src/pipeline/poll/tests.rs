//! The poll loop driven by a fake queue and a fake ring, on virtual TSC
//! readings: batching, ring-full Wait and Drop, the watermark, the counts.

use super::*;
use std::collections::VecDeque;

const BURST: usize = 4;
const GATHER: usize = 16;

/// Packets are their stamps; what was freed is kept to be looked at.
#[derive(Default)]
struct FakeBatch {
    stamps: VecDeque<u64>,
    freed: Vec<u64>,
}

impl Batch for FakeBatch {
    fn len(&self) -> usize {
        self.stamps.len()
    }

    fn free_all(&mut self) {
        self.freed.extend(self.stamps.drain(..));
    }
}

/// A queue that delivers scripted bursts, then nothing.
#[derive(Default)]
struct FakeQueue {
    bursts: VecDeque<Vec<u64>>,
    /// `Some(base)`: stamps by a clock reading `base + tsc`.
    clock: Option<u64>,
    /// The filter rejects odd stamps.
    reject_odd: bool,
    /// The pool is short of mbufs: nothing is received.
    starved: bool,
    receives: usize,
}

impl RxSource<FakeBatch> for FakeQueue {
    fn receive(&mut self, batch: &mut FakeBatch, max: usize, _tsc: u64) -> Receipt {
        self.receives += 1;
        if self.starved {
            let starved = true;
            return Receipt {
                starved,
                ..Receipt::default()
            };
        }
        let Some(burst) = self.bursts.pop_front() else {
            return Receipt::default();
        };
        assert!(burst.len() <= max, "asked for {max}");
        let before = batch.stamps.len();
        let kept = burst
            .iter()
            .filter(|&&ts| !(self.reject_odd && ts % 2 == 1));
        batch.stamps.extend(kept);
        Receipt {
            packets: burst.len(),
            bytes: 64 * burst.len() as u64,
            filtered: burst.len() - (batch.stamps.len() - before),
            newest_ns: burst.iter().copied().max().unwrap_or(0),
            starved: false,
        }
    }

    fn clock_ns(&mut self, tsc: u64) -> Option<u64> {
        self.clock.map(|base| base + tsc)
    }
}

/// A ring with `room` free slots; what it took is kept in order.
#[derive(Default)]
struct FakeRing {
    room: usize,
    taken: Vec<u64>,
}

impl RingIn for FakeRing {
    type Batch = FakeBatch;

    fn batch(&self) -> FakeBatch {
        FakeBatch::default()
    }

    fn enqueue(&mut self, batch: &mut FakeBatch) -> usize {
        let n = self.room.min(batch.stamps.len());
        self.taken.extend(batch.stamps.drain(..n));
        self.room -= n;
        n
    }
}

fn poll_loop(
    queue: FakeQueue,
    room: usize,
    ring_full: RingFullPolicy,
) -> Running<FakeQueue, FakeRing> {
    let poll = PollLoop {
        source: queue,
        ring: FakeRing {
            room,
            taken: Vec::new(),
        },
        shared: Arc::new(QueueShared::default()),
        control: Arc::new(Control::default()),
        burst_size: BURST,
        gather: GATHER,
        ring_full,
        idle: IdlePolicy::Spin,
        burst_cycles: Mailbox::new(),
    };
    Running::new(poll, 0)
}

fn queue(bursts: &[&[u64]]) -> FakeQueue {
    FakeQueue {
        bursts: bursts.iter().map(|b| b.to_vec()).collect(),
        ..FakeQueue::default()
    }
}

fn watermark(running: &Running<FakeQueue, FakeRing>) -> u64 {
    running.poll.shared.watermark_ns.load(Ordering::Acquire)
}

fn count(running: &Running<FakeQueue, FakeRing>, counter: fn(&QueueShared) -> u64) -> u64 {
    counter(&running.poll.shared)
}

#[test]
fn full_bursts_are_gathered_and_handed_on_together() {
    let full: Vec<Vec<u64>> = (0..4).map(|b| (b * 4..b * 4 + 4).collect()).collect();
    let mut bursts: Vec<&[u64]> = full.iter().map(Vec::as_slice).collect();
    bursts.push(&[16, 17]);
    let mut running = poll_loop(queue(&bursts), 100, RingFullPolicy::Drop);
    for tsc in [10, 20, 30] {
        assert_eq!(running.step(tsc), Step::Received(BURST));
        assert!(running.poll.ring.taken.is_empty(), "backlogged: gathering");
    }
    assert_eq!(running.step(40), Step::Received(BURST));
    assert_eq!(running.poll.ring.taken, (0..16).collect::<Vec<_>>());
    assert_eq!(watermark(&running), 15);
    // A short burst means no backlog: it goes at once.
    assert_eq!(running.step(50), Step::Received(2));
    assert_eq!(running.poll.ring.taken.len(), 18);
    assert_eq!(watermark(&running), 17);
    assert_eq!(running.step(60), Step::Idle);
    assert_eq!(count(&running, |s| s.counters.rx_packets.get()), 18);
    assert_eq!(count(&running, |s| s.counters.rx_bytes.get()), 18 * 64);
    assert_eq!(count(&running, |s| s.counters.bursts.get()), 5);
    assert_eq!(count(&running, |s| s.counters.empty_polls.get()), 1);
    // Each burst runs to the next iteration's reading: 10 → 60.
    assert_eq!(count(&running, |s| s.counters.busy_cycles.get()), 50);
    assert_eq!(count(&running, |s| s.counters.ring_full.get()), 0);
}

#[test]
fn a_live_port_drops_what_the_ring_refuses_and_keeps_receiving() {
    let bursts: &[&[u64]] = &[&[1, 2, 3], &[4, 5, 6], &[7, 8, 9], &[10]];
    let mut running = poll_loop(queue(bursts), 5, RingFullPolicy::Drop);
    for tsc in [10, 20, 30] {
        running.step(tsc);
    }
    assert_eq!(running.poll.ring.taken, vec![1, 2, 3, 4, 5]);
    assert_eq!(running.batch.freed, vec![6, 7, 8, 9]);
    assert_eq!(count(&running, |s| s.counters.ring_full.get()), 4);
    // The loss does not hold the watermark back: those packets are gone.
    assert_eq!(watermark(&running), 9);
    running.poll.ring.room = 1;
    assert_eq!(running.step(40), Step::Received(1));
    assert_eq!(running.poll.source.receives, 4, "never stopped receiving");
    let written = running.poll.ring.taken.len() as u64;
    let lost = count(&running, |s| s.counters.ring_full.get());
    assert_eq!(written + lost, 10, "every packet is in the ring or counted");
}

#[test]
fn a_replay_waits_for_the_ring_and_loses_nothing() {
    let bursts: &[&[u64]] = &[&[1, 2, 3], &[4, 5]];
    let mut running = poll_loop(queue(bursts), 2, RingFullPolicy::Wait);
    running.step(10);
    assert_eq!(running.poll.ring.taken, vec![1, 2]);
    assert_eq!(watermark(&running), 0, "3 is not in the ring yet");
    // While the ring refuses, nothing more is received.
    for tsc in [20, 30, 40] {
        assert_eq!(running.step(tsc), Step::Refused);
    }
    assert_eq!(running.poll.source.receives, 1);
    running.poll.ring.room = 10;
    assert_eq!(running.step(50), Step::Received(2));
    assert_eq!(running.poll.ring.taken, vec![1, 2, 3, 4, 5]);
    assert_eq!(watermark(&running), 5);
    assert_eq!(count(&running, |s| s.counters.ring_full.get()), 0);
    assert!(running.batch.freed.is_empty());
}

#[test]
fn an_idle_queue_publishes_its_clock_only_when_nothing_older_waits() {
    let clocked = FakeQueue {
        clock: Some(1_000),
        ..queue(&[&[1_005, 1_006, 1_007]])
    };
    let mut running = poll_loop(clocked, 1, RingFullPolicy::Wait);
    assert_eq!(watermark(&running), 1_000, "published at the start");
    running.step(10);
    assert_eq!(watermark(&running), 1_000, "two packets wait for the ring");
    assert_eq!(running.step(20), Step::Refused);
    assert_eq!(watermark(&running), 1_000);
    running.poll.ring.room = 5;
    assert_eq!(running.step(30), Step::Idle);
    assert_eq!(watermark(&running), 1_030, "the ring took all: the clock");
    running.step(90);
    assert_eq!(watermark(&running), 1_090);
    // Stamped by the device: an idle queue says nothing about later stamps.
    let mut device = poll_loop(queue(&[&[500]]), 5, RingFullPolicy::Drop);
    assert_eq!(watermark(&device), 0);
    device.step(10);
    device.step(1_000);
    assert_eq!(watermark(&device), 500);
}

#[test]
fn filtered_packets_are_counted_and_still_move_the_watermark() {
    let filtering = FakeQueue {
        reject_odd: true,
        ..queue(&[&[1, 3], &[2, 4, 6, 8], &[9, 10, 11, 12], &[13, 15]])
    };
    let mut running = poll_loop(filtering, 10, RingFullPolicy::Drop);
    running.step(10);
    assert!(running.poll.ring.taken.is_empty());
    assert_eq!(watermark(&running), 3, "a burst the filter emptied");
    for tsc in [20, 30, 40] {
        running.step(tsc);
    }
    assert_eq!(running.poll.ring.taken, vec![2, 4, 6, 8, 10, 12]);
    assert_eq!(count(&running, |s| s.counters.filtered.get()), 6);
    assert_eq!(count(&running, |s| s.counters.rx_packets.get()), 12);
    assert_eq!(watermark(&running), 15, "also with packets held before it");
}

#[test]
fn a_starved_replay_hands_on_what_it_gathered() {
    let mut running = poll_loop(queue(&[&[1, 2, 3, 4]]), 10, RingFullPolicy::Wait);
    running.step(10);
    assert!(
        running.poll.ring.taken.is_empty(),
        "a full burst: gathering"
    );
    running.poll.source.starved = true;
    assert_eq!(running.step(20), Step::Idle);
    assert_eq!(running.poll.ring.taken, vec![1, 2, 3, 4]);
    assert_eq!(count(&running, |s| s.counters.pool_waits.get()), 1);
    assert_eq!(count(&running, |s| s.counters.rx_packets.get()), 4);
}

#[test]
fn stopping_counts_what_could_not_be_handed_on() {
    let mut running = poll_loop(queue(&[&[1, 2, 3]]), 1, RingFullPolicy::Wait);
    running.step(10);
    let shared = running.poll.shared.clone();
    running.stop(20);
    assert_eq!(shared.counters.ring_full.get(), 2);
    assert_eq!(shared.watermark_ns.load(Ordering::Acquire), u64::MAX);
    assert_eq!(shared.counters.busy_cycles.get(), 10);
}

/// A queue that reads no clock (as rxonly's).
struct Untimed(FakeQueue);

impl RxSource<FakeBatch> for Untimed {
    const TIMED: bool = false;

    fn receive(&mut self, batch: &mut FakeBatch, max: usize, tsc: u64) -> Receipt {
        self.0.receive(batch, max, tsc)
    }

    fn clock_ns(&mut self, _tsc: u64) -> Option<u64> {
        None
    }
}

#[test]
fn an_untimed_loop_counts_its_cycles_from_start_to_stop() {
    let poll = PollLoop {
        source: Untimed(queue(&[&[1, 2, 3, 4], &[5]])),
        ring: FakeRing {
            room: 100,
            taken: Vec::new(),
        },
        shared: Arc::new(QueueShared::default()),
        control: Arc::new(Control::default()),
        burst_size: BURST,
        gather: BURST,
        ring_full: RingFullPolicy::Drop,
        idle: IdlePolicy::Spin,
        burst_cycles: Mailbox::new(),
    };
    let mut running = Running::new(poll, 1_000);
    // The loop passes 0 for the TSC it does not read.
    for _ in 0..3 {
        running.step(0);
    }
    assert_eq!(
        running.poll.ring.taken,
        vec![1, 2, 3, 4, 5],
        "each burst at once"
    );
    let shared = running.poll.shared.clone();
    assert_eq!(shared.counters.busy_cycles.get(), 0);
    running.stop(1_250);
    assert_eq!(
        shared.counters.busy_cycles.get(),
        250,
        "flat out, start to stop"
    );
    assert_eq!(shared.counters.idle_cycles.get(), 0);
    assert_eq!(shared.counters.rx_packets.get(), 5);
}
