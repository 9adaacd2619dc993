//! What the stats core reads: every poll loop's and writer's counters
//! (without locks), their histograms once per interval, and the ports'
//! counters, turned into a report per interval and a final one. Writing them
//! (JSON lines, the `.hlog`, the live line) is `capture`'s.

use crate::dpdk::{Port, RingMonitor};
use crate::stats::histogram::{new_histogram, summarize, Mailbox};
use crate::stats::{CaptureReport, Drops, QueueShared, WriterCounters};
use crate::stats::{IntervalReport, PortReport};
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest the stats core waits for a writer's latency samples at the end of
/// an interval. A writer answers within one burst or idle round, unless the
/// scheduler takes its CPU away: 50 ms was not enough on a loaded 2-core CI
/// machine (an interval reported 10.9 M written and none of their latency).
/// Only a writer stuck in a slow write makes the stats core wait this long.
const LATENCY_ANSWER_WAIT: Duration = Duration::from_millis(250);

/// What the stats core knows about one RX queue.
pub(crate) struct QueueWatch {
    /// The poll loop's counters.
    pub shared: Arc<QueueShared>,
    /// Its ring's fill level.
    pub ring: RingMonitor,
    /// Where its cycles-per-burst histogram arrives.
    pub burst_cycles: Mailbox,
    /// Port id.
    pub port: u16,
    /// Queue index.
    pub queue: u16,
    /// Lcore of its poll loop.
    pub lcore: u32,
}

/// Everything the reports are built from; cheap to clone (all handles), so
/// DPDK telemetry can read it from its own thread.
#[derive(Clone)]
pub(crate) struct Sources {
    /// One per RX queue.
    pub queues: Arc<Vec<QueueWatchHandle>>,
    /// One per writer.
    pub writers: Arc<Vec<Arc<WriterCounters>>>,
    /// The ports, for their own drop counters.
    pub ports: Arc<Vec<Port>>,
    /// The packet pool's mempool driver.
    pub pool_driver: Arc<str>,
    /// How each port was set up.
    pub port_reports: Arc<Vec<PortReport>>,
}

/// The shared part of a [`QueueWatch`].
#[derive(Clone)]
pub(crate) struct QueueWatchHandle {
    /// Counters.
    pub shared: Arc<QueueShared>,
    /// Ring fill level.
    pub ring: RingMonitor,
    /// Port id.
    pub port: u16,
    /// Queue index.
    pub queue: u16,
    /// Lcore.
    pub lcore: u32,
}

impl Sources {
    /// Totals now, `elapsed` seconds after the start.
    pub(crate) fn snapshot(&self, elapsed: f64) -> CaptureReport {
        let mut report = CaptureReport {
            duration_s: elapsed,
            pool_driver: self.pool_driver.to_string(),
            ports: self.port_reports.to_vec(),
            ..CaptureReport::default()
        };
        for w in self.queues.iter() {
            let c = &w.shared.counters;
            let rx = c.rx_packets.get();
            report.packets_received += rx;
            report.bytes_received += c.rx_bytes.get();
            report.packets_filtered += c.filtered.get();
            report.drops.ring_full += c.ring_full.get();
            report.queues.push(c.report(w.port, w.queue, w.lcore));
        }
        for c in self.writers.iter() {
            report.packets_written += c.written_packets.get();
            report.bytes_written += c.written_bytes.get();
            report.file_bytes += c.file_bytes.get();
            report.drops.writer += c.dropped_writer.get();
            report.drops.count_limit += c.dropped_count_limit.get();
            report.timestamps_out_of_range += c.timestamps_out_of_range.get();
            report.storage_wait_s += c.storage_wait_ns.get() as f64 / 1e9;
            report.files_removed += c.files_removed.get();
            report.bytes_removed += c.bytes_removed.get();
            report.packets_published += c.published_packets.get();
            report.packets_unpublished += c.unpublished_packets.get();
            report.merge_forced += c.merge_forced.get();
            report.out_of_order += c.out_of_order.get();
        }
        report.writer_threads = self.writers.len();
        report.drops = self
            .ports
            .iter()
            .map(|p| p.stats())
            .fold(report.drops, |d, s| Drops {
                imissed: d.imissed + s.imissed,
                rx_nombuf: d.rx_nombuf + s.rx_nombuf,
                ierrors: d.ierrors + s.ierrors,
                ..d
            });
        report
    }

