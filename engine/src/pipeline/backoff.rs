//! What an idle poll loop or writer does: spin, yield, or sleep, by how
//! long it has been idle and whether its CPU is shared.

use crate::dpdk::pause;
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
