//! Packet-buffer pools (`rte_pktmbuf_pool_create`).

use super::eal::Eal;
use super::error::{DpdkError, Result};
use super::mbuf::{Mbuf, MbufBurst};
use std::ffi::{CStr, CString};
use std::ptr::NonNull;

/// A pool of packet buffers. Freed on drop; every mbuf must be back by then.
#[derive(Debug)]
pub struct Mempool {
    raw: NonNull<dpdk_sys::rte_mempool>,
    size: u32,
    _eal: Eal,
}

// SAFETY: rte_mempool is designed for concurrent use from many lcores; the
// handle is only a pointer to it.
unsafe impl Send for Mempool {}
// SAFETY: as above; all operations on a shared pool are thread-safe in DPDK.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `size` mbufs with `data_room` bytes of data each
    /// (headroom included) and a per-lcore cache of `cache` mbufs.
    pub fn new(eal: &Eal, name: &str, size: u32, cache: u32, data_room: u16) -> Result<Self> {
        Self::with_ops(eal, name, size, cache, data_room, None)
    }

    /// Like [`Mempool::new`], with a named mempool driver (`ops`), e.g.
    /// `ring_mt_hts`: a ring whose head/tail sync tolerates threads being
    /// preempted mid-operation, for when several threads share a CPU.
    pub fn with_ops(
        eal: &Eal,
        name: &str,
        size: u32,
        cache: u32,
        data_room: u16,
        ops: Option<&str>,
    ) -> Result<Self> {
        let c_name = CString::new(name).expect("pool name with a NUL byte");
        let c_ops = ops.map(|o| CString::new(o).expect("ops name with a NUL byte"));
        // SAFETY: the strings are valid for the call; the other arguments are
        // plain integers; NULL ops means the default. NULL return: rte_errno set.
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create_by_ops(
                c_name.as_ptr(),
                size,
                cache,
                0,
                data_room,
                dpdk_sys::SOCKET_ID_ANY,
                c_ops.as_ref().map_or(std::ptr::null(), |o| o.as_ptr()),
            )
        };
        NonNull::new(raw)
            .map(|raw| Mempool {
                raw,
                size,
                _eal: eal.clone(),
            })
            .ok_or_else(|| {
                DpdkError::from_rte_errno(format!(
                    "cannot create a pool of {size} mbufs of {data_room} bytes"
                ))
            })
    }

    /// The raw pointer, for the DPDK layer only.
    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.raw.as_ptr()
    }

    /// True if a mempool driver called `name` is registered (drivers are
    /// plugins: a DPDK build may lack some).
    pub fn driver_available(name: &str) -> bool {
        (0..dpdk_sys::RTE_MEMPOOL_MAX_OPS_IDX as i32).any(|index| {
            // SAFETY: rte_mempool_get_ops only indexes DPDK's static table of
            // RTE_MEMPOOL_MAX_OPS_IDX entries; unused entries are zeroed, so
            // every name is a NUL-terminated array.
            let registered =
                unsafe { CStr::from_ptr((*dpdk_sys::rte_mempool_get_ops(index)).name.as_ptr()) };
            registered.to_bytes() == name.as_bytes()
        })
    }

    /// The mempool driver that keeps the free mbufs (`stack`, `ring_mt_hts`,
    /// `ring_mp_mc`, ...).
    pub fn driver_name(&self) -> String {
        // SAFETY: ops_index was set when the pool was created and indexes
        // DPDK's table of registered drivers, which lives as long as the
        // process; a driver's name is a NUL-terminated array.
        unsafe {
            let ops = dpdk_sys::rte_mempool_get_ops((*self.raw.as_ptr()).ops_index);
            CStr::from_ptr((*ops).name.as_ptr())
                .to_string_lossy()
                .into_owned()
        }
    }

    /// Number of mbufs the pool was created with.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Takes one mbuf from the pool (used by tests and tools; ports allocate
    /// their own).
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is alive; a non-NULL result is a fresh mbuf we own.
        let raw = unsafe { dpdk_sys::rte_pktmbuf_alloc(self.raw.as_ptr()) };
        // SAFETY: nobody else owns a freshly allocated mbuf.
        NonNull::new(raw).map(|raw| unsafe { Mbuf::from_raw(raw) })
    }

    /// Fills an empty `burst` with `n` fresh mbufs (all or nothing).
    pub fn alloc_burst<const N: usize>(&self, burst: &mut MbufBurst<N>, n: usize) -> bool {
        let n = n.min(N);
        let slots = burst.fill_slots();
        // SAFETY: slots has room for n pointers; on success all n are fresh mbufs
        // now owned by the burst, on failure none were taken.
        let ret = unsafe {
            dpdk_sys::rte_pktmbuf_alloc_bulk(self.raw.as_ptr(), slots.as_mut_ptr(), n as u32)
        };
        burst.set_filled(if ret == 0 { n } else { 0 });
        ret == 0
    }

    /// Mbufs currently in the pool (caches included).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive; the count is a read-only query.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Mbufs currently taken out of the pool.
    pub fn in_use(&self) -> u32 {
        // SAFETY: as for `available`.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: the pool was created by `new`; ports and rings that may hold its
        // mbufs keep an Arc to it, so nothing uses it any more.
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}
