//! The capture report: what happened to every packet, as text and JSON.

use super::json::JsonObject;
use super::thread_cpu::ThreadCpu;
use crate::storage::IoMode;

/// Packets not written, by cause. Every received packet that was not written
/// is counted under exactly one of the zcap-side causes; the port-side causes
/// (`imissed`, `rx_nombuf`, `ierrors`) count packets the port never delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops {
    /// The NIC's RX ring was full (port counter).
    pub imissed: u64,
    /// The driver found no free mbuf (port counter).
    pub rx_nombuf: u64,
    /// Erroneous frames (port counter).
    pub ierrors: u64,
    /// The poll loop's ring to the writer was full.
    pub ring_full: u64,
    /// Lost on the writer side: a failed write, or an immediate stop.
    pub writer: u64,
    /// Received after `-c` was reached, freed unwritten.
    pub count_limit: u64,
}

impl Drops {
    /// Each cause's count since `earlier`.
    pub fn since(&self, earlier: &Drops) -> Drops {
        Drops {
            imissed: self.imissed.saturating_sub(earlier.imissed),
            rx_nombuf: self.rx_nombuf.saturating_sub(earlier.rx_nombuf),
            ierrors: self.ierrors.saturating_sub(earlier.ierrors),
            ring_full: self.ring_full.saturating_sub(earlier.ring_full),
            writer: self.writer.saturating_sub(earlier.writer),
            count_limit: self.count_limit.saturating_sub(earlier.count_limit),
        }
    }

    fn to_json(self) -> JsonObject {
        JsonObject::new()
            .u64("imissed", self.imissed)
            .u64("rx_nombuf", self.rx_nombuf)
            .u64("ierrors", self.ierrors)
            .u64("ring_full", self.ring_full)
            .u64("writer", self.writer)
            .u64("count_limit", self.count_limit)
    }
}

/// What happened during one stats interval (deltas, and that interval's latency).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntervalReport {
    /// Seconds the interval lasted.
    pub duration_s: f64,
    /// Packets received in it.
    pub packets_received: u64,
    /// Bytes received in it.
    pub bytes_received: u64,
    /// Records written in it.
    pub packets_written: u64,
    /// Packets filtered out in it.
    pub packets_filtered: u64,
    /// Drops by cause in it.
    pub drops: Drops,
    /// rx → written latency of the records written in it.
    pub latency_ns: LatencySummary,
    /// Seconds the writers spent waiting on storage in it, summed.
    pub storage_wait_s: f64,
    /// True when the writers spent more than half of it waiting on storage:
    /// `ring_full` drops in it came from the disk, not the CPU.
    pub storage_bound: bool,
}

impl IntervalReport {
    /// The interval from `earlier` to `now`, with its latency.
    pub fn between(
        earlier: &CaptureReport,
        now: &CaptureReport,
        latency_ns: LatencySummary,
    ) -> Self {
        IntervalReport {
            duration_s: now.duration_s - earlier.duration_s,
            packets_received: now.packets_received - earlier.packets_received,
            bytes_received: now.bytes_received - earlier.bytes_received,
            packets_written: now.packets_written - earlier.packets_written,
            packets_filtered: now.packets_filtered - earlier.packets_filtered,
            drops: now.drops.since(&earlier.drops),
            latency_ns,
            storage_wait_s: now.storage_wait_s - earlier.storage_wait_s,
            storage_bound: {
                let waited = now.storage_wait_s - earlier.storage_wait_s;
                let writers = now.writer_threads.max(1) as f64;
                let span = (now.duration_s - earlier.duration_s).max(1e-9);
                waited / writers / span > 0.5
            },
        }
    }

    fn to_json(&self) -> JsonObject {
        JsonObject::new()
            .f64("duration_s", self.duration_s)
            .u64("packets_received", self.packets_received)
            .u64("bytes_received", self.bytes_received)
            .u64("packets_written", self.packets_written)
            .u64("packets_filtered", self.packets_filtered)
            .object("drops", self.drops.to_json())
            .object("latency_ns", self.latency_ns.to_json())
            .f64("storage_wait_s", self.storage_wait_s)
            .bool("storage_bound", self.storage_bound)
    }
}

