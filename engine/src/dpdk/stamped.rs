//! Received packets that travel with what the poll loop learnt of them.
//!
//! A ring element is 32 bytes: the mbuf pointer, the receive stamp, and the
//! few header fields a writer needs (length, data offset, RSS hash). The poll
//! loop reads them from the mbuf header while that line is in its own cache;
//! the writer then never reads the header of a plain packet (one segment, one
//! reference, a direct buffer from the ring's pool), a line the poll loop's
//! core wrote last and will write again on the next receive. The writer
//! touches only the packet bytes and hands the pointer back to the pool.

use super::mbuf::{free_raw_bulk, Mbuf};
use super::mempool::Mempool;
use super::window::Window;
use dpdk_sys::{rte_mbuf, rte_mempool};
use std::ffi::c_void;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

/// What the poll loop knew about a packet when it received it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stamp {
    /// Receive time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// The TSC reading of the burst that received it (for latencies).
    pub rx_tsc: u64,
}

/// Receive TSC readings travel as `tsc >> RX_TICK_SHIFT` in 32 bits: ticks of
/// 64 cycles (26 ns at 2.45 GHz). Latencies up to 2^37 cycles (56 s at
/// 2.45 GHz) are measured, far beyond any a capture can live with.
const RX_TICK_SHIFT: u32 = 6;

/// The packet is plain: its bytes are `pkt_len` bytes at `data_off` in the
/// mbuf's own buffer, and it goes straight back to the ring's pool.
const FLAG_PLAIN: u16 = 1;
/// `rss_hash` holds the hash the NIC computed.
const FLAG_RSS: u16 = 2;

/// One ring element: an owned mbuf pointer and what the writer needs of it.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct StampedSlot {
    mbuf: *mut rte_mbuf,
    ts_ns: u64,
    pkt_len: u32,
    rss_hash: u32,
    rx_tick: u32,
    data_off: u16,
    flags: u16,
}

const _: () = assert!(std::mem::size_of::<StampedSlot>() == 32);

const EMPTY_SLOT: StampedSlot = StampedSlot {
    mbuf: std::ptr::null_mut(),
    ts_ns: 0,
    pkt_len: 0,
    rss_hash: 0,
    rx_tick: 0,
    data_off: 0,
    flags: 0,
};

/// Where a direct mbuf's buffer starts, counted from the mbuf: our pools have
/// no private area, so right after the header.
const BUFFER_OFFSET: usize = std::mem::size_of::<rte_mbuf>();

/// The pool whose plain mbufs a writer may hand back without reading them.
/// Compared by address only; never dereferenced through this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HomePool(*const rte_mempool);

// SAFETY: only the address is used, as an identity.
unsafe impl Send for HomePool {}

impl HomePool {
    /// No pool: nothing counts as plain.
    pub const NONE: HomePool = HomePool(std::ptr::null());

    /// The home of `pool`'s mbufs.
    pub fn of(pool: &Mempool) -> Self {
        HomePool(pool.as_ptr())
    }
}

impl StampedSlot {
    /// Describes an owned mbuf, reading its header (hot in the caller's cache).
    #[inline(always)]
    fn describe(mbuf: Mbuf, stamp: Stamp, home: HomePool) -> Self {
        let raw = mbuf.into_raw();
        // SAFETY: raw is a valid mbuf we own. The reference count may be
        // shared with clones elsewhere, so it is read atomically, as DPDK does.
        let (head, refcnt) = unsafe {
            let refcnt = AtomicU16::from_ptr(std::ptr::addr_of_mut!((*raw).refcnt));
            (&*raw, refcnt.load(Ordering::Relaxed))
        };
        let special = dpdk_sys::RTE_MBUF_F_INDIRECT | dpdk_sys::RTE_MBUF_F_EXTERNAL;
        let own_buffer = (raw as usize + BUFFER_OFFSET) as *mut c_void == head.buf_addr;
        let plain = refcnt == 1
            && head.nb_segs == 1
            && head.ol_flags & special == 0
            && own_buffer
            && !home.0.is_null()
            && std::ptr::eq(head.pool, home.0);
        let rss = head.ol_flags & u64::from(dpdk_sys::RTE_MBUF_F_RX_RSS_HASH) != 0;
        StampedSlot {
            mbuf: raw,
            ts_ns: stamp.ts_ns,
            pkt_len: head.pkt_len,
            // SAFETY: the union member is read as plain bits; only used when
            // the RSS flag says the NIC set it.
            rss_hash: unsafe { head.__bindgen_anon_2.hash.rss },
            rx_tick: (stamp.rx_tsc >> RX_TICK_SHIFT) as u32,
            data_off: head.data_off,
            flags: if plain { FLAG_PLAIN } else { 0 } | if rss { FLAG_RSS } else { 0 },
        }
    }