    /// The fullest ring's fill level, 0.0 to 1.0.
    pub(crate) fn ring_fill(&self) -> f64 {
        self.queues
            .iter()
            .map(|w| f64::from(w.ring.occupancy()) / f64::from(w.ring.capacity().max(1)))
            .fold(0.0, f64::max)
    }
}

/// The stats core's state over a run.
pub(crate) struct Monitor {
    sources: Sources,
    burst_cycles: Vec<(Mailbox, Histogram<u64>)>,
    latency: Vec<Mailbox>,
    interval_latency: Histogram<u64>,
    total_latency: Histogram<u64>,
    started: Instant,
    previous: CaptureReport,
}

impl Monitor {
    /// Starts watching `queues` and `writers` (with their latency mailboxes).
    pub(crate) fn new(
        queues: Vec<QueueWatch>,
        writers: Vec<(Arc<WriterCounters>, Mailbox)>,
        ports: Vec<Port>,
        pool_driver: String,
        port_reports: Vec<PortReport>,
    ) -> Self {
        let burst_cycles = queues
            .iter()
            .map(|q| (q.burst_cycles.clone(), new_histogram()))
            .collect();
        let handles = queues
            .into_iter()
            .map(|q| QueueWatchHandle {
                shared: q.shared,
                ring: q.ring,
                port: q.port,
                queue: q.queue,
                lcore: q.lcore,
            })
            .collect();
        let (counters, latency): (Vec<_>, Vec<_>) = writers.into_iter().unzip();
        let sources = Sources {
            queues: Arc::new(handles),
            writers: Arc::new(counters),
            ports: Arc::new(ports),
            pool_driver: pool_driver.into(),
            port_reports: Arc::new(port_reports),
        };
        Monitor {
            previous: sources.snapshot(0.0),
            sources,
            burst_cycles,
            latency,
            interval_latency: new_histogram(),
            total_latency: new_histogram(),
            started: Instant::now(),
        }
    }

    /// The counters' handles (for telemetry, and for stop decisions).
    pub(crate) fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Seconds since the start.
    pub(crate) fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Closes an interval: collects the histograms handed over since the last
    /// one and returns the report (totals plus the interval) and the interval's
    /// latency histogram (for the interval log).
    pub(crate) fn interval(&mut self) -> (CaptureReport, &Histogram<u64>) {
        self.interval_latency.reset();
        // Every writer hands over what it wrote up to now, so this interval
        // reports its own packets (they answer within one burst).
        let asked: Vec<u64> = self.latency.iter().map(Mailbox::ask).collect();
        let deadline = Instant::now() + LATENCY_ANSWER_WAIT;
        for (mailbox, asked) in self.latency.iter().zip(asked) {
            mailbox.collect_answer(asked, deadline, &mut self.interval_latency);
        }
        let _ = self.total_latency.add(&self.interval_latency);
        for (mailbox, total) in &mut self.burst_cycles {
            mailbox.collect(total);
        }
        let mut report = self.sources.snapshot(self.elapsed());
        self.fill_burst_cycles(&mut report);
        report.latency_ns = summarize(&self.total_latency);
        report.interval = Some(IntervalReport::between(
            &self.previous,
            &report,
            summarize(&self.interval_latency),
        ));
        self.previous = report.clone();
        (report, &self.interval_latency)
    }

    fn fill_burst_cycles(&self, report: &mut CaptureReport) {
        for (q, (_, h)) in report.queues.iter_mut().zip(&self.burst_cycles) {
            if !h.is_empty() {
                q.burst_cycles = (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max());
            }
        }
    }

    /// Stops watching: hands the ports back (so they can be stopped) and
    /// returns the last interval's report, which is the final one.
    pub(crate) fn finish(mut self) -> (CaptureReport, Histogram<u64>, Histogram<u64>) {
        let (report, interval) = self.interval();
        let interval = interval.clone();
        let total = std::mem::replace(&mut self.total_latency, new_histogram());
        (report, interval, total)
    }
}
