//! When to start a new file, and what to call it: tcpdump's `-C`, `-G`, `-W`
//! and `-z`, plus SIGHUP. Pure decisions; the writer does the I/O.

use super::naming::{strftime_utc, with_sequence};
use crate::error::{ConfigError, Field};
use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

/// The rotation flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationPolicy {
    /// `-C`: start a new file once this many bytes were written to the current one.
    pub max_bytes: Option<u64>,
    /// `-G`: start a new file at every multiple of this many seconds (wall clock).
    pub period_s: Option<u64>,
    /// `-W`: keep at most this many files (the oldest are removed).
    pub max_files: Option<u32>,
    /// `-z`: run this command with each closed file's name.
    pub post_rotate: Option<String>,
}

impl RotationPolicy {
    /// True when any flag asks for more than one file.
    pub fn rotates(&self) -> bool {
        self.max_bytes.is_some() || self.period_s.is_some()
    }

    /// Checks the combination, naming the flag at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, message: &str| Err(ConfigError::new(field, message));
        if self.max_bytes == Some(0) {
            return bad(Field::RotateSize, "the file size must be more than 0");
        }
        if self.period_s == Some(0) {
            return bad(Field::RotatePeriod, "the period must be at least 1 second");
        }
        if self.max_files == Some(0) {
            return bad(Field::RotateFiles, "at least 1 file");
        }
        if self.max_files.is_some() && !self.rotates() {
            return bad(Field::RotateFiles, "needs rotation by size or by time");
        }
        if self.post_rotate.is_some() && !self.rotates() {
            return bad(Field::PostRotate, "needs rotation by size or by time");
        }
        Ok(())
    }
}

/// Names files and remembers which exist, for one writer.
#[derive(Debug)]
pub(crate) struct Rotation {
    policy: RotationPolicy,
    template: PathBuf,
    seq: u64,
    period: Option<u64>,
    closed: VecDeque<PathBuf>,
    used: HashSet<PathBuf>,
}

impl Rotation {
    /// Rotation of files named after `template` (the `-w` path).
    pub(crate) fn new(policy: RotationPolicy, template: &Path) -> Self {
        Rotation {
            policy,
            template: template.to_owned(),
            seq: 0,
            period: None,
            closed: VecDeque::new(),
            used: HashSet::new(),
        }
    }

    /// The policy.
    pub(crate) fn policy(&self) -> &RotationPolicy {
        &self.policy
    }

    /// The `-G` period a packet stamped `ts_ns` falls in (its start, in seconds).
    pub(crate) fn period_of(&self, ts_ns: u64) -> Option<u64> {
        self.policy.period_s.map(|p| ts_ns / 1_000_000_000 / p * p)
    }

    /// True when a packet stamped `ts_ns` belongs in a new file by time. Once
    /// the current file holds packets, only forwards: a late packet from an
    /// earlier period goes in the current file. An empty file (opened at start
    /// by the wall clock, say, before a replay of older packets) gives way to
    /// the first packet's period whichever way it lies.
    pub(crate) fn crosses_period(&self, ts_ns: u64, file_has_packets: bool) -> bool {
        match (self.period, self.period_of(ts_ns)) {
            (Some(current), Some(next)) if file_has_packets => next > current,
            (Some(current), Some(next)) => next != current,
            _ => false,
        }
    }

    /// True when a file of `bytes` bytes is full.
    pub(crate) fn is_full(&self, bytes: u64) -> bool {
        self.policy.max_bytes.is_some_and(|max| bytes >= max)
    }

    /// The name of the next file, for a first packet stamped `ts_ns` (or the
    /// current time). Never a name already used in this run, so no file is
    /// overwritten (SIGHUP inside a `-G` period gets a numbered name).
    pub(crate) fn next_path(&mut self, ts_ns: u64) -> PathBuf {
        let path = self.candidate(ts_ns);
        let path = if self.used.contains(&path) {
            (1..)
                .map(|n| with_sequence(&path, n))
                .find(|p| !self.used.contains(p))
                .expect("an unused name")
        } else {
            path
        };
        self.used.insert(path.clone());
        path
    }

    fn candidate(&mut self, ts_ns: u64) -> PathBuf {
        if !self.policy.rotates() {
            // Only SIGHUP rotates: the first file keeps the given name, later
            // ones are numbered.
            let path = match self.seq {
                0 => self.template.clone(),
                seq => with_sequence(&self.template, seq),
            };
            self.seq += 1;
            return path;
        }
        let base = match self.period_of(ts_ns) {
            Some(start) => {
                self.period = Some(start);
                PathBuf::from(strftime_utc(&self.template.to_string_lossy(), start))
            }
            None => self.template.clone(),
        };
        let path = if self.policy.max_bytes.is_some() {
            with_sequence(&base, self.seq)
        } else {
            base
        };
        self.seq += 1;
        path
    }

    /// SIGHUP without `-C` or `-G`: the first file took the plain `-w` name
    /// and later ones are numbered from 1, so the first sorts after them
    /// (`h-0001.pcap` before `h.pcap`). When it closes for a SIGHUP, it is
    /// given number 0 instead: returns that name if `path` is that first file.
    pub(crate) fn renumbered_first(&mut self, path: &Path) -> Option<PathBuf> {
        if self.policy.rotates() || path != self.template {
            return None;
        }
        let numbered = with_sequence(&self.template, 0);
        self.used.insert(numbered.clone());
        Some(numbered)
    }

    /// `path` was removed (`-W`, `--max-disk`): its name no longer needs
    /// guarding, so the names kept are those of files that still exist (a
    /// 24/7 capture rotating every second kept 86,400 more a day).
    pub(crate) fn forget(&mut self, path: &Path) {
        self.used.remove(path);
    }

