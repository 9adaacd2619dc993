//! The stats core while a capture runs: ticks, reports each interval, and
//! stops the capture when the [`StopPolicy`] names a reason. Also serves the
//! counters to DPDK telemetry clients.

use super::start::StartedWriter;
use super::CONTROL_TICK;
use crate::config::CaptureConfig;
use crate::dpdk::telemetry;
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

/// Serves `/zcap/stats` and `/zcap/queues` to DPDK telemetry clients.
pub(crate) fn register_telemetry(sources: &Sources) {
    let started = Instant::now();
    let totals = sources.clone();
    let stats: telemetry::Provider = Box::new(move || {
        let r = totals.snapshot(started.elapsed().as_secs_f64());
        vec![
            ("packets_received".into(), r.packets_received),
            ("bytes_received".into(), r.bytes_received),
            ("packets_written".into(), r.packets_written),
            ("bytes_written".into(), r.bytes_written),
            ("packets_filtered".into(), r.packets_filtered),
            ("drops_imissed".into(), r.drops.imissed),
            ("drops_rx_nombuf".into(), r.drops.rx_nombuf),
            ("drops_ierrors".into(), r.drops.ierrors),
            ("drops_ring_full".into(), r.drops.ring_full),
            ("drops_writer".into(), r.drops.writer),
            ("drops_count_limit".into(), r.drops.count_limit),
        ]
    });
    let per_queue = sources.clone();
    let queues: telemetry::Provider = Box::new(move || {
        let r = per_queue.snapshot(0.0);
        r.queues
            .iter()
            .flat_map(|q| {
                let name = format!("port{}_q{}", q.port, q.queue);
                [
                    (format!("{name}_packets_received"), q.packets_received),
                    (format!("{name}_filtered"), q.filtered),
                    (format!("{name}_ring_full"), q.ring_full),
                    (format!("{name}_bursts"), q.bursts),
                ]
            })
            .collect()
    });
    // Telemetry is a convenience: a failure to register costs the capture nothing.
    let _ = telemetry::register(
        "/zcap/stats",
        "zcap capture totals and drops by cause",
        stats,
    );
    let _ = telemetry::register("/zcap/queues", "zcap per-queue counters", queues);
}