/// One RX queue's share.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueReport {
    /// Port id.
    pub port: u16,
    /// Queue index on the port.
    pub queue: u16,
    /// EAL lcore of its poll loop.
    pub lcore: u32,
    /// Packets its poll loop received.
    pub packets_received: u64,
    /// Bytes its poll loop received.
    pub bytes_received: u64,
    /// Packets its filter rejected.
    pub filtered: u64,
    /// Packets dropped because its ring was full.
    pub ring_full: u64,
    /// Non-empty bursts.
    pub bursts: u64,
    /// TSC cycles per received packet spent in the poll loop's busy bursts.
    pub cycles_per_packet: f64,
    /// TSC cycles in non-empty bursts.
    pub busy_cycles: u64,
    /// TSC cycles in empty polls and idle back-off.
    pub idle_cycles: u64,
    /// Non-empty bursts by size: 1, 2-3, 4-7, 8-15, 16-31, 32-63, 64.
    pub burst_sizes: Vec<u64>,
    /// TSC cycles per non-empty burst: median, 99th percentile, largest.
    pub burst_cycles: (u64, u64, u64),
}

/// Latency percentiles in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Smallest.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Largest.
    pub max: u64,
    /// Samples.
    pub count: u64,
}

/// Everything a capture (or benchmark) run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaptureReport {
    /// Wall-clock seconds from the start of capture to the end of the drain.
    pub duration_s: f64,
    /// Packets the poll loops received from the ports.
    pub packets_received: u64,
    /// Bytes (wire length) received.
    pub bytes_received: u64,
    /// Records written.
    pub packets_written: u64,
    /// Packet bytes written (after snaplen).
    pub bytes_written: u64,
    /// Bytes written to files, framing included.
    pub file_bytes: u64,
    /// Packets the filter rejected.
    pub packets_filtered: u64,
    /// Drops by cause.
    pub drops: Drops,
    /// Per-queue detail.
    pub queues: Vec<QueueReport>,
    /// rx→written latency, when measured.
    pub latency_ns: LatencySummary,
    /// Files written, in order.
    pub files: Vec<String>,
    /// Mbufs still taken from the pool after shutdown (0: nothing leaked).
    pub mbufs_in_use_at_exit: u64,
    /// Records stamped later than the output format can hold (pcap: after
    /// 2106-02-07 06:28:15 UTC), written with its latest time instead.
    pub timestamps_out_of_range: u64,
    /// The packet pool's mempool driver (see the README's DPDK notes).
    pub pool_driver: String,
    /// The last interval (live lines and the final report).
    pub interval: Option<IntervalReport>,
    /// TSC ticks per second (to turn cycles into time).
    pub tsc_hz: u64,
    /// Per writer thread, in the final report only.
    pub writers: Vec<WriterReport>,
    /// Writer threads.
    pub writer_threads: usize,
    /// Seconds the writers spent waiting on storage, summed.
    pub storage_wait_s: f64,
    /// Closed files this capture removed (`-W`, `--max-disk`), and their bytes.
    pub files_removed: u64,
    /// See `files_removed`.
    pub bytes_removed: u64,
    /// `-w` with `--publish`: of the records written to files, those whose
    /// copy JetStream acknowledged and those whose copy it never did.
    pub packets_published: u64,
    /// See `packets_published`.
    pub packets_unpublished: u64,
    /// Merged files: packets an escape hatch released before their order
    /// was proven, and packets written older than one before them.
    pub merge_forced: u64,
    /// See `merge_forced`.
    pub out_of_order: u64,
    /// How each port was set up, in `-i` order.
    pub ports: Vec<PortReport>,
}

