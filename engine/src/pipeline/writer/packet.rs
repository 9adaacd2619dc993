//! What the record writer needs of a packet, of a burst and of the batch
//! that frees packets: traits the DPDK types implement here, and the
//! writer's tests implement with plain bytes.

use crate::dpdk::{Received, ReceivedFree, StampedBurst};

/// A packet as the record writer sees it: its stamp, its lengths, its bytes.
pub(crate) trait Packet {
    /// Receive time, ns since the epoch.
    fn ts_ns(&self) -> u64;
    /// Length on the wire.
    fn orig_len(&self) -> u32;
    /// The NIC's RSS hash, if it gave one.
    fn rss_hash(&self) -> Option<u32>;
    /// The receive TSC reading, coarsened, for the latency histogram.
    fn rx_tick(&self) -> u32;
    /// The bytes in one piece, for a packet that has them so; `None`:
    /// [`Packet::segments`].
    fn contiguous(&self) -> Option<&[u8]>;
    /// Every segment's bytes, in order.
    fn segments(&self) -> impl Iterator<Item = &[u8]>;
    /// Starts loading what writing it reads.
    fn prefetch(&self);
}

/// Where packets go once written or dropped: freed in bulk.
pub(crate) trait Release {
    /// What it frees.
    type Packet: Packet;
    /// Takes a packet to be freed.
    fn release(&mut self, packet: Self::Packet);
    /// Frees everything it took.
    fn flush(&mut self);
}

/// Packets dequeued from one ring, in order.
pub(crate) trait Burst {
    /// What it holds.
    type Packet: Packet;
    /// Packets held.
    fn len(&self) -> usize;
    /// Takes the first packet out.
    fn pop_front(&mut self) -> Option<Self::Packet>;
    /// Starts loading the packet `ahead` places from the front, if any.
    fn prefetch_ahead(&self, ahead: usize);
}

impl Packet for Received {
    #[inline(always)]
    fn ts_ns(&self) -> u64 {
        Received::ts_ns(self)
    }

    #[inline(always)]
    fn orig_len(&self) -> u32 {
        Received::orig_len(self)
    }

    #[inline(always)]
    fn rss_hash(&self) -> Option<u32> {
        Received::rss_hash(self)
    }

    #[inline(always)]
    fn rx_tick(&self) -> u32 {
        Received::rx_tick(self)
    }

    #[inline(always)]
    fn contiguous(&self) -> Option<&[u8]> {
        Received::contiguous(self)
    }

    #[inline(always)]
    fn segments(&self) -> impl Iterator<Item = &[u8]> {
        self.mbuf().segments()
    }

    #[inline(always)]
    fn prefetch(&self) {
        Received::prefetch(self);
    }
}

impl<const N: usize> Release for ReceivedFree<N> {
    type Packet = Received;

    #[inline(always)]
    fn release(&mut self, packet: Received) {
        self.push(packet);
    }

    fn flush(&mut self) {
        ReceivedFree::flush(self);
    }
}

impl<const N: usize> Burst for StampedBurst<N> {
    type Packet = Received;

    #[inline(always)]
    fn len(&self) -> usize {
        StampedBurst::len(self)
    }

    #[inline(always)]
    fn pop_front(&mut self) -> Option<Received> {
        StampedBurst::pop_front(self)
    }

    #[inline(always)]
    fn prefetch_ahead(&self, ahead: usize) {
        StampedBurst::prefetch_ahead(self, ahead);
    }
}
