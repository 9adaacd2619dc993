use super::*;
use crate::format::{FileFormat, TsPrecision};
use crate::output::{RotationPolicy, SPARE_SUFFIX};
use std::path::PathBuf;
use std::time::Duration;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("zcap-stream-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stream(dir: &Dir, policy: RotationPolicy, source: Arc<QueueShared>) -> FileStream {
    let mut rotation = Rotation::new(policy, &dir.0.join("c.pcapng"));
    let first = rotation.next_path(0);
    let spec = crate::storage::SinkSpec {
        mode: crate::storage::IoMode::Buffered,
        buffer_bytes: Some(1 << 16),
        buffers: 2,
        flush_interval: Duration::from_secs(1),
        zstd_level: None,
        preallocate: None,
        memory: None,
    };
    let sink = FileSink::create(&first, &spec).unwrap();
    FileStream::new(sink, rotation, vec![(0, source)], 1, 0)
}

fn encoder() -> Encoder {
    Encoder::new(FileFormat::Pcapng, TsPrecision::Nano, 65535, Vec::new())
}

/// Closes the current file as the writer does: trailer, flush, close.
fn rotate(s: &mut FileStream, enc: &Encoder, ts_ns: u64) {
    let next = s.open_next(ts_ns).unwrap();
    s.write_trailer(enc);
    s.sink().flush().unwrap();
    let old = s.switch_to(next, enc);
    let size = old.sink.total_bytes();
    s.finished(old.path, size, false);
}

#[test]
fn w_keeps_the_newest_files_and_z_sees_each_in_order() {
    let dir = Dir::new("w");
    let log = dir.0.join("hooks.log");
    let policy = RotationPolicy {
        max_bytes: Some(1),
        max_files: Some(2),
        post_rotate: Some(format!("echo >>{}", log.display())),
        ..RotationPolicy::default()
    };
    let enc = encoder();
    let mut s = stream(&dir, policy, Arc::default());
    s.start(&enc);
    for _ in 0..4 {
        rotate(&mut s, &enc, 0);
    }
    s.write_trailer(&enc);
    s.sink().flush().unwrap();
    s.finished_last();
    let paths = s.finish(|| false);
    let name = |n: u32| dir.0.join(format!("c-{n:04}.pcapng")).display().to_string();
    assert_eq!(paths, vec![name(3), name(4)], "the two newest stay listed");
    for n in 0..5 {
        assert_eq!(Path::new(&name(n)).exists(), n >= 3, "c-{n:04}");
    }
    let hooked = std::fs::read_to_string(&log).unwrap();
    let all: Vec<String> = (0..5).map(name).collect();
    assert_eq!(
        hooked.lines().collect::<Vec<_>>(),
        all,
        "-z ran on every file, in order"
    );
}

