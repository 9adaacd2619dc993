//! A writer's books: what each record adds while it is being encoded
//! ([`Tally`], settled once per burst), and what reaches the disk, booked
//! into the counters and the latency histogram ([`book`]).

use crate::dpdk::{cycles_since_rx, rdtsc};
use crate::stats::histogram::Recorder;
use crate::stats::WriterCounters;
use crate::storage::{Books, FileSink, WriteError};

/// Adds what reached `sink`'s disk to `counters` and `latency`, and the
/// time spent waiting on storage; returns the error of a failed write.
pub(super) fn book(
    sink: &mut FileSink,
    counters: &WriterCounters,
    latency: &mut Recorder,
    ns_per_tick: f64,
    result: Result<(), WriteError>,
) -> Option<WriteError> {
    // Called every writer round: most find nothing new.
    if !sink.has_news() {
        return result.err();
    }
    let written_at = rdtsc();
    sink.take_landed(|books, file_bytes| {
        counters.writes.add(1);
        counters.file_bytes.add(file_bytes);
        counters.written_packets.add(books.records);
        counters.written_bytes.add(books.bytes);
        counters.written_wire_bytes.add(books.wire);
        for &(rx_tick, count) in &books.rx_ticks {
            let ns = cycles_since_rx(rx_tick, written_at) as f64 * ns_per_tick;
            latency.record_n(ns as u64, count);
        }
    });
    counters
        .storage_wait_ns
        .add(sink.take_storage_wait().as_nanos() as u64);
    // Messages JetStream never acknowledged.
    counters.dropped_writer.add(sink.take_lost());
    latency.answer();
    result.err()
}

/// What a run of plain records adds to a writer's pending bookkeeping.
#[derive(Default)]
pub(super) struct Tally {
    records: u64,
    bytes: u64,
    wire: u64,
    /// The receive tick of the latest records, and how many share it.
    tick: u32,
    tick_records: u64,
}

impl Tally {
    /// True if it counted nothing since it was last settled.
    #[inline(always)]
    pub(super) fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Adds what it counted to `books` and starts again; returns the
    /// records it held.
    #[inline(always)]
    pub(super) fn settle_into(&mut self, books: &mut Books) -> u64 {
        books.records += self.records;
        books.bytes += self.bytes;
        books.wire += self.wire;
        push_tick_run(&mut books.rx_ticks, self.tick, self.tick_records);
        std::mem::take(self).records
    }

    /// Counts one record of `orig_len` bytes on the wire; a finished run of
    /// equal receive ticks goes to `runs`.
    #[inline(always)]
    pub(super) fn add(
        &mut self,
        orig_len: u32,
        snaplen: u32,
        rx_tick: u32,
        runs: &mut Vec<(u32, u64)>,
    ) {
        self.records += 1;
        self.bytes += u64::from(orig_len.min(snaplen));
        self.wire += u64::from(orig_len);
        if rx_tick != self.tick && self.tick_records > 0 {
            push_tick_run(runs, self.tick, self.tick_records);
            self.tick_records = 0;
        }
        self.tick = rx_tick;
        self.tick_records += 1;
    }
}

/// Appends `records` records received at `tick` to `runs`: a burst shares one
/// TSC reading, so one entry per run of equal readings.
#[inline(always)]
fn push_tick_run(runs: &mut Vec<(u32, u64)>, tick: u32, records: u64) {
    match runs.last_mut() {
        Some((last, count)) if *last == tick => *count += records,
        _ => runs.push((tick, records)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_keep_snaplen_wire_bytes_and_tick_runs() {
        let mut runs = Vec::new();
        let mut tally = Tally::default();
        for (len, tick) in [(100, 7), (2000, 7), (60, 8), (60, 8), (60, 7)] {
            tally.add(len, 1500, tick, &mut runs);
        }
        assert_eq!((tally.records, tally.bytes, tally.wire), (5, 1780, 2280));
        // Finished runs are out; the last one is still being counted.
        assert_eq!(runs, vec![(7, 2), (8, 2)]);
        assert_eq!((tally.tick, tally.tick_records), (7, 1));
        push_tick_run(&mut runs, 8, 3);
        push_tick_run(&mut runs, 9, 1);
        assert_eq!(
            runs,
            vec![(7, 2), (8, 5), (9, 1)],
            "equal ticks share an entry"
        );
    }
}