/// How one port was set up: what its frames and stamps are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortReport {
    /// DPDK port id.
    pub port: u16,
    /// Device name, and its driver.
    pub name: String,
    pub driver: String,
    /// The MTU zcap set (`None`: left as it was).
    pub mtu: Option<u16>,
    /// Scattered receive on.
    pub scatter: bool,
    /// `symmetric` or `driver`.
    pub rss_key: String,
    /// Where its stamps come from: `host`, `adapter`, `adapter_unsynced`,
    /// `adapter_real_time` or `file` (a replay's own times).
    pub time_source: String,
}

impl PortReport {
    fn to_json(&self) -> JsonObject {
        let json = JsonObject::new()
            .u64("port", self.port.into())
            .str("name", &self.name)
            .str("driver", &self.driver);
        let json = match self.mtu {
            Some(mtu) => json.u64("mtu", mtu.into()),
            None => json.opt_str("mtu", None),
        };
        json.bool("scatter", self.scatter)
            .str("rss_key", &self.rss_key)
            .str("time_source", &self.time_source)
    }
}

/// What one writer thread cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WriterReport {
    /// The CPU it was placed on (`--writer-cpus`).
    pub cpu: usize,
    /// Its CPU time over the capture, user and kernel; `None` where `/proc`
    /// could not be read or the thread failed.
    pub time: Option<ThreadCpu>,
    /// How it wrote its files (direct or buffered).
    pub io_mode: IoMode,
    /// Seconds it spent waiting on storage.
    pub storage_wait_s: f64,
    /// `--publish`: what became of its messages.
    pub publish: Option<PublishReport>,
}

/// What became of one writer's JetStream messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Acknowledged by JetStream.
    pub acked: u64,
    /// Sent again after a failure or a timeout.
    pub retried: u64,
    /// Given up (their records are writer drops).
    pub lost: u64,
}

impl QueueReport {
    fn to_json(&self, duration_s: f64) -> JsonObject {
        JsonObject::new()
            .u64("port", self.port.into())
            .u64("queue", self.queue.into())
            .u64("lcore", self.lcore.into())
            .u64("packets_received", self.packets_received)
            .u64("bytes_received", self.bytes_received)
            .u64("filtered", self.filtered)
            .u64("ring_full", self.ring_full)
            .u64("bursts", self.bursts)
            .f64("rate_pps", per_second(self.packets_received, duration_s))
            .f64("cycles_per_packet", self.cycles_per_packet)
            .u64("busy_cycles", self.busy_cycles)
            .u64("idle_cycles", self.idle_cycles)
            .u64_array("burst_sizes", &self.burst_sizes)
            .u64("burst_cycles_p50", self.burst_cycles.0)
            .u64("burst_cycles_p99", self.burst_cycles.1)
            .u64("burst_cycles_max", self.burst_cycles.2)
    }
}

impl WriterReport {
    fn to_json(self) -> JsonObject {
        let json = JsonObject::new()
            .u64("cpu", self.cpu as u64)
            .str("io_mode", self.io_mode.name())
            .f64("storage_wait_s", self.storage_wait_s);
        let json = match self.publish {
            Some(p) => json
                .u64("messages_acked", p.acked)
                .u64("messages_retried", p.retried)
                .u64("messages_lost", p.lost),
            None => json,
        };
        match self.time {
            Some(time) => json
                .f64("user_s", time.user_s)
                .f64("system_s", time.system_s),
            None => json,
        }
    }
}

impl LatencySummary {
    fn to_json(self) -> JsonObject {
        JsonObject::new()
            .u64("min", self.min)
            .u64("p50", self.p50)
            .u64("p90", self.p90)
            .u64("p99", self.p99)
            .u64("p999", self.p999)
            .u64("p9999", self.p9999)
            .u64("max", self.max)
            .u64("count", self.count)
    }

    /// The percentile table of the final report.
    pub fn table(&self) -> String {
        let us = |ns: u64| ns as f64 / 1000.0;
        format!(
            "latency rx→written ({} records), µs:\n  min {:.1}  p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  p99.99 {:.1}  max {:.1}",
            self.count,
            us(self.min),
            us(self.p50),
            us(self.p90),
            us(self.p99),
            us(self.p999),
            us(self.p9999),
            us(self.max)
        )
    }
}