/// The inode of `path`, once it exists (the helper makes it in its own time).
fn inode_when_made(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    for _ in 0..500 {
        if let Ok(meta) = std::fs::metadata(path) {
            return meta.ino();
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{} never appeared", path.display());
}

/// `-C` so small that every record starts a file, and `-W 2`.
fn a_file_per_record_keep_two() -> RotationPolicy {
    RotationPolicy {
        max_bytes: Some(1),
        max_files: Some(2),
        ..RotationPolicy::default()
    }
}

/// Ends the stream as a writer does at the end of a capture.
fn end(mut s: FileStream, enc: &Encoder) {
    s.write_trailer(enc);
    s.sink().flush().unwrap();
    s.finished_last();
    s.finish(|| false);
}

/// The names of the files in `dir`, sorted.
fn names_in(dir: &Dir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn each_rotation_takes_the_spare_made_ahead_and_none_is_left() {
    use std::os::unix::fs::MetadataExt;
    let dir = Dir::new("spare");
    let enc = encoder();
    let mut s = stream(&dir, a_file_per_record_keep_two(), Arc::default());
    s.start(&enc);
    let spare = spare_path(s.sink().path());
    assert!(spare
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with('.'));
    for _ in 0..3 {
        let made = inode_when_made(&spare);
        rotate(&mut s, &enc, 0);
        let current = std::fs::metadata(s.sink().path()).unwrap();
        assert_eq!(current.ino(), made, "the spare became the next file");
    }
    end(s, &enc);
    // -W's removals are done, and the spare made for a fourth is gone.
    let left = names_in(&dir);
    assert_eq!(left, vec!["c-0002.pcapng", "c-0003.pcapng"]);
    for name in &left {
        let bytes = std::fs::read(dir.0.join(name)).unwrap();
        assert_eq!(
            &bytes[..4],
            &[0x0a, 0x0d, 0x0d, 0x0a],
            "{name} starts a section"
        );
    }
}

#[test]
fn an_indexed_rotation_takes_the_index_file_made_with_the_spare() {
    use std::os::unix::fs::MetadataExt;
    let dir = Dir::new("spare-index");
    let enc = encoder();
    let spec = IndexSpec {
        ethernet: vec![true],
        micro: false,
    };
    let mut s = stream(&dir, a_file_per_record_keep_two(), Arc::default()).with_index(Some(spec));
    s.start(&enc);
    let spare_index = spare_path(&index_path(s.sink().path()));
    assert!(spare_index.to_string_lossy().ends_with(SPARE_SUFFIX));
    for _ in 0..3 {
        let made = inode_when_made(&spare_index);
        rotate(&mut s, &enc, 0);
        let index = std::fs::metadata(index_path(s.sink().path())).unwrap();
        assert_eq!(index.ino(), made, "the spare's index file became the index");
    }
    end(s, &enc);
    let left = names_in(&dir);
    let kept = [
        "c-0002.pcapng",
        "c-0002.pcapng.zidx",
        "c-0003.pcapng",
        "c-0003.pcapng.zidx",
    ];
    assert_eq!(left, kept, "no spare or stale index is left");
    for name in ["c-0002.pcapng.zidx", "c-0003.pcapng.zidx"] {
        let bytes = std::fs::read(dir.0.join(name)).unwrap();
        assert_eq!(&bytes[..8], crate::archive::index::FILE_MAGIC, "{name}");
    }
}

#[test]
fn a_name_w_gave_up_and_the_next_file_takes_is_not_removed() {
    // -G without a time in the name: the plain name comes back once -W
    // removed the file that had it, while its removal may still be queued.
    let dir = Dir::new("reuse");
    let policy = RotationPolicy {
        period_s: Some(60),
        max_files: Some(2),
        ..RotationPolicy::default()
    };
    let enc = encoder();
    let mut s = stream(&dir, policy, Arc::default());
    s.start(&enc);
    let mut names = Vec::new();
    for period in 1..=6u64 {
        rotate(&mut s, &enc, period * 60_000_000_000);
        names.push(s.sink().path().to_owned());
    }
    assert!(
        names.iter().filter(|n| n.ends_with("c.pcapng")).count() >= 2,
        "the plain name was taken again: {names:?}"
    );
    s.write_trailer(&enc);
    s.sink().flush().unwrap();
    s.finished_last();
    let paths = s.finish(|| false);
    assert_eq!(paths.len(), 2, "{paths:?}");
    for path in &paths {
        let bytes = std::fs::read(path).unwrap_or_default();
        assert!(
            bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]),
            "{path} is there, whole"
        );
    }
}

#[test]
fn each_file_counts_only_what_happened_while_it_was_open() {
    let dir = Dir::new("isb");
    let source = Arc::new(QueueShared::default());
    let policy = RotationPolicy {
        max_bytes: Some(1),
        ..RotationPolicy::default()
    };
    let enc = encoder();
    let mut s = stream(&dir, policy, source.clone());
    s.start(&enc);
    // File 0: 5 written, 1 not written (-c), 2 filtered, 1 ring-full.
    s.delivered(0, 5);
    s.dropped(0);
    source.counters.filtered.add(2);
    source.counters.ring_full.add(1);
    s.write_trailer(&enc);
    let stats = last_statistics(s.sink().buffer());
    assert_eq!(
        stats,
        (9, 2, 7, 5),
        "received, dropped, accepted, delivered"
    );
    let next = s.open_next(0).unwrap();
    s.sink().flush().unwrap();
    let old = s.switch_to(next, &enc);
    s.finished(old.path, 0, false);
    // File 1: 3 written, nothing else.
    s.delivered(0, 3);
    s.write_trailer(&enc);
    assert_eq!(last_statistics(s.sink().buffer()), (3, 0, 3, 3));
}

#[test]
fn an_empty_first_file_gives_its_name_to_the_next() {
    let dir = Dir::new("empty");
    let policy = RotationPolicy {
        period_s: Some(10),
        ..RotationPolicy::default()
    };
    let enc = encoder();
    let mut s = stream(&dir, policy, Arc::default());
    s.start(&enc);
    assert!(
        s.crosses_period(25_000_000_000, s.has_packets()),
        "another period, empty file"
    );
    s.replace_empty(25_000_000_000, &enc).unwrap();
    assert_eq!(s.current().path(), dir.0.join("c.pcapng"));
    s.delivered(0, 1);
    assert!(
        !s.crosses_period(5_000_000_000, s.has_packets()),
        "a late packet stays in a file with packets"
    );
    assert!(s.crosses_period(35_000_000_000, s.has_packets()));
}

/// (ifrecv, ifdrop, filteraccept, usrdeliv) of the last statistics block
/// in `buf` (native byte order, as written).
fn last_statistics(buf: &[u8]) -> (u64, u64, u64, u64) {
    let (mut at, mut last) = (0, None);
    while at + 8 <= buf.len() {
        let kind = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap());
        let len = u32::from_ne_bytes(buf[at + 4..at + 8].try_into().unwrap()) as usize;
        if kind == 5 {
            last = Some(&buf[at..at + len]);
        }
        at += len;
    }
    let block = last.expect("a statistics block");
    let mut options = std::collections::HashMap::new();
    let mut at = 20;
    while at + 4 <= block.len() - 4 {
        let code = u16::from_ne_bytes(block[at..at + 2].try_into().unwrap());
        let len = u16::from_ne_bytes(block[at + 2..at + 4].try_into().unwrap()) as usize;
        if len == 8 {
            let v = u64::from_ne_bytes(block[at + 4..at + 12].try_into().unwrap());
            options.insert(code, v);
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    let get = |code| options.get(&code).copied().unwrap_or(u64::MAX);
    (get(4), get(5), get(6), get(8))
}