    #[inline(always)]
    fn is_plain(&self) -> bool {
        self.flags & FLAG_PLAIN != 0
    }

    /// Borrows the slot's pointer as an [`Mbuf`].
    #[inline(always)]
    fn as_mbuf(&self) -> &Mbuf {
        // SAFETY: Mbuf is repr(transparent) over a non-null pointer and the
        // slot holds a valid owned mbuf while it is borrowed.
        unsafe { &*(&self.mbuf as *const *mut rte_mbuf as *const Mbuf) }
    }

    /// Where a plain packet's bytes start.
    #[inline(always)]
    fn plain_data(&self) -> *const u8 {
        (self.mbuf as *const u8).wrapping_add(BUFFER_OFFSET + usize::from(self.data_off))
    }

    /// Starts loading what the writer will read: the bytes of a plain
    /// packet, or the header of any other.
    #[inline(always)]
    fn prefetch(&self) {
        let p = if self.is_plain() {
            self.plain_data()
        } else {
            self.mbuf as *const u8
        };
        // SAFETY: prefetch is a hint that never faults, whatever the address.
        unsafe { std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0) };
    }
}

/// One received packet, owned, with what the poll loop learnt of it. Freed
/// (the whole chain) when dropped, unless handed to a [`ReceivedFree`].
pub struct Received(StampedSlot);

// SAFETY: the value exclusively owns its mbuf.
unsafe impl Send for Received {}

impl Received {
    /// Receive time, nanoseconds since the Unix epoch.
    #[inline(always)]
    pub fn ts_ns(&self) -> u64 {
        self.0.ts_ns
    }

    /// Length on the wire (the packet's length over all segments).
    #[inline(always)]
    pub fn orig_len(&self) -> u32 {
        self.0.pkt_len
    }

    /// The RSS hash the NIC supplied, if any.
    #[inline(always)]
    pub fn rss_hash(&self) -> Option<u32> {
        (self.0.flags & FLAG_RSS != 0).then_some(self.0.rss_hash)
    }

    /// The receive TSC reading, coarsened (see [`Received::cycles_since_rx`]).
    #[inline(always)]
    pub fn rx_tick(&self) -> u32 {
        self.0.rx_tick
    }

    /// The packet's bytes in one piece, for a plain packet, without reading
    /// its mbuf header; `None` for any other (use [`Received::mbuf`]).
    #[inline(always)]
    pub fn contiguous(&self) -> Option<&[u8]> {
        // SAFETY: a plain packet's pkt_len bytes lie at data_off in its own
        // buffer, which it owns while borrowed.
        self.0.is_plain().then(|| unsafe {
            std::slice::from_raw_parts(self.0.plain_data(), self.0.pkt_len as usize)
        })
    }

    /// Starts loading what writing the packet reads: its bytes if it is
    /// plain, else its header.
    #[inline(always)]
    pub fn prefetch(&self) {
        self.0.prefetch();
    }

    /// The packet's mbuf (reads its header when used).
    #[inline(always)]
    pub fn mbuf(&self) -> &Mbuf {
        self.0.as_mbuf()
    }

