//! The stats core while a capture runs: ticks, reports each interval, and
//! stops the capture when the [`StopPolicy`] names a reason.

use super::start::StartedWriter;
use super::CONTROL_TICK;
use crate::config::CaptureConfig;
use crate::monitor::{Monitor, QueueWatchHandle, Sources};
use crate::pipeline::control::Control;
use crate::pipeline::stop::{Snapshot, StopPolicy, StopReason};
use std::time::Instant;

/// The stats core: ticks every [`CONTROL_TICK`], reports every stats
/// interval, and returns once the stop policy names a reason to stop (which
/// it has then asked every thread for).
pub(crate) fn supervise(
    config: &CaptureConfig,
    control: &Control,
    monitor: &mut Monitor,
    writers: &[StartedWriter],
    finite: bool,
    on_interval: &mut dyn FnMut(&mut Monitor),
) -> StopReason {
    let started = Instant::now();
    let mut policy = StopPolicy::new(config.duration, finite.then_some(config.idle_stop));
    let period = config.stats_interval;
    let mut next_tick = period.map(|p| started + p);
    loop {
        std::thread::sleep(CONTROL_TICK);
        let now = Instant::now();
        let snapshot = stop_snapshot(control, monitor.sources(), writers);
        if let Some(reason) = policy.check(now - started, &snapshot) {
            match reason {
                // Writers end only after the poll loops: this one died.
                StopReason::WriterDied => {
                    control.fail("a writer thread stopped unexpectedly".to_owned())
                }
                _ => control.request_stop(),
            }
            return reason;
        }
        if let (Some(due), Some(period)) = (next_tick, period) {
            if now >= due {
                on_interval(monitor);
                next_tick = Some(due + period);
            }
        }
    }
}

/// What the stop policy looks at, read from the shared counters.
fn stop_snapshot(control: &Control, sources: &Sources, writers: &[StartedWriter]) -> Snapshot {
    let queues = &sources.queues;
    let sum = |f: fn(&QueueWatchHandle) -> u64| queues.iter().map(f).sum();
    Snapshot {
        stop_requested: control.stop_requested(),
        count_reached: control.count_reached(),
        writer_finished: writers.iter().any(|w| w.thread.is_finished()),
        rx_packets: sum(|q| q.shared.counters.rx_packets.get()),
        rings_empty: queues.iter().all(|q| q.ring.occupancy() == 0),
        pool_waits: sum(|q| q.shared.counters.pool_waits.get()),
    }
}
