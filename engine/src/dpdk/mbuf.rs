//! Owned packet buffers: an [`Mbuf`] frees itself exactly once, a
//! [`MbufBurst`] frees whatever it still holds when dropped.

use super::error::{DpdkError, Result};
use dpdk_sys::rte_mbuf;
use std::ffi::CString;
use std::ptr::NonNull;

/// One received packet (possibly a chain of segments), owned.
///
/// Not `Clone`: ownership moves through rings and is given back to the pool
/// exactly once, on drop or by [`MbufBatchFree`].
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

    /// Asks the CPU to start loading the mbuf's two header cache lines (the
    /// writer reads both, and another core wrote them last).
    #[inline(always)]
    pub fn prefetch_header(&self) {
        let p = self.0.as_ptr() as *const i8;
        // SAFETY: prefetch is a hint that never faults; both lines lie inside the mbuf.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch(p, _MM_HINT_T0);
            _mm_prefetch(p.add(64), _MM_HINT_T0);
        }
    }

    /// Asks the CPU to start loading the first cache line of packet data.
    #[inline(always)]
    pub fn prefetch_data(&self) {
        let head = self.head();
        // SAFETY: prefetch never faults; the address is inside the mbuf's buffer.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let data = (head.buf_addr as *const i8).add(usize::from(head.data_off));
            _mm_prefetch(data, _MM_HINT_T0);
        }
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

    /// The port that received the packet.
    #[inline(always)]
    pub fn port(&self) -> u16 {
        self.head().port
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

    /// Writes a `u64` dynamic field at byte offset `field.offset`.
    #[inline(always)]
    pub fn write_u64(&mut self, field: DynField, value: u64) {
        // SAFETY: as for `read_u64`; we own the mbuf, so writing is exclusive.
        unsafe {
            (self.0.as_ptr() as *mut u8)
                .add(field.offset)
                .cast::<u64>()
                .write_unaligned(value)
        }
    }

    /// The packet's bytes, segment by segment.
    #[inline(always)]
    pub fn segments(&self) -> Segments<'_> {
        Segments {
            next: self.0.as_ptr(),
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
pub struct Segments<'a> {
    next: *const rte_mbuf,
    _owner: std::marker::PhantomData<&'a Mbuf>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];

    #[inline(always)]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.next.is_null() {
            return None;
        }
        // SAFETY: `next` is a segment of a chain owned by the borrowed Mbuf; its
        // data lives at buf_addr + data_off for data_len bytes while we borrow it.
        unsafe {
            let seg = &*self.next;
            let data = (seg.buf_addr as *const u8).add(usize::from(seg.data_off));
            self.next = seg.next;
            Some(std::slice::from_raw_parts(data, usize::from(seg.data_len)))
        }
    }
}

/// Up to `N` owned mbufs, filled by a receive or a ring dequeue. Whatever is
/// still in the burst when it is dropped goes back to its pool in one bulk call.
pub struct MbufBurst<const N: usize> {
    slots: [*mut rte_mbuf; N],
    start: usize,
    end: usize,
}

// SAFETY: the burst exclusively owns the mbufs in slots[start..end].
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
            slots: [std::ptr::null_mut(); N],
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

    /// The capacity `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Space to fill: must be empty first. Returns the whole slot array.
    #[inline(always)]
    pub(crate) fn fill_slots(&mut self) -> &mut [*mut rte_mbuf; N] {
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

    /// The owned raw pointers, for handing to DPDK.
    #[inline(always)]
    pub(crate) fn held(&self) -> &[*mut rte_mbuf] {
        &self.slots[self.start..self.end]
    }

    /// Forgets the first `n` held mbufs: their ownership went elsewhere.
    #[inline(always)]
    pub(crate) fn consume_front(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n;
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
        let (start, end) = (self.start, self.end);
        // SAFETY: as for `iter`; the borrow of self makes the access exclusive.
        self.slots[start..end]
            .iter_mut()
            .map(|p| unsafe { &mut *(p as *mut *mut rte_mbuf as *mut Mbuf) })
    }

    /// Takes the first held mbuf out of the burst.
    #[inline(always)]
    pub fn pop_front(&mut self) -> Option<Mbuf> {
        if self.is_empty() {
            return None;
        }
        let raw = self.slots[self.start];
        self.start += 1;
        // SAFETY: the slot held an owned, valid mbuf, now moved out.
        Some(unsafe { Mbuf::from_raw(NonNull::new_unchecked(raw)) })
    }

    /// Keeps the mbufs `keep` accepts (in order) and frees the others in one
    /// bulk call; returns how many were freed.
    #[inline]
    pub fn retain(&mut self, mut keep: impl FnMut(&Mbuf) -> bool) -> usize {
        let mut rejected = [std::ptr::null_mut(); N];
        let (mut kept, mut dropped) = (self.start, 0);
        for i in self.start..self.end {
            let raw = self.slots[i];
            // SAFETY: slot i holds a valid owned mbuf; Mbuf is repr(transparent).
            let mbuf = unsafe { &*(&self.slots[i] as *const *mut rte_mbuf as *const Mbuf) };
            if keep(mbuf) {
                self.slots[kept] = raw;
                kept += 1;
            } else {
                rejected[dropped] = raw;
                dropped += 1;
            }
        }
        self.end = kept;
        if dropped > 0 {
            // SAFETY: the rejected mbufs left the burst above and are freed once.
            unsafe { dpdk_sys::rte_pktmbuf_free_bulk(rejected.as_mut_ptr(), dropped as u32) };
        }
        dropped
    }

    /// Frees every held mbuf now, in one bulk call.
    #[inline]
    pub fn free_all(&mut self) {
        let n = self.len();
        if n > 0 {
            // SAFETY: slots[start..end] are owned, valid mbufs, freed once here
            // and forgotten by resetting the bounds.
            unsafe {
                dpdk_sys::rte_pktmbuf_free_bulk(self.slots.as_mut_ptr().add(self.start), n as u32)
            };
        }
        self.start = 0;
        self.end = 0;
    }
}

