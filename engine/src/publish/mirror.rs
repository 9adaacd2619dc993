//! `-w` and `--publish` together: a writer's records go to its files as
//! always, and a second copy of each, encoded as pcap, to JetStream. The
//! files stay the record of what was written; what the stream acknowledged
//! or lost is counted beside them.

use super::sink::Published;
use crate::format::pcapng::Interface;
use crate::format::{Encoder, FileFormat, RecordMeta, TsPrecision};
use crate::storage::{Books, Landed};
use std::time::{Duration, Instant};

/// What the stream has done with a writer's copies since the last call.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MirrorNews {
    /// Records JetStream acknowledged.
    pub(crate) published: u64,
    /// Records given up (their messages never acknowledged) or never sent.
    pub(crate) unpublished: u64,
    /// Time the writer waited for a free place in the window.
    pub(crate) waited: Duration,
}

/// See the module docs.
pub(crate) struct Mirror {
    published: Published,
    encoder: Encoder,
    buf: Vec<u8>,
    records: u64,
    message_bytes: usize,
    flush_interval: Duration,
    last_send: Instant,
    landed: Vec<Landed>,
    waited: Duration,
    /// Records lost with a failed send, not yet reported.
    unsent: u64,
    /// The refusal that stopped publishing, once reported: nothing more is
    /// encoded.
    stopped: bool,
}

impl Mirror {
    /// Copies of records of link type `link_type`, in messages of about
    /// `message_bytes`, sent at least every `flush_interval`.
    pub(crate) fn new(
        published: Published,
        link_type: u16,
        precision: TsPrecision,
        snaplen: u32,
        message_bytes: usize,
        flush_interval: Duration,
    ) -> Self {
        let interface = Interface {
            name: String::new(),
            description: String::new(),
            link_type,
            comment: None,
        };
        Mirror {
            published,
            encoder: Encoder::new(FileFormat::Pcap, precision, snaplen, vec![interface]),
            buf: Vec::with_capacity(message_bytes + 2 * snaplen as usize),
            records: 0,
            message_bytes,
            flush_interval,
            last_send: Instant::now(),
            landed: Vec::new(),
            waited: Duration::ZERO,
            unsent: 0,
            stopped: false,
        }
    }

    /// Copies one record whose bytes are `segments`; sends a full message.
    #[inline]
    pub(crate) fn record<'a>(
        &mut self,
        meta: &RecordMeta,
        segments: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), String> {
        if self.stopped {
            self.unsent += 1;
            return Ok(());
        }
        self.encoder.record(&mut self.buf, meta, segments);
        self.records += 1;
        if self.buf.len() >= self.message_bytes {
            return self.send();
        }
        Ok(())
    }

    /// Sends what has waited the flush interval, and collects outcomes.
    pub(crate) fn poll(&mut self, now: Instant) -> Result<(), String> {
        if !self.buf.is_empty() && now.duration_since(self.last_send) >= self.flush_interval {
            self.send()?;
        }
        self.published
            .poll(&mut self.landed)
            .map_err(|e| self.stop(e.error))
    }

    /// Sends the rest and waits for every acknowledgement.
    pub(crate) fn finish(&mut self) -> Result<(), String> {
        let sent = if self.buf.is_empty() {
            Ok(())
        } else {
            self.send()
        };
        let waited = self.published.wait_all(&mut self.waited, &mut self.landed);
        sent.and(waited.map_err(|e| self.stop(e.error)))
    }

    /// What happened since the last call.
    pub(crate) fn take_news(&mut self) -> MirrorNews {
        let published = self.landed.drain(..).map(|l| l.books.records).sum();
        MirrorNews {
            published,
            unpublished: self.published.take_lost() + std::mem::take(&mut self.unsent),
            waited: std::mem::take(&mut self.waited),
        }
    }

    /// What became of the messages.
    pub(crate) fn counts(&self) -> super::PublishCounts {
        self.published.counts()
    }

    fn send(&mut self) -> Result<(), String> {
        self.last_send = Instant::now();
        let books = Books {
            records: std::mem::take(&mut self.records),
            ..Books::default()
        };
        let result = self
            .published
            .write(&mut self.buf, books, &mut self.waited, &mut self.landed);
        result.map_err(|e| {
            self.unsent += e.lost_records;
            self.stop(e.error)
        })
    }

    fn stop(&mut self, error: std::io::Error) -> String {
        self.stopped = true;
        error.to_string()
    }
}
