//! Shared run state: how the stats core, the signal handler, poll loops and
//! writers tell each other to stop.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

const RUNNING: u8 = 0;
const STOPPING: u8 = 1;
const ABORTING: u8 = 2;

/// One per capture, shared by every thread of it.
#[derive(Debug, Default)]
pub struct Control {
    state: AtomicU8,
    producers_done: AtomicBool,
    count_reached: AtomicBool,
    rotations: AtomicU64,
    failure: Mutex<Option<String>>,
}

impl Control {
    /// A running capture.
    pub fn new() -> Self {
        Control::default()
    }

    /// Asks for a graceful stop (first Ctrl-C, -c, --duration, end of source):
    /// poll loops stop, writers drain the rings.
    pub fn request_stop(&self) {
        let _ = self
            .state
            .compare_exchange(RUNNING, STOPPING, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Asks for an immediate stop (second Ctrl-C): writers stop writing, free
    /// what is left (counted as writer drops) and close their files.
    pub fn request_abort(&self) {
        self.state.store(ABORTING, Ordering::SeqCst);
    }

    /// What a signal handler does: stop on the first signal, abort on the next.
    pub fn on_signal(&self) {
        if self.stop_requested() {
            self.request_abort();
        } else {
            self.request_stop();
        }
    }

    /// True once any stop was requested.
    #[inline(always)]
    pub fn stop_requested(&self) -> bool {
        self.state.load(Ordering::Relaxed) != RUNNING
    }

    /// True once an immediate stop was requested.
    #[inline(always)]
    pub fn abort_requested(&self) -> bool {
        self.state.load(Ordering::Relaxed) == ABORTING
    }

    /// Called once every poll loop has finished its last enqueue.
    pub fn set_producers_done(&self) {
        self.producers_done.store(true, Ordering::Release);
    }

    /// True once no more packets will enter the rings.
    #[inline(always)]
    pub fn producers_done(&self) -> bool {
        self.producers_done.load(Ordering::Acquire)
    }

    /// Asks every writer to start a new file now (SIGHUP).
    pub fn request_rotation(&self) {
        self.rotations.fetch_add(1, Ordering::SeqCst);
    }

    /// How many rotations were requested so far; a writer rotates when this
    /// moves past the value it last saw.
    pub fn rotation_requests(&self) -> u64 {
        self.rotations.load(Ordering::Relaxed)
    }

    /// A writer reached the `-c` limit.
    pub fn set_count_reached(&self) {
        self.count_reached.store(true, Ordering::SeqCst);
    }

    /// True once `-c` packets were written.
    pub fn count_reached(&self) -> bool {
        self.count_reached.load(Ordering::SeqCst)
    }

    /// Records a runtime failure (the first one wins) and asks for a stop.
    pub fn fail(&self, message: String) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        failure.get_or_insert(message);
        drop(failure);
        self.request_stop();
    }

    /// The first runtime failure, if any.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// `-c N`: how many more records may be written, shared by all writers.
#[derive(Debug)]
pub struct CountLimit {
    remaining: AtomicU64,
}

impl CountLimit {
    /// A limit of `n` records.
    pub fn new(n: u64) -> Self {
        CountLimit {
            remaining: AtomicU64::new(n),
        }
    }

    /// Takes one record from the budget; false once it is spent.
    #[inline(always)]
    pub fn take_one(&self) -> bool {
        self.remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| r.checked_sub(1))
            .is_ok()
    }

    /// True once no record is left.
    pub fn exhausted(&self) -> bool {
        self.remaining.load(Ordering::Acquire) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_signal_aborts() {
        let c = Control::new();
        assert!(!c.stop_requested());
        c.on_signal();
        assert!(c.stop_requested() && !c.abort_requested());
        c.on_signal();
        assert!(c.abort_requested());
    }

    #[test]
    fn count_limit_grants_exactly_n() {
        let l = CountLimit::new(3);
        let granted = (0..10).filter(|_| l.take_one()).count();
        assert_eq!(granted, 3);
        assert!(l.exhausted());
    }
}
