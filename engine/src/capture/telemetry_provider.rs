//! The capture's counters for DPDK telemetry clients (`dpdk-telemetry.py`).

use crate::dpdk::telemetry;
use crate::monitor::Sources;
use std::time::Instant;

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
