//! How a writer takes packets from its rings: straight into the file, merged
//! into time order first, or freed unencoded (the hand-off benchmark).

use super::packet::{Packet, Release};
use super::records::{RecordWriter, PREFETCH_AHEAD};
use super::{CaptureRecords, WriterFeed};
use crate::dpdk::{Received, StampedBurst};
use crate::pipeline::merge::Merger;
use crate::pipeline::WRITER_BURST;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A live queue whose watermark has not moved for this long stops holding
/// back the merge (a replay's never does: it waits, see [`Drain::new`]).
pub(crate) const LIVE_MERGE_STALL: Duration = Duration::from_millis(200);
/// Bursts taken from one ring before looking at the next.
const BURSTS_PER_ROUND: usize = 4;

/// See the module docs.
pub(crate) enum Drain {
    /// Each burst into the file as it comes (one ring, or per-queue files).
    Direct,
    /// The rings merged into timestamp order, holding back at most the
    /// merger's limit. A `patient` merge (a replay) stops taking from a ring
    /// that is ahead before it would have to force packets out of order: that
    /// ring fills, its poll loop waits, and the late queue gets the CPU. It
    /// forces them only while a poll loop waits for mbufs (the pool is too
    /// small to wait in), as `pool_waits` shows.
    Merge {
        merger: Merger<Received>,
        patient: bool,
        pool_waits: u64,
    },
    /// Every packet freed unencoded, counted as a writer drop
    /// (`zcap-bench --mode handoff`).
    Discard,
}

/// The burst one dequeue fills.
pub(crate) type WriterBurst = StampedBurst<WRITER_BURST>;

impl Drain {
    /// The strategy for `feeds` rings: merged when `merge` and more than one.
    /// `stall` is how long a quiet queue may hold the merge back: a replay
    /// can wait for every queue, so it is unbounded there and the file is in
    /// strict time order whatever the scheduling.
    pub(crate) fn new(
        feeds: usize,
        merge: bool,
        discard: bool,
        hold_limit: usize,
        stall: Duration,
    ) -> Self {
        match (discard, merge && feeds > 1) {
            (true, _) => Drain::Discard,
            (false, true) => Drain::Merge {
                merger: Merger::new(feeds, hold_limit, stall, Instant::now()),
                patient: stall == Duration::MAX,
                pool_waits: 0,
            },
            (false, false) => Drain::Direct,
        }
    }

    /// Packets held back for ordering.
    pub(crate) fn held(&self) -> usize {
        match self {
            Drain::Merge { merger, .. } => merger.held(),
            _ => 0,
        }
    }

    /// One round over every ring: what could be written is written. Returns
    /// how many packets it took from the rings. `aborting`: a second Ctrl-C,
    /// what the merge held is freed.
    pub(crate) fn round(
        &mut self,
        feeds: &mut [WriterFeed],
        out: &mut CaptureRecords,
        burst: &mut WriterBurst,
        now: Instant,
        aborting: bool,
    ) -> usize {
        let margin = self.patience(feeds);
        let mut got = 0;
        for (index, feed) in feeds.iter_mut().enumerate() {
            got += self.take(index, feed, out, burst, now, margin);
        }
        if let Drain::Merge { merger: m, .. } = self {
            if aborting {
                m.drain_all().into_iter().for_each(|p| out.discard(p));
            }
            release(m, |i| (feeds[i].interface, feeds[i].queue), out, now);
        }
        got
    }

    /// For a patient merge whose poll loops are not waiting for mbufs: the
    /// most one ring's dequeues add in a round, which must still fit under
    /// the hold limit. `None`: take from every ring.
    fn patience(&mut self, feeds: &[WriterFeed]) -> Option<usize> {
        let Drain::Merge {
            patient: true,
            pool_waits,
            ..
        } = self
        else {
            return None;
        };
        let now_waits: u64 = feeds
            .iter()
            .map(|f| f.shared.counters.pool_waits.get())
            .sum();
        let starving = now_waits != *pool_waits;
        *pool_waits = now_waits;
        (!starving).then_some(BURSTS_PER_ROUND * WRITER_BURST)
    }

    /// Takes up to [`BURSTS_PER_ROUND`] bursts from one ring (none from a
    /// ring that is ahead, when `margin` says to wait).
    fn take(
        &mut self,
        index: usize,
        feed: &mut WriterFeed,
        out: &mut CaptureRecords,
        burst: &mut WriterBurst,
        now: Instant,
        margin: Option<usize>,
    ) -> usize {
        if let (Drain::Merge { merger, .. }, Some(margin)) = (&*self, margin) {
            if !merger.may_take(index, margin) {
                return 0;
            }
        }
        // The watermark is read before the dequeue, so every packet older
        // than it is in this round's dequeue or already held. Only a merge
        // needs it (the poll loop's core writes it all the time).
        let watermark = match self {
            Drain::Merge { .. } => feed.shared.watermark_ns.load(Ordering::Acquire),
            _ => 0,
        };
        let (mut got, mut drained) = (0, false);
        for _ in 0..BURSTS_PER_ROUND {
            let n = feed.ring.dequeue(burst);
            drained = n < WRITER_BURST;
            got += n;
            match self {
                Drain::Discard => out.discard_all(burst),
                // Merged packets are prefetched when they leave the merger.
                Drain::Merge { merger: m, .. } => {
                    while let Some(packet) = burst.pop_front() {
                        m.push(index, packet.ts_ns(), packet);
                    }
                }
                Drain::Direct => out.write_burst(feed.interface, feed.queue, burst),
            }
            if drained {
                break;
            }
        }
        // The watermark vouches only for a ring emptied this round; if
        // packets are left in it, this feed holds packets and blocks nothing.
        if let Drain::Merge { merger: m, .. } = self {
            if drained {
                m.set_watermark(index, watermark, now);
            } else {
                m.touch(index, now);
            }
        }
        got
    }
}

/// Writes every run of packets the merge may release now, in time order;
/// `place` gives a feed's pcapng interface and queue. Counts the packets an
/// escape hatch let out unproven (`merge_forced`) and those written older
/// than one before them (`out_of_order`).
pub(super) fn release<F: Release>(
    m: &mut Merger<F::Packet>,
    place: impl Fn(usize) -> (u32, u16),
    out: &mut RecordWriter<F>,
    now: Instant,
) {
    let mut forced = 0;
    while let Some((index, run)) = m.next_run(now) {
        let (interface, queue) = place(index);
        let proven = m.proven_up_to();
        for ahead in 0..PREFETCH_AHEAD {
            if let Some(p) = m.peek(index, ahead) {
                p.prefetch();
            }
        }
        for _ in 0..run {
            if let Some(p) = m.peek(index, PREFETCH_AHEAD) {
                p.prefetch();
            }
            if let Some((ts, packet)) = m.pop_front(index) {
                forced += u64::from(ts > proven);
                out.write(interface, queue, packet);
            }
        }
    }
    out.counters.merge_forced.add(forced);
    out.counters.out_of_order.add(m.take_out_of_order());
}
