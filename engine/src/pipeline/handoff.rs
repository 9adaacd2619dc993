//! The poll loop's hand-off decisions, apart from the packets: when a batch
//! goes to the ring, what happens to what the ring refuses (wait or drop),
//! and when the watermark the merge depends on may move. A plain state
//! machine over counts and timestamps, tested without DPDK; the poll loop
//! does what it says.

/// What the poll loop does when the ring to the writer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RingFullPolicy {
    /// Free the packets that did not fit and count them as `ring_full`; keep
    /// polling so the NIC never backs up (live ports).
    Drop,
    /// Keep them and retry before receiving more (replayed files, which can wait:
    /// a finite source should be captured whole).
    Wait,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct HandOff {
    policy: RingFullPolicy,
    burst_size: usize,
    /// Most packets gathered before a hand-off.
    capacity: usize,
    /// The ring refused packets that are still in the batch (`Wait`): they go
    /// first, before anything more is received.
    refused: bool,
    /// The last hand-off found the ring full: every burst goes at once.
    overflowing: bool,
    /// The newest timestamp gathered so far.
    newest: u64,
}

/// What to do after a hand-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AfterEnqueue {
    /// Packets the ring refused that are to be freed and counted `ring_full`.
    pub(crate) drop: usize,
    /// Everything up to this timestamp is in the ring: the writer may merge
    /// past it.
    pub(crate) publish: Option<u64>,
}

impl HandOff {
    /// Decisions for a loop receiving `burst_size` packets a call and
    /// gathering at most `capacity` before a hand-off.
    pub(crate) fn new(policy: RingFullPolicy, burst_size: usize, capacity: usize) -> Self {
        HandOff {
            policy,
            burst_size,
            capacity,
            refused: false,
            overflowing: false,
            newest: 0,
        }
    }

    /// True while refused packets wait: retry them before receiving.
    #[inline(always)]
    pub(crate) fn must_retry(&self) -> bool {
        self.refused
    }

    /// After a retry that left `left` packets in the batch: the watermark to
    /// publish once none is left.
    #[inline(always)]
    pub(crate) fn retried(&mut self, left: usize) -> Option<u64> {
        if left > 0 {
            return None;
        }
        self.refused = false;
        Some(self.newest)
    }

    /// A packet stamped `ts_ns` joined the batch.
    #[inline(always)]
    pub(crate) fn gathered(&mut self, ts_ns: u64) {
        self.newest = self.newest.max(ts_ns);
    }

    /// Whether the batch of `batch` packets goes to the ring now, after a
    /// receive of `received`. It waits while the queue is backlogged (full
    /// bursts) and another burst fits: fewer, larger hand-offs move the
    /// ring's indexes between cores less often. A short or empty receive
    /// means no backlog (waiting would only add latency); while the ring
    /// overflows, the writer is behind and each freed slot is best refilled
    /// at once.
    #[inline(always)]
    pub(crate) fn due(&self, received: usize, batch: usize) -> bool {
        let due = received < self.burst_size
            || self.overflowing
            || batch + self.burst_size > self.capacity;
        // A burst the filter emptied still moves the watermark.
        due && (received > 0 || batch > 0)
    }

    /// The ring took `sent` of a batch of `batch`.
    #[inline(always)]
    pub(crate) fn enqueued(&mut self, batch: usize, sent: usize) -> AfterEnqueue {
        self.overflowing = sent < batch;
        match (self.overflowing, self.policy) {
            (false, _) => AfterEnqueue {
                drop: 0,
                publish: Some(self.newest),
            },
            // A live port never backs up: what did not fit is lost, counted.
            (true, RingFullPolicy::Drop) => AfterEnqueue {
                drop: batch - sent,
                publish: Some(self.newest),
            },
            // A replay waits; the watermark stays until the rest is in.
            (true, RingFullPolicy::Wait) => {
                self.refused = true;
                AfterEnqueue {
                    drop: 0,
                    publish: None,
                }
            }
        }
    }

    /// An empty receive with `batch` packets held: a queue stamped by a
    /// clock may publish its time, `now_ns` (anything it receives later is
    /// newer; `None` for device stamps), but only once nothing older waits
    /// in the batch.
    #[inline(always)]
    pub(crate) fn idle_watermark(
        &self,
        batch: usize,
        now_ns: impl FnOnce() -> Option<u64>,
    ) -> Option<u64> {
        if batch == 0 {
            now_ns()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BURST: usize = 32;
    const CAPACITY: usize = 256;

    fn hand_off(policy: RingFullPolicy) -> HandOff {
        HandOff::new(policy, BURST, CAPACITY)
    }

    #[test]
    fn full_bursts_gather_until_another_would_not_fit() {
        let h = hand_off(RingFullPolicy::Drop);
        for batch in (BURST..=CAPACITY - BURST).step_by(BURST) {
            assert!(!h.due(BURST, batch), "backlogged, {batch} gathered");
        }
        assert!(h.due(BURST, CAPACITY - BURST + 1));
        assert!(h.due(BURST, CAPACITY));
    }

    #[test]
    fn a_short_or_empty_receive_hands_on_at_once() {
        let h = hand_off(RingFullPolicy::Drop);
        assert!(h.due(BURST - 1, BURST - 1), "a short burst");
        assert!(h.due(0, 3 * BURST), "the queue ran dry after full bursts");
        assert!(!h.due(0, 0), "nothing to hand on");
        assert!(
            h.due(BURST - 1, 0),
            "a short burst the filter emptied moves the watermark"
        );
    }

    #[test]
    fn a_live_port_drops_what_the_ring_refuses_and_moves_on() {
        let mut h = hand_off(RingFullPolicy::Drop);
        h.gathered(500);
        h.gathered(400);
        let after = h.enqueued(100, 60);
        assert_eq!(
            after,
            AfterEnqueue {
                drop: 40,
                publish: Some(500)
            }
        );
        assert!(!h.must_retry());
        // Overflowing: the next full burst goes at once.
        assert!(h.due(BURST, BURST));
        let after = h.enqueued(BURST, BURST);
        assert_eq!(after.drop, 0);
        assert!(
            !h.due(BURST, BURST),
            "batching again once the ring keeps up"
        );
    }

    #[test]
    fn a_replay_waits_and_publishes_only_once_everything_is_in() {
        let mut h = hand_off(RingFullPolicy::Wait);
        h.gathered(700);
        let after = h.enqueued(100, 60);
        assert_eq!(
            after,
            AfterEnqueue {
                drop: 0,
                publish: None
            }
        );
        assert!(h.must_retry(), "the 40 go first");
        assert_eq!(h.retried(10), None, "10 still refused");
        assert!(h.must_retry());
        assert_eq!(h.retried(0), Some(700));
        assert!(!h.must_retry());
    }

    #[test]
    fn the_watermark_never_passes_a_packet_still_held() {
        let h = hand_off(RingFullPolicy::Wait);
        assert_eq!(h.idle_watermark(0, || Some(1000)), Some(1000));
        let unread = || panic!("the clock is read only when it can be published");
        assert_eq!(h.idle_watermark(5, unread), None, "older packets wait");
        assert_eq!(h.idle_watermark(0, || None), None, "device stamps: unknown");
        let mut h = hand_off(RingFullPolicy::Drop);
        h.gathered(900);
        h.gathered(100);
        assert_eq!(
            h.enqueued(2, 2).publish,
            Some(900),
            "the newest, not the last"
        );
    }
}
