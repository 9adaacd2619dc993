//! One capture file and the buffer its records are encoded into. The
//! encoder appends to [`FileSink::buffer`]; the sink decides when the buffer
//! goes out, hands back the books of records once they are on disk
//! ([`FileSink::take_landed`]) and keeps the file readable: it only ever
//! ends on a record boundary, also after a failed write.

use super::aligned::RESERVE;
use super::buffered::{is_stdout, Buffered};
use super::compress::{Frame, Framer};
use super::direct::{Direct, Upto};
use super::{directory_of, Books, IoMode, Landed, SinkSpec, WriteError};
use super::{BUFFERED_WRITE_BYTES, DIRECT_WRITE_BYTES};
use crate::dpdk::fs_stats;
use crate::publish::Published;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

enum Backend {
    Buffered(Buffered),
    Direct(Box<Direct>),
    /// Records go to JetStream, not to a file (`--publish`).
    Publish(Box<Published>),
}

/// See the module docs.
pub(crate) struct FileSink {
    path: PathBuf,
    spec: SinkSpec,
    /// Bytes per write (the spec's, resolved).
    flush_bytes: usize,
    /// Content from `start` (direct: the first aligned byte; buffered: 0).
    buf: Vec<u8>,
    start: usize,
    /// The books of the records in `buf`.
    books: Books,
    spare_books: Vec<Books>,
    landed: Vec<Landed>,
    last_flush: Instant,
    /// Time spent waiting on storage and not yet reported.
    storage_wait: Duration,
    /// Set by a failed write: nothing more goes to this file.
    failed: bool,
    /// `--io auto` asked for direct I/O and the file system refused it.
    refused_direct: bool,
    backend: Backend,
    /// `--compress`: records are staged here and each write is one frame.
    framer: Option<Framer>,
    /// Bytes reserved on disk (`-C`: at creation, or by the file helper once
    /// a spare is taken), given back at the end.
    reserved: u64,
}

