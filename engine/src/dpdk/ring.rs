//! Single-producer / single-consumer rings of stamped packets (`rte_ring` with
//! 32-byte elements, see [`super::stamped`]), split into a producer half and a
//! consumer half so ownership enforces SP/SC.

use super::eal::Eal;
use super::error::{DpdkError, Result};
use super::mempool::Mempool;
use super::stamped::{HomePool, ReceivedFree, StampedBurst, StampedSlot};
use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

static RING_SEQUENCE: AtomicU32 = AtomicU32::new(0);

struct RingInner {
    raw: NonNull<dpdk_sys::rte_ring>,
    capacity: u32,
    pool: Arc<Mempool>,
    _eal: Eal,
}

// SAFETY: rte_ring is built for one producer thread and one consumer thread
// (SP/SC flags); the halves below make sure there is only one of each.
unsafe impl Send for RingInner {}
// SAFETY: as above; shared use is limited to the thread-safe count query.
unsafe impl Sync for RingInner {}

impl RingInner {
    fn occupancy(&self) -> u32 {
        // SAFETY: rte_ring_count reads the head/tail indexes, safe at any time.
        unsafe { dpdk_sys::rte_ring_count(self.raw.as_ptr()) }
    }
}

impl Drop for RingInner {
    fn drop(&mut self) {
        // Give back any mbuf still in flight before freeing the ring itself.
        let mut burst = StampedBurst::<64>::new(HomePool::NONE);
        // SAFETY: both halves are gone, so we are the only user of the ring.
        while unsafe { dequeue_into(self.raw, &mut burst) } > 0 {
            burst.free_all();
        }
        // SAFETY: the ring is empty and unused.
        unsafe { dpdk_sys::rte_ring_free(self.raw.as_ptr()) }
    }
}

const SLOT_SIZE: u32 = std::mem::size_of::<StampedSlot>() as u32;

/// The `n` elements a zero-copy start call reserved, as the (at most) two
/// pieces the ring's wrap-around splits them into.
///
/// # Safety
/// `zc` and `n` come from a successful `rte_ring_*_zc_burst_elem_start` call
/// on a ring of StampedSlot-sized elements, whose finish call has not been
/// made yet; the caller is that side's only user meanwhile.
#[inline(always)]
unsafe fn zc_pieces<'a>(
    zc: &dpdk_sys::rte_ring_zc_data,
    n: usize,
) -> (&'a mut [StampedSlot], &'a mut [StampedSlot]) {
    let first = (zc.n1 as usize).min(n);
    let piece = |ptr: *mut std::ffi::c_void, len: usize| -> &'a mut [StampedSlot] {
        if len == 0 {
            return &mut [];
        }
        // SAFETY: the reservation covers `len` elements at ptr, aligned for
        // StampedSlot, and no one else touches them until the finish call.
        unsafe { std::slice::from_raw_parts_mut(ptr.cast::<StampedSlot>(), len) }
    };
    (piece(zc.ptr1, first), piece(zc.ptr2, n - first))
}

/// Dequeues up to `N` elements into an empty `burst`, which then owns them.
///
/// Uses the zero-copy dequeue (SP/SC rings allow it) and copies whole
/// elements out of the ring itself: DPDK's generic copy for 32-byte elements
/// moves them 4 bytes at a time.
///
/// # Safety
/// The caller is the ring's only consumer for the duration of the call.
#[inline(always)]
unsafe fn dequeue_into<const N: usize>(
    raw: NonNull<dpdk_sys::rte_ring>,
    burst: &mut StampedBurst<N>,
) -> usize {
    let slots = burst.fill_slots();
    let mut zc = dpdk_sys::rte_ring_zc_data::default();
    // SAFETY: single consumer (caller); the ring holds SLOT_SIZE-byte
    // elements; on return zc describes the n elements reserved for us, in at
    // most two pieces.
    let n = unsafe {
        dpdk_sys::rte_ring_dequeue_zc_burst_elem_start(
            raw.as_ptr(),
            SLOT_SIZE,
            N as u32,
            &mut zc,
            std::ptr::null_mut(),
        )
    } as usize;
    if n > 0 {
        // SAFETY: zc and n come from the start call above; single consumer.
        let (first, second) = unsafe { zc_pieces(&zc, n) };
        slots[..first.len()].copy_from_slice(first);
        slots[first.len()..n].copy_from_slice(second);
        // SAFETY: the copies are ours now: hand the slots back to the producer.
        unsafe { dpdk_sys::rte_ring_dequeue_zc_elem_finish(raw.as_ptr(), n as u32) };
    }
    burst.set_filled(n);
    n
}

