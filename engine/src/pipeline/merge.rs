//! Merging several queues into one file in timestamp order.
//!
//! Each queue's packets arrive in time order. A packet with time `T` may be
//! written once no other queue can still produce an earlier one: that queue
//! either holds a packet already (its future packets come later), or has
//! published a watermark at or past `T`. Two escape hatches keep memory and
//! latency bounded: a queue whose watermark has not moved for `stall` no longer
//! blocks (an idle replayed file), and holding more than `hold_limit` packets
//! forces the oldest out.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

struct Feed<T> {
    items: VecDeque<(u64, T)>,
    watermark: u64,
    moved_at: Instant,
}

/// Holds packets from several time-ordered feeds and releases them in order.
pub(crate) struct Merger<T> {
    feeds: Vec<Feed<T>>,
    held: usize,
    hold_limit: usize,
    stall: Duration,
    /// The latest time released, and how many packets were released older
    /// than it (still released: never dropped).
    latest_released: u64,
    out_of_order: u64,
}

impl<T> Merger<T> {
    /// A merger of `feeds` feeds.
    pub(crate) fn new(feeds: usize, hold_limit: usize, stall: Duration, now: Instant) -> Self {
        Merger {
            feeds: (0..feeds)
                .map(|_| Feed {
                    items: VecDeque::new(),
                    watermark: 0,
                    moved_at: now,
                })
                .collect(),
            held: 0,
            hold_limit,
            stall,
            latest_released: 0,
            out_of_order: 0,
        }
    }

