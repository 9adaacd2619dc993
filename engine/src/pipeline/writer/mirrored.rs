//! A writer's copies of its records for JetStream (`-w` with
//! `--publish`): made as records are written, sent and booked each round.

use super::packet::{Packet, Release};
use super::records::RecordWriter;
use crate::format::RecordMeta;
use std::time::Instant;

impl<F: Release> RecordWriter<F> {
    /// Copies a record for JetStream (kept out of the plain path's loop).
    #[inline(never)]
    pub(super) fn mirror_record(&mut self, meta: &RecordMeta, packet: &F::Packet) {
        let Some(mirror) = self.mirror.as_mut() else {
            return;
        };
        let copied = match packet.contiguous() {
            Some(bytes) => mirror.record(meta, [bytes]),
            None => mirror.record(meta, packet.segments()),
        };
        if let Err(error) = copied {
            self.mirror_failed(error);
        }
    }

    /// A writer round for the copies: send what waited, book what came back.
    pub(crate) fn mirror_round(&mut self, now: Instant, finish: bool) {
        let Some(mirror) = self.mirror.as_mut() else {
            return;
        };
        let result = if finish {
            mirror.finish()
        } else {
            mirror.poll(now)
        };
        let news = mirror.take_news();
        self.counters.published_packets.add(news.published);
        self.counters.unpublished_packets.add(news.unpublished);
        self.counters
            .storage_wait_ns
            .add(news.waited.as_nanos() as u64);
        if let Err(error) = result {
            self.mirror_failed(error);
        }
    }

    /// Publishing failed for good: the capture stops (exit 1); its files
    /// are whole, every record in them is written.
    #[cold]
    fn mirror_failed(&mut self, error: String) {
        self.control.fail(format!(
            "cannot publish: {error} (the files are kept whole)"
        ));
    }
}