/// Creates a ring holding exactly `capacity` stamped mbufs from `pool`, split
/// into its producer and consumer halves.
pub fn stamped_ring(
    eal: &Eal,
    pool: &Arc<Mempool>,
    capacity: u32,
) -> Result<(RingProducer, RingConsumer)> {
    let name = format!(
        "zcap_ring_{}",
        RING_SEQUENCE.fetch_add(1, Ordering::Relaxed)
    );
    let c_name = CString::new(name).expect("ring name");
    // EXACT_SZ: usable size is `capacity`, not the next power of two minus one,
    // so rings can be sized against the pool they draw from.
    let flags = dpdk_sys::RING_F_SP_ENQ | dpdk_sys::RING_F_SC_DEQ | dpdk_sys::RING_F_EXACT_SZ;
    // SAFETY: c_name is valid for the call; NULL means failure with rte_errno.
    let raw = unsafe {
        dpdk_sys::rte_ring_create_elem(
            c_name.as_ptr(),
            SLOT_SIZE,
            capacity,
            dpdk_sys::SOCKET_ID_ANY,
            flags,
        )
    };
    let raw = NonNull::new(raw).ok_or_else(|| {
        DpdkError::from_rte_errno(format!("cannot create a ring of {capacity} slots"))
    })?;
    let inner = Arc::new(RingInner {
        raw,
        capacity,
        pool: pool.clone(),
        _eal: eal.clone(),
    });
    Ok((
        RingProducer {
            inner: inner.clone(),
        },
        RingConsumer { inner },
    ))
}

/// The enqueueing half of a ring; exactly one exists per ring.
pub struct RingProducer {
    inner: Arc<RingInner>,
}

impl RingProducer {
    /// An empty burst to collect packets for this ring: the packets of the
    /// ring's pool in it count as plain (see [`super::stamped`]).
    pub fn burst<const N: usize>(&self) -> StampedBurst<N> {
        StampedBurst::new(HomePool::of(&self.inner.pool))
    }

    /// Moves as many stamped mbufs as fit from the front of `burst` into the
    /// ring and returns how many; the rest stay in `burst`.
    #[inline(always)]
    pub fn enqueue<const N: usize>(&mut self, burst: &mut StampedBurst<N>) -> usize {
        // Plain packets go back to the consumer's pool unread: only a burst
        // made for this ring (or one that marks nothing plain) may go in.
        let home = burst.home();
        assert!(
            home == HomePool::NONE || home == HomePool::of(&self.inner.pool),
            "a burst made for another pool's ring"
        );
        let held = burst.held();
        let mut zc = dpdk_sys::rte_ring_zc_data::default();
        // Zero-copy enqueue, as for dequeue: DPDK's generic copy moves
        // 32-byte elements 4 bytes at a time.
        // SAFETY: single producer (&mut self on the only producer); the ring
        // holds SLOT_SIZE-byte elements; on return zc describes the n free
        // elements reserved for us, in at most two pieces.
        let n = unsafe {
            dpdk_sys::rte_ring_enqueue_zc_burst_elem_start(
                self.inner.raw.as_ptr(),
                SLOT_SIZE,
                held.len() as u32,
                &mut zc,
                std::ptr::null_mut(),
            )
        } as usize;
        if n > 0 {
            // SAFETY: zc and n come from the start call above; single producer.
            let (first, second) = unsafe { zc_pieces(&zc, n) };
            first.copy_from_slice(&held[..first.len()]);
            second.copy_from_slice(&held[first.len()..n]);
            // SAFETY: the slots are written; finishing passes the mbufs'
            // ownership to the ring.
            unsafe { dpdk_sys::rte_ring_enqueue_zc_elem_finish(self.inner.raw.as_ptr(), n as u32) };
        }
        burst.consume_front(n);
        n
    }

    /// A read-only handle for watching the ring's fill level.
    pub fn monitor(&self) -> RingMonitor {
        RingMonitor {
            inner: self.inner.clone(),
        }
    }
}

/// Watches a ring's fill level from any thread (the stats core).
#[derive(Clone)]
pub struct RingMonitor {
    inner: Arc<RingInner>,
}

impl RingMonitor {
    /// Entries in the ring now.
    pub fn occupancy(&self) -> u32 {
        self.inner.occupancy()
    }

    /// Usable slots.
    pub fn capacity(&self) -> u32 {
        self.inner.capacity
    }
}

/// The dequeueing half of a ring; exactly one exists per ring.
pub struct RingConsumer {
    inner: Arc<RingInner>,
}

impl RingConsumer {
    /// A batch that frees what this ring delivered (and what any ring of the
    /// same pool delivered).
    pub fn free_batch<const N: usize>(&self) -> ReceivedFree<N> {
        ReceivedFree::new(self.inner.pool.clone())
    }

    /// The pool this ring's plain packets go back to.
    pub fn home(&self) -> HomePool {
        HomePool::of(&self.inner.pool)
    }

    /// Takes up to `N` stamped mbufs from the ring into an empty `burst`.
    #[inline(always)]
    pub fn dequeue<const N: usize>(&mut self, burst: &mut StampedBurst<N>) -> usize {
        // SAFETY: &mut self on the only consumer half.
        unsafe { dequeue_into(self.inner.raw, burst) }
    }
}
