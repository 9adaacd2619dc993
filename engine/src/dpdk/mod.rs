//! The thin safe layer over DPDK, and over the few kernel calls the storage
//! engine needs (io_uring, statfs): the only place in zcap with `unsafe`.
//!
//! Ownership mirrors DPDK's rules: every object keeps a handle on what it needs
//! (ports and rings keep their mempool, everything keeps the [`Eal`]), so teardown
//! happens in order — queues and rings, ports, pools, EAL — on every exit path.

// The one module of the engine where `unsafe` is allowed (lib.rs denies it).
#![allow(unsafe_code)]

mod bpf;
mod eal;
mod error;
mod fs;
mod lcore;
mod libpcap;
mod mbuf;
mod mempool;
mod port;
mod privileges;
mod ring;
mod stamped;
pub mod telemetry;
mod uring;
mod window;

pub use bpf::{capture_file_dlt, ClassicFilter, Engine as FilterEngine, Filter};
pub use eal::{hugepages_available, rdtsc, Eal, EalBuilder, ThreadRegistration};
pub use error::{DpdkError, Result};
pub(crate) use fs::{
    advise_reads, advise_willneed, fs_stats, preallocate, release_past, ReadPattern,
};
pub use lcore::{launch, LcoreTask};
pub(crate) use libpcap::load_libpcap;
pub use mbuf::{lookup_dynflag, DynField, Mbuf, MbufBurst, Segments};
pub use mempool::Mempool;
pub use port::{
    all_ports, find_port, port_info, port_mtu, Port, PortConfig, PortInfo, PortStats, RxQueue,
};
pub use privileges::drop_to;
pub use ring::{stamped_ring, RingConsumer, RingMonitor, RingProducer};
pub use stamped::{cycles_since_rx, HomePool, Received, ReceivedFree, Stamp, StampedBurst};
pub(crate) use uring::{Completed, WriteRing};

/// Most lcores this DPDK build supports (`RTE_MAX_LCORE`): the main lcore
/// and one per poll loop must fit.
pub const MAX_LCORES: usize = dpdk_sys::RTE_MAX_LCORE as usize;

/// Hints the CPU that this is a spin-wait loop (`rte_pause`).
#[inline(always)]
pub fn pause() {
    // SAFETY: a PAUSE instruction; no memory is touched.
    unsafe { dpdk_sys::rte_pause() }
}
