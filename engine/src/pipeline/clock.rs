//! Timestamps in nanoseconds since the epoch from the TSC, anchored to the
//! real-time clock and re-anchored periodically so long captures do not drift.

use std::time::{SystemTime, UNIX_EPOCH};

/// How often a clock re-reads the real-time clock, in TSC seconds.
const REANCHOR_SECONDS: u64 = 1;

/// Converts TSC readings to wall-clock nanoseconds. One per poll loop.
#[derive(Debug, Clone)]
pub(crate) struct TscClock {
    hz: u64,
    anchor_tsc: u64,
    anchor_ns: u64,
    last_ns: u64,
}

/// Nanoseconds since the epoch now, from the real-time clock.
pub(crate) fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl TscClock {
    /// A clock for a TSC of `hz` ticks per second, anchored at (`tsc`, `ns`).
    pub(crate) fn new(hz: u64, tsc: u64, ns: u64) -> Self {
        TscClock {
            hz: hz.max(1),
            anchor_tsc: tsc,
            anchor_ns: ns,
            last_ns: ns,
        }
    }

    /// Wall-clock nanoseconds at TSC reading `tsc`. Never goes backwards;
    /// re-anchors to the real-time clock once a second (through `realtime`).
    #[inline]
    pub(crate) fn ns_at(&mut self, tsc: u64, realtime: impl FnOnce() -> u64) -> u64 {
        let elapsed = tsc.saturating_sub(self.anchor_tsc);
        if elapsed >= self.hz * REANCHOR_SECONDS {
            self.anchor_tsc = tsc;
            self.anchor_ns = realtime();
            self.last_ns = self.last_ns.max(self.anchor_ns);
            return self.last_ns;
        }
        let ns =
            self.anchor_ns + (u128::from(elapsed) * 1_000_000_000 / u128::from(self.hz)) as u64;
        self.last_ns = self.last_ns.max(ns);
        self.last_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_ticks_to_nanoseconds_from_the_anchor() {
        let mut c = TscClock::new(2_000_000_000, 1_000, 5_000_000_000);
        assert_eq!(c.ns_at(1_000 + 2_000, || unreachable!()), 5_000_001_000);
        assert_eq!(
            c.ns_at(1_000 + 1_000_000_000, || unreachable!()),
            5_500_000_000
        );
    }

    #[test]
    fn reanchors_after_a_second_and_never_goes_back() {
        let mut c = TscClock::new(1_000, 0, 10_000_000_000);
        assert_eq!(c.ns_at(999, || unreachable!()), 10_999_000_000);
        // The real-time clock says less time passed than the TSC: stay monotonic.
        assert_eq!(c.ns_at(1_000, || 10_500_000_000), 10_999_000_000);
        assert_eq!(c.ns_at(1_500, || unreachable!()), 11_000_000_000);
    }

    #[test]
    fn realtime_is_in_this_century() {
        let ns = realtime_ns();
        assert!(ns > 1_600_000_000 * 1_000_000_000 && ns < 4_102_444_800 * 1_000_000_000);
    }
}
