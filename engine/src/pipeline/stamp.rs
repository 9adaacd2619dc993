//! Stamping packets in the poll loop: the receive time (ns since the epoch)
//! and the receive TSC, carried beside the mbuf pointer through the ring
//! (see [`crate::dpdk::Stamp`]).

use super::clock::{realtime_ns, TscClock};
use super::device_clock::{sample, DeviceClock};
use crate::dpdk::{lookup_dynflag, DynField, Mbuf, Stamp};

/// Where a port's timestamps come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum TimeSource {
    /// The driver stamps each mbuf; multiply its value by this to get ns.
    /// (`net_pcap` replays the file's times in microseconds.)
    Device {
        /// Nanoseconds per device unit.
        ns_per_unit: u64,
    },
    /// zcap reads the TSC once per burst.
    Tsc,
    /// The NIC's RX timestamps on its clock, converted (`-j adapter*`).
    Adapter(DeviceClock),
}

impl TimeSource {
    /// The time source for a port run by `driver`, unless `-j` says.
    pub(crate) fn for_driver(driver: &str) -> Self {
        match driver {
            "net_pcap" => TimeSource::Device { ns_per_unit: 1_000 },
            _ => TimeSource::Tsc,
        }
    }

    /// The JSON's `time_source`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            TimeSource::Device { .. } => "file",
            TimeSource::Tsc => "host",
            TimeSource::Adapter(clock) => clock.source_name(),
        }
    }
}

/// How a device's stamp becomes ns.
#[derive(Debug, Clone, Copy)]
enum DeviceTime {
    Scaled(u64),
    Clock(DeviceClock),
}

/// Stamps packets for one poll loop.
#[derive(Debug, Clone)]
pub(crate) struct Stamper {
    clock: TscClock,
    device: Option<(DynField, u64, DeviceTime)>,
    tsc_hz: u64,
    /// When a device clock is next re-anchored, in TSC ticks.
    next_resync_tsc: u64,
}

impl Stamper {
    /// A stamper for a port with `source`. Falls back to the TSC if the driver
    /// registered no timestamp field.
    pub(crate) fn new(source: TimeSource, tsc_hz: u64, tsc_now: u64) -> Self {
        let time = match source {
            TimeSource::Device { ns_per_unit } => Some(DeviceTime::Scaled(ns_per_unit)),
            TimeSource::Adapter(clock) => Some(DeviceTime::Clock(clock)),
            TimeSource::Tsc => None,
        };
        let device = time.and_then(|time| {
            let field = DynField::lookup("rte_dynfield_timestamp")?;
            let flag = lookup_dynflag("rte_dynflag_rx_timestamp")?;
            Some((field, flag, time))
        });
        Stamper {
            clock: TscClock::new(tsc_hz, tsc_now, realtime_ns()),
            device,
            tsc_hz,
            next_resync_tsc: tsc_now.saturating_add(tsc_hz),
        }
    }

    /// True when timestamps come from the TSC (so time advances while idle).
    pub(crate) fn uses_tsc(&self) -> bool {
        self.device.is_none()
    }

    /// Re-anchors a device clock once a second (`read_clock` reads it).
    #[inline(always)]
    pub(crate) fn resync(&mut self, tsc: u64, read_clock: impl FnOnce() -> Option<u64>) {
        if let Some((_, _, DeviceTime::Clock(clock))) = &mut self.device {
            if tsc >= self.next_resync_tsc {
                self.next_resync_tsc = tsc.saturating_add(self.tsc_hz);
                if let Some(now) = sample(read_clock) {
                    clock.resync(now);
                }
            }
        }
    }

    /// The wall-clock time at TSC reading `tsc`.
    #[inline(always)]
    pub(crate) fn now_ns(&mut self, tsc: u64) -> u64 {
        self.clock.ns_at(tsc, realtime_ns)
    }

    /// The stamp of one packet of a burst received at `tsc` (= `burst_ns`).
    #[inline(always)]
    pub(crate) fn stamp(&self, m: &Mbuf, tsc: u64, burst_ns: u64) -> Stamp {
        let ts_ns = match &self.device {
            Some((field, flag, time)) if m.has_flag(*flag) => match time {
                DeviceTime::Scaled(ns_per_unit) => device_ns(m.read_u64(*field), *ns_per_unit),
                DeviceTime::Clock(clock) => clock.ns_of(m.read_u64(*field)),
            },
            _ => burst_ns,
        };
        Stamp { ts_ns, rx_tsc: tsc }
    }
}

/// A device stamp of `raw` units in ns since the epoch. net_pcap's stamp is
/// libpcap's `tv_sec * 10^6 + tv_usec`, and Debian 12's libpcap (1.10.3)
/// reads a pcap file's unsigned 32-bit seconds as signed: times from
/// 2038-01-19 to 2106-02-07 arrive negative. A negative stamp can mean
/// nothing else, so the signed reading is undone (2^32 seconds added back);
/// one still negative after that is taken as the epoch.
#[inline(always)]
pub(crate) fn device_ns(raw: u64, ns_per_unit: u64) -> u64 {
    let units = raw as i64;
    if units >= 0 {
        return (units as u64).saturating_mul(ns_per_unit);
    }
    let units_per_second = (1_000_000_000 / ns_per_unit.max(1)) as i64;
    let unwrapped = units.saturating_add((1i64 << 32).saturating_mul(units_per_second));
    (unwrapped.max(0) as u64).saturating_mul(ns_per_unit)
}

#[cfg(test)]
mod tests {
    use super::device_ns;

    /// What net_pcap hands over for a pcap record of `secs` seconds (u32 in
    /// the file) and `usecs`, as Debian 12's libpcap reads it (signed).
    fn net_pcap_stamp(secs: u32, usecs: u32) -> u64 {
        ((secs as i32 as i64) * 1_000_000 + i64::from(usecs)) as u64
    }

    #[test]
    fn every_pcap_second_from_1970_to_2106_round_trips() {
        for secs in [
            0u32,
            1,
            1_700_000_000,
            i32::MAX as u32,
            1 << 31,
            4_000_000_000,
            u32::MAX,
        ] {
            for usecs in [0u32, 1, 999_999] {
                let want = u64::from(secs) * 1_000_000_000 + u64::from(usecs) * 1_000;
                assert_eq!(
                    device_ns(net_pcap_stamp(secs, usecs), 1_000),
                    want,
                    "{secs}.{usecs}"
                );
            }
        }
    }

    #[test]
    fn a_stamp_that_cannot_be_a_time_is_the_epoch_not_a_wrap() {
        assert_eq!(device_ns(i64::MIN as u64, 1_000), 0);
        assert_eq!(device_ns(u64::MAX >> 1, 1_000), u64::MAX, "saturates");
    }
}