    /// The time up to which every feed's order is proven: past it, a
    /// release was forced by an escape hatch (a stalled feed, or too much
    /// held), and an empty feed may still send something older.
    pub(crate) fn proven_up_to(&self) -> u64 {
        self.feeds
            .iter()
            .filter(|f| f.items.is_empty())
            .map(|f| f.watermark)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Packets released older than one released before them, since the
    /// last call.
    pub(crate) fn take_out_of_order(&mut self) -> u64 {
        std::mem::take(&mut self.out_of_order)
    }

    /// Records feed `feed`'s watermark, read *before* its latest dequeue.
    pub(crate) fn set_watermark(&mut self, feed: usize, watermark: u64, now: Instant) {
        let f = &mut self.feeds[feed];
        if watermark != f.watermark {
            f.watermark = watermark;
            f.moved_at = now;
        }
    }

    /// Notes that feed `feed` still has packets waiting upstream (its ring was
    /// not drained): it is busy, not stalled, and keeps blocking newer packets.
    pub(crate) fn touch(&mut self, feed: usize, now: Instant) {
        self.feeds[feed].moved_at = now;
    }

    /// Adds a packet of feed `feed` with timestamp `ts`.
    #[inline]
    pub(crate) fn push(&mut self, feed: usize, ts: u64, item: T) {
        self.feeds[feed].items.push_back((ts, item));
        self.held += 1;
    }

    /// Packets held.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Whether `margin` more packets of feed `feed` may be taken without
    /// holding more than the limit (which would force packets out). A feed
    /// that holds nothing is always taken from: it may be the one the others
    /// wait for.
    pub(crate) fn may_take(&self, feed: usize, margin: usize) -> bool {
        self.feeds[feed].items.is_empty() || self.held + margin <= self.hold_limit
    }

    /// The next packet in time order, if it is safe to release now: the
    /// one-at-a-time rule that the tests hold [`Merger::next_run`] against.
    #[cfg(test)]
    fn pop(&mut self, now: Instant) -> Option<(usize, u64, T)> {
        let (index, _) = self.next_run(now)?;
        let (ts, item) = self.pop_front(index)?;
        Some((index, ts, item))
    }

    /// The feed whose packets come next, and how many of them (from its
    /// front) may be released now, in order: the same packets as that many
    /// calls of [`Merger::pop`], found with one look at the other feeds
    /// instead of one per packet. Take them with [`Merger::pop_front`].
    pub(crate) fn next_run(&self, now: Instant) -> Option<(usize, usize)> {
        let (index, ts) = self
            .feeds
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.items.front().map(|(ts, _)| (i, *ts)))
            .min_by_key(|&(i, ts)| (ts, i))?;
        // Packets up to here cannot be preceded by anything an empty (and
        // not stalled) feed sends later.
        let unblocked_up_to = self
            .feeds
            .iter()
            .filter(|f| f.items.is_empty() && now.duration_since(f.moved_at) < self.stall)
            .map(|f| f.watermark)
            .min()
            .unwrap_or(u64::MAX);
        if unblocked_up_to < ts && self.held <= self.hold_limit {
            return None;
        }
        // The other feeds' first packets bound the run; past `unblocked_up_to`
        // only holding more than `hold_limit` forces packets out.
        let next_elsewhere = self
            .feeds
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != index)
            .filter_map(|(i, f)| f.items.front().map(|(ts, _)| (*ts, i)))
            .min()
            .unwrap_or((u64::MAX, usize::MAX));
        let mut held = self.held;
        let run = self.feeds[index]
            .items
            .iter()
            .take_while(|&&(ts, _)| {
                let goes = (ts, index) < next_elsewhere
                    && (ts <= unblocked_up_to || held > self.hold_limit);
                held -= usize::from(goes);
                goes
            })
            .count();
        Some((index, run))
    }

    /// Takes the first packet of feed `feed` (see [`Merger::next_run`]).
    #[inline]
    pub(crate) fn pop_front(&mut self, feed: usize) -> Option<(u64, T)> {
        let popped = self.feeds[feed].items.pop_front();
        if let Some((ts, _)) = &popped {
            self.held -= 1;
            if *ts < self.latest_released {
                self.out_of_order += 1;
            } else {
                self.latest_released = *ts;
            }
        }
        popped
    }

    /// The packet `ahead` places behind the first of feed `feed`, if any.
    #[inline]
    pub(crate) fn peek(&self, feed: usize, ahead: usize) -> Option<&T> {
        self.feeds[feed].items.get(ahead).map(|(_, item)| item)
    }

    /// Removes every held packet regardless of order (for an immediate stop).
    pub(crate) fn drain_all(&mut self) -> Vec<T> {
        self.held = 0;
        self.feeds
            .iter_mut()
            .flat_map(|f| f.items.drain(..).map(|(_, item)| item))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    fn drain(m: &mut Merger<u64>, now: Instant) -> Vec<u64> {
        std::iter::from_fn(|| m.pop(now).map(|(_, ts, _)| ts)).collect()
    }

    #[test]
    fn waits_for_a_queue_that_may_still_send_earlier_packets() {
        let now = Instant::now();
        let mut m = Merger::new(2, 1000, LONG, now);
        m.push(0, 10, 10);
        m.push(0, 30, 30);
        // Feed 1 is empty with watermark 0: packet 10 must wait.
        assert!(m.pop(now).is_none());
        m.set_watermark(1, 20, now);
        assert_eq!(drain(&mut m, now), vec![10]);
        m.push(1, 25, 25);
        m.set_watermark(1, u64::MAX, now);
        assert_eq!(drain(&mut m, now), vec![25, 30]);
    }

    #[test]
    fn interleaves_feeds_in_strict_time_order() {
        let now = Instant::now();
        let mut m = Merger::new(3, 1000, LONG, now);
        for ts in [1, 4, 7, 10] {
            m.push(0, ts, ts);
        }
        for ts in [2, 5, 8] {
            m.push(1, ts, ts);
        }
        for ts in [3, 6, 9, 11] {
            m.push(2, ts, ts);
        }
        for f in 0..3 {
            m.set_watermark(f, u64::MAX, now);
        }
        assert_eq!(drain(&mut m, now), (1..=11).collect::<Vec<_>>());
        assert_eq!(m.held(), 0);
    }

    #[test]
    fn a_feed_that_is_ahead_is_not_taken_from_near_the_limit() {
        let now = Instant::now();
        let mut m: Merger<u32> = Merger::new(2, 10, Duration::MAX, now);
        for ts in 1..=8 {
            m.push(0, ts, 0);
        }
        assert!(m.may_take(0, 2), "8 + 2 fit under 10");
        assert!(!m.may_take(0, 3), "8 + 3 would force packets out");
        assert!(m.may_take(1, 100), "the empty feed is the one waited for");
        // The empty feed blocks: nothing goes until it speaks.
        assert_eq!(m.next_run(now + Duration::from_secs(3600)), None);
    }

    #[test]
    fn a_stalled_queue_stops_blocking() {
        let start = Instant::now();
        let mut m = Merger::new(2, 1000, Duration::from_millis(100), start);
        m.push(0, 10, 10);
        assert!(m.pop(start).is_none());
        assert_eq!(drain(&mut m, start + Duration::from_millis(150)), vec![10]);
    }

    #[test]
    fn a_backlogged_queue_is_not_mistaken_for_a_stalled_one() {
        let start = Instant::now();
        let later = start + Duration::from_millis(150);
        let mut m = Merger::new(2, 1000, Duration::from_millis(100), start);
        m.push(0, 10, 10);
        m.touch(1, later);
        assert!(
            m.pop(later).is_none(),
            "feed 1 may still hold older packets"
        );
    }

    #[test]
    fn holding_too_much_forces_the_oldest_out() {
        let now = Instant::now();
        let mut m = Merger::new(2, 2, LONG, now);
        for ts in [1, 2, 3] {
            m.push(0, ts, ts);
        }
        assert_eq!(m.proven_up_to(), 0, "feed 1 may still send anything");
        assert_eq!(drain(&mut m, now), vec![1]);
        assert_eq!(m.held(), 2);
    }

    #[test]
    fn forced_releases_are_past_the_proven_time_and_late_packets_are_counted() {
        let now = Instant::now();
        let mut m = Merger::new(2, 1000, Duration::from_millis(100), now);
        m.set_watermark(1, 15, now);
        for ts in [10, 20, 30] {
            m.push(0, ts, ts);
        }
        assert_eq!(m.proven_up_to(), 15);
        assert_eq!(drain(&mut m, now), vec![10], "20 waits for feed 1");
        // Feed 1 stalls: 20 and 30 go without proof.
        let later = now + Duration::from_millis(200);
        assert_eq!(drain(&mut m, later), vec![20, 30]);
        assert!(m.proven_up_to() < 20);
        // Then it wakes with something older: written, and counted.
        m.push(1, 17, 17);
        m.set_watermark(1, 40, later);
        assert_eq!(drain(&mut m, later), vec![17]);
        assert_eq!(m.take_out_of_order(), 1);
        assert_eq!(m.take_out_of_order(), 0);
    }

    /// The merge rule one packet at a time, written out independently of
    /// `next_run`: the oldest first packet goes unless an empty, not stalled
    /// feed may still send an older one and not too much is held.
    fn reference_pop(m: &mut Merger<u64>, now: Instant) -> Option<u64> {
        let (index, ts) = m
            .feeds
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.items.front().map(|(ts, _)| (i, *ts)))
            .min_by_key(|&(i, ts)| (ts, i))?;
        let blocked = m.feeds.iter().any(|f| {
            f.items.is_empty() && f.watermark < ts && now.duration_since(f.moved_at) < m.stall
        });
        if blocked && m.held <= m.hold_limit {
            return None;
        }
        m.held -= 1;
        m.feeds[index].items.pop_front().map(|(_, item)| item)
    }

    /// The reference rule is the specification; runs must release the same
    /// packets in the same order, whatever the feeds hold.
    #[test]
    fn runs_release_exactly_what_single_pops_release() {
        let start = Instant::now();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for case in 0..300 {
            let feeds = 1 + next(4) as usize;
            let hold = 1 + next(40) as usize;
            let mut by_pop = Merger::new(feeds, hold, Duration::from_millis(100), start);
            let mut by_run = Merger::new(feeds, hold, Duration::from_millis(100), start);
            let mut clock = [0u64; 4];
            for step in 0..60 {
                let now = start + Duration::from_millis(next(300));
                let feed = next(feeds as u64) as usize;
                match next(4) {
                    0 => {
                        let wm = clock[feed] + next(5);
                        by_pop.set_watermark(feed, wm, now);
                        by_run.set_watermark(feed, wm, now);
                    }
                    1 => {
                        by_pop.touch(feed, now);
                        by_run.touch(feed, now);
                    }
                    _ => {
                        // Mostly rising times per feed, with ties and the
                        // odd step back (a replayed file may go backwards).
                        clock[feed] = (clock[feed] + next(4)).saturating_sub(next(8) / 7);
                        let item = (case * 1000 + step) as u64;
                        by_pop.push(feed, clock[feed], item);
                        by_run.push(feed, clock[feed], item);
                    }
                }
                let popped: Vec<u64> =
                    std::iter::from_fn(|| reference_pop(&mut by_pop, now)).collect();
                let mut ran = Vec::new();
                while let Some((feed, n)) = by_run.next_run(now) {
                    assert!(n > 0);
                    for _ in 0..n {
                        ran.push(by_run.pop_front(feed).unwrap().1);
                    }
                }
                assert_eq!(popped, ran, "case {case} step {step}");
                assert_eq!(by_pop.held(), by_run.held());
            }
        }
    }
}
