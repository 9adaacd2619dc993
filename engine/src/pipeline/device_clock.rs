//! A NIC's own clock (the RX timestamp offload, `-j adapter`) in ns since
//! the epoch. Most NICs stamp with a free-running counter: its rate is
//! measured against the system clock (pairs of readings through
//! `rte_eth_read_clock`) and, like the TSC clock, it is re-anchored every
//! second, so the stamps follow the system clock's corrections. A device
//! whose clock already runs at 1 ns per unit within a second of the system
//! clock (mlx5's real-time mode, a PHC that ptp4l disciplines) is taken as
//! it is.

/// A device clock reading and the system time (ns since the epoch) at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    pub(crate) device: u64,
    pub(crate) host_ns: u64,
}

/// Reads the device clock between two system clock readings; the sample
/// is the midpoint. `None` if the device cannot read its clock.
pub(crate) fn sample(read_device: impl FnOnce() -> Option<u64>) -> Option<Sample> {
    let before = super::clock::realtime_ns();
    let device = read_device()?;
    let after = super::clock::realtime_ns();
    Some(Sample {
        device,
        host_ns: before + after.saturating_sub(before) / 2,
    })
}

/// Within this of the system clock, at 1 ns per unit, a device clock is
/// taken to be real time already.
const REAL_TIME_WITHIN_NS: i128 = 1_000_000_000;

/// A disagreement past this at a re-anchor is a step of the system clock
/// (or of the device's), not drift: the rate estimate starts again.
const STEP_NS: i128 = 5_000_000;

/// What a re-anchor found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Resynced {
    /// The device stamps are real time (or unsynced): nothing to do.
    Unchanged,
    /// The conversion was off by this many ns (system minus converted).
    Drift(i64),
    /// The clocks disagreed by this much: a step, followed at once.
    Step(i64),
}

/// See the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DeviceClock {
    /// Bits the device counter has (it wraps at 2^bits).
    mask: u64,
    ns_per_unit: f64,
    real_time: bool,
    /// `-j adapter`: converted to the system's time; `adapter_unsynced`:
    /// the device's own time since its zero.
    synced: bool,
    anchor: Sample,
    /// The start of the current rate estimate.
    baseline: Sample,
}

/// `later - earlier` on a counter of `mask`'s width, as a signed count
/// (a stamp may be a little older than the anchor).
fn units_between(later: u64, earlier: u64, mask: u64) -> i128 {
    let forward = later.wrapping_sub(earlier) & mask;
    if forward > mask / 2 {
        i128::from(forward) - i128::from(mask) - 1
    } else {
        i128::from(forward)
    }
}

impl DeviceClock {
    /// A clock from two samples some milliseconds apart, for a counter of
    /// `bits` bits. An error names what is wrong with the device's clock.
    pub(crate) fn calibrate(
        first: Sample,
        second: Sample,
        bits: u32,
        synced: bool,
    ) -> Result<Self, String> {
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        let host = i128::from(second.host_ns) - i128::from(first.host_ns);
        let units = units_between(second.device, first.device, mask);
        if host <= 0 {
            return Err("the system clock did not advance while measuring".into());
        }
        if units <= 0 {
            return Err("its clock does not advance".into());
        }
        let ns_per_unit = host as f64 / units as f64;
        let offset = i128::from(second.device) - i128::from(second.host_ns);
        let real_time = (ns_per_unit - 1.0).abs() < 1e-3 && offset.abs() < REAL_TIME_WITHIN_NS;
        Ok(DeviceClock {
            mask,
            ns_per_unit,
            real_time,
            synced,
            anchor: second,
            baseline: first,
        })
    }

    /// A device clock that cannot be read (`-j adapter_unsynced` only):
    /// its stamps are taken as nanoseconds on its own clock.
    pub(crate) fn nanoseconds() -> Self {
        let zero = Sample {
            device: 0,
            host_ns: 0,
        };
        DeviceClock {
            mask: u64::MAX,
            ns_per_unit: 1.0,
            real_time: false,
            synced: false,
            anchor: zero,
            baseline: zero,
        }
    }

