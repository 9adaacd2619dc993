//! Owned packet buffers: an [`Mbuf`] frees itself exactly once, a
//! [`MbufBurst`] frees whatever it still holds when dropped.

use super::window::Window;
use dpdk_sys::rte_mbuf;
use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

/// One received packet (possibly a chain of segments), owned.
///
/// Not `Clone`: ownership moves through rings and is given back to the pool
/// exactly once: on drop, or in bulk by whoever took it over.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf(NonNull<rte_mbuf>);

// SAFETY: an mbuf is a heap object in a thread-safe pool; whoever holds the
// `Mbuf` is its only owner, so moving it to another thread is sound.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf pointer.
    ///
    /// # Safety
    /// `raw` must be a valid mbuf that nobody else owns or will free.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(raw: NonNull<rte_mbuf>) -> Self {
        Mbuf(raw)
    }

    /// Gives up ownership without freeing.
    #[inline(always)]
    pub(crate) fn into_raw(self) -> *mut rte_mbuf {
        let raw = self.0.as_ptr();
        std::mem::forget(self);
        raw
    }

    /// The raw pointer, for the DPDK layer only.
    #[inline(always)]
    pub(crate) fn as_ptr(&self) -> *mut rte_mbuf {
        self.0.as_ptr()
    }

    #[inline(always)]
    fn head(&self) -> &rte_mbuf {
        // SAFETY: we own a valid mbuf; reading its header is sound.
        unsafe { self.0.as_ref() }
    }

    /// Total packet length over all segments (the bytes the port delivered).
    #[inline(always)]
    pub fn pkt_len(&self) -> u32 {
        self.head().pkt_len
    }

    /// Number of segments in the chain.
    #[inline(always)]
    pub fn segment_count(&self) -> u16 {
        self.head().nb_segs
    }

    /// The RSS hash the NIC computed, when it supplied one.
    #[inline(always)]
    pub fn rss_hash(&self) -> Option<u32> {
        let head = self.head();
        if head.ol_flags & u64::from(dpdk_sys::RTE_MBUF_F_RX_RSS_HASH) != 0 {
            // SAFETY: the RSS flag says the `hash.rss` member of the union is set.
            Some(unsafe { head.__bindgen_anon_2.hash.rss })
        } else {
            None
        }
    }

    /// True when the offload flag `flag` (a dynamic-flag bit mask) is set.
    #[inline(always)]
    pub fn has_flag(&self, flag: u64) -> bool {
        self.head().ol_flags & flag != 0
    }

    /// Reads a `u64` dynamic field at byte offset `field.offset`.
    #[inline(always)]
    pub fn read_u64(&self, field: DynField) -> u64 {
        // SAFETY: DynField offsets come from DPDK's registry of fields of at
        // least 8 bytes inside rte_mbuf; unaligned reads are tolerated.
        unsafe {
            (self.0.as_ptr() as *const u8)
                .add(field.offset)
                .cast::<u64>()
                .read_unaligned()
        }
    }

    /// Appends `data` to the last segment (for tests and synthetic traffic);
    /// false, with nothing appended, when it does not fit there.
    pub fn append(&mut self, data: &[u8]) -> bool {
        let Ok(len) = u16::try_from(data.len()) else {
            return false;
        };
        // SAFETY: we own the mbuf; a non-NULL result points at `len` writable
        // bytes just added to its data.
        unsafe {
            let room = dpdk_sys::rte_pktmbuf_append(self.0.as_ptr(), len);
            if room.is_null() {
                return false;
            }
            std::ptr::copy_nonoverlapping(data.as_ptr(), room.cast::<u8>(), data.len());
        }
        true
    }

    /// The packet's bytes, segment by segment.
    #[inline(always)]
    pub fn segments(&self) -> Segments<'_> {
        Segments {
            next: self.0.as_ptr(),
            left: self.segment_count(),
            _owner: std::marker::PhantomData,
        }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf (chain) and drop it exactly once.
        unsafe { dpdk_sys::rte_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// Iterator over the data of each segment of an mbuf chain.
///
/// It counts segments down from the head's `nb_segs` instead of following
/// `next` to NULL: `next` lives in the mbuf's second cache line, which the
/// poll loop's core wrote last, and a single-segment packet (nearly all of
/// them) then never needs that line on the writer's core.
pub struct Segments<'a> {
    next: *const rte_mbuf,
    left: u16,
    _owner: std::marker::PhantomData<&'a Mbuf>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];

    #[inline(always)]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 || self.next.is_null() {
            return None;
        }
        self.left -= 1;
        // SAFETY: `next` is a segment of a chain owned by the borrowed Mbuf; its
        // data lives at buf_addr + data_off for data_len bytes while we borrow it.
        // `next` is read only while the head's nb_segs says more segments follow.
        unsafe {
            let seg = &*self.next;
            let data = (seg.buf_addr as *const u8).add(usize::from(seg.data_off));
            self.next = if self.left > 0 {
                seg.next
            } else {
                std::ptr::null()
            };
            Some(std::slice::from_raw_parts(data, usize::from(seg.data_len)))
        }
    }
}

