// Over 500 lines: one end-to-end scenario per test, each set up in full where it is read; what they share is in tests/src.
//! Issue 13: the storage engine. Direct I/O on a RAM-backed ext4 (a loop
//! device of the test's own): exact files, whole records while a file is
//! written, a full disk, the disk budget, volumes, the buffered fallback and
//! the storage self-test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use zcap_tests::frames::varied;
use zcap_tests::loopfs::LoopFs;
use zcap_tests::*;

const LIMIT: Duration = Duration::from_secs(120);
const T0: u64 = 1_700_000_000_000_000_000;

fn writer_io_mode(report: &serde_json::Value) -> String {
    report["writers"][0]["io_mode"]
        .as_str()
        .unwrap_or_else(|| panic!("no writers[0].io_mode in {report}"))
        .to_owned()
}

/// pcap bytes for `records`: the 24-byte header, then 16 + caplen each.
fn pcap_len(records: &[Record]) -> u64 {
    24 + records
        .iter()
        .map(|r| 16 + r.data.len() as u64)
        .sum::<u64>()
}

#[test]
fn direct_files_are_exact_and_hold_every_record() {
    let fs = LoopFs::new("direct-exact", 64);
    let input = fs.path("in.pcap");
    let records = varied(20_000, T0);
    write_pcap(&input, &records, true);
    // Small buffers, two of them: many carried tails and waits for a buffer.
    for (name, extra) in [
        ("small.pcap", ["--buffer-size", "4K", "--buffers", "2"]),
        ("default.pcap", ["--buffers", "8", "--buffer-size", "1M"]),
    ] {
        let out = fs.path(name);
        let json = fs.path("s.json");
        let spec = format!("net_pcap0,rx_pcap={}", input.display());
        let mut args = vec!["-q", "-i", &spec, "-w", out.to_str().unwrap()];
        args.extend(["--io", "direct", "--stats-json", json.to_str().unwrap()]);
        args.extend(extra);
        zcap(&args, LIMIT).assert_ok();
        let report = final_json(&json);
        assert_eq!(writer_io_mode(&report), "direct", "{name}");
        assert_conservation(&report);
        assert_eq!(json_u64(&report, "/packets_written"), 20_000, "{name}");
        let len = std::fs::metadata(&out).unwrap().len();
        assert_eq!(len, pcap_len(&records), "{name}: cut to its true length");
        assert_eq!(len, json_u64(&report, "/file_bytes"), "{name}");
        let (_, got) = read_pcap(&out);
        assert!(got == records, "{name}: every record, byte for byte");
        let (stdout, _) = tool("capinfos", &["-c", "-M", out.to_str().unwrap()]);
        assert!(stdout.contains("20000"), "{name}: capinfos: {stdout}");
    }
}

#[test]
fn pcapng_direct_files_are_exact_and_tshark_reads_them() {
    let fs = LoopFs::new("direct-ng", 64);
    let input = fs.path("in.pcap");
    write_pcap(&input, &varied(5_000, T0), true);
    let out = fs.path("out.pcapng");
    let json = fs.path("s.json");
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    let args = [
        "-q",
        "-i",
        &spec,
        "-w",
        out.to_str().unwrap(),
        "--buffer-size",
        "8K",
        "--stats-json",
        json.to_str().unwrap(),
    ];
    zcap(&args, LIMIT).assert_ok();
    let report = final_json(&json);
    assert_eq!(writer_io_mode(&report), "direct", "auto on ext4 is direct");
    let ng = read_pcapng(&out);
    assert_eq!(ng.records.len(), 5_000);
    assert_eq!(ng.statistics.last().map(|s| s.2), Some(5_000));
    let (stdout, _) = tool(
        "tshark",
        &[
            "-r",
            out.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    );
    assert_eq!(stdout.lines().count(), 5_000);
}

/// Whole records at the front of `bytes` (a pcap file that may end inside
/// one); panics on a record that is not whole before the end.
fn whole_pcap_records(bytes: &[u8], frame: u32) -> u64 {
    assert!(bytes.len() >= 24, "no pcap header yet");
    let mut at = 24;
    let mut count = 0;
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        let orig = u32::from_le_bytes(bytes[at + 12..at + 16].try_into().unwrap());
        assert_eq!(
            (caplen, orig),
            (frame, frame),
            "record {count} at byte {at}"
        );
        if at + 16 + caplen as usize > bytes.len() {
            break;
        }
        at += 16 + caplen as usize;
        count += 1;
    }
    count
}