    /// Where the stamps' time comes from, as the JSON's `time_source` says.
    pub(crate) fn source_name(&self) -> &'static str {
        match (self.real_time, self.synced) {
            (true, _) => "adapter_real_time",
            (false, true) => "adapter",
            (false, false) => "adapter_unsynced",
        }
    }

    /// True if the device's stamps are real time and taken as they are.
    #[cfg(test)]
    pub(crate) fn is_real_time(&self) -> bool {
        self.real_time
    }

    /// Nanoseconds per device unit, as measured.
    #[cfg(test)]
    pub(crate) fn ns_per_unit(&self) -> f64 {
        self.ns_per_unit
    }

    /// The time of a device stamp, ns since the epoch (unsynced: since the
    /// device clock's zero).
    #[inline(always)]
    pub(crate) fn ns_of(&self, device: u64) -> u64 {
        if self.real_time {
            return device;
        }
        if !self.synced {
            return ((device & self.mask) as f64 * self.ns_per_unit) as u64;
        }
        let units = units_between(device, self.anchor.device, self.mask);
        let ns = i128::from(self.anchor.host_ns) + (units as f64 * self.ns_per_unit) as i128;
        ns.clamp(0, i128::from(u64::MAX)) as u64
    }

    /// Re-anchors on a fresh sample: the rate is measured again over the
    /// time since the baseline, unless the clocks disagree past [`STEP_NS`]
    /// (a step: followed at once, the rate kept, the baseline restarted).
    pub(crate) fn resync(&mut self, now: Sample) -> Resynced {
        if self.real_time || !self.synced {
            return Resynced::Unchanged;
        }
        let error = i128::from(now.host_ns) - i128::from(self.ns_of(now.device));
        if error.abs() > STEP_NS {
            self.anchor = now;
            self.baseline = now;
            return Resynced::Step(error as i64);
        }
        let host = i128::from(now.host_ns) - i128::from(self.baseline.host_ns);
        let units = units_between(now.device, self.baseline.device, self.mask);
        if host > 0 && units > 0 {
            self.ns_per_unit = host as f64 / units as f64;
        }
        self.anchor = now;
        Resynced::Drift(error as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000_000_000;

    /// A device counting `hz` per second from `start` units, `ppm` fast.
    struct FakeDevice {
        hz: f64,
        start: u64,
        ppm: f64,
        mask: u64,
    }

    impl FakeDevice {
        fn at(&self, host_ns: u64) -> u64 {
            let secs = (host_ns - T0) as f64 / 1e9;
            let units = (secs * self.hz * (1.0 + self.ppm / 1e6)) as u64;
            self.start.wrapping_add(units) & self.mask
        }

        fn sample(&self, host_ns: u64) -> Sample {
            Sample {
                device: self.at(host_ns),
                host_ns,
            }
        }
    }

    fn calibrated(device: &FakeDevice, bits: u32) -> DeviceClock {
        let first = device.sample(T0);
        let second = device.sample(T0 + 20_000_000);
        DeviceClock::calibrate(first, second, bits, true).unwrap()
    }

    #[test]
    fn a_free_running_clock_converts_to_system_time() {
        // 156.25 MHz, as mlx5's free-running counter on some adapters.
        let device = FakeDevice {
            hz: 156.25e6,
            start: 12_345,
            ppm: 0.0,
            mask: u64::MAX,
        };
        let clock = calibrated(&device, 64);
        assert!(!clock.is_real_time());
        assert!(
            (clock.ns_per_unit() - 6.4).abs() < 1e-3,
            "{}",
            clock.ns_per_unit()
        );
        let at = T0 + 20_000_000 + 300_000;
        let got = clock.ns_of(device.at(at));
        assert!(got.abs_diff(at) < 20, "{got} vs {at}");
    }

    #[test]
    fn drift_is_measured_away_at_each_resync() {
        let device = FakeDevice {
            hz: 1e9,
            start: 5,
            ppm: 50.0,
            mask: u64::MAX,
        };
        // The second calibration sample is read 2 µs late: over 20 ms, a
        // rate 100 ppm wrong, 100 µs a second.
        let first = device.sample(T0);
        let mut second = device.sample(T0 + 20_000_000);
        second.host_ns += 2_000;
        let mut clock = DeviceClock::calibrate(first, second, 64, true).unwrap();
        let unsynced = clock;
        let now = T0 + 1_000_000_000;
        assert!(unsynced.ns_of(device.at(now)).abs_diff(now) > 50_000);
        for second in 1..=5u64 {
            let now = T0 + second * 1_000_000_000;
            let resynced = clock.resync(device.sample(now));
            assert!(matches!(resynced, Resynced::Drift(_)), "{resynced:?}");
            // Half a second on, the conversion is within a microsecond.
            let later = now + 500_000_000;
            let got = clock.ns_of(device.at(later));
            assert!(
                got.abs_diff(later) < 1_000,
                "second {second}: {got} vs {later}"
            );
        }
    }

    #[test]
    fn a_40_bit_counter_wraps_without_a_jump() {
        let mask = (1u64 << 40) - 1;
        // 1 GHz: wraps every 1100 s; start 10 ms before the wrap.
        let device = FakeDevice {
            hz: 1e9,
            start: mask - 30_000_000,
            ppm: 0.0,
            mask,
        };
        let clock = calibrated(&device, 40);
        let after_wrap = T0 + 50_000_000;
        assert!(
            device.at(after_wrap) < 30_000_000,
            "the counter has wrapped"
        );
        let got = clock.ns_of(device.at(after_wrap));
        assert!(got.abs_diff(after_wrap) < 10, "{got} vs {after_wrap}");
        // A stamp from just before the anchor is earlier, not 18 minutes later.
        let before = T0 + 19_000_000;
        assert!(clock.ns_of(device.at(before)).abs_diff(before) < 10);
    }

    #[test]
    fn a_step_of_the_system_clock_is_followed_at_the_next_resync() {
        let device = FakeDevice {
            hz: 1e9,
            start: 0,
            ppm: 0.0,
            mask: u64::MAX,
        };
        let mut clock = calibrated(&device, 64);
        let now = T0 + 1_000_000_000;
        // NTP steps the system clock 2 s ahead: the system time at this
        // device reading is now 2 s later than before.
        let stepped = Sample {
            device: device.at(now),
            host_ns: now + 2_000_000_000,
        };
        match clock.resync(stepped) {
            Resynced::Step(error) => assert!((error - 2_000_000_000).abs() < 1_000, "{error}"),
            other => panic!("not a step: {other:?}"),
        }
        let later = now + 100_000_000;
        let got = clock.ns_of(device.at(later));
        assert!(got.abs_diff(later + 2_000_000_000) < 10, "{got}");
        // The rate survived the step.
        assert!((clock.ns_per_unit() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn real_time_stamps_are_taken_as_they_are() {
        // A PHC disciplined to UTC: 1 ns per unit, 3 µs off the system clock.
        let device = FakeDevice {
            hz: 1e9,
            start: T0 + 3_000,
            ppm: 0.0,
            mask: u64::MAX,
        };
        let mut clock = calibrated(&device, 64);
        assert!(clock.is_real_time());
        assert_eq!(clock.ns_of(T0 + 42), T0 + 42);
        assert_eq!(
            clock.resync(device.sample(T0 + 2_000_000_000)),
            Resynced::Unchanged
        );
    }

    #[test]
    fn unsynced_time_is_the_devices_own_and_broken_clocks_are_refused() {
        let device = FakeDevice {
            hz: 1e9,
            start: 1_000,
            ppm: 0.0,
            mask: u64::MAX,
        };
        let (a, b) = (device.sample(T0), device.sample(T0 + 20_000_000));
        let clock = DeviceClock::calibrate(a, b, 64, false).unwrap();
        assert!(clock.ns_of(5_000).abs_diff(5_000) < 2);
        let stuck = Sample {
            device: 7,
            host_ns: T0,
        };
        let later = Sample {
            device: 7,
            host_ns: T0 + 1_000,
        };
        let err = DeviceClock::calibrate(stuck, later, 64, true).unwrap_err();
        assert!(err.contains("does not advance"), "{err}");
    }
}
