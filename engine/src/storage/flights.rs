//! The books of direct writes in flight: which records are on disk, and
//! where the file must be cut when a write fails. Pure; the I/O is in
//! [`super::direct`].
//!
//! A buffer's whole blocks are written; the part of its last block that is
//! not full (the tail) goes again at the front of the next buffer. So a
//! buffer's records are all on disk once its write *and*, if it had a tail,
//! the next buffer's write have finished. Its end is a record boundary: a
//! failed file is cut back to the last such end that is on disk.

use super::{Books, WriteError};
use std::collections::VecDeque;
use std::io;

/// One buffer's write.
#[derive(Debug)]
struct Flight {
    slot: usize,
    /// File offset just past this buffer's last record.
    end: u64,
    /// Its last bytes are rewritten by the next write.
    carries_tail: bool,
    books: Books,
    result: Option<io::Result<()>>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    queue: VecDeque<Flight>,
    /// Every record before this offset is on disk.
    durable_end: u64,
}

impl Flights {
    /// A write from `slot` started; its buffer's records end at `end`.
    pub(crate) fn started(&mut self, slot: usize, end: u64, carries_tail: bool, books: Books) {
        self.queue.push_back(Flight {
            slot,
            end,
            carries_tail,
            books,
            result: None,
        });
    }

    /// The write from `slot` finished with `result`.
    pub(crate) fn finished(&mut self, slot: usize, result: io::Result<()>) {
        let flight = self
            .queue
            .iter_mut()
            .find(|f| f.slot == slot && f.result.is_none())
            .expect("a finished write was started");
        flight.result = Some(result);
    }

    /// Writes not yet finished.
    #[cfg(test)]
    pub(crate) fn unfinished(&self) -> usize {
        self.queue.iter().filter(|f| f.result.is_none()).count()
    }

    /// True once a write has failed (wait out the others, then credit).
    pub(crate) fn any_failed(&self) -> bool {
        self.queue.iter().any(|f| matches!(f.result, Some(Err(_))))
    }

    /// Every record before this offset is on disk.
    #[cfg(test)]
    pub(crate) fn durable_end(&self) -> u64 {
        self.durable_end
    }

    /// Hands each buffer whose records are all on disk, oldest first, to
    /// `landed` with the file bytes it added. Stops at the first failure and
    /// returns it, every later record counted lost.
    pub(crate) fn credit(&mut self, mut landed: impl FnMut(Books, u64)) -> Option<WriteError> {
        loop {
            let front = self.queue.front()?;
            match &front.result {
                None => return None,
                Some(Err(_)) => return Some(self.fail()),
                Some(Ok(())) if front.carries_tail => match self.queue.get(1) {
                    Some(next) if matches!(next.result, Some(Ok(()))) => {}
                    Some(next) if next.result.is_some() => return Some(self.fail()),
                    _ => return None,
                },
                Some(Ok(())) => {}
            }
            let flight = self.queue.pop_front().expect("the front exists");
            landed(flight.books, flight.end - self.durable_end);
            self.durable_end = flight.end;
        }
    }

    /// Gives up on every write not credited (call once nothing is in flight):
    /// the error, the file length that keeps only whole records, and the
    /// records that are not on disk.
    fn fail(&mut self) -> WriteError {
        let error = self
            .queue
            .iter_mut()
            .find_map(|f| match f.result.take() {
                Some(Err(err)) => Some(err),
                _ => None,
            })
            .unwrap_or_else(|| io::Error::other("write failed"));
        let lost_records = self.queue.drain(..).map(|f| f.books.records).sum();
        WriteError {
            error,
            kept_bytes: self.durable_end,
            lost_records,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn books(records: u64) -> Books {
        Books {
            records,
            ..Books::default()
        }
    }

    fn credited(flights: &mut Flights) -> (Vec<(u64, u64)>, Option<WriteError>) {
        let mut got = Vec::new();
        let failed = flights.credit(|b, bytes| got.push((b.records, bytes)));
        (got, failed)
    }

    #[test]
    fn a_buffer_with_a_tail_lands_only_with_the_next_write() {
        let mut f = Flights::default();
        f.started(0, 10_000, true, books(3));
        f.finished(0, Ok(()));
        assert_eq!(credited(&mut f).0, vec![], "its tail is not on disk yet");
        f.started(1, 20_000, false, books(2));
        assert_eq!(credited(&mut f).0, vec![]);
        f.finished(1, Ok(()));
        assert_eq!(credited(&mut f).0, vec![(3, 10_000), (2, 10_000)]);
        assert_eq!(f.durable_end(), 20_000);
    }

    #[test]
    fn out_of_order_completions_land_in_order() {
        let mut f = Flights::default();
        f.started(0, 100, false, books(1));
        f.started(1, 200, false, books(1));
        f.started(2, 300, false, books(1));
        f.finished(2, Ok(()));
        f.finished(1, Ok(()));
        assert_eq!(credited(&mut f).0, vec![]);
        assert_eq!(f.unfinished(), 1);
        f.finished(0, Ok(()));
        assert_eq!(credited(&mut f).0, vec![(1, 100), (1, 100), (1, 100)]);
    }

    #[test]
    fn a_failure_cuts_back_to_the_last_whole_record_on_disk() {
        let mut f = Flights::default();
        f.started(0, 10_000, true, books(4));
        f.started(1, 20_000, true, books(5));
        f.started(2, 30_000, false, books(6));
        f.finished(0, Ok(()));
        f.finished(1, Err(io::Error::from_raw_os_error(libc::ENOSPC)));
        f.finished(2, Ok(()));
        let (landed, failed) = credited(&mut f);
        // Buffer 0's tail was in the failed write: none of it counts.
        assert_eq!(landed, vec![]);
        let failed = failed.expect("a failure");
        assert_eq!(failed.error.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!((failed.kept_bytes, failed.lost_records), (0, 15));
    }

    #[test]
    fn what_landed_before_a_failure_stays() {
        let mut f = Flights::default();
        f.started(0, 10_000, false, books(4));
        f.started(1, 20_000, false, books(5));
        f.finished(0, Ok(()));
        f.finished(1, Err(io::Error::other("EIO")));
        let (landed, failed) = credited(&mut f);
        assert_eq!(landed, vec![(4, 10_000)]);
        let failed = failed.unwrap();
        assert_eq!((failed.kept_bytes, failed.lost_records), (10_000, 5));
    }
}
