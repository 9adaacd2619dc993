//! Mbufs that travel with their receive stamps.
//!
//! The poll loop's timestamps go beside each mbuf pointer, through the ring,
//! instead of into the mbuf: writing them into the mbuf would dirty its second
//! cache line on the poll loop's core, and the writer would then have to pull
//! that line across for every packet. Stamps in the ring cost 16 bytes per
//! packet in lines the writer reads anyway.

use super::mbuf::{free_raw_bulk, Mbuf};
use dpdk_sys::rte_mbuf;
use std::ptr::NonNull;

/// What the poll loop knew about a packet when it received it.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stamp {
    /// Receive time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// The TSC reading of the burst that received it (for latencies).
    pub rx_tsc: u64,
}

/// One ring element: an owned mbuf pointer and its stamp.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct StampedSlot {
    pub(crate) mbuf: *mut rte_mbuf,
    pub(crate) stamp: Stamp,
}

const EMPTY_SLOT: StampedSlot = StampedSlot {
    mbuf: std::ptr::null_mut(),
    stamp: Stamp {
        ts_ns: 0,
        rx_tsc: 0,
    },
};

/// Up to `N` owned mbufs with their stamps, in order. Whatever is still held
/// when the burst is dropped goes back to its pool.
pub struct StampedBurst<const N: usize> {
    slots: [StampedSlot; N],
    start: usize,
    end: usize,
}

// SAFETY: the burst exclusively owns the mbufs in slots[start..end].
unsafe impl<const N: usize> Send for StampedBurst<N> {}

impl<const N: usize> Default for StampedBurst<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> StampedBurst<N> {
    /// An empty burst.
    pub fn new() -> Self {
        StampedBurst {
            slots: [EMPTY_SLOT; N],
            start: 0,
            end: 0,
        }
    }

    /// Mbufs held.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when the burst holds nothing.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Appends an mbuf and its stamp. Panics if the burst is full.
    #[inline(always)]
    pub fn push(&mut self, mbuf: Mbuf, stamp: Stamp) {
        if self.is_empty() {
            self.start = 0;
            self.end = 0;
        }
        assert!(self.end < N, "pushing onto a full burst");
        self.slots[self.end] = StampedSlot {
            mbuf: mbuf.into_raw(),
            stamp,
        };
        self.end += 1;
    }

    /// Takes the first mbuf and its stamp out of the burst.
    #[inline(always)]
    pub fn pop_front(&mut self) -> Option<(Mbuf, Stamp)> {
        if self.is_empty() {
            return None;
        }
        let slot = self.slots[self.start];
        self.start += 1;
        // SAFETY: the slot held an owned, valid mbuf, now moved out.
        let mbuf = unsafe { Mbuf::from_raw(NonNull::new_unchecked(slot.mbuf)) };
        Some((mbuf, slot.stamp))
    }

    /// Borrows the held mbufs.
    #[inline(always)]
    pub fn mbufs(&self) -> impl Iterator<Item = &Mbuf> {
        // SAFETY: Mbuf is repr(transparent) over a non-null pointer and every
        // held slot's pointer is a valid owned mbuf, borrowed with self.
        self.slots[self.start..self.end]
            .iter()
            .map(|s| unsafe { &*(&s.mbuf as *const *mut rte_mbuf as *const Mbuf) })
    }

    /// Starts loading the held mbuf `ahead` places from the front (see
    /// [`Mbuf::prefetch_for_read`]); nothing if there is none.
    #[inline(always)]
    pub fn prefetch_ahead(&self, ahead: usize) {
        if let Some(m) = self.mbufs().nth(ahead) {
            m.prefetch_for_read();
        }
    }

    /// Keeps the mbufs `keep` accepts (in order, with their stamps) and frees
    /// the others; returns how many were freed.
    #[inline]
    pub fn retain(&mut self, mut keep: impl FnMut(&Mbuf) -> bool) -> usize {
        let mut rejected = [std::ptr::null_mut(); N];
        let (mut kept, mut dropped) = (self.start, 0);
        for i in self.start..self.end {
            let slot = self.slots[i];
            // SAFETY: slot i holds a valid owned mbuf; Mbuf is repr(transparent).
            let mbuf = unsafe { &*(&slot.mbuf as *const *mut rte_mbuf as *const Mbuf) };
            if keep(mbuf) {
                self.slots[kept] = slot;
                kept += 1;
            } else {
                rejected[dropped] = slot.mbuf;
                dropped += 1;
            }
        }
        self.end = kept;
        // SAFETY: the rejected mbufs left the burst above and are freed once.
        unsafe { free_raw_bulk(&rejected[..dropped]) };
        dropped
    }

    /// Frees every held mbuf now.
    pub fn free_all(&mut self) {
        let mut raw = [std::ptr::null_mut(); N];
        let n = self.len();
        for (r, s) in raw.iter_mut().zip(&self.slots[self.start..self.end]) {
            *r = s.mbuf;
        }
        self.start = 0;
        self.end = 0;
        // SAFETY: the pointers were owned by the burst, which forgot them above.
        unsafe { free_raw_bulk(&raw[..n]) };
    }

    /// Space to fill from a ring: must be empty first.
    #[inline(always)]
    pub(crate) fn fill_slots(&mut self) -> &mut [StampedSlot; N] {
        debug_assert!(self.is_empty(), "filling a burst that still owns mbufs");
        self.start = 0;
        self.end = 0;
        &mut self.slots
    }

    /// Declares that the first `n` slots now hold owned mbufs.
    #[inline(always)]
    pub(crate) fn set_filled(&mut self, n: usize) {
        debug_assert!(n <= N);
        self.start = 0;
        self.end = n;
    }

    /// The held slots, for handing to a ring.
    #[inline(always)]
    pub(crate) fn held(&self) -> &[StampedSlot] {
        &self.slots[self.start..self.end]
    }

    /// Forgets the first `n` held mbufs: their ownership went elsewhere.
    #[inline(always)]
    pub(crate) fn consume_front(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n;
    }
}

impl<const N: usize> Drop for StampedBurst<N> {
    fn drop(&mut self) {
        self.free_all();
    }
}