impl FileSink {
    /// Creates (or truncates) `path`. With [`IoMode::Auto`], direct I/O if
    /// the file system accepts O_DIRECT for it; [`FileSink::spec`] says
    /// which was chosen.
    pub(crate) fn create(path: &Path, spec: &SinkSpec) -> io::Result<Self> {
        let mut spec = spec.clone();
        let direct_bytes = spec.buffer_bytes.unwrap_or(DIRECT_WRITE_BYTES);
        let mut refused_direct = false;
        let backend = match spec.mode {
            #[cfg(test)]
            _ if spec.memory.is_some() => {
                let disk = spec.memory.as_ref().expect("checked");
                Backend::Buffered(Buffered::in_memory(disk, path))
            }
            // `-w -`: a pipe takes write(2) only (the config refuses --io direct).
            _ if is_stdout(path) => Backend::Buffered(Buffered::stdout()?),
            // (A published sink is made by FileSink::published.)
            IoMode::Buffered | IoMode::Publish => Backend::Buffered(Buffered::create(path)?),
            IoMode::Direct => {
                Backend::Direct(Box::new(Direct::create(path, direct_bytes, spec.buffers)?))
            }
            // tmpfs takes O_DIRECT on recent kernels, but copies all the
            // same, and slower than write(2) (docs/BENCHMARKS.md, storage).
            IoMode::Auto if on_tmpfs(path) => Backend::Buffered(Buffered::create(path)?),
            IoMode::Auto => match Direct::create(path, direct_bytes, spec.buffers) {
                Ok(direct) => Backend::Direct(Box::new(direct)),
                Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
                    refused_direct = true;
                    Backend::Buffered(Buffered::create(path)?)
                }
                Err(err) => return Err(err),
            },
        };
        let (buf, start, flush_bytes) = match &backend {
            Backend::Buffered(_) => {
                spec.mode = IoMode::Buffered;
                let bytes = spec.buffer_bytes.unwrap_or(BUFFERED_WRITE_BYTES);
                (Vec::with_capacity(bytes + RESERVE), 0, bytes)
            }
            Backend::Direct(direct) => {
                spec.mode = IoMode::Direct;
                let (buf, start) = direct.first_buffer();
                (buf, start, direct.buffer_bytes())
            }
            Backend::Publish(_) => unreachable!("made by FileSink::published"),
        };
        spec.buffer_bytes = Some(flush_bytes);
        // A frame (at most its bound) fits in a direct buffer beside the
        // carried tail: frames of half a write.
        let framer = match spec.zstd_level {
            Some(level) => Some(Framer::new(level, flush_bytes / 2)?),
            None => None,
        };
        let mut sink = FileSink::with_backend(path, spec, backend, (buf, start), flush_bytes);
        sink.refused_direct = refused_direct;
        sink.framer = framer;
        sink.reserve();
        Ok(sink)
    }

    /// A sink on `backend` whose buffer is `buf` with content from `start`.
    fn with_backend(
        path: &Path,
        spec: SinkSpec,
        backend: Backend,
        (buf, start): (Vec<u8>, usize),
        flush_bytes: usize,
    ) -> Self {
        FileSink {
            path: path.to_owned(),
            spec,
            flush_bytes,
            buf,
            start,
            books: Books::default(),
            spare_books: Vec::new(),
            landed: Vec::new(),
            last_flush: Instant::now(),
            storage_wait: Duration::ZERO,
            failed: false,
            refused_direct: false,
            backend,
            framer: None,
            reserved: 0,
        }
    }

    /// A sink whose records go out as JetStream messages of at most
    /// `spec.buffer_bytes` (plus one record), named `name` where a file's
    /// path would be. It takes no file header.
    pub(crate) fn published(name: &str, spec: &SinkSpec, published: Published) -> Self {
        let mut spec = spec.clone();
        spec.mode = IoMode::Publish;
        spec.zstd_level = None;
        let flush_bytes = spec.buffer_bytes.unwrap_or(BUFFERED_WRITE_BYTES);
        let buf = Vec::with_capacity(flush_bytes + RESERVE);
        let backend = Backend::Publish(Box::new(published));
        FileSink::with_backend(Path::new(name), spec, backend, (buf, 0), flush_bytes)
    }

    /// True if records go to JetStream rather than to a file.
    pub(crate) fn is_published(&self) -> bool {
        matches!(self.backend, Backend::Publish(_))
    }

    /// What a published sink counted; `None` for a file.
    pub(crate) fn publish_counts(&self) -> Option<crate::publish::PublishCounts> {
        match &self.backend {
            Backend::Publish(p) => Some(p.counts()),
            _ => None,
        }
    }

    /// Records lost without a failed write (messages JetStream never
    /// acknowledged) since the last call: writer drops.
    pub(crate) fn take_lost(&mut self) -> u64 {
        match &mut self.backend {
            Backend::Publish(p) => p.take_lost(),
            _ => 0,
        }
    }

    /// How this file is written (the mode resolved).
    pub(crate) fn spec(&self) -> &SinkSpec {
        &self.spec
    }

    /// True if `--io auto` fell back to the page cache because the file
    /// system refused O_DIRECT (not for tmpfs, which auto never asks).
    pub(crate) fn refused_direct(&self) -> bool {
        self.refused_direct
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file was renamed to `path` before anything was written to it
    /// (a spare taken into use at `now`).
    pub(crate) fn renamed(&mut self, path: &Path, now: Instant) {
        path.clone_into(&mut self.path);
        self.last_flush = now;
    }

    /// True for a file on a file system (not a pipe, JetStream or memory).
    pub(crate) fn on_file_system(&self) -> bool {
        self.preallocatable_file().is_some()
    }

    /// [`FileSink::buffer`] of a file that is not compressed, without
    /// asking: the writer's loop for bare records reads it for every record,
    /// once it knows the file is not [`FileSink::is_framed`].
    #[inline(always)]
    pub(crate) fn unframed_buffer(&mut self) -> &mut Vec<u8> {
        debug_assert!(self.framer.is_none(), "records would pass the compressor");
        &mut self.buf
    }

    /// [`FileSink::is_full`] of a file that is not compressed (see
    /// [`FileSink::unframed_buffer`]).
    #[inline(always)]
    pub(crate) fn unframed_is_full(&self) -> bool {
        debug_assert!(self.framer.is_none());
        self.buf.len() - self.start >= self.flush_bytes
    }

    /// The buffer to append encoded bytes to.
    #[inline(always)]
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        match &mut self.framer {
            Some(framer) => &mut framer.staged,
            None => &mut self.buf,
        }
    }

    /// Where the next record starts: a file offset, or, compressing, an
    /// offset into the frame being staged.
    pub(crate) fn next_record_offset(&self) -> u64 {
        match &self.framer {
            Some(framer) => framer.staged.len() as u64,
            None => self.total_bytes(),
        }
    }

    /// True when records go out in zstd frames.
    pub(crate) fn is_framed(&self) -> bool {
        self.framer.is_some()
    }

    /// The frames written since the last call (compressing only).
    pub(crate) fn take_frames(&mut self) -> Vec<Frame> {
        self.framer
            .as_mut()
            .map_or_else(Vec::new, Framer::take_frames)
    }

    /// The books of the records appended to the buffer.
    #[inline(always)]
    pub(crate) fn books(&mut self) -> &mut Books {
        &mut self.books
    }

    /// Bytes on disk or in flight plus bytes buffered: the file's length
    /// once everything is written.
    pub(crate) fn total_bytes(&self) -> u64 {
        // Staged records count at their uncompressed size until framed.
        let staged = self.framer.as_ref().map_or(0, |f| f.staged.len());
        let buffered = (self.buf.len() - self.start + staged) as u64;
        match &self.backend {
            Backend::Buffered(b) => b.committed() + buffered,
            Backend::Direct(d) => d.base() + buffered,
            Backend::Publish(p) => p.sent_bytes() + buffered,
        }
    }

    /// True once the buffer holds a write's worth.
    #[inline(always)]
    pub(crate) fn is_full(&self) -> bool {
        match &self.framer {
            Some(framer) => framer.staged.len() >= self.flush_bytes / 2,
            None => self.buf.len() - self.start >= self.flush_bytes,
        }
    }

    /// Writes the buffer out if it is full, or the records in it are older
    /// than the flush interval; collects finished writes.
    pub(crate) fn maybe_flush(&mut self, now: Instant) -> Result<(), WriteError> {
        if self.is_full() {
            return self.write_out(Upto::WholeBlocks);
        }
        let waited = now.duration_since(self.last_flush) >= self.spec.flush_interval;
        let staged = self.framer.as_ref().is_some_and(|f| !f.staged.is_empty());
        if waited && (self.buf.len() > self.start || staged) {
            return self.write_out(Upto::End);
        }
        match &mut self.backend {
            Backend::Direct(direct) if !self.failed => {
                let polled = direct.poll(&mut self.landed);
                polled.map_err(|err| self.fail(err))
            }
            // Acknowledgements keep coming after a refusal: they are counted.
            Backend::Publish(published) => {
                let polled = published.poll(&mut self.landed);
                polled.map_err(|err| self.fail(err))
            }
            _ => Ok(()),
        }
    }

    /// Writes out a full buffer: whole blocks, in direct mode, without
    /// waiting unless every buffer is in flight.
    pub(crate) fn flush_full(&mut self) -> Result<(), WriteError> {
        self.write_out(Upto::WholeBlocks)
    }

    /// Writes everything and waits for it: the file on disk is exact.
    pub(crate) fn flush(&mut self) -> Result<(), WriteError> {
        self.write_out(Upto::End)
    }

    /// Starts writing everything, without waiting: a rotation hands the
    /// old file to [`FileSink::poll_close`] and goes on with the new one.
    pub(crate) fn start_close(&mut self) -> Result<(), WriteError> {
        self.write_out(Upto::EndLater)
    }

    /// After [`FileSink::start_close`]: `Some` once the file is exact on
    /// disk (or its last writes failed). Its books are in
    /// [`FileSink::take_landed`].
    pub(crate) fn poll_close(&mut self) -> Option<Result<(), WriteError>> {
        let (failed, landed) = (self.failed, &mut self.landed);
        let result = match &mut self.backend {
            Backend::Direct(direct) if !failed => direct.poll_end(landed)?,
            Backend::Publish(published) => match published.poll(landed) {
                Ok(()) if !published.settled() => return None,
                polled => polled,
            },
            _ => return Some(Ok(())),
        };
        Some(result.map_err(|err| self.fail(err)))
    }

    /// After [`FileSink::start_close`]: waits until the file is exact.
    pub(crate) fn finish_close(&mut self) -> Result<(), WriteError> {
        let (failed, landed, wait) = (self.failed, &mut self.landed, &mut self.storage_wait);
        let result = match &mut self.backend {
            Backend::Direct(direct) if !failed => direct.wait_end(wait, landed),
            Backend::Publish(published) => published.wait_all(wait, landed),
            _ => return Ok(()),
        };
        result.map_err(|err| self.fail(err))
    }

    fn write_out(&mut self, upto: Upto) -> Result<(), WriteError> {
        self.last_flush = Instant::now();
        if !self.failed {
            self.frame_staged()?;
        }
        let fresh = self.spare_books.pop().unwrap_or_default();
        let books = std::mem::replace(&mut self.books, fresh);
        if self.failed {
            self.buf.truncate(self.start);
            if let Some(framer) = &mut self.framer {
                framer.staged.clear();
            }
            // Messages already out are still acknowledged or lost: each
            // is counted (the failure itself was reported).
            if let (Backend::Publish(published), Upto::End) = (&mut self.backend, upto) {
                let _ = published.wait_all(&mut self.storage_wait, &mut self.landed);
            }
            return Err(WriteError {
                error: io::Error::other("an earlier write to this file failed"),
                lost_records: books.records,
                kept_bytes: self.total_bytes(),
            });
        }
        let result = match &mut self.backend {
            Backend::Buffered(file) => {
                let began = Instant::now();
                let result = file.write_books(&self.buf, books, &mut self.landed);
                self.storage_wait += began.elapsed();
                self.buf.clear();
                result
            }
            Backend::Direct(direct) => {
                let wait = &mut self.storage_wait;
                let (buf, start) = (&mut self.buf, &mut self.start);
                direct.write(buf, start, books, upto, wait, &mut self.landed)
            }
            Backend::Publish(published) => {
                let wait = &mut self.storage_wait;
                let result = published.write(&mut self.buf, books, wait, &mut self.landed);
                match upto {
                    Upto::End => result.and_then(|()| published.wait_all(wait, &mut self.landed)),
                    _ => result,
                }
            }
        };
        result.map_err(|err| self.fail(err))
    }

    /// Compresses the staged records into a frame at the end of the buffer.
    fn frame_staged(&mut self) -> Result<(), WriteError> {
        let offset = self.total_bytes() - self.framer.as_ref().map_or(0, |f| f.staged.len() as u64);
        let Some(framer) = &mut self.framer else {
            return Ok(());
        };
        framer.frame_into(&mut self.buf, offset).map_err(|error| {
            framer.staged.clear();
            WriteError {
                error,
                lost_records: self.books.records,
                kept_bytes: offset,
            }
        })
    }

    /// A direct file or a pipe that failed takes nothing more: every later
    /// record is lost without a write. (A buffered file was cut back and
    /// may go on.)
    fn fail(&mut self, err: WriteError) -> WriteError {
        match &self.backend {
            Backend::Direct(_) | Backend::Publish(_) => self.failed = true,
            // A pipe may hold part of a record: nothing may follow it.
            Backend::Buffered(b) if !b.rewindable() => self.failed = true,
            Backend::Buffered(_) => {}
        }
        err
    }

    /// Hands each buffer's books, once its records are on disk, to `landed`
    /// with the file bytes it added (oldest first).
    pub(crate) fn take_landed(&mut self, mut landed: impl FnMut(&Books, u64)) {
        for mut done in self.landed.drain(..) {
            landed(&done.books, done.file_bytes);
            done.books.clear();
            self.spare_books.push(done.books);
        }
    }

    /// True if books or waiting time are there for [`FileSink::take_landed`]
    /// and [`FileSink::take_storage_wait`].
    pub(crate) fn has_news(&self) -> bool {
        let lost = matches!(&self.backend, Backend::Publish(p) if p.has_lost());
        !self.landed.is_empty() || !self.storage_wait.is_zero() || lost
    }

    /// Time spent waiting on storage since the last call.
    pub(crate) fn take_storage_wait(&mut self) -> Duration {
        std::mem::take(&mut self.storage_wait)
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        self.release_reserve();
    }
}

/// True if `path`'s directory is on tmpfs.
fn on_tmpfs(path: &Path) -> bool {
    fs_stats(directory_of(path)).is_ok_and(|s| s.is_tmpfs)
}

mod reserve;
#[cfg(test)]
mod tests;