impl CaptureReport {
    /// Received packets per second.
    pub fn rate_pps(&self) -> f64 {
        per_second(self.packets_received, self.duration_s)
    }

    /// Received bits per second (wire bytes × 8).
    pub fn rate_bps(&self) -> f64 {
        per_second(self.bytes_received * 8, self.duration_s)
    }

    /// Poll-loop TSC cycles per received packet, over all queues.
    pub fn cycles_per_packet(&self) -> f64 {
        let cycles: f64 = self
            .queues
            .iter()
            .map(|q| q.cycles_per_packet * q.packets_received as f64)
            .sum();
        if self.packets_received == 0 {
            0.0
        } else {
            cycles / self.packets_received as f64
        }
    }

    /// Received packets not accounted for as written, filtered or dropped by a
    /// zcap-side cause. Zero when conservation holds.
    pub fn unaccounted(&self) -> i128 {
        i128::from(self.packets_received)
            - i128::from(self.packets_written)
            - i128::from(self.packets_filtered)
            - i128::from(self.drops.ring_full)
            - i128::from(self.drops.writer)
            - i128::from(self.drops.count_limit)
    }

    /// The JSON object of `--stats-json` and `zcap-bench --json` (its keys
    /// are the README's contract).
    pub fn to_json(&self) -> String {
        let drops = self.drops.to_json();
        let latency = self.latency_ns.to_json();
        let queues = self
            .queues
            .iter()
            .map(|q| q.to_json(self.duration_s))
            .collect();
        let json = JsonObject::new()
            .f64("duration_s", self.duration_s)
            .u64("packets_received", self.packets_received)
            .u64("bytes_received", self.bytes_received)
            .u64("packets_written", self.packets_written)
            .u64("bytes_written", self.bytes_written)
            .u64("file_bytes", self.file_bytes)
            .u64("packets_filtered", self.packets_filtered)
            .object("drops", drops)
            .f64("rate_pps", self.rate_pps())
            .f64("rate_bps", self.rate_bps())
            .object("latency_ns", latency)
            .f64("cycles_per_packet", self.cycles_per_packet())
            .array("queues", queues)
            .u64("mbufs_in_use_at_exit", self.mbufs_in_use_at_exit)
            .u64("timestamps_out_of_range", self.timestamps_out_of_range)
            .f64("storage_wait_s", self.storage_wait_s)
            .u64("files_removed", self.files_removed)
            .u64("bytes_removed", self.bytes_removed)
            .u64("packets_published", self.packets_published)
            .u64("packets_unpublished", self.packets_unpublished)
            .u64("merge_forced", self.merge_forced)
            .u64("out_of_order", self.out_of_order)
            .str("pool_driver", &self.pool_driver)
            .u64("tsc_hz", self.tsc_hz)
            .array(
                "ports",
                self.ports.iter().map(PortReport::to_json).collect(),
            );
        let json = if self.writers.is_empty() {
            json
        } else {
            let writers = self.writers.iter().map(|w| w.to_json()).collect();
            json.array("writers", writers)
        };
        match &self.interval {
            Some(interval) => json.object("interval", interval.to_json()).finish(),
            None => json.finish(),
        }
    }

    /// The final summary, tcpdump/dumpcap style, one fact per line.
    pub fn summary(&self) -> String {
        let d = &self.drops;
        format!(
            "{} packets received, {} written ({} bytes), {} filtered\n\
             dropped: {} imissed, {} rx_nombuf, {} ierrors, {} ring_full, {} writer, {} count_limit\n\
             {:.3} s, {:.3} Mpps, {:.3} Gbit/s",
            self.packets_received,
            self.packets_written,
            self.bytes_written,
            self.packets_filtered,
            d.imissed,
            d.rx_nombuf,
            d.ierrors,
            d.ring_full,
            d.writer,
            d.count_limit,
            self.duration_s,
            self.rate_pps() / 1e6,
            self.rate_bps() / 1e9,
        )
    }
}

fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests;
