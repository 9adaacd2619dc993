//! Files written with O_DIRECT: whole aligned blocks, several writes in
//! flight through io_uring, the tail of an unfinished block carried into the
//! next buffer, and the file cut to its true length whenever its end is
//! written (a timed flush, a rotation, the end). Which records are on disk
//! is [`Flights`]' business.

use super::aligned::{aligned_buffer, realign, round_up};
use super::flights::{Failed, Flights};
use super::{Books, Landed};
use crate::dpdk::{Completed, WriteRing};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

/// Slot of a write the kernel never took (its flight fails at once).
const NOT_SUBMITTED: usize = usize::MAX;

/// Where one write in flight came from, to finish a short write.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    len: usize,
    offset: u64,
}

/// See the module docs. The ring is declared first so it is dropped (and
/// waits for its writes) before the file is closed.
pub(super) struct Direct {
    ring: WriteRing,
    file: File,
    block: usize,
    buffer_bytes: usize,
    /// File offset of the current buffer's first content byte (aligned).
    base: u64,
    flights: Flights,
    spans: Vec<Option<Span>>,
    /// Buffers not in use, and how many more may be made.
    spare: Vec<Vec<u8>>,
    unmade: usize,
    completed: Vec<Completed>,
}

impl Direct {
    /// Creates (or truncates) `path` for direct I/O with `buffers` buffers
    /// (one filling, the rest in flight). EINVAL: the file system refuses it.
    pub(super) fn create(path: &Path, buffer_bytes: usize, buffers: usize) -> io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)?;
        let block = (file.metadata()?.blksize() as usize).clamp(512, 1 << 20);
        let in_flight = buffers.max(2) - 1;
        Ok(Direct {
            ring: WriteRing::new(in_flight)?,
            file,
            block,
            buffer_bytes: round_up(buffer_bytes.max(block), block),
            base: 0,
            flights: Flights::default(),
            spans: vec![None; in_flight],
            spare: Vec::new(),
            unmade: in_flight,
            completed: Vec::new(),
        })
    }

    /// Bytes per write, rounded to whole blocks.
    pub(super) fn buffer_bytes(&self) -> usize {
        self.buffer_bytes
    }

    /// The first buffer to fill, and its content start.
    pub(super) fn first_buffer(&self) -> (Vec<u8>, usize) {
        aligned_buffer(self.buffer_bytes, self.block)
    }

    /// File offset of the current buffer's first content byte.
    pub(super) fn base(&self) -> u64 {
        self.base
    }

    /// Writes `buffer[*start..]`, whose records' books are `books`, and puts
    /// a fresh buffer in its place. `to_the_end`: the last block goes out
    /// padded, every write is waited for and the file cut to its true
    /// length; else only whole blocks go and the tail moves to the new
    /// buffer. Time spent waiting on storage is added to `wait`.
    pub(super) fn write(
        &mut self,
        buffer: &mut Vec<u8>,
        start: &mut usize,
        books: Books,
        to_the_end: bool,
        wait: &mut Duration,
        landed: &mut Vec<Landed>,
    ) -> Result<(), Failed> {
        let len = buffer.len() - *start;
        if len == 0 && to_the_end {
            self.wait_for_all(wait);
            return self.settle(landed);
        }
        let whole = len / self.block * self.block;
        let write_len = if to_the_end {
            round_up(len, self.block)
        } else {
            whole
        };
        let end = self.base + len as u64;
        let (mut next, next_start) = self.take_buffer(wait, landed).map_err(|mut failed| {
            failed.lost_records += books.records;
            failed
        })?;
        next.extend_from_slice(&buffer[*start + whole..]);
        buffer.resize(*start + write_len, 0);
        realign(buffer, start, self.block);
        let full = std::mem::replace(buffer, next);
        let span = Span {
            start: *start,
            len: write_len,
            offset: self.base,
        };
        *start = next_start;
        self.base += whole as u64;
        let carries_tail = !to_the_end && whole < len;
        self.submit(full, span, end, carries_tail, books);
        if to_the_end {
            self.wait_for_all(wait);
            self.settle(landed)?;
            self.file
                .set_len(end)
                .map_err(|error| self.failed_at(error))?;
        }
        self.settle(landed)
    }

    /// Collects finished writes without waiting.
    pub(super) fn poll(&mut self, landed: &mut Vec<Landed>) -> Result<(), Failed> {
        self.reap(0);
        self.settle(landed)
    }

    fn submit(&mut self, buffer: Vec<u8>, span: Span, end: u64, carries_tail: bool, books: Books) {
        let range = span.start..span.start + span.len;
        match self
            .ring
            .submit(self.file.as_raw_fd(), buffer, range, span.offset)
        {
            Ok(slot) => {
                self.spans[slot] = Some(span);
                self.flights.started(slot, end, carries_tail, books);
            }
            Err((error, buffer)) => {
                self.spare.push(buffer);
                self.flights
                    .started(NOT_SUBMITTED, end, carries_tail, books);
                self.flights.finished(NOT_SUBMITTED, Err(error));
            }
        }
    }

    /// A buffer to fill: a spare one, a new one while fewer than allowed
    /// exist, else the next to come back from the kernel.
    fn take_buffer(
        &mut self,
        wait: &mut Duration,
        landed: &mut Vec<Landed>,
    ) -> Result<(Vec<u8>, usize), Failed> {
        if self.spare.is_empty() && self.unmade == 0 {
            let began = Instant::now();
            self.reap(1);
            *wait += began.elapsed();
            self.settle(landed)?;
        }
        match self.spare.pop() {
            Some(mut buffer) => {
                buffer.clear();
                let start = buffer.as_ptr().align_offset(self.block);
                buffer.resize(start, 0);
                Ok((buffer, start))
            }
            None => {
                self.unmade = self.unmade.saturating_sub(1);
                Ok(aligned_buffer(self.buffer_bytes, self.block))
            }
        }
    }

    /// Moves finished writes to the books, waiting for at least `at_least`.
    /// A short write is finished here, synchronously, for its true result.
    fn reap(&mut self, at_least: usize) {
        let mut completed = std::mem::take(&mut self.completed);
        if let Err(error) = self.ring.reap(at_least, &mut completed) {
            // The ring itself failed: nothing more will complete through it.
            eprintln!("zcap: io_uring wait failed: {error}");
        }
        for done in completed.drain(..) {
            let span = self.spans[done.slot].take().expect("a span per write");
            let result = self.finish_write(&done, span);
            self.flights.finished(done.slot, result);
            self.spare.push(done.buffer);
        }
        self.completed = completed;
    }

    fn finish_write(&self, done: &Completed, span: Span) -> io::Result<()> {
        let written = match usize::try_from(done.result) {
            Err(_) => return Err(io::Error::from_raw_os_error(-done.result)),
            Ok(n) if n == span.len => return Ok(()),
            Ok(n) => n,
        };
        let rest = &done.buffer[span.start + written..span.start + span.len];
        self.file.write_all_at(rest, span.offset + written as u64)
    }

    fn wait_for_all(&mut self, wait: &mut Duration) {
        let began = Instant::now();
        while self.ring.in_flight() > 0 {
            self.reap(self.ring.in_flight());
        }
        *wait += began.elapsed();
    }

    /// Credits what is on disk; on a failure, waits out every other write
    /// first and cuts the file back to its last whole record.
    fn settle(&mut self, landed: &mut Vec<Landed>) -> Result<(), Failed> {
        if self.flights.any_failed() {
            // Not counted as waiting: the capture has failed anyway.
            let mut uncounted = Duration::ZERO;
            self.wait_for_all(&mut uncounted);
        }
        let credit = |books, file_bytes| landed.push(Landed { books, file_bytes });
        let Some(failed) = self.flights.credit(credit) else {
            return Ok(());
        };
        let _ = self.file.set_len(failed.keep_len);
        Err(failed)
    }

    /// A failure outside the writes (cutting the file): nothing is lost
    /// but the books say the file is no longer to be trusted.
    fn failed_at(&self, error: io::Error) -> Failed {
        Failed {
            error,
            keep_len: self.flights.durable_end(),
            lost_records: 0,
        }
    }
}
