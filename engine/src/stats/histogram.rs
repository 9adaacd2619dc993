//! Latency histograms that cross threads without a lock on the hot path.
//!
//! The data-path thread records into a histogram it owns and hands it to the
//! stats core through a [`Mailbox`], taking back an empty one in exchange. No
//! allocation after the first swap.
//!
//! Two ways to hand over:
//! - [`Recorder::try_hand_over`], now and then, never waiting (poll loops'
//!   burst cycles: a sample may land in the next interval);
//! - [`Recorder::answer`], when the stats core [`Mailbox::ask`]ed at the end of
//!   an interval and waits for it (writers' latency: each interval reports its
//!   own packets). Checking for a question is one relaxed load.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Highest latency recorded, in ns (an hour); larger values saturate.
pub(crate) const MAX_NS: u64 = 3_600_000_000_000;

/// Significant decimal digits kept: values are exact to 1%. Three digits
/// made every stats tick walk ~86,000 buckets per histogram on the writer's
/// CPU (measured: --stats-interval 0.1 cost 27% of the written rate).
pub(crate) const SIGNIFICANT_DIGITS: u8 = 2;

/// A fresh histogram with zcap's bounds and precision.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, SIGNIFICANT_DIGITS).expect("valid histogram bounds")
}

#[derive(Default)]
struct Slots {
    full: Option<Histogram<u64>>,
    empty: Option<Histogram<u64>>,
}

/// Where a recorder leaves full histograms and the stats core leaves empty ones.
#[derive(Clone, Default)]
pub(crate) struct Mailbox {
    slots: Arc<Mutex<Slots>>,
    /// Questions asked by the stats core, and the last one answered.
    asked: Arc<AtomicU64>,
    answered: Arc<AtomicU64>,
}

/// The data-path side: records, and hands over when it can.
pub(crate) struct Recorder {
    current: Histogram<u64>,
    mailbox: Mailbox,
    /// The last question this recorder answered.
    seen: u64,
}

impl Recorder {
    /// A recorder posting to `mailbox`.
    pub(crate) fn new(mailbox: Mailbox) -> Self {
        Recorder {
            current: new_histogram(),
            mailbox,
            seen: 0,
        }
    }

    /// Hands everything recorded so far over if the stats core asked since
    /// the last answer; otherwise only one relaxed load.
    #[inline(always)]
    pub(crate) fn answer(&mut self) {
        let asked = self.mailbox.asked.load(Ordering::Relaxed);
        if asked != self.seen {
            self.answer_now(asked);
        }
    }

    #[cold]
    fn answer_now(&mut self, asked: u64) {
        self.seen = asked;
        self.put_all();
        self.mailbox.answered.store(asked, Ordering::Release);
    }

    /// Moves `current` into the mailbox, adding to a histogram still there.
    fn put_all(&mut self) {
        if self.current.is_empty() {
            return;
        }
        let mut slots = self.mailbox.slots.lock().unwrap_or_else(|e| e.into_inner());
        match slots.full.as_mut() {
            Some(full) => {
                let _ = full.add(&self.current);
                self.current.reset();
            }
            None => {
                let spare = slots.empty.take().unwrap_or_else(new_histogram);
                slots.full = Some(std::mem::replace(&mut self.current, spare));
            }
        }
    }

    /// Records one value.
    #[inline(always)]
    pub(crate) fn record(&mut self, value: u64) {
        self.current.saturating_record(value.max(1));
    }

    /// Records `value` `count` times (one walk of the buckets, not `count`).
    #[inline]
    pub(crate) fn record_n(&mut self, value: u64, count: u64) {
        self.current.saturating_record_n(value.max(1), count);
    }

    /// Tries to hand the current histogram over; never blocks. Returns true
    /// if it did.
    pub(crate) fn try_hand_over(&mut self) -> bool {
        if self.current.is_empty() {
            return true;
        }
        let Ok(mut slots) = self.mailbox.slots.try_lock() else {
            return false;
        };
        if slots.full.is_some() {
            // The stats core has not collected the last one: keep recording.
            return false;
        }
        let spare = slots.empty.take().unwrap_or_else(new_histogram);
        slots.full = Some(std::mem::replace(&mut self.current, spare));
        true
    }

    /// Hands over whatever is left, waiting for the mailbox (end of run
    /// only), and answers every question asked: the recorder is gone.
    pub(crate) fn finish(mut self) {
        self.put_all();
        self.mailbox.answered.store(u64::MAX, Ordering::Release);
    }
}

impl Mailbox {
    /// A new, empty mailbox.
    pub(crate) fn new() -> Self {
        Mailbox::default()
    }

    /// Stats-core side: asks the recorder to hand over what it has; returns
    /// the question, for [`Mailbox::collect_answer`].
    pub(crate) fn ask(&self) -> u64 {
        self.asked.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Waits until question `asked` is answered (or `deadline`: a recorder
    /// stuck in a slow write answers late, and its samples then count in the
    /// next interval), then collects as [`Mailbox::collect`].
    pub(crate) fn collect_answer(&self, asked: u64, deadline: Instant, into: &mut Histogram<u64>) {
        while self.answered.load(Ordering::Acquire) < asked && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(50));
        }
        self.collect(into);
    }

    /// Stats-core side: adds whatever was handed over into `into`, and leaves
    /// the emptied histogram for the recorder to reuse. Returns true if there
    /// was something.
    pub(crate) fn collect(&self, into: &mut Histogram<u64>) -> bool {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match slots.full.take() {
            Some(mut full) => {
                let _ = into.add(&full);
                full.reset();
                slots.empty = Some(full);
                true
            }
            None => false,
        }
    }
}

/// The percentiles zcap reports, from a histogram.
pub(crate) fn summarize(h: &Histogram<u64>) -> super::report::LatencySummary {
    if h.is_empty() {
        return super::report::LatencySummary::default();
    }
    super::report::LatencySummary {
        min: h.min(),
        p50: h.value_at_quantile(0.5),
        p90: h.value_at_quantile(0.9),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        p9999: h.value_at_quantile(0.9999),
        max: h.max(),
        count: h.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(mailbox: &Mailbox, recorder: &mut Recorder) -> Histogram<u64> {
        let asked = mailbox.ask();
        recorder.answer(); // the writer's next burst
        let mut into = new_histogram();
        mailbox.collect_answer(asked, Instant::now(), &mut into);
        into
    }

    #[test]
    fn each_interval_collects_exactly_its_own_samples() {
        let mailbox = Mailbox::new();
        let mut recorder = Recorder::new(mailbox.clone());
        for round in 1..=3u64 {
            for _ in 0..100 * round {
                recorder.record(1000 * round);
            }
            // Unasked, nothing moves.
            recorder.answer();
            let h = collect(&mailbox, &mut recorder);
            assert_eq!(h.len(), 100 * round, "interval {round}");
            assert!(h.equivalent(h.min(), 1000 * round), "interval {round}");
            assert!(h.equivalent(h.max(), 1000 * round), "interval {round}");
        }
        let empty = collect(&mailbox, &mut recorder);
        assert_eq!((empty.len(), empty.max()), (0, 0), "no samples, no max");
    }

    #[test]
    fn a_finished_recorder_answers_every_question() {
        let mailbox = Mailbox::new();
        let mut recorder = Recorder::new(mailbox.clone());
        recorder.record(5);
        recorder.finish();
        let asked = mailbox.ask();
        let mut into = new_histogram();
        // Returns at once: no wait for a recorder that is gone.
        mailbox.collect_answer(asked, Instant::now() + Duration::from_secs(60), &mut into);
        assert_eq!(into.len(), 1);
    }
}