impl<const N: usize> Drop for MbufBurst<N> {
    fn drop(&mut self) {
        self.free_all();
    }
}

/// Collects mbufs that are done with and frees them in bulk, `N` at a time.
pub struct MbufBatchFree<const N: usize> {
    burst: MbufBurst<N>,
}

impl<const N: usize> Default for MbufBatchFree<N> {
    fn default() -> Self {
        MbufBatchFree {
            burst: MbufBurst::new(),
        }
    }
}

impl<const N: usize> MbufBatchFree<N> {
    /// Queues one mbuf for freeing; frees the batch when it is full.
    #[inline(always)]
    pub fn push(&mut self, mbuf: Mbuf) {
        if self.burst.end == N {
            self.burst.free_all();
        }
        let end = self.burst.end;
        self.burst.slots[end] = mbuf.into_raw();
        self.burst.end = end + 1;
    }

    /// Frees everything queued.
    pub fn flush(&mut self) {
        self.burst.free_all();
    }
}

/// A registered dynamic mbuf field: its byte offset inside `rte_mbuf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynField {
    offset: usize,
}

impl DynField {
    /// Registers (or finds, if already registered with the same shape) a field
    /// of `size` bytes, 8-byte aligned, under `name`.
    pub fn register(name: &str, size: usize) -> Result<Self> {
        let mut params = dpdk_sys::rte_mbuf_dynfield {
            size,
            align: 8,
            ..Default::default()
        };
        copy_name(&mut params.name, name);
        // SAFETY: params is a valid, NUL-terminated descriptor for the call.
        let offset = unsafe { dpdk_sys::rte_mbuf_dynfield_register(&params) };
        if offset < 0 {
            return Err(DpdkError::from_rte_errno(format!(
                "cannot register the mbuf field {name}"
            )));
        }
        Ok(DynField {
            offset: offset as usize,
        })
    }

    /// Finds a field some driver registered, e.g. `rte_dynfield_timestamp`.
    pub fn lookup(name: &str) -> Option<Self> {
        let c_name = CString::new(name).ok()?;
        let mut params = dpdk_sys::rte_mbuf_dynfield::default();
        // SAFETY: c_name is valid for the call; params is a valid out-struct.
        let offset = unsafe { dpdk_sys::rte_mbuf_dynfield_lookup(c_name.as_ptr(), &mut params) };
        // Reads and writes are 8 bytes wide: refuse narrower fields.
        (offset >= 0 && params.size >= 8).then_some(DynField {
            offset: offset as usize,
        })
    }

    /// The same field `bytes` further on (for fields wider than 8 bytes; the
    /// caller guarantees the field is at least `bytes + 8` long).
    pub(crate) fn plus(self, bytes: usize) -> Self {
        DynField {
            offset: self.offset + bytes,
        }
    }
}

/// Finds a dynamic offload flag some driver registered; returns its bit mask.
pub fn lookup_dynflag(name: &str) -> Option<u64> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: c_name is valid for the call; a NULL params pointer is allowed.
    let bit = unsafe { dpdk_sys::rte_mbuf_dynflag_lookup(c_name.as_ptr(), std::ptr::null_mut()) };
    (0..64).contains(&bit).then(|| 1u64 << bit)
}

fn copy_name(dst: &mut [std::os::raw::c_char], name: &str) {
    let room = dst.len() - 1; // keep the terminating NUL
    for (d, s) in dst.iter_mut().zip(name.bytes().take(room)) {
        *d = s as std::os::raw::c_char;
    }
}
