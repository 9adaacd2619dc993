//! When a capture stops: `-c`, `--duration`, a signal, the end of a finite
//! source, a writer that died. A plain state machine: it takes the time since
//! the capture started and a snapshot of the counters, and answers with a
//! reason to stop or none. The stats core feeds it every tick; the tests feed
//! it virtual time.

use std::time::Duration;

/// Why a capture stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// SIGINT or SIGTERM (or anything else that asked the [`super::control::Control`]).
    Requested,
    /// A writer thread ended before the poll loops: a runtime failure.
    WriterDied,
    /// `-c`: the writers wrote the last record allowed.
    CountReached,
    /// `--duration` elapsed.
    Duration,
    /// A replayed file is exhausted: nothing arrived, nothing is queued.
    EndOfSource,
}

/// What the stats core sees on one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// A stop was already requested (signal, failure).
    pub stop_requested: bool,
    /// The `-c` budget is spent.
    pub count_reached: bool,
    /// A writer thread has finished.
    pub writer_finished: bool,
    /// Packets received so far, over every queue.
    pub rx_packets: u64,
    /// Every ring to the writers is empty.
    pub rings_empty: bool,
    /// Times so far that a poll loop held off receiving because the pool had
    /// fewer free mbufs than a burst. While this moves, a quiet source is
    /// waiting for the writers, not exhausted.
    pub pool_waits: u64,
}

/// Decides when to stop; see the module docs.
#[derive(Debug)]
pub(crate) struct StopPolicy {
    duration: Option<Duration>,
    /// Quiet time after which a finite source counts as exhausted; `None`
    /// for live sources, which never end by themselves.
    end_after_quiet: Option<Duration>,
    last: Option<(u64, u64)>,
    quiet_since: Duration,
}

impl StopPolicy {
    /// `duration` is `--duration`; `end_after_quiet` is set for finite
    /// sources only.
    pub(crate) fn new(duration: Option<Duration>, end_after_quiet: Option<Duration>) -> Self {
        StopPolicy {
            duration,
            end_after_quiet,
            last: None,
            quiet_since: Duration::ZERO,
        }
    }

    /// The reason to stop at `now` (time since the capture started), if any.
    /// The first matching rule wins, in the order of [`StopReason`].
    pub(crate) fn check(&mut self, now: Duration, s: &Snapshot) -> Option<StopReason> {
        let quiet_for = self.quiet_for(now, s);
        if s.stop_requested {
            Some(StopReason::Requested)
        } else if s.writer_finished {
            Some(StopReason::WriterDied)
        } else if s.count_reached {
            Some(StopReason::CountReached)
        } else if self.duration.is_some_and(|d| now >= d) {
            Some(StopReason::Duration)
        } else if self.end_after_quiet.is_some_and(|q| quiet_for >= q) {
            Some(StopReason::EndOfSource)
        } else {
            None
        }
    }

    /// How long nothing has moved: no packet received, rings empty, no poll
    /// loop waiting for mbufs.
    fn quiet_for(&mut self, now: Duration, s: &Snapshot) -> Duration {
        let progress = (s.rx_packets, s.pool_waits);
        if self.last != Some(progress) || !s.rings_empty {
            self.last = Some(progress);
            self.quiet_since = now;
        }
        now.saturating_sub(self.quiet_since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: Duration = Duration::from_millis(500);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn quiet(rx: u64) -> Snapshot {
        Snapshot {
            rx_packets: rx,
            rings_empty: true,
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_finite_source_ends_after_it_has_been_quiet_long_enough() {
        let mut p = StopPolicy::new(None, Some(QUIET));
        assert_eq!(p.check(ms(0), &quiet(0)), None);
        assert_eq!(p.check(ms(100), &quiet(50)), None);
        assert_eq!(p.check(ms(599), &quiet(50)), None, "quiet 499 ms");
        assert_eq!(p.check(ms(600), &quiet(50)), Some(StopReason::EndOfSource));
    }

    #[test]
    fn queued_packets_are_not_quiet() {
        let mut p = StopPolicy::new(None, Some(QUIET));
        let queued = Snapshot {
            rings_empty: false,
            ..quiet(10)
        };
        assert_eq!(p.check(ms(0), &queued), None);
        assert_eq!(p.check(ms(10_000), &queued), None);
        assert_eq!(p.check(ms(10_499), &quiet(10)), None);
        assert_eq!(
            p.check(ms(10_500), &quiet(10)),
            Some(StopReason::EndOfSource)
        );
    }

    #[test]
    fn a_poll_loop_waiting_for_mbufs_is_a_stall_not_the_end() {
        let mut p = StopPolicy::new(None, Some(QUIET));
        // No packet arrives for 5 s, but a poll loop keeps waiting for free
        // mbufs (the writers hold the pool): the replay is not over.
        for t in (0..5000).step_by(100) {
            let waiting = Snapshot {
                pool_waits: t,
                ..quiet(100)
            };
            assert_eq!(p.check(ms(t), &waiting), None, "at {t} ms");
        }
        let stalled_then_idle = Snapshot {
            pool_waits: 4900,
            ..quiet(100)
        };
        assert_eq!(p.check(ms(5399), &stalled_then_idle), None);
        assert_eq!(
            p.check(ms(5400), &stalled_then_idle),
            Some(StopReason::EndOfSource)
        );
    }

    #[test]
    fn a_live_source_never_ends_by_itself() {
        let mut p = StopPolicy::new(None, None);
        assert_eq!(p.check(ms(0), &quiet(0)), None);
        assert_eq!(p.check(ms(3_600_000), &quiet(0)), None);
    }

    #[test]
    fn duration_counts_from_the_start() {
        let mut p = StopPolicy::new(Some(ms(2000)), None);
        assert_eq!(p.check(ms(1999), &quiet(1)), None);
        assert_eq!(p.check(ms(2000), &quiet(2)), Some(StopReason::Duration));
    }

    #[test]
    fn the_first_rule_that_holds_names_the_reason() {
        let mut p = StopPolicy::new(Some(ms(10)), Some(QUIET));
        let everything = Snapshot {
            stop_requested: true,
            count_reached: true,
            writer_finished: true,
            ..quiet(0)
        };
        assert_eq!(p.check(ms(0), &everything), Some(StopReason::Requested));
        let died = Snapshot {
            stop_requested: false,
            ..everything
        };
        assert_eq!(p.check(ms(20), &died), Some(StopReason::WriterDied));
        let counted = Snapshot {
            writer_finished: false,
            ..died
        };
        assert_eq!(p.check(ms(20), &counted), Some(StopReason::CountReached));
        let timed = Snapshot {
            count_reached: false,
            ..counted
        };
        assert_eq!(p.check(ms(5), &timed), None);
        assert_eq!(p.check(ms(20), &timed), Some(StopReason::Duration));
    }
}
