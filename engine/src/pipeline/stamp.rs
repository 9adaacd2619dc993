//! Stamping packets in the poll loop: the receive time (ns since the epoch)
//! and the receive TSC, carried beside the mbuf pointer through the ring
//! (see [`crate::dpdk::Stamp`]).

use super::clock::{realtime_ns, TscClock};
use crate::dpdk::{lookup_dynflag, DynField, Mbuf, Stamp};

/// Where a port's timestamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeSource {
    /// The driver stamps each mbuf; multiply its value by this to get ns.
    /// (`net_pcap` replays the file's times in microseconds.)
    Device {
        /// Nanoseconds per device unit.
        ns_per_unit: u64,
    },
    /// zcap reads the TSC once per burst.
    Tsc,
}

impl TimeSource {
    /// The time source for a port run by `driver`.
    pub(crate) fn for_driver(driver: &str) -> Self {
        match driver {
            "net_pcap" => TimeSource::Device { ns_per_unit: 1_000 },
            _ => TimeSource::Tsc,
        }
    }
}

/// Stamps packets for one poll loop.
#[derive(Debug, Clone)]
pub(crate) struct Stamper {
    clock: TscClock,
    device: Option<(DynField, u64, u64)>,
}

impl Stamper {
    /// A stamper for a port with `source`. Falls back to the TSC if the driver
    /// registered no timestamp field.
    pub(crate) fn new(source: TimeSource, tsc_hz: u64, tsc_now: u64) -> Self {
        let device = match source {
            TimeSource::Device { ns_per_unit } => DynField::lookup("rte_dynfield_timestamp")
                .zip(lookup_dynflag("rte_dynflag_rx_timestamp"))
                .map(|(field, flag)| (field, flag, ns_per_unit)),
            TimeSource::Tsc => None,
        };
        Stamper {
            clock: TscClock::new(tsc_hz, tsc_now, realtime_ns()),
            device,
        }
    }

    /// True when timestamps come from the TSC (so time advances while idle).
    pub(crate) fn uses_tsc(&self) -> bool {
        self.device.is_none()
    }

    /// The wall-clock time at TSC reading `tsc`.
    #[inline(always)]
    pub(crate) fn now_ns(&mut self, tsc: u64) -> u64 {
        self.clock.ns_at(tsc, realtime_ns)
    }

    /// The stamp of one packet of a burst received at `tsc` (= `burst_ns`).
    #[inline(always)]
    pub(crate) fn stamp(&self, m: &Mbuf, tsc: u64, burst_ns: u64) -> Stamp {
        let ts_ns = match self.device {
            Some((field, flag, ns_per_unit)) if m.has_flag(flag) => {
                m.read_u64(field).saturating_mul(ns_per_unit)
            }
            _ => burst_ns,
        };
        Stamp { ts_ns, rx_tsc: tsc }
    }
}
