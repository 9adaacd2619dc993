//! The DPDK ends of the poll loop ([`super::poll`]): an RX queue as its
//! source, stamped and filtered for a capture or bare for rxonly, and the
//! writer's ring as where packets go, or nowhere (rxonly frees them).

use super::poll::{Batch, Receipt, RingIn, RxSource, HAND_OFF_MAX};
use super::stamp::Stamper;
use super::MAX_BURST;
use crate::dpdk::{Filter, MbufBurst, Mempool, RingProducer, RxQueue, StampedBurst};
use std::sync::Arc;

/// What a capture's poll loop gathers for its ring.
pub(crate) type Outgoing = StampedBurst<HAND_OFF_MAX>;

/// Keeps a replay from receiving into an empty pool. A vdev such as
/// net_pcap reads the next packet from its file before it allocates the
/// mbuf, so a receive that finds the pool dry loses a packet for good
/// (`rx_nombuf`). A finite source can wait instead: its poll loop receives
/// only while at least `reserve` mbufs are free, enough for one burst of
/// every poll loop at once (the pool has no per-lcore caches then, so the
/// count is exact).
pub(crate) struct PoolGuard {
    /// The pool the port receives into.
    pub pool: Arc<Mempool>,
    /// Free mbufs needed before a receive.
    pub reserve: u32,
}

impl PoolGuard {
    #[inline(always)]
    fn starved(&self) -> bool {
        self.pool.available() < self.reserve
    }
}

/// A capture's RX queue: each packet stamped, then filtered.
pub(crate) struct QueueSource {
    rxq: RxQueue,
    stamper: Stamper,
    /// Packets this rejects are freed and counted as filtered, before the ring.
    filter: Option<Arc<Filter>>,
    /// Set for finite sources: receive only while the pool can take a burst.
    pool_guard: Option<PoolGuard>,
    received: MbufBurst<MAX_BURST>,
}

impl QueueSource {
    /// Receives from `rxq`, stamping with `stamper`.
    pub(crate) fn new(
        rxq: RxQueue,
        stamper: Stamper,
        filter: Option<Arc<Filter>>,
        pool_guard: Option<PoolGuard>,
    ) -> Self {
        QueueSource {
            rxq,
            stamper,
            filter,
            pool_guard,
            received: MbufBurst::new(),
        }
    }
}

impl RxSource<Outgoing> for QueueSource {
    #[inline(always)]
    fn receive(&mut self, batch: &mut Outgoing, max: usize, tsc: u64) -> Receipt {
        if self.pool_guard.as_ref().is_some_and(PoolGuard::starved) {
            return Receipt {
                starved: true,
                ..Receipt::default()
            };
        }
        let n = self.rxq.rx_burst(&mut self.received, max);
        if n == 0 {
            return Receipt::default();
        }
        let burst_ns = self.stamper.now_ns(tsc);
        // Per burst, not while idle: a device clock's once-a-second anchor.
        let rxq = &self.rxq;
        self.stamper.resync(tsc, || rxq.read_clock());
        let (mut bytes, mut newest_ns) = (0u64, 0u64);
        let gathered = batch.len();
        while let Some(m) = self.received.pop_front() {
            let stamp = self.stamper.stamp(&m, tsc, burst_ns);
            newest_ns = newest_ns.max(stamp.ts_ns);
            bytes += u64::from(m.pkt_len());
            batch.push(m, stamp);
        }
        let filtered = match &self.filter {
            Some(filter) => batch.retain_from(gathered, |m| filter.accepts(m)),
            None => 0,
        };
        Receipt {
            packets: n,
            bytes,
            filtered,
            newest_ns,
            starved: false,
        }
    }

    #[inline(always)]
    fn clock_ns(&mut self, tsc: u64) -> Option<u64> {
        self.stamper.uses_tsc().then(|| self.stamper.now_ns(tsc))
    }
}

/// rxonly's RX queue: received and filtered, not stamped (testpmd's rxonly).
pub(crate) struct BareSource {
    rxq: RxQueue,
    filter: Option<Arc<Filter>>,
}

impl BareSource {
    /// Receives from `rxq`.
    pub(crate) fn new(rxq: RxQueue, filter: Option<Arc<Filter>>) -> Self {
        BareSource { rxq, filter }
    }
}

impl RxSource<MbufBurst<MAX_BURST>> for BareSource {
    const TIMED: bool = false;

    /// Receives into an empty `batch`: [`Discard`] is handed every burst.
    #[inline(always)]
    fn receive(&mut self, batch: &mut MbufBurst<MAX_BURST>, max: usize, _tsc: u64) -> Receipt {
        let n = self.rxq.rx_burst(batch, max);
        if n == 0 {
            return Receipt::default();
        }
        // net_null counts no bytes in its port statistics.
        let bytes = batch.iter().map(|m| u64::from(m.pkt_len())).sum();
        let filtered = match &self.filter {
            Some(filter) => batch.retain(|m| filter.accepts(m)),
            None => 0,
        };
        Receipt {
            packets: n,
            bytes,
            filtered,
            newest_ns: 0,
            starved: false,
        }
    }

    /// No stamps, so no watermark: nothing merges rxonly's packets.
    fn clock_ns(&mut self, _tsc: u64) -> Option<u64> {
        None
    }
}

impl RingIn for RingProducer {
    type Batch = Outgoing;

    fn batch(&self) -> Outgoing {
        self.burst()
    }

    #[inline(always)]
    fn enqueue(&mut self, batch: &mut Outgoing) -> usize {
        RingProducer::enqueue(self, batch)
    }
}

/// Where rxonly's packets go: freed at once, every one taken.
pub(crate) struct Discard;

impl RingIn for Discard {
    type Batch = MbufBurst<MAX_BURST>;

    fn batch(&self) -> MbufBurst<MAX_BURST> {
        MbufBurst::new()
    }

    #[inline(always)]
    fn enqueue(&mut self, batch: &mut MbufBurst<MAX_BURST>) -> usize {
        let taken = batch.len();
        batch.free_all();
        taken
    }
}

impl<const N: usize> Batch for StampedBurst<N> {
    #[inline(always)]
    fn len(&self) -> usize {
        StampedBurst::len(self)
    }

    fn free_all(&mut self) {
        StampedBurst::free_all(self);
    }
}

impl<const N: usize> Batch for MbufBurst<N> {
    #[inline(always)]
    fn len(&self) -> usize {
        MbufBurst::len(self)
    }

    fn free_all(&mut self) {
        MbufBurst::free_all(self);
    }
}
