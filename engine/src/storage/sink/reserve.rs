//! A file's reserved blocks (`-C`): reserved at creation or by the file
//! helper later, given back past the file's end once it is closed.

use super::{Backend, FileSink};
use crate::dpdk::{preallocate, release_past};
use crate::storage::buffered::is_stdout;

impl FileSink {
    /// The file, for a backend that has one that may be preallocated.
    pub(super) fn preallocatable_file(&self) -> Option<&std::fs::File> {
        match &self.backend {
            Backend::Buffered(b) if !is_stdout(&self.path) => b.file(),
            Backend::Direct(d) => Some(d.file()),
            _ => None,
        }
    }

    /// `-C`: reserves the file's blocks at once (best effort: a file system
    /// without fallocate, or one too full for a whole file, is written as
    /// it would be without).
    pub(super) fn reserve(&mut self) {
        let Some(bytes) = self.spec.preallocate else {
            return;
        };
        if let Some(file) = self.preallocatable_file() {
            if preallocate(file, bytes).is_ok() {
                self.reserved = bytes;
            }
        }
    }

    /// `-C` for a file made without its reservation (a spare): a second
    /// descriptor, for a helper to reserve `bytes` with; they are given back
    /// at close as if reserved at creation (also if the helper could not).
    pub(crate) fn reserve_later(&mut self, bytes: u64) -> Option<std::fs::File> {
        let file = self.preallocatable_file()?.try_clone().ok()?;
        self.reserved = bytes;
        Some(file)
    }

    /// Gives back the blocks reserved past the file's end, once it is
    /// closed (also on drop: a writer that ends early).
    pub(crate) fn release_reserve(&mut self) {
        if self.reserved == 0 {
            return;
        }
        if let Some(file) = self.preallocatable_file() {
            // The length on disk: after a failed write, not what was meant.
            if let Ok(meta) = file.metadata() {
                // ext4 frees blocks past the end on a truncate to the same
                // length (and ignores a hole punched there); tmpfs the other
                // way round.
                let _ = file.set_len(meta.len());
                let _ = release_past(file, meta.len(), self.reserved);
            }
        }
        self.reserved = 0;
    }
}