    /// Forgets the slot without freeing it.
    #[inline(always)]
    fn into_slot(self) -> StampedSlot {
        let slot = self.0;
        std::mem::forget(self);
        slot
    }
}

/// TSC cycles from a receive tick (see [`Received::rx_tick`]) to `now_tsc`;
/// 0 if `now_tsc` is a little behind it (TSCs of two cores need not agree
/// to the cycle).
#[inline(always)]
pub fn cycles_since_rx(rx_tick: u32, now_tsc: u64) -> u64 {
    let now_tick = (now_tsc >> RX_TICK_SHIFT) as u32;
    let ticks = now_tick.wrapping_sub(rx_tick);
    if ticks > u32::MAX / 2 {
        return 0;
    }
    u64::from(ticks) << RX_TICK_SHIFT
}

impl Drop for Received {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf and free it exactly once.
        unsafe { free_raw_bulk(&[self.0.mbuf]) }
    }
}

/// Up to `N` owned, stamped packets, in order. Whatever is still held when
/// the burst is dropped goes back to its pool.
pub struct StampedBurst<const N: usize> {
    window: Window<StampedSlot, N>,
    home: HomePool,
}

// SAFETY: the burst exclusively owns the mbufs its window holds.
unsafe impl<const N: usize> Send for StampedBurst<N> {}

impl<const N: usize> Default for StampedBurst<N> {
    fn default() -> Self {
        Self::new(HomePool::NONE)
    }
}

/// Pointers freed per bulk call when a stamped burst is freed.
const FREE_CHUNK: usize = 64;

impl<const N: usize> StampedBurst<N> {
    /// An empty burst; packets pushed onto it count as plain only if they
    /// come from `home` (the pool of the ring they go to).
    pub fn new(home: HomePool) -> Self {
        StampedBurst {
            window: Window::new(EMPTY_SLOT),
            home,
        }
    }

    /// The pool whose packets this burst marks plain.
    #[inline(always)]
    pub fn home(&self) -> HomePool {
        self.home
    }

    /// Packets held.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.window.len()
    }

    /// True when the burst holds nothing.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.window.is_empty()
    }

    /// Appends a packet and its stamp. Panics if the burst is full.
    #[inline(always)]
    pub fn push(&mut self, mbuf: Mbuf, stamp: Stamp) {
        self.window
            .push(StampedSlot::describe(mbuf, stamp, self.home));
    }

    /// Takes the first packet out of the burst.
    #[inline(always)]
    pub fn pop_front(&mut self) -> Option<Received> {
        self.window.pop_front().map(Received)
    }

    /// Starts loading what the writer reads of the held packet `ahead`
    /// places from the front; nothing if there is none.
    #[inline(always)]
    pub fn prefetch_ahead(&self, ahead: usize) {
        if let Some(slot) = self.window.held().get(ahead) {
            slot.prefetch();
        }
    }

    /// Keeps the packets `keep` accepts (in order, with their stamps) and
    /// frees the others; returns how many were freed.
    #[inline]
    pub fn retain(&mut self, keep: impl FnMut(&Mbuf) -> bool) -> usize {
        self.retain_from(0, keep)
    }

    /// As [`StampedBurst::retain`], for the held packets from the `from`-th
    /// on; those before it stay untouched.
    #[inline]
    pub fn retain_from(&mut self, from: usize, mut keep: impl FnMut(&Mbuf) -> bool) -> usize {
        let mut rejected = [std::ptr::null_mut(); N];
        let mut dropped = 0;
        self.window.retain_from(
            from,
            |slot| keep(slot.as_mbuf()),
            |slot| {
                rejected[dropped] = slot.mbuf;
                dropped += 1;
            },
        );
        // SAFETY: the rejected mbufs left the burst above and are freed once.
        unsafe { free_raw_bulk(&rejected[..dropped]) };
        dropped
    }

    /// Frees every held packet now, a bulk call per [`FREE_CHUNK`].
    pub fn free_all(&mut self) {
        for chunk in self.window.take_all().chunks(FREE_CHUNK) {
            let mut raw = [std::ptr::null_mut(); FREE_CHUNK];
            for (r, s) in raw.iter_mut().zip(chunk) {
                *r = s.mbuf;
            }
            // SAFETY: the pointers were owned by the burst, whose window
            // forgot them above; each is freed once.
            unsafe { free_raw_bulk(&raw[..chunk.len()]) };
        }
    }

    /// Space to fill from a ring: must be empty first.
    #[inline(always)]
    pub(crate) fn fill_slots(&mut self) -> &mut [StampedSlot; N] {
        self.window.fill_slots()
    }

    /// Declares that the first `n` slots now hold owned packets.
    #[inline(always)]
    pub(crate) fn set_filled(&mut self, n: usize) {
        self.window.set_filled(n);
    }

    /// The held slots, for handing to a ring.
    #[inline(always)]
    pub(crate) fn held(&self) -> &[StampedSlot] {
        self.window.held()
    }

    /// Forgets the first `n` held packets: their ownership went elsewhere.
    #[inline(always)]
    pub(crate) fn consume_front(&mut self, n: usize) {
        self.window.consume_front(n);
    }
}

