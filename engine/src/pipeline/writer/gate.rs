//! Whether a packet may be written, and whether a new file must open first:
//! the checks a plain capture (no failure, no abort, no `-c`, `-C` or `-G`)
//! never needs. A plain state machine; the record writer acts on its answers.

use crate::pipeline::control::CountLimit;
use std::sync::Arc;

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Write it into the current file.
    Write,
    /// Close the current file, open the next, write it there.
    Rotate,
    /// The current file is the empty one opened at the start and the packet
    /// belongs to another `-G` period: replace that file, write it there.
    ReplaceEmpty,
    /// Do not write it; count it under this cause.
    Drop(DropCause),
}

/// Why a packet the writer took was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropCause {
    /// A failed write or file, or a second Ctrl-C (`writer`).
    Writer,
    /// Received after `-c` was reached (`count_limit`).
    CountLimit,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Gate {
    limit: Option<Arc<CountLimit>>,
    rotates: bool,
    failed: bool,
    aborting: bool,
    /// The current file reached `-C`: a new one opens before the next record.
    full: bool,
    plain: bool,
}

impl Gate {
    /// A gate for a capture with `-c` `limit` (shared by every writer) whose
    /// files rotate by size or time when `rotates`.
    pub(crate) fn new(limit: Option<Arc<CountLimit>>, rotates: bool) -> Self {
        let mut gate = Gate {
            limit,
            rotates,
            failed: false,
            aborting: false,
            full: false,
            plain: false,
        };
        gate.update_plain();
        gate
    }

    /// True while every packet is simply written: [`Gate::admit`] would say
    /// [`Admit::Write`] whatever the packet.
    #[inline(always)]
    pub(crate) fn plain(&self) -> bool {
        self.plain
    }

    /// True once a write or a file failed.
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    /// A write or a file failed: every later packet is a writer drop.
    pub(crate) fn fail(&mut self) {
        self.failed = true;
        self.update_plain();
    }

    /// Follows a second Ctrl-C: from now on packets are discarded.
    pub(crate) fn set_aborting(&mut self, aborting: bool) {
        if aborting != self.aborting {
            self.aborting = aborting;
            self.update_plain();
        }
    }

    /// Whether the current file reached `-C` (checked after each record).
    pub(crate) fn set_full(&mut self, full: bool) {
        self.full = full;
    }

    /// Decides for one packet; `crosses_period` says whether `-G` puts it in
    /// a new file, `file_has_packets` whether the current file holds any.
    pub(crate) fn admit(&mut self, crosses_period: bool, file_has_packets: bool) -> Admit {
        if self.failed || self.aborting {
            return Admit::Drop(DropCause::Writer);
        }
        if let Some(limit) = &self.limit {
            if !limit.take_one() {
                return Admit::Drop(DropCause::CountLimit);
            }
        }
        if crosses_period && !file_has_packets && !self.full {
            Admit::ReplaceEmpty
        } else if self.full || crosses_period {
            self.full = false;
            Admit::Rotate
        } else {
            Admit::Write
        }
    }

    /// True once `-c`'s last record was admitted (by any writer).
    pub(crate) fn count_reached(&self) -> bool {
        self.limit.as_ref().is_some_and(|l| l.exhausted())
    }

    fn update_plain(&mut self) {
        self.plain = !self.failed && !self.aborting && self.limit.is_none() && !self.rotates;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_limit_admits_exactly_n_across_writers() {
        let limit = Arc::new(CountLimit::new(5));
        let mut a = Gate::new(Some(limit.clone()), false);
        let mut b = Gate::new(Some(limit), false);
        assert!(!a.plain(), "-c needs the checks");
        let mut written = 0;
        for i in 0..20 {
            let gate = if i % 3 == 0 { &mut a } else { &mut b };
            match gate.admit(false, true) {
                Admit::Write => written += 1,
                Admit::Drop(DropCause::CountLimit) => {}
                other => panic!("packet {i}: {other:?}"),
            }
            assert_eq!(a.count_reached(), written == 5, "after packet {i}");
        }
        assert_eq!(written, 5);
    }

    #[test]
    fn a_full_file_rotates_once_before_the_next_record() {
        let mut gate = Gate::new(None, true);
        assert_eq!(gate.admit(false, true), Admit::Write);
        gate.set_full(true);
        assert_eq!(gate.admit(false, true), Admit::Rotate);
        assert_eq!(
            gate.admit(false, false),
            Admit::Write,
            "the new file is not full"
        );
    }

    #[test]
    fn a_period_crossing_rotates_or_replaces_the_empty_first_file() {
        let mut gate = Gate::new(None, true);
        assert_eq!(gate.admit(true, false), Admit::ReplaceEmpty);
        assert_eq!(gate.admit(true, true), Admit::Rotate);
        // A full empty file (a -C below its own header) is closed, not hidden.
        gate.set_full(true);
        assert_eq!(gate.admit(true, false), Admit::Rotate);
    }

    #[test]
    fn failure_and_abort_drop_everything_and_end_plain_writing() {
        let mut gate = Gate::new(None, false);
        assert!(gate.plain());
        gate.set_aborting(true);
        assert!(!gate.plain());
        assert_eq!(gate.admit(false, true), Admit::Drop(DropCause::Writer));
        gate.set_aborting(false);
        assert!(gate.plain());
        gate.fail();
        assert!(!gate.plain() && gate.failed());
        assert_eq!(gate.admit(true, true), Admit::Drop(DropCause::Writer));
    }

    #[test]
    fn a_failed_writer_takes_nothing_from_the_count() {
        let limit = Arc::new(CountLimit::new(1));
        let mut failed = Gate::new(Some(limit.clone()), false);
        failed.fail();
        assert_eq!(failed.admit(false, true), Admit::Drop(DropCause::Writer));
        let mut other = Gate::new(Some(limit), false);
        assert_eq!(
            other.admit(false, true),
            Admit::Write,
            "the record is still there to take"
        );
    }
}