/// zcap capturing net_null's 1000-byte frames with `extra`, in the background.
fn spawn_null_capture(extra: &[&str]) -> KillOnDrop {
    let child = Command::new(bin_dir().join("zcap"))
        .args(["--no-huge", "-q", "-i", "net_null0,size=1000"])
        .args(extra)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

/// The .pcap files in `dir`, sorted by name.
fn pcap_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_file_being_written_holds_whole_records_and_ends_exact() {
    let fs = LoopFs::new("being-written", 256);
    let out = fs.path("live.pcap");
    let json = fs.path("s.json");
    // -C keeps the disk from filling; the first file is read while written.
    let mut child = spawn_null_capture(&[
        "--io",
        "direct",
        "--buffer-size",
        "64K",
        "-C",
        "60",
        "-W",
        "2",
        "-w",
        out.to_str().unwrap(),
        "--stats-json",
        json.to_str().unwrap(),
    ]);
    let mut seen = 0;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(20));
        // The newest file is the one being written.
        let Some(newest) = pcap_files(fs.dir()).pop() else {
            continue;
        };
        if let Ok(bytes) = std::fs::read(&newest) {
            if bytes.len() >= 24 {
                seen = seen.max(whole_pcap_records(&bytes, 1000));
            }
        }
    }
    signal(&child.0, "INT");
    assert_eq!(wait_with_limit(&mut child.0, LIMIT).code(), Some(0));
    assert!(seen > 0, "a reader saw records while the file was written");
    let report = final_json(&json);
    assert_conservation(&report);
    let files = pcap_files(fs.dir());
    assert!(!files.is_empty() && files.len() <= 2, "-W 2: {files:?}");
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let whole = whole_pcap_records(&bytes, 1000);
        assert_eq!(
            24 + whole * 1016,
            bytes.len() as u64,
            "{}: exact",
            file.display()
        );
        assert_eq!(count_pcap(file), whole);
    }
}

#[test]
fn a_full_loop_disk_exits_1_with_readable_files_and_exact_counts() {
    let fs = LoopFs::new("enospc", 24);
    let out = fs.path("full.pcap");
    let json = fs.path("s.json");
    let args = [
        "-q",
        "-i",
        "net_null0,size=1514",
        "--io",
        "direct",
        "-w",
        out.to_str().unwrap(),
        "--stats-json",
        json.to_str().unwrap(),
    ];
    let run = zcap(&args, LIMIT);
    assert_eq!(
        run.code,
        Some(1),
        "a full disk is a runtime failure: {}",
        run.stderr
    );
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one line: {lines:?}");
    assert!(
        lines[0].contains("No space left") && lines[0].contains("full.pcap"),
        "{}",
        lines[0]
    );
    let report = final_json(&json);
    assert_conservation(&report);
    assert!(json_u64(&report, "/drops/writer") > 0);
    let written = json_u64(&report, "/packets_written");
    assert!(written > 1000);
    assert_eq!(
        count_pcap(&out),
        written,
        "every record counted written is on disk"
    );
    let len = std::fs::metadata(&out).unwrap().len();
    assert_eq!(len, 24 + written * 1530, "cut back to whole records");
}