impl<const N: usize> Drop for StampedBurst<N> {
    fn drop(&mut self) {
        self.free_all();
    }
}

/// Collects packets that are done with and frees them in bulk: plain ones
/// straight into their pool without reading them, others through DPDK's
/// usual free, `N` at a time.
pub struct ReceivedFree<const N: usize> {
    pool: Arc<Mempool>,
    plain: [*mut c_void; N],
    plain_count: usize,
    other: [*mut rte_mbuf; N],
    other_count: usize,
}

// SAFETY: the batch exclusively owns the mbufs it holds.
unsafe impl<const N: usize> Send for ReceivedFree<N> {}

impl<const N: usize> ReceivedFree<N> {
    /// A batch for packets whose plain ones belong to `pool` (the home pool
    /// of the rings they came through).
    pub fn new(pool: Arc<Mempool>) -> Self {
        ReceivedFree {
            pool,
            plain: [std::ptr::null_mut(); N],
            plain_count: 0,
            other: [std::ptr::null_mut(); N],
            other_count: 0,
        }
    }

    /// The pool plain packets go back to.
    pub fn home(&self) -> HomePool {
        HomePool::of(&self.pool)
    }

    /// Queues one packet for freeing; frees a batch when it is full.
    #[inline(always)]
    pub fn push(&mut self, packet: Received) {
        let slot = packet.into_slot();
        if slot.is_plain() {
            if self.plain_count == N {
                self.flush_plain();
            }
            self.plain[self.plain_count] = slot.mbuf.cast();
            self.plain_count += 1;
        } else {
            if self.other_count == N {
                self.flush_other();
            }
            self.other[self.other_count] = slot.mbuf;
            self.other_count += 1;
        }
    }

    /// Frees everything queued.
    pub fn flush(&mut self) {
        self.flush_plain();
        self.flush_other();
    }

    fn flush_plain(&mut self) {
        if self.plain_count > 0 {
            // SAFETY: each pointer is an owned plain mbuf of this pool (the
            // poll loop checked it against the same pool), in the state a pool
            // expects: one reference, one segment, no next. Forgotten below.
            unsafe {
                dpdk_sys::rte_mempool_put_bulk(
                    self.pool.as_ptr(),
                    self.plain.as_ptr(),
                    self.plain_count as u32,
                )
            };
            self.plain_count = 0;
        }
    }

    fn flush_other(&mut self) {
        let n = std::mem::take(&mut self.other_count);
        // SAFETY: owned mbufs, freed once; the count was reset above.
        unsafe { free_raw_bulk(&self.other[..n]) };
    }
}

impl<const N: usize> Drop for ReceivedFree<N> {
    fn drop(&mut self) {
        self.flush();
    }
}
