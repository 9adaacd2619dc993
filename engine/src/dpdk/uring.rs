//! The kernel's io_uring, for the storage engine's direct writes. Not DPDK,
//! but the one other place that needs `unsafe` (the kernel reads a buffer
//! after the call that names it returns), so it lives in this folder with
//! every other unsafe block.
//!
//! Safety rests on ownership: a buffer given to [`WriteRing::submit`] belongs
//! to the ring until its completion is reaped, and dropping the ring waits
//! for every write in flight before the buffers are freed.

use io_uring::{opcode, squeue, types, IoUring};
use std::io;
use std::ops::Range;
use std::os::fd::RawFd;

/// A write that has finished: its slot, the kernel's result (bytes written,
/// or a negative errno) and the buffer, back for reuse.
#[derive(Debug)]
pub(crate) struct Completed {
    pub(crate) slot: usize,
    pub(crate) result: i32,
    pub(crate) buffer: Vec<u8>,
}

/// An io_uring that only writes, owning each buffer while it is in flight.
pub(crate) struct WriteRing {
    ring: IoUring,
    /// The buffer of each write in flight, by slot (the user data).
    slots: Vec<Option<Vec<u8>>>,
    in_flight: usize,
}

impl WriteRing {
    /// A ring for up to `depth` writes in flight.
    pub(crate) fn new(depth: usize) -> io::Result<Self> {
        let entries = depth.next_power_of_two().max(2) as u32;
        Ok(WriteRing {
            ring: IoUring::new(entries)?,
            slots: (0..depth).map(|_| None).collect(),
            in_flight: 0,
        })
    }

    /// Writes in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Starts writing `buffer[range]` at `offset` of `fd`, and hands it to the
    /// kernel at once. Gives the buffer back if no slot is free or the kernel
    /// refuses the submission.
    pub(crate) fn submit(
        &mut self,
        fd: RawFd,
        buffer: Vec<u8>,
        range: Range<usize>,
        offset: u64,
    ) -> Result<usize, (io::Error, Vec<u8>)> {
        assert!(range.start <= range.end && range.end <= buffer.len());
        let Some(slot) = self.slots.iter().position(Option::is_none) else {
            return Err((io::Error::other("no free io_uring slot"), buffer));
        };
        let Ok(len) = u32::try_from(range.len()) else {
            return Err((io::Error::other("write over 4 GiB"), buffer));
        };
        // Drained: each write starts once the ones before it have finished,
        // so a file grows in order and a reader never meets a hole where a
        // later write landed first (seen on ext4 without it). ext4 runs
        // appending direct writes one at a time anyway.
        let entry = opcode::Write::new(types::Fd(fd), buffer[range.start..].as_ptr(), len)
            .offset(offset)
            .build()
            .flags(squeue::Flags::IO_DRAIN)
            .user_data(slot as u64);
        // SAFETY: the bytes named are in `buffer`, whose heap block is kept in
        // `slots[slot]` (unmoved, unread and unwritten by us) until this
        // entry's completion is reaped; Drop waits for every completion.
        let pushed = unsafe { self.ring.submission().push(&entry) };
        if pushed.is_err() {
            return Err((io::Error::other("io_uring submission queue full"), buffer));
        }
        self.slots[slot] = Some(buffer);
        self.in_flight += 1;
        if let Err(err) = self.ring.submit() {
            // The entry may or may not have reached the kernel: wait it out.
            let _ = self.wait_all();
            return Err((err, self.take_any(slot)));
        }
        Ok(slot)
    }

    /// Moves finished writes into `done` (oldest first as the kernel
    /// reports them). Waits until at least `at_least` have finished.
    pub(crate) fn reap(&mut self, at_least: usize, done: &mut Vec<Completed>) -> io::Result<()> {
        let mut got = 0;
        loop {
            for entry in self.ring.completion() {
                let slot = entry.user_data() as usize;
                let buffer = self.slots[slot]
                    .take()
                    .expect("a completion for a write in flight");
                self.in_flight -= 1;
                got += 1;
                done.push(Completed {
                    slot,
                    result: entry.result(),
                    buffer,
                });
            }
            if got >= at_least.min(got + self.in_flight) {
                return Ok(());
            }
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Waits for every write in flight, dropping their results.
    fn wait_all(&mut self) -> io::Result<()> {
        let mut done = Vec::new();
        self.reap(usize::MAX, &mut done)
    }

    /// After a failed submit: the buffer of `slot` if it is still ours.
    fn take_any(&mut self, slot: usize) -> Vec<u8> {
        match self.slots[slot].take() {
            Some(buffer) => {
                self.in_flight -= 1;
                buffer
            }
            None => Vec::new(),
        }
    }
}

impl Drop for WriteRing {
    fn drop(&mut self) {
        // The kernel may still read the buffers: they must outlive its writes.
        while self.in_flight > 0 {
            if self.wait_all().is_err() {
                // Leak what is still in flight rather than free it under the
                // kernel's feet.
                self.slots.drain(..).flatten().for_each(std::mem::forget);
                return;
            }
        }
    }
}