/// Up to `N` owned mbufs, filled by a receive or a ring dequeue. Whatever is
/// still in the burst when it is dropped goes back to its pool in one bulk call.
pub struct MbufBurst<const N: usize> {
    window: Window<*mut rte_mbuf, N>,
}

// SAFETY: the burst exclusively owns the mbufs its window holds.
unsafe impl<const N: usize> Send for MbufBurst<N> {}

impl<const N: usize> Default for MbufBurst<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> MbufBurst<N> {
    /// An empty burst.
    pub fn new() -> Self {
        MbufBurst {
            window: Window::new(std::ptr::null_mut()),
        }
    }

    /// Mbufs held.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.window.len()
    }

    /// True when the burst holds nothing.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.window.is_empty()
    }

    /// The capacity `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Space to fill: must be empty first. Returns the whole slot array.
    #[inline(always)]
    pub(crate) fn fill_slots(&mut self) -> &mut [*mut rte_mbuf; N] {
        self.window.fill_slots()
    }

    /// Declares that the first `n` slots now hold owned mbufs.
    #[inline(always)]
    pub(crate) fn set_filled(&mut self, n: usize) {
        self.window.set_filled(n);
    }

    /// The owned raw pointers, for handing to DPDK.
    #[inline(always)]
    pub(crate) fn held(&self) -> &[*mut rte_mbuf] {
        self.window.held()
    }

    /// Borrows the held mbufs.
    #[inline(always)]
    pub fn iter(&self) -> impl Iterator<Item = &Mbuf> {
        // SAFETY: Mbuf is repr(transparent) over a non-null pointer and every
        // held slot is a valid owned mbuf.
        self.held()
            .iter()
            .map(|p| unsafe { &*(p as *const *mut rte_mbuf as *const Mbuf) })
    }

    /// Mutably borrows the held mbufs.
    #[inline(always)]
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Mbuf> {
        // SAFETY: as for `iter`; the borrow of self makes the access exclusive.
        self.window
            .held_mut()
            .iter_mut()
            .map(|p| unsafe { &mut *(p as *mut *mut rte_mbuf as *mut Mbuf) })
    }

    /// Takes the first held mbuf out of the burst.
    #[inline(always)]
    pub fn pop_front(&mut self) -> Option<Mbuf> {
        let raw = self.window.pop_front()?;
        // SAFETY: the slot held an owned, valid mbuf, now moved out.
        Some(unsafe { Mbuf::from_raw(NonNull::new_unchecked(raw)) })
    }

    /// Keeps the mbufs `keep` accepts (in order) and frees the others in one
    /// bulk call; returns how many were freed.
    #[inline]
    pub fn retain(&mut self, mut keep: impl FnMut(&Mbuf) -> bool) -> usize {
        let mut rejected = [std::ptr::null_mut(); N];
        let mut dropped = 0;
        self.window.retain_from(
            0,
            // SAFETY: a held slot is a valid owned mbuf; Mbuf is repr(transparent).
            |raw| keep(unsafe { &*(raw as *const *mut rte_mbuf as *const Mbuf) }),
            |raw| {
                rejected[dropped] = raw;
                dropped += 1;
            },
        );
        // SAFETY: the rejected mbufs left the burst above and are freed once.
        unsafe { free_raw_bulk(&rejected[..dropped]) };
        dropped
    }

    /// Frees every held mbuf now, in bulk.
    #[inline]
    pub fn free_all(&mut self) {
        // SAFETY: the held mbufs are owned and valid, freed once here and
        // forgotten by the window.
        unsafe { free_raw_bulk(self.window.take_all()) };
    }
}