#[test]
fn the_budget_keeps_the_newest_files_under_max_disk() {
    let fs = LoopFs::new("budget", 128);
    let dir = fs.path("cap");
    std::fs::create_dir(&dir).unwrap();
    let out = dir.join("b.pcap");
    let json = fs.path("s.json");
    // A replay (46 MB), not net_null: ext4 reuses a removed file's blocks
    // only after its journal commits (5 s), and net_null would write GBs
    // into this 128 MB file system by then.
    let tmp = TempDir::new("budget-input");
    let input = tmp.path("in.pcap");
    let records: Vec<Record> = (0..30_000u64)
        .map(|i| {
            zcap_tests::frames::record(
                T0 + i * 1000,
                zcap_tests::frames::ipv4_udp(1514, i as u32, 9),
            )
        })
        .collect();
    write_pcap(&input, &records, true);
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    let args = [
        "-q",
        "-i",
        &spec,
        "-C",
        "2",
        "--max-disk",
        "12M",
        "-w",
        out.to_str().unwrap(),
        "--stats-json",
        json.to_str().unwrap(),
    ];
    // Someone else's file in the same directory is never touched.
    let other = dir.join("b-0000.keep");
    std::fs::write(&other, b"not ours").unwrap();
    zcap(&args, LIMIT).assert_ok();
    let report = final_json(&json);
    assert_conservation(&report);
    assert_eq!(json_u64(&report, "/packets_written"), 30_000);
    let mut kept: Vec<(u32, u64)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            let n: u32 = stem.trim_start_matches("b-").parse().unwrap();
            (n, std::fs::metadata(&p).unwrap().len())
        })
        .collect();
    kept.sort();
    let total: u64 = kept.iter().map(|k| k.1).sum();
    assert!(total <= 12 << 20, "{total} bytes kept: {kept:?}");
    let removed = json_u64(&report, "/files_removed");
    assert!(
        removed > 0,
        "the capture wrote more than the budget: {report}"
    );
    assert!(json_u64(&report, "/bytes_removed") >= removed * 2_000_000);
    // The newest are kept: consecutive numbers up to the last file.
    let last = kept.last().unwrap().0;
    let numbers: Vec<u32> = kept.iter().map(|k| k.0).collect();
    let expected: Vec<u32> = (last + 1 - kept.len() as u32..=last).collect();
    assert_eq!(numbers, expected);
    assert_eq!(u64::from(last) + 1, removed + kept.len() as u64);
    assert_eq!(std::fs::read(&other).unwrap(), b"not ours");
}

#[test]
fn a_budget_needs_rotation_and_room_for_the_open_files() {
    let dir = TempDir::new("budget-usage");
    let out = dir.path("x.pcap");
    let out = out.to_str().unwrap();
    let run = zcap(&["-i", "net_null0", "-w", out, "--max-disk", "1G"], LIMIT);
    run.assert_usage_error("--max-disk");
    let run = zcap(
        &["-i", "net_null0", "-w", out, "-C", "10", "--max-disk", "5M"],
        LIMIT,
    );
    run.assert_usage_error("--max-disk");
    let run = zcap(
        &[
            "-i",
            "net_null0",
            "-w",
            out,
            "-C",
            "1",
            "--max-disk",
            "lots",
        ],
        LIMIT,
    );
    run.assert_usage_error("--max-disk");
    assert!(!Path::new(out).exists(), "nothing written");
}

