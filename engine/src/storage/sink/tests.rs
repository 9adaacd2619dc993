use super::*;

struct ShmFile(PathBuf);

impl ShmFile {
    fn new(name: &str) -> Self {
        let pid = std::process::id();
        ShmFile(PathBuf::from(format!("/dev/shm/zcap-sink-{name}-{pid}")))
    }
}

impl Drop for ShmFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn spec(mode: IoMode, bytes: usize, interval: Duration) -> SinkSpec {
    SinkSpec {
        mode,
        buffer_bytes: Some(bytes),
        buffers: 3,
        flush_interval: interval,
        zstd_level: None,
        preallocate: None,
        memory: None,
    }
}

/// A direct sink on tmpfs, which takes O_DIRECT since Linux 6.6.
fn direct(file: &ShmFile, interval: Duration) -> FileSink {
    let sink = FileSink::create(&file.0, &spec(IoMode::Direct, 4096, interval))
        .expect("tmpfs takes O_DIRECT (Linux 6.6 or later)");
    assert_eq!(sink.spec().mode, IoMode::Direct);
    sink
}

#[test]
fn a_size_limited_file_reserves_its_blocks_and_gives_back_the_rest() {
    use std::os::unix::fs::MetadataExt;
    for mode in [IoMode::Buffered, IoMode::Direct] {
        let file = ShmFile::new(&format!("prealloc-{}", mode.name()));
        let reserved = 1 << 20;
        let spec = SinkSpec {
            preallocate: Some(reserved),
            memory: None,
            ..spec(mode, 4096, Duration::from_secs(60))
        };
        let mut sink = FileSink::create(&file.0, &spec).unwrap();
        let allocated = |f: &ShmFile| f.0.metadata().unwrap().blocks() * 512;
        assert!(
            allocated(&file) >= reserved,
            "{mode:?}: reserved at creation"
        );
        assert_eq!(
            file.0.metadata().unwrap().len(),
            0,
            "readers see no more than was written"
        );
        let mut all = Vec::new();
        for len in [100, 3000, 5000] {
            append(&mut sink, len, &mut all);
        }
        sink.flush().unwrap();
        drop(sink);
        assert_eq!(std::fs::read(&file.0).unwrap(), all, "{mode:?}");
        let len = file.0.metadata().unwrap().len();
        assert!(
            allocated(&file) <= len.next_multiple_of(4096),
            "{mode:?}: the rest is given back"
        );
    }
}

/// Appends a record of `len` bytes, all `len as u8`.
fn append(sink: &mut FileSink, len: usize, all: &mut Vec<u8>) {
    let record = vec![len as u8; len];
    sink.buffer().extend_from_slice(&record);
    sink.books().records += 1;
    all.extend_from_slice(&record);
}

fn landed(sink: &mut FileSink) -> (u64, u64) {
    let (mut records, mut bytes) = (0, 0);
    sink.take_landed(|b, n| {
        records += b.records;
        bytes += n;
    });
    (records, bytes)
}

#[test]
fn direct_writes_carry_tails_and_end_exact() {
    let file = ShmFile::new("tails");
    let mut sink = direct(&file, Duration::from_secs(3600));
    let (mut all, mut records, mut bytes) = (Vec::new(), 0, 0);
    for n in 0..3000 {
        append(&mut sink, 17 + n % 1500, &mut all);
        if sink.is_full() {
            sink.flush_full().unwrap();
            let (r, b) = landed(&mut sink);
            records += r;
            bytes += b;
        }
    }
    assert_eq!(sink.total_bytes(), all.len() as u64);
    sink.flush().unwrap();
    let (r, b) = landed(&mut sink);
    assert_eq!((records + r, bytes + b), (3000, all.len() as u64));
    assert!(
        std::fs::read(&file.0).unwrap() == all,
        "byte for byte, no padding"
    );
}

#[test]
fn a_timed_flush_leaves_the_file_exact_and_writing_goes_on() {
    let file = ShmFile::new("timed");
    let mut sink = direct(&file, Duration::ZERO);
    let mut all = Vec::new();
    append(&mut sink, 100, &mut all);
    sink.maybe_flush(Instant::now()).unwrap();
    assert_eq!(landed(&mut sink), (1, 100));
    assert_eq!(std::fs::read(&file.0).unwrap(), all, "readable at once");
    append(&mut sink, 3000, &mut all);
    sink.maybe_flush(Instant::now()).unwrap();
    assert_eq!(landed(&mut sink), (1, 3000));
    assert!(
        std::fs::read(&file.0).unwrap() == all,
        "the block written again"
    );
    // Full now: whole blocks go, the tail waits for the next write.
    append(&mut sink, 2000, &mut all);
    sink.maybe_flush(Instant::now()).unwrap();
    assert_eq!(landed(&mut sink), (0, 0), "its tail is not on disk yet");
    sink.flush().unwrap();
    assert_eq!(landed(&mut sink), (1, 2000));
    assert!(std::fs::read(&file.0).unwrap() == all);
}

#[test]
fn a_full_disk_loses_the_buffer_and_says_how_much() {
    // /dev/full fails every write with ENOSPC.
    let spec = spec(IoMode::Buffered, 4096, Duration::ZERO);
    let mut sink = FileSink::create(Path::new("/dev/full"), &spec).unwrap();
    let mut all = Vec::new();
    append(&mut sink, 10, &mut all);
    append(&mut sink, 10, &mut all);
    let err = sink.flush().unwrap_err();
    assert_eq!(err.error.raw_os_error(), Some(libc::ENOSPC));
    assert_eq!((err.lost_records, err.kept_bytes), (2, 0));
    assert_eq!(landed(&mut sink), (0, 0));
}

#[test]
fn auto_writes_tmpfs_through_the_page_cache() {
    let file = ShmFile::new("auto");
    let spec = spec(IoMode::Auto, 4096, Duration::ZERO);
    let sink = FileSink::create(&file.0, &spec).unwrap();
    assert_eq!(sink.spec().mode, IoMode::Buffered);
    assert!(!sink.refused_direct(), "chosen, not refused");
}
