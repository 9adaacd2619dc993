//! How a writer takes packets from its rings: straight into the file, merged
//! into time order first, or freed unencoded (the hand-off benchmark).

use super::records::{RecordWriter, PREFETCH_AHEAD};
use super::WriterFeed;
use crate::dpdk::{Received, StampedBurst};
use crate::pipeline::merge::Merger;
use crate::pipeline::WRITER_BURST;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A queue whose watermark has not moved for this long stops holding back the merge.
const MERGE_STALL: Duration = Duration::from_millis(200);
/// Bursts taken from one ring before looking at the next.
const BURSTS_PER_ROUND: usize = 4;

/// See the module docs.
pub(crate) enum Drain {
    /// Each burst into the file as it comes (one ring, or per-queue files).
    Direct,
    /// The rings merged into timestamp order, holding back at most the
    /// merger's limit.
    Merge(Merger<Received>),
    /// Every packet freed unencoded, counted as a writer drop
    /// (`zcap-bench --mode handoff`).
    Discard,
}

/// The burst one dequeue fills.
pub(crate) type WriterBurst = StampedBurst<WRITER_BURST>;

impl Drain {
    /// The strategy for `feeds` rings: merged when `merge` and more than one.
    pub(crate) fn new(feeds: usize, merge: bool, discard: bool, hold_limit: usize) -> Self {
        match (discard, merge && feeds > 1) {
            (true, _) => Drain::Discard,
            (false, true) => {
                Drain::Merge(Merger::new(feeds, hold_limit, MERGE_STALL, Instant::now()))
            }
            (false, false) => Drain::Direct,
        }
    }

    /// Packets held back for ordering.
    pub(crate) fn held(&self) -> usize {
        match self {
            Drain::Merge(m) => m.held(),
            _ => 0,
        }
    }

    /// One round over every ring: what could be written is written. Returns
    /// how many packets it took from the rings. `aborting`: a second Ctrl-C,
    /// what the merge held is freed.
    pub(crate) fn round(
        &mut self,
        feeds: &mut [WriterFeed],
        out: &mut RecordWriter,
        burst: &mut WriterBurst,
        now: Instant,
        aborting: bool,
    ) -> usize {
        let mut got = 0;
        for (index, feed) in feeds.iter_mut().enumerate() {
            got += self.take(index, feed, out, burst, now);
        }
        if let Drain::Merge(m) = self {
            if aborting {
                m.drain_all().into_iter().for_each(|p| out.discard(p));
            }
            release(m, feeds, out, now);
        }
        got
    }

    /// Takes up to [`BURSTS_PER_ROUND`] bursts from one ring.
    fn take(
        &mut self,
        index: usize,
        feed: &mut WriterFeed,
        out: &mut RecordWriter,
        burst: &mut WriterBurst,
        now: Instant,
    ) -> usize {
        // The watermark is read before the dequeue, so every packet older
        // than it is in this round's dequeue or already held. Only a merge
        // needs it (the poll loop's core writes it all the time).
        let watermark = match self {
            Drain::Merge(_) => feed.shared.watermark_ns.load(Ordering::Acquire),
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
                Drain::Merge(m) => {
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
        if let Drain::Merge(m) = self {
            if drained {
                m.set_watermark(index, watermark, now);
            } else {
                m.touch(index, now);
            }
        }
        got
    }
}

/// Writes every run of packets the merge may release now, in time order.
fn release(m: &mut Merger<Received>, feeds: &[WriterFeed], out: &mut RecordWriter, now: Instant) {
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
