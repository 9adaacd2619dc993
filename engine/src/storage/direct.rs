//! Files written with O_DIRECT: whole aligned blocks, several writes in
//! flight through io_uring, the tail of an unfinished block carried into the
//! next buffer. When a file's end must be on disk (a timed flush, a
//! rotation, the end), the tail goes through the page cache once the direct
//! writes before it have finished, so the file is never longer than its
//! records, not even for a moment; a later direct write of that block
//! replaces it. Which records are on disk is [`Flights`]' business.

use super::aligned::{aligned_buffer, realign, round_up};
use super::flights::Flights;
use super::{Books, Landed, WriteError};
use crate::dpdk::{Completed, WriteRing};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

/// How far a write goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Upto {
    /// The whole blocks; the tail goes again with the next buffer.
    WholeBlocks,
    /// Everything, the tail through the page cache once the direct writes
    /// have finished; waits for all of it.
    End,
    /// Everything, without waiting: [`Direct::poll_end`] writes the tail
    /// once the direct writes have finished (a rotation closes the old file
    /// this way).
    EndLater,
}

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
    /// The same file without O_DIRECT, for the tail of the last block.
    tail_file: File,
    /// A tail to write once the direct writes before it have finished.
    pending_tail: Option<PendingTail>,
}

/// The unfinished last block of a file whose end must reach the disk.
#[derive(Debug)]
struct PendingTail {
    offset: u64,
    bytes: Vec<u8>,
    /// File offset just past its last record.
    end: u64,
    /// The buffer's books, when no direct write carries them.
    books: Books,
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
        let tail_file = OpenOptions::new().write(true).open(path)?;
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
            tail_file,
            pending_tail: None,
        })
    }

    /// The file (for preallocation).
    pub(super) fn file(&self) -> &File {
        &self.file
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
    /// a fresh buffer in its place: only its whole blocks, the tail moving to
    /// the new buffer, or up to its end (see [`Upto`]). Time spent waiting
    /// on storage is added to `wait`.
    pub(super) fn write(
        &mut self,
        buffer: &mut Vec<u8>,
        start: &mut usize,
        books: Books,
        upto: Upto,
        wait: &mut Duration,
        landed: &mut Vec<Landed>,
    ) -> Result<(), WriteError> {
        if buffer.len() > *start {
            self.write_buffer(buffer, start, books, upto, wait, landed)?;
        }
        match upto {
            Upto::WholeBlocks | Upto::EndLater => self.settle(landed),
            Upto::End => self.wait_end(wait, landed),
        }
    }

    fn write_buffer(
        &mut self,
        buffer: &mut Vec<u8>,
        start: &mut usize,
        books: Books,
        upto: Upto,
        wait: &mut Duration,
        landed: &mut Vec<Landed>,
    ) -> Result<(), WriteError> {
        let len = buffer.len() - *start;
        let whole = len / self.block * self.block;
        if whole == 0 && upto == Upto::WholeBlocks {
            return Ok(());
        }
        let end = self.base + len as u64;
        let (mut next, next_start) = self.take_buffer(wait, landed).map_err(|mut failed| {
            failed.lost_records += books.records;
            failed
        })?;
        let tail = &buffer[*start + whole..];
        next.extend_from_slice(tail);
        let tail_offset = self.base + whole as u64;
        let mut books = Some(books);
        if upto != Upto::WholeBlocks && whole < len {
            // Written after the direct writes; carries the books if no
            // direct write does.
            self.pending_tail = Some(PendingTail {
                offset: tail_offset,
                bytes: tail.to_vec(),
                end,
                books: if whole == 0 {
                    books.take().unwrap_or_default()
                } else {
                    Books::default()
                },
            });
        }
        if let Some(books) = books.filter(|_| whole > 0) {
            buffer.truncate(*start + whole);
            realign(buffer, start, self.block);
            let full = std::mem::replace(buffer, next);
            let span = Span {
                start: *start,
                len: whole,
                offset: self.base,
            };
            self.submit(full, span, end, whole < len, books);
        } else {
            let spare = std::mem::replace(buffer, next);
            self.spare.push(spare);
        }
        *start = next_start;
        self.base = tail_offset;
        Ok(())
    }

    /// Waits for every write, then writes the pending tail.
    pub(super) fn wait_end(
        &mut self,
        wait: &mut Duration,
        landed: &mut Vec<Landed>,
    ) -> Result<(), WriteError> {
        self.wait_for_all(wait);
        self.write_tail();
        self.settle(landed)
    }

    /// After [`Upto::EndLater`]: `Some` once every write, the tail's last,
    /// has finished.
    pub(super) fn poll_end(&mut self, landed: &mut Vec<Landed>) -> Option<Result<(), WriteError>> {
        if let Err(failed) = self.poll(landed) {
            return Some(Err(failed));
        }
        if self.ring.in_flight() > 0 {
            return None;
        }
        self.write_tail();
        Some(self.settle(landed))
    }

    /// Collects finished writes without waiting.
    pub(super) fn poll(&mut self, landed: &mut Vec<Landed>) -> Result<(), WriteError> {
        if self.ring.in_flight() == 0 {
            return Ok(());
        }
        self.reap(0);
        self.settle(landed)
    }

    /// The pending tail, through the page cache (call with nothing in
    /// flight: the file must not grow past a hole).
    fn write_tail(&mut self) {
        let Some(tail) = self.pending_tail.take() else {
            return;
        };
        let result = if self.flights.any_failed() {
            Err(io::Error::other(
                "not written after an earlier write failed",
            ))
        } else {
            self.tail_file.write_all_at(&tail.bytes, tail.offset)
        };
        self.flights
            .started(NOT_SUBMITTED, tail.end, false, tail.books);
        self.flights.finished(NOT_SUBMITTED, result);
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
                // The ring may have had to drop it: then one more may be made.
                if buffer.capacity() > 0 {
                    self.spare.push(buffer);
                } else {
                    self.unmade += 1;
                }
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
    ) -> Result<(Vec<u8>, usize), WriteError> {
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
            crate::say!("zcap: io_uring wait failed: {error}");
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
    fn settle(&mut self, landed: &mut Vec<Landed>) -> Result<(), WriteError> {
        if self.flights.any_failed() {
            // Not counted as waiting: the capture has failed anyway.
            let mut uncounted = Duration::ZERO;
            self.wait_for_all(&mut uncounted);
        }
        let credit = |books, file_bytes| landed.push(Landed { books, file_bytes });
        let Some(failed) = self.flights.credit(credit) else {
            return Ok(());
        };
        let _ = self.file.set_len(failed.kept_bytes);
        Err(failed)
    }
}
