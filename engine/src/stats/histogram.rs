//! Latency histograms that cross threads without a lock on the hot path.
//!
//! The data-path thread records into a histogram it owns. Now and then (once
//! per `period`, not per packet) it *tries* to hand that histogram to the stats
//! core through a [`Mailbox`] and takes back an empty one in exchange; if the
//! stats core holds the mailbox at that moment it just keeps recording and tries
//! again next time. No allocation after the first swap, never a wait.

use hdrhistogram::Histogram;
use std::sync::{Arc, Mutex};

/// Highest latency recorded, in ns (an hour); larger values saturate.
pub const MAX_NS: u64 = 3_600_000_000_000;

/// Significant decimal digits kept: values are exact to 1%. Three digits
/// made every stats tick walk ~86,000 buckets per histogram on the writer's
/// CPU (measured: --stats-interval 0.1 cost 27% of the written rate).
pub const SIGNIFICANT_DIGITS: u8 = 2;

/// A fresh histogram with zcap's bounds and precision.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, SIGNIFICANT_DIGITS).expect("valid histogram bounds")
}

#[derive(Default)]
struct Slots {
    full: Option<Histogram<u64>>,
    empty: Option<Histogram<u64>>,
}

/// Where a recorder leaves full histograms and the stats core leaves empty ones.
#[derive(Clone, Default)]
pub struct Mailbox {
    slots: Arc<Mutex<Slots>>,
}

/// The data-path side: records, and hands over when it can.
pub struct Recorder {
    current: Histogram<u64>,
    mailbox: Mailbox,
}

impl Recorder {
    /// A recorder posting to `mailbox`.
    pub fn new(mailbox: Mailbox) -> Self {
        Recorder {
            current: new_histogram(),
            mailbox,
        }
    }

    /// Records one value.
    #[inline(always)]
    pub fn record(&mut self, value: u64) {
        self.current.saturating_record(value.max(1));
    }

    /// Records `value` `count` times (one walk of the buckets, not `count`).
    #[inline]
    pub fn record_n(&mut self, value: u64, count: u64) {
        self.current.saturating_record_n(value.max(1), count);
    }

    /// Tries to hand the current histogram over; never blocks. Returns true
    /// if it did.
    pub fn try_hand_over(&mut self) -> bool {
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

    /// Hands over whatever is left, waiting for the mailbox (end of run only).
    pub fn finish(mut self) {
        if self.current.is_empty() {
            return;
        }
        let mut slots = self.mailbox.slots.lock().unwrap_or_else(|e| e.into_inner());
        match slots.full.as_mut() {
            Some(full) => {
                let _ = full.add(&self.current);
            }
            None => slots.full = Some(std::mem::replace(&mut self.current, new_histogram())),
        }
    }
}

impl Mailbox {
    /// A new, empty mailbox.
    pub fn new() -> Self {
        Mailbox::default()
    }

    /// Stats-core side: adds whatever was handed over into `into`, and leaves
    /// the emptied histogram for the recorder to reuse. Returns true if there
    /// was something.
    pub fn collect(&self, into: &mut Histogram<u64>) -> bool {
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
pub fn summarize(h: &Histogram<u64>) -> super::report::LatencySummary {
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

    #[test]
    fn known_latencies_give_the_expected_percentiles() {
        let mut h = new_histogram();
        for v in 1..=10_000u64 {
            h.record(v * 1000).unwrap(); // 1 µs .. 10 ms, uniform
        }
        let s = summarize(&h);
        let near = |got: u64, want: u64| (got as f64 - want as f64).abs() / want as f64 <= 0.01;
        assert!(near(s.p50, 5_000_000), "p50 {}", s.p50);
        assert!(near(s.p90, 9_000_000), "p90 {}", s.p90);
        assert!(near(s.p99, 9_900_000), "p99 {}", s.p99);
        assert!(near(s.p999, 9_990_000), "p999 {}", s.p999);
        assert!(near(s.min, 1000) && near(s.max, 10_000_000));
        assert_eq!(s.count, 10_000);
        let ordered = [s.min, s.p50, s.p90, s.p99, s.p999, s.p9999, s.max];
        assert!(
            ordered.windows(2).all(|w| w[0] <= w[1]),
            "not monotonic: {ordered:?}"
        );
    }

    #[test]
    fn hand_over_loses_nothing_and_reuses_histograms() {
        let mailbox = Mailbox::new();
        let mut recorder = Recorder::new(mailbox.clone());
        let mut total = new_histogram();
        let mut recorded = 0;
        for round in 0..10u64 {
            for v in 0..100 {
                recorder.record(round * 100 + v + 1);
                recorded += 1;
            }
            recorder.try_hand_over();
            if round % 3 == 0 {
                mailbox.collect(&mut total);
            }
        }
        recorder.finish();
        mailbox.collect(&mut total);
        assert_eq!(total.len(), recorded);
    }

    #[test]
    fn a_busy_mailbox_never_blocks_the_recorder() {
        let mailbox = Mailbox::new();
        let mut recorder = Recorder::new(mailbox.clone());
        recorder.record(5);
        let held = mailbox.slots.lock().unwrap();
        assert!(!recorder.try_hand_over(), "must give up, not wait");
        drop(held);
        assert!(recorder.try_hand_over());
    }
}