    /// Takes back `path`, the last name [`Rotation::next_path`] gave, for a
    /// file removed before it held anything: the next file may take it.
    pub(crate) fn discard_last(&mut self, path: &Path) {
        if self.used.remove(path) {
            self.seq = self.seq.saturating_sub(1);
        }
    }

    /// Records that `path` was closed; returns the files `-W` says to remove
    /// now. `last` is true for the final close, when no new file follows.
    pub(crate) fn closed(&mut self, path: PathBuf, last: bool) -> Vec<PathBuf> {
        self.closed.push_back(path);
        let room_for_next = usize::from(!last);
        let keep = self
            .policy
            .max_files
            .map_or(usize::MAX, |n| (n as usize).saturating_sub(room_for_next));
        let mut remove = Vec::new();
        while self.closed.len() > keep {
            remove.extend(self.closed.pop_front());
        }
        remove
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(bytes: Option<u64>, period: Option<u64>, files: Option<u32>) -> RotationPolicy {
        RotationPolicy {
            max_bytes: bytes,
            period_s: period,
            max_files: files,
            post_rotate: None,
        }
    }

    #[test]
    fn without_rotation_the_name_is_the_template() {
        let mut r = Rotation::new(RotationPolicy::default(), Path::new("a.pcap"));
        assert_eq!(r.next_path(0), PathBuf::from("a.pcap"));
        assert!(!r.is_full(u64::MAX));
        // A SIGHUP rotation: numbered, never the same name again.
        assert_eq!(r.next_path(0), PathBuf::from("a-0001.pcap"));
    }

    #[test]
    fn size_rotation_numbers_files() {
        let mut r = Rotation::new(policy(Some(100), None, None), Path::new("a.pcap"));
        assert_eq!(r.next_path(0), PathBuf::from("a-0000.pcap"));
        assert_eq!(r.next_path(0), PathBuf::from("a-0001.pcap"));
        assert!(!r.is_full(99) && r.is_full(100));
    }

    #[test]
    fn time_rotation_aligns_to_the_period() {
        let mut r = Rotation::new(policy(None, Some(10), None), Path::new("c-%H%M%S.pcap"));
        let t = |s: u64| s * 1_000_000_000;
        assert_eq!(
            r.next_path(t(1_700_000_003)),
            PathBuf::from("c-221320.pcap")
        );
        assert!(!r.crosses_period(t(1_700_000_009), true));
        assert!(r.crosses_period(t(1_700_000_010), true));
        assert_eq!(
            r.next_path(t(1_700_000_011)),
            PathBuf::from("c-221330.pcap")
        );
    }

    #[test]
    fn the_first_file_of_a_sighup_rotation_is_numbered_0() {
        let mut r = Rotation::new(RotationPolicy::default(), Path::new("h.pcap"));
        let first = r.next_path(0);
        assert_eq!(
            r.renumbered_first(&first),
            Some(PathBuf::from("h-0000.pcap"))
        );
        let second = r.next_path(0);
        assert_eq!(second, PathBuf::from("h-0001.pcap"));
        assert_eq!(r.renumbered_first(&second), None, "only the first");
        let mut sized = Rotation::new(policy(Some(10), None, None), Path::new("h.pcap"));
        let first = sized.next_path(0);
        assert_eq!(
            sized.renumbered_first(&first),
            None,
            "-C files are numbered already"
        );
    }

    #[test]
    fn only_the_names_of_files_still_there_are_kept() {
        let mut r = Rotation::new(policy(Some(100), None, Some(2)), Path::new("a.pcap"));
        for _ in 0..1000 {
            let path = r.next_path(0);
            for old in r.closed(path, false) {
                r.forget(&old);
            }
        }
        assert!(r.used.len() <= 2, "{} names kept", r.used.len());
    }

    #[test]
    fn a_discarded_name_is_given_again() {
        let mut r = Rotation::new(policy(Some(1000), Some(10), None), Path::new("c-%S.pcap"));
        let first = r.next_path(5_000_000_000);
        assert_eq!(first, PathBuf::from("c-00-0000.pcap"));
        r.discard_last(&first);
        assert_eq!(r.next_path(25_000_000_000), PathBuf::from("c-20-0000.pcap"));
        let mut plain = Rotation::new(policy(None, Some(10), None), Path::new("g.pcapng"));
        let first = plain.next_path(0);
        plain.discard_last(&first);
        assert_eq!(plain.next_path(10_000_000_000), first, "not g-0001.pcapng");
    }

    #[test]
    fn ring_keeps_at_most_w_files() {
        let mut r = Rotation::new(policy(Some(1), None, Some(3)), Path::new("a.pcap"));
        let mut removed = Vec::new();
        for i in 0..5 {
            let p = r.next_path(0);
            assert_eq!(p, PathBuf::from(format!("a-{i:04}.pcap")));
            removed.extend(r.closed(p, false));
        }
        // 5 closed, the current one would be the 6th: 2 closed may stay.
        assert_eq!(removed.len(), 3);
        assert_eq!(removed[0], PathBuf::from("a-0000.pcap"));
        // The last close opens nothing new: 3 may stay.
        let p = r.next_path(0);
        assert!(r.closed(p, true).is_empty());
    }

    #[test]
    fn bad_combinations_name_their_field() {
        let field = |p: RotationPolicy| p.validate().unwrap_err().field;
        assert_eq!(field(policy(Some(0), None, None)), Field::RotateSize);
        assert_eq!(field(policy(None, Some(0), None)), Field::RotatePeriod);
        assert_eq!(field(policy(None, None, Some(2))), Field::RotateFiles);
        let z = RotationPolicy {
            post_rotate: Some("gzip".into()),
            ..RotationPolicy::default()
        };
        assert_eq!(field(z), Field::PostRotate);
    }
}