#[test]
fn volumes_spread_per_queue_writers() {
    let dir = TempDir::new("volumes");
    let (a, b) = (dir.path("vol-a"), dir.path("vol-b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let json = dir.path("s.json");
    let volumes = format!("{},{}", a.display(), b.display());
    let args = [
        "-q",
        "-i",
        "net_null0,size=200",
        "-Q",
        "2",
        "--per-queue-files",
        "-c",
        "50000",
        "--volumes",
        &volumes,
        "-w",
        "cap.pcap",
        "--stats-json",
        json.to_str().unwrap(),
    ];
    zcap(&args, LIMIT).assert_ok();
    let q0 = a.join("cap-port0-q0.pcap");
    let q1 = b.join("cap-port0-q1.pcap");
    let report = final_json(&json);
    assert_eq!(
        count_pcap(&q0) + count_pcap(&q1),
        json_u64(&report, "/packets_written")
    );
    assert!(!Path::new("cap-port0-q0.pcap").exists());
    let missing = dir.path("nope");
    let volumes = format!("{},{}", a.display(), missing.display());
    let run = zcap(
        &["-i", "net_null0", "-w", "x.pcap", "--volumes", &volumes],
        LIMIT,
    );
    run.assert_usage_error("--volumes");
}

/// Runs `script` in a private mount namespace with a ramfs (which refuses
/// O_DIRECT) at `dir`.
fn on_ramfs(dir: &Path, script: &str) -> Run {
    let script = format!(
        "mount -t ramfs zcap-test {} || exit 99; {script}",
        dir.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    run_with_limit(cmd, LIMIT)
}

#[test]
fn auto_falls_back_to_buffered_and_direct_says_why_not() {
    let dir = TempDir::new("fallback");
    let ram = dir.path("ram");
    std::fs::create_dir_all(&ram).unwrap();
    let zcap_bin = bin_dir().join("zcap");
    let json = dir.path("s.json");
    let common = format!("{} --no-huge -q -i net_null0 -c 1000", zcap_bin.display());
    let run = on_ramfs(
        &ram,
        &format!(
            "{common} -w {}/a.pcap --stats-json {} && cat {}/a.pcap > {}",
            ram.display(),
            json.display(),
            ram.display(),
            dir.path("a.pcap").display()
        ),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(writer_io_mode(&final_json(&json)), "buffered");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "said once: {lines:?}");
    assert!(lines[0].contains("refuses O_DIRECT"), "{}", lines[0]);
    assert_eq!(count_pcap(&dir.path("a.pcap")), 1000);
    let run = on_ramfs(
        &ram,
        &format!("{common} --io direct -w {}/b.pcap", ram.display()),
    );
    run.assert_usage_error("--io");
    // tmpfs copies even with O_DIRECT: auto writes through the page cache.
    let shm = PathBuf::from(format!(
        "/dev/shm/zcap-test-auto-{}.pcap",
        std::process::id()
    ));
    let args = ["-i", "net_null0", "-c", "1000", "-w", shm.to_str().unwrap()];
    let mut with_json = args.to_vec();
    with_json.extend(["-q", "--stats-json", json.to_str().unwrap()]);
    let run = zcap(&with_json, LIMIT).assert_ok();
    let _ = std::fs::remove_file(&shm);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert_eq!(writer_io_mode(&final_json(&json)), "buffered");
}

#[test]
fn the_storage_self_test_writes_without_a_port() {
    let fs = LoopFs::new("self-test", 1024);
    let out = fs.path("st.pcap");
    let run = run_bin(
        "zcap-bench",
        &[
            "--mode",
            "storage",
            "-w",
            out.to_str().unwrap(),
            "--duration",
            "0.1",
            "--frame-size",
            "64",
            "--json",
        ],
        LIMIT,
    )
    .assert_ok();
    let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(report["io_mode"], "direct");
    let records = json_u64(&report, "/records");
    assert!(records > 1000, "{report}");
    assert_eq!(json_u64(&report, "/file_bytes"), 24 + records * 80);
    assert!(!out.exists(), "the test file is removed");
}

/// Issue 16: SIGKILL in the middle of a capture with rotation leaves every
/// file readable up to its last written block, and the next run on the same
/// path starts cleanly.
#[test]
fn sigkill_leaves_every_file_readable_and_the_next_run_starts() {
    let fs = LoopFs::new("sigkill", 512);
    for (name, format_ext) in [("k.pcap", "pcap"), ("k.pcapng", "pcapng")] {
        let out = fs.path(name);
        let mut child = spawn_null_capture(&["-C", "20", "-W", "5", "-w", out.to_str().unwrap()]);
        std::thread::sleep(Duration::from_millis(1500));
        signal(&child.0, "KILL");
        let _ = wait_with_limit(&mut child.0, LIMIT);
        // What only SIGKILL leaves (README): the EAL's runtime directory.
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/zcap-{}", child.0.id()));
        let mut files: Vec<PathBuf> = std::fs::read_dir(fs.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == format_ext))
            .collect();
        files.sort();
        assert!(files.len() >= 2, "rotated before the kill: {files:?}");
        for file in &files {
            let bytes = std::fs::read(file).unwrap();
            // The file opened last may not have reached its first write.
            if Some(file) == files.last() && bytes.len() < 1 << 20 {
                continue;
            }
            if format_ext == "pcap" {
                assert!(whole_pcap_records(&bytes, 1000) > 0, "{}", file.display());
            }
            let out = Command::new("tshark")
                .args([
                    "-r",
                    file.to_str().unwrap(),
                    "-T",
                    "fields",
                    "-e",
                    "frame.len",
                ])
                .output()
                .expect("tshark (scripts/setup.sh installs it)");
            let stdout = String::from_utf8_lossy(&out.stdout);
            // tshark warns on every run as root; that line is not about the file.
            let stderr: String = String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|l| !l.contains("Running as user"))
                .collect();
            assert!(stdout.lines().count() > 0, "{}: {stderr}", file.display());
            assert!(
                stdout.lines().all(|l| l == "1000"),
                "{}: every frame whole",
                file.display()
            );
            // A file still being written or closed may end inside a record
            // (its last writes were in flight): readable up to there.
            assert!(
                stderr.is_empty() || stderr.contains("cut short"),
                "{}: {stderr}",
                file.display()
            );
        }
        let json = fs.path("again.json");
        let again = [
            "-q",
            "-i",
            "net_null0",
            "-c",
            "1000",
            "-w",
            out.to_str().unwrap(),
        ];
        let mut args = again.to_vec();
        args.extend(["--stats-json", json.to_str().unwrap()]);
        zcap(&args, LIMIT).assert_ok();
        assert_eq!(json_u64(&final_json(&json), "/packets_written"), 1000);
        files.iter().for_each(|f| {
            let _ = std::fs::remove_file(f);
        });
        let _ = std::fs::remove_file(&out);
    }
}

/// `-C`: each file's blocks are reserved when it is created, and what the
/// file did not fill is given back when it closes (on ext4, where a hole
/// punched past the end does nothing, by a truncate to its length).
#[test]
fn rotated_files_keep_no_reserved_blocks_once_closed() {
    use std::os::unix::fs::MetadataExt;
    let fs = LoopFs::new("prealloc", 64);
    let input = fs.path("in.pcap");
    let records = varied(20_000, T0);
    write_pcap(&input, &records, true);
    let out = fs.path("r.pcap");
    let json = fs.path("r.json");
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    let mut args = vec!["-q", "-i", &spec, "-w", out.to_str().unwrap(), "-C", "2"];
    args.extend([
        "--io",
        "direct",
        "--no-index",
        "--stats-json",
        json.to_str().unwrap(),
    ]);
    zcap(&args, Duration::from_secs(120)).assert_ok();
    let report = final_json(&json);
    assert_conservation(&report);
    let dir = out.parent().unwrap();
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.contains("/r-") && p.ends_with(".pcap"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "rotated: {files:?}");
    let mut total = 0;
    for file in &files {
        let meta = std::fs::metadata(file).unwrap();
        let allocated = meta.blocks() * 512;
        assert!(
            allocated <= meta.len().next_multiple_of(4096),
            "{file}: {allocated} bytes allocated for {}",
            meta.len()
        );
        total += read_pcap(Path::new(file)).1.len();
    }
    assert_eq!(total, records.len());
}
