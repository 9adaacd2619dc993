//! `--max-disk`: the most disk a capture's files may take. Pure: it says
//! which of this capture's closed files to remove, oldest first, so that the
//! files kept plus every writer's file still being written stay under the
//! budget. It knows only files this capture wrote, so it can remove nothing
//! else.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

/// Parses a size: `200G`, `512M`, `1.5T`, `64K`, `1000000` (bytes; K, M, G
/// and T are powers of 1024, a trailing `B` or `iB` is allowed).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?}: expected a size such as 64K, 1M or 200G");
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let scale: u64 = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(bad()),
    };
    let number: f64 = number.parse().map_err(|_| bad())?;
    let bytes = number * scale as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `--max-disk SIZE|PCT`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DiskBudget {
    /// At most this many bytes.
    Bytes(u64),
    /// At most this share (0–100) of the first volume's size.
    Percent(f64),
}

impl DiskBudget {
    /// Parses a size (see [`parse_size`]) or a share of the volume, `80%`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(pct) = text.strip_suffix('%') {
            let bad = || format!("{text:?}: expected a share such as 80%");
            let pct: f64 = pct.parse().map_err(|_| bad())?;
            if !(pct > 0.0 && pct <= 100.0) {
                return Err(format!(
                    "{text:?}: the share must be more than 0% and at most 100%"
                ));
            }
            return Ok(DiskBudget::Percent(pct));
        }
        parse_size(text).map(DiskBudget::Bytes)
    }

    /// The budget in bytes, for a volume of `volume_bytes`.
    pub fn bytes(self, volume_bytes: u64) -> u64 {
        match self {
            DiskBudget::Bytes(b) => b,
            DiskBudget::Percent(p) => (volume_bytes as f64 * p / 100.0) as u64,
        }
    }
}

/// See the module docs. One for the whole capture, shared by its writers.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: u64,
    writers: u64,
    /// The most a file being written can reach (`-C`), if known.
    file_limit: Option<u64>,
    /// The largest closed file (what a `-G` file may reach, as a guess).
    largest: u64,
    closed: VecDeque<(PathBuf, u64)>,
    kept_bytes: u64,
    removed: HashSet<PathBuf>,
    removed_bytes: u64,
}

impl Budget {
    /// `limit` bytes for the files of `writers` writers, each of whose
    /// files reaches at most `file_limit` bytes (`-C`, plus the record and
    /// write that may cross it), if known.
    pub(crate) fn new(limit: u64, writers: usize, file_limit: Option<u64>) -> Self {
        Budget {
            limit,
            writers: writers as u64,
            file_limit,
            largest: 0,
            closed: VecDeque::new(),
            kept_bytes: 0,
            removed: HashSet::new(),
            removed_bytes: 0,
        }
    }

    /// What every writer's open file may still take.
    fn headroom(&self) -> u64 {
        self.writers * self.file_limit.unwrap_or(self.largest)
    }

    /// Too small to hold even the files being written.
    pub(crate) fn too_small(&self) -> bool {
        self.file_limit
            .is_some_and(|_| self.headroom() > self.limit)
    }

    /// A file of `bytes` was closed; returns the closed files to remove,
    /// oldest first, which may include it if nothing else is left.
    pub(crate) fn closed(&mut self, path: PathBuf, bytes: u64) -> Vec<PathBuf> {
        self.largest = self.largest.max(bytes);
        self.kept_bytes += bytes;
        self.closed.push_back((path, bytes));
        let mut remove = Vec::new();
        while self.kept_bytes + self.headroom() > self.limit {
            let Some((oldest, size)) = self.closed.pop_front() else {
                break;
            };
            self.kept_bytes -= size;
            self.removed_bytes += size;
            self.removed.insert(oldest.clone());
            remove.push(oldest);
        }
        remove
    }

    /// `path` was removed by someone else (`-W`): it no longer counts.
    pub(crate) fn forget(&mut self, path: &Path) {
        if let Some(at) = self.closed.iter().position(|(p, _)| p == path) {
            let (_, size) = self.closed.remove(at).expect("found");
            self.kept_bytes -= size;
        }
    }

    /// True if the budget removed `path`.
    pub(crate) fn removed(&self, path: &Path) -> bool {
        self.removed.contains(path)
    }

    /// Files and bytes the budget removed.
    #[cfg(test)]
    pub(crate) fn removals(&self) -> (u64, u64) {
        (self.removed.len() as u64, self.removed_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_shares_parse() {
        assert_eq!(DiskBudget::parse("200G"), Ok(DiskBudget::Bytes(200 << 30)));
        assert_eq!(
            DiskBudget::parse("512MiB"),
            Ok(DiskBudget::Bytes(512 << 20))
        );
        assert_eq!(DiskBudget::parse("1.5k"), Ok(DiskBudget::Bytes(1536)));
        assert_eq!(DiskBudget::parse("4096"), Ok(DiskBudget::Bytes(4096)));
        assert_eq!(DiskBudget::parse("80%"), Ok(DiskBudget::Percent(80.0)));
        assert_eq!(DiskBudget::Percent(80.0).bytes(1000), 800);
        for bad in ["", "G", "12Q", "-5G", "0", "0%", "101%", "x%"] {
            assert!(DiskBudget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_oldest_files_go_before_the_budget_is_crossed() {
        // 100 bytes; two writers whose files reach 20 bytes: 60 for closed ones.
        let mut b = Budget::new(100, 2, Some(20));
        assert!(!b.too_small());
        let mut removed = Vec::new();
        for n in 0..6 {
            removed.extend(b.closed(PathBuf::from(format!("f{n}")), 20));
            assert!(b.kept_bytes + b.headroom() <= 100, "after f{n}");
        }
        let names: Vec<_> = removed.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(names, ["f0", "f1", "f2"], "the oldest, in order");
        assert!(b.removed(Path::new("f1")) && !b.removed(Path::new("f5")));
        assert_eq!(b.removals(), (3, 60));
    }

    #[test]
    fn files_removed_by_w_stop_counting() {
        let mut b = Budget::new(100, 1, Some(30));
        assert!(b.closed("a".into(), 30).is_empty());
        assert!(b.closed("b".into(), 30).is_empty());
        b.forget(Path::new("a"));
        assert!(
            b.closed("c".into(), 30).is_empty(),
            "a's room was freed by -W"
        );
        assert_eq!(b.closed("d".into(), 30), vec![PathBuf::from("b")]);
        assert_eq!(b.removals(), (1, 30));
    }

    #[test]
    fn a_budget_under_the_open_files_is_too_small() {
        assert!(Budget::new(100, 3, Some(40)).too_small());
        assert!(!Budget::new(100, 3, None).too_small());
    }

    #[test]
    fn without_c_the_largest_file_so_far_is_the_guess() {
        let mut b = Budget::new(100, 1, None);
        assert!(b.closed("a".into(), 40).is_empty());
        // 40 kept + 40 expected for the open file: room for nothing more.
        assert_eq!(b.closed("b".into(), 30), vec![PathBuf::from("a")]);
    }
}