impl<const N: usize> Drop for MbufBurst<N> {
    fn drop(&mut self) {
        self.free_all();
    }
}

/// Mbufs put straight back to their pool per call, at most.
const PLAIN_BATCH: usize = 64;

/// Frees owned mbufs in bulk. Plain ones (one segment, one reference, direct
/// buffer) go straight back to their pool, as DPDK's fast-free transmit path
/// does: by the mbuf invariants their `next` is already NULL, so their second
/// cache line is never read, and that line may still sit on another core.
/// Anything else goes through `rte_pktmbuf_free`.
///
/// # Safety
/// Every pointer is a valid mbuf owned by the caller, which forgets them all.
#[inline]
pub(crate) unsafe fn free_raw_bulk(mbufs: &[*mut rte_mbuf]) {
    let special = dpdk_sys::RTE_MBUF_F_INDIRECT | dpdk_sys::RTE_MBUF_F_EXTERNAL;
    let mut batch = [std::ptr::null_mut::<std::ffi::c_void>(); PLAIN_BATCH];
    let mut count = 0;
    let mut pool: *mut dpdk_sys::rte_mempool = std::ptr::null_mut();
    for &raw in mbufs {
        // SAFETY (caller): raw is a valid mbuf we own. The reference count may
        // be shared with clones elsewhere, so it is read atomically, as DPDK does.
        let (refcnt, nb_segs, ol_flags, m_pool) = unsafe {
            let refcnt = AtomicU16::from_ptr(std::ptr::addr_of_mut!((*raw).refcnt));
            (
                refcnt.load(Ordering::Relaxed),
                std::ptr::addr_of!((*raw).nb_segs).read(),
                std::ptr::addr_of!((*raw).ol_flags).read(),
                std::ptr::addr_of!((*raw).pool).read(),
            )
        };
        let plain = refcnt == 1 && nb_segs == 1 && ol_flags & special == 0;
        if !plain {
            // SAFETY: owned and valid; freed once (the whole chain).
            unsafe { dpdk_sys::rte_pktmbuf_free(raw) };
            continue;
        }
        if count == PLAIN_BATCH || (count > 0 && m_pool != pool) {
            // SAFETY: the batch holds `count` plain mbufs of `pool`, each in
            // the state a pool expects (one reference, one segment, no next).
            unsafe { dpdk_sys::rte_mempool_put_bulk(pool, batch.as_ptr(), count as u32) };
            count = 0;
        }
        pool = m_pool;
        batch[count] = raw.cast();
        count += 1;
    }
    if count > 0 {
        // SAFETY: as above.
        unsafe { dpdk_sys::rte_mempool_put_bulk(pool, batch.as_ptr(), count as u32) };
    }
}

/// A registered dynamic mbuf field: its byte offset inside `rte_mbuf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynField {
    offset: usize,
}

impl DynField {
    /// Finds a field some driver registered, e.g. `rte_dynfield_timestamp`.
    pub fn lookup(name: &str) -> Option<Self> {
        let c_name = CString::new(name).ok()?;
        let mut params = dpdk_sys::rte_mbuf_dynfield::default();
        // SAFETY: c_name is valid for the call; params is a valid out-struct.
        let offset = unsafe { dpdk_sys::rte_mbuf_dynfield_lookup(c_name.as_ptr(), &mut params) };
        // Reads are 8 bytes wide: refuse narrower fields.
        (offset >= 0 && params.size >= 8).then_some(DynField {
            offset: offset as usize,
        })
    }
}

/// Finds a dynamic offload flag some driver registered; returns its bit mask.
pub fn lookup_dynflag(name: &str) -> Option<u64> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: c_name is valid for the call; a NULL params pointer is allowed.
    let bit = unsafe { dpdk_sys::rte_mbuf_dynflag_lookup(c_name.as_ptr(), std::ptr::null_mut()) };
    (0..64).contains(&bit).then(|| 1u64 << bit)
}
