//! Per-core counters: each has exactly one writing thread and is read by the
//! stats core without locks. Cache-line aligned so cores never share a line.

use std::sync::atomic::{AtomicU64, Ordering};

/// A 64-bit counter written by one thread only (load + store, no locked add).
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning thread may call this.
    #[inline(always)]
    pub(crate) fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// The current value (any thread).
    #[inline(always)]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What one poll loop (one RX queue) has seen. Written by that poll loop only.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct QueueCounters {
    /// Packets taken from the port by this poll loop.
    pub rx_packets: Counter,
    /// Bytes (wire length) of those packets.
    pub rx_bytes: Counter,
    /// Packets the filter rejected (freed, not written).
    pub filtered: Counter,
    /// Packets freed because the ring to the writer was full.
    pub ring_full: Counter,
    /// Non-empty bursts received.
    pub bursts: Counter,
    /// Polls that returned nothing.
    pub empty_polls: Counter,
    /// Receives held off because the pool had fewer free mbufs than the
    /// replay's reserve (finite sources only; see `rx::PoolGuard`).
    pub pool_waits: Counter,
    /// TSC cycles spent on non-empty bursts (receive, stamp, filter, enqueue).
    pub busy_cycles: Counter,
    /// TSC cycles spent on polls that found nothing (and idle back-off).
    pub idle_cycles: Counter,
    /// Non-empty bursts by size: 1, 2-3, 4-7, 8-15, 16-31, 32-63, 64.
    pub burst_sizes: [Counter; BURST_SIZE_BUCKETS],
}

/// Buckets of the burst-size distribution (powers of two up to 64).
pub(crate) const BURST_SIZE_BUCKETS: usize = 7;

/// The burst-size bucket of a burst of `n` packets (n ≥ 1).
#[inline(always)]
pub(crate) fn burst_size_bucket(n: usize) -> usize {
    (usize::BITS - 1 - n.max(1).leading_zeros()).min(BURST_SIZE_BUCKETS as u32 - 1) as usize
}

impl QueueCounters {
    /// This queue's line of a report. In rxonly the poll loop leaves the byte
    /// and ring counters at zero; the report says so.
    pub(crate) fn report(&self, port: u16, queue: u16, lcore: u32) -> super::QueueReport {
        let rx = self.rx_packets.get();
        let busy = self.busy_cycles.get();
        super::QueueReport {
            port,
            queue,
            lcore,
            packets_received: rx,
            bytes_received: self.rx_bytes.get(),
            filtered: self.filtered.get(),
            ring_full: self.ring_full.get(),
            bursts: self.bursts.get(),
            cycles_per_packet: if rx == 0 {
                0.0
            } else {
                busy as f64 / rx as f64
            },
            busy_cycles: busy,
            idle_cycles: self.idle_cycles.get(),
            burst_sizes: self.burst_sizes.iter().map(|b| b.get()).collect(),
            burst_cycles: (0, 0, 0),
        }
    }
}

/// A queue's shared state: its counters and the merge watermark.
#[derive(Debug, Default)]
pub(crate) struct QueueShared {
    /// The poll loop's counters.
    pub counters: QueueCounters,
    /// Every packet this queue enqueues from now on has a timestamp at or above
    /// this (ns since the epoch); `u64::MAX` once the poll loop has finished.
    pub watermark_ns: AtomicU64,
}

/// What one writer has done. Written by that writer only.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct WriterCounters {
    /// Records written to files.
    pub written_packets: Counter,
    /// Packet bytes kept in those records (after snaplen).
    pub written_bytes: Counter,
    /// Wire length of the packets written.
    pub written_wire_bytes: Counter,
    /// Bytes written to files (headers and framing included).
    pub file_bytes: Counter,
    /// Packets lost on the writer side: a failed write, or an abort.
    pub dropped_writer: Counter,
    /// Packets received after `-c` was reached, freed unwritten.
    pub dropped_count_limit: Counter,
    /// Records stamped later than the file format can hold, written with its
    /// latest time instead.
    pub timestamps_out_of_range: Counter,
    /// Writes that reached the disk (write(2) calls, or direct writes).
    pub writes: Counter,
    /// Nanoseconds spent waiting on storage: in write(2), or for a direct
    /// write to finish because every buffer was in flight.
    pub storage_wait_ns: Counter,
    /// Closed files removed (`-W`, `--max-disk`), and their bytes.
    pub files_removed: Counter,
    /// See `files_removed`.
    pub bytes_removed: Counter,
    /// `-w` with `--publish`: records of the files JetStream acknowledged a
    /// copy of, and those whose copy it never did.
    pub published_packets: Counter,
    /// See `published_packets`.
    pub unpublished_packets: Counter,
    /// A merge's packets released by an escape hatch (a queue quiet past
    /// the stall bound, or too many held) before their order was proven.
    pub merge_forced: Counter,
    /// A merge's packets written older than one written before them.
    pub out_of_order: Counter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_sizes_fall_in_power_of_two_buckets() {
        let buckets: Vec<usize> = [1, 2, 3, 4, 7, 8, 31, 32, 63, 64]
            .iter()
            .map(|&n| burst_size_bucket(n))
            .collect();
        assert_eq!(buckets, vec![0, 1, 1, 2, 2, 3, 4, 5, 5, 6]);
    }
}
