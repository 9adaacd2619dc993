//! What each port's stamps and setup are, for the stampers, the pcapng
//! interface descriptions and the report's `ports`.

use crate::config::{CaptureConfig, TimeStampType};
use crate::dpdk::Port;
use crate::pipeline::stamp::TimeSource;
use crate::session::PortSetup;
use crate::stats::PortReport;

/// Each port's time source, in `-i` order: `-j`'s, else a replay's own
/// times or the host clock.
pub(super) fn time_sources(
    config: &CaptureConfig,
    ports: &[Port],
    setups: &[PortSetup],
) -> Vec<TimeSource> {
    ports
        .iter()
        .zip(setups)
        .map(
            |(port, setup)| match (config.dpdk.time_stamps, setup.clock) {
                (_, Some(clock)) => TimeSource::Adapter(clock),
                (TimeStampType::Host, None) => TimeSource::Tsc,
                _ => TimeSource::for_driver(&port.info().driver),
            },
        )
        .collect()
}

/// What the pcapng interface description says of a time source.
pub(super) fn stamps_described(source: &TimeSource) -> &'static str {
    match source {
        TimeSource::Device { .. } => "timestamps: the replayed file's",
        TimeSource::Tsc => "timestamps: host clock (TSC anchored to the system clock)",
        TimeSource::Adapter(clock) => match clock.source_name() {
            "adapter_real_time" => "timestamps: adapter clock, real time",
            "adapter" => "timestamps: adapter clock, converted to the system clock's time",
            _ => "timestamps: adapter clock, unsynced",
        },
    }
}

/// The report's `ports`.
pub(super) fn port_reports(
    ports: &[Port],
    setups: &[PortSetup],
    sources: &[TimeSource],
) -> Vec<PortReport> {
    ports
        .iter()
        .zip(setups)
        .zip(sources)
        .map(|((port, setup), source)| PortReport {
            port: port.info().id,
            name: port.info().name.clone(),
            driver: port.info().driver.clone(),
            mtu: setup.sizing.mtu,
            scatter: setup.sizing.scatter,
            rss_key: setup.rss_key.to_owned(),
            time_source: source.name().to_owned(),
        })
        .collect()
}
