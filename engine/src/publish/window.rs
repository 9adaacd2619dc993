//! The window of messages published and not yet acknowledged: how many
//! may be out, when a failed one is sent again (with the same message id,
//! so JetStream's deduplication makes that safe), and when one is given up.
//! A plain state machine: it takes `now` and does no I/O.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The first wait before a failed message is sent again; it doubles up to
/// [`MAX_RETRY_WAIT`].
const FIRST_RETRY_WAIT: Duration = Duration::from_millis(100);
const MAX_RETRY_WAIT: Duration = Duration::from_secs(2);

/// See the module docs. `M` is what is sent, `B` what the message's
/// acknowledgement settles (its records' books).
pub(crate) struct Window<M, B> {
    capacity: usize,
    /// How long after its first send a message that keeps failing is lost.
    give_up_after: Duration,
    next_seq: u64,
    entries: BTreeMap<u64, Entry<M, B>>,
}

struct Entry<M, B> {
    message: M,
    books: B,
    first_sent: Instant,
    attempts: u32,
    /// `Some`: failed, to be sent again then; `None`: in flight.
    retry_at: Option<Instant>,
}

/// What a failure leads to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failed<B> {
    /// It will be sent again ([`Window::due`]).
    Retrying,
    /// Given up: its records are lost.
    Lost(B),
    /// Not known (already settled): nothing to do.
    Unknown,
}

impl<M: Clone, B> Window<M, B> {
    pub(crate) fn new(capacity: usize, give_up_after: Duration) -> Self {
        Window {
            capacity: capacity.max(1),
            give_up_after,
            next_seq: 0,
            entries: BTreeMap::new(),
        }
    }

    /// True if another message may go out.
    pub(crate) fn has_room(&self) -> bool {
        self.entries.len() < self.capacity
    }

    /// Messages not settled yet.
    pub(crate) fn outstanding(&self) -> usize {
        self.entries.len()
    }

    /// Takes a new message into the window; returns its sequence number,
    /// which the caller sends it under (and names in its message id).
    pub(crate) fn open(&mut self, message: M, books: B, now: Instant) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            message,
            books,
            first_sent: now,
            attempts: 1,
            retry_at: None,
        };
        self.entries.insert(seq, entry);
        seq
    }

    /// Its acknowledgement came: the books it settles.
    pub(crate) fn acked(&mut self, seq: u64) -> Option<B> {
        self.entries.remove(&seq).map(|e| e.books)
    }

    /// Sending or acknowledging it failed in a way a retry may cure.
    pub(crate) fn failed(&mut self, seq: u64, now: Instant) -> Failed<B> {
        let Some(entry) = self.entries.get_mut(&seq) else {
            return Failed::Unknown;
        };
        if entry.retry_at.is_some() {
            return Failed::Retrying;
        }
        let wait = FIRST_RETRY_WAIT
            .saturating_mul(1 << (entry.attempts - 1).min(16))
            .min(MAX_RETRY_WAIT);
        if now + wait >= entry.first_sent + self.give_up_after {
            return Failed::Lost(self.entries.remove(&seq).expect("present").books);
        }
        entry.retry_at = Some(now + wait);
        Failed::Retrying
    }

    /// The server refused it for good: the books it loses.
    pub(crate) fn refused(&mut self, seq: u64) -> Option<B> {
        self.entries.remove(&seq).map(|e| e.books)
    }

    /// The failed messages whose retry time has come, oldest first, with
    /// their sequence numbers; each counts as in flight again.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<(u64, M)> {
        let mut due = Vec::new();
        for (seq, entry) in &mut self.entries {
            if entry.retry_at.is_some_and(|at| at <= now) {
                entry.retry_at = None;
                entry.attempts += 1;
                due.push((*seq, entry.message.clone()));
            }
        }
        due
    }

    /// The earliest retry time, to wait until.
    pub(crate) fn next_retry(&self) -> Option<Instant> {
        self.entries.values().filter_map(|e| e.retry_at).min()
    }

    /// Gives up everything outstanding (a second Ctrl-C): the books lost.
    pub(crate) fn abandon(&mut self) -> Vec<B> {
        std::mem::take(&mut self.entries)
            .into_values()
            .map(|e| e.books)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> (Window<&'static str, u32>, Instant) {
        (Window::new(2, Duration::from_secs(1)), Instant::now())
    }

    #[test]
    fn a_full_window_waits_and_acks_settle_books() {
        let (mut w, t) = window();
        let a = w.open("a", 10, t);
        let b = w.open("b", 20, t);
        assert!(!w.has_room());
        assert_eq!(w.acked(b), Some(20));
        assert!(w.has_room());
        assert_eq!(w.acked(b), None, "an ack settles once");
        assert_eq!(w.acked(a), Some(10));
        assert_eq!(w.outstanding(), 0);
    }

    #[test]
    fn failures_retry_with_growing_waits_then_are_lost() {
        let (mut w, t) = window();
        let a = w.open("a", 7, t);
        assert_eq!(w.failed(a, t), Failed::Retrying);
        assert_eq!(w.failed(a, t), Failed::Retrying, "one failure per send");
        assert!(w.due(t).is_empty());
        assert_eq!(w.next_retry(), Some(t + FIRST_RETRY_WAIT));
        let t1 = t + FIRST_RETRY_WAIT;
        assert_eq!(w.due(t1), vec![(a, "a")], "sent again under its number");
        assert!(w.due(t1).is_empty(), "in flight again");
        assert_eq!(w.failed(a, t1), Failed::Retrying);
        assert_eq!(w.next_retry(), Some(t1 + FIRST_RETRY_WAIT * 2));
        let t2 = t1 + FIRST_RETRY_WAIT * 2;
        assert_eq!(w.due(t2).len(), 1);
        // A retry that would come after the deadline: lost.
        assert_eq!(w.failed(a, t + Duration::from_millis(950)), Failed::Lost(7));
        assert_eq!(w.outstanding(), 0);
        assert_eq!(w.failed(a, t2), Failed::Unknown);
    }

    #[test]
    fn an_ack_after_a_failure_settles_and_refusals_and_aborts_lose() {
        let (mut w, t) = window();
        let a = w.open("a", 1, t);
        let b = w.open("b", 2, t);
        w.failed(a, t);
        assert_eq!(w.acked(a), Some(1), "a late ack of the first send counts");
        assert!(w.due(t + MAX_RETRY_WAIT).is_empty());
        assert_eq!(w.refused(b), Some(2));
        let c = w.open("c", 3, t);
        w.open("d", 4, t);
        w.failed(c, t);
        let mut lost = w.abandon();
        lost.sort();
        assert_eq!(lost, vec![3, 4]);
        assert!(w.has_room() && w.next_retry().is_none());
    }
}
