// Over 500 lines: one end-to-end scenario per test, each set up in full where it is read; what they share is in tests/src.
//! Issue 14 (archive): `zcap-extract` over a rotated, per-queue capture
//! returns exactly what `tcpdump -r` selects from the same files, merged in
//! time order and cut to the same window; with the index, without it, with
//! a damaged one, and from files still being written.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use zcap_tests::frames::varied;
use zcap_tests::*;

const LIMIT: Duration = Duration::from_secs(120);
const T0: u64 = 1_700_000_000_000_000_000;
const PACKETS: u32 = 24_000;

fn extract(args: &[&str]) -> Run {
    zcap_extract(args)
}

/// A known replay over two queues, captured with `-C` rotation into `dir`
/// (per-queue pcap files, or merged pcapng). Returns the capture files.
fn capture(dir: &TempDir, name: &str, pcapng: bool) -> Vec<PathBuf> {
    let records = varied(PACKETS, T0);
    let (a, b): (Vec<_>, Vec<_>) = records
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let inputs = [
        dir.path(&format!("{name}-a.pcap")),
        dir.path(&format!("{name}-b.pcap")),
    ];
    for (path, half) in inputs.iter().zip([a, b]) {
        let half: Vec<Record> = half.into_iter().map(|(_, r)| r).collect();
        write_pcap(path, &half, false);
    }
    let out_dir = dir.path(name);
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(if pcapng { "cap.pcapng" } else { "cap.pcap" });
    let spec = format!(
        "net_pcap0,rx_pcap={},rx_pcap={}",
        inputs[0].display(),
        inputs[1].display()
    );
    let mut args = vec!["-q", "-i", &spec, "-w", out.to_str().unwrap(), "-C", "0.5"];
    if !pcapng {
        args.extend(["--per-queue-files", "--time-stamp-precision", "micro"]);
    }
    zcap(&args, LIMIT).assert_ok();
    let files = capture_files(&out_dir);
    assert!(files.len() >= 4, "rotation made {} files", files.len());
    for f in &files {
        assert!(index_of(f).exists(), "{} has an index", f.display());
    }
    files
}

/// The index beside a capture file.
fn index_of(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.zidx", path.display()))
}

/// Exit status 1, and of the lines on stderr exactly one names the damage
/// (the others may say which files had no index).
fn assert_damage(run: &Run, needles: &[&str]) {
    assert_eq!(run.code, Some(1), "expected exit 1; stderr: {}", run.stderr);
    let damage: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.contains("no usable index"))
        .collect();
    assert_eq!(damage.len(), 1, "one line: {damage:?}");
    for needle in needles {
        assert!(
            damage[0].contains(needle),
            "{needle:?} not in {}",
            damage[0]
        );
    }
}

fn capture_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".zidx"))
        .collect();
    files.sort();
    files
}

/// What tcpdump selects from each file, merged in time order and cut to
/// `[from, to)`.
fn tcpdump_reference(
    dir: &TempDir,
    files: &[PathBuf],
    expr: &str,
    from: u64,
    to: u64,
) -> Vec<Record> {
    let mut all = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let out = dir.path(&format!("ref-{i}.pcap"));
        let mut args = vec!["-r", file.to_str().unwrap(), "-w", out.to_str().unwrap()];
        if !expr.is_empty() {
            args.push(expr);
        }
        tool("tcpdump", &args);
        all.extend(read_pcap(&out).1);
    }
    all.retain(|r| r.ts_ns >= from && r.ts_ns < to);
    all.sort_by_key(|r| r.ts_ns);
    all
}

fn same_records(got: &[Record], want: &[Record], what: &str) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {} records, tcpdump {}",
        got.len(),
        want.len()
    );
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            (g.ts_ns, g.orig_len, &g.data),
            (w.ts_ns, w.orig_len, &w.data),
            "{what}: record {i} differs"
        );
    }
}

/// Seconds since the epoch, as --from/--to take them.
fn secs(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// The packets of the capture are 1 µs apart from T0.
fn at(packet: u32) -> u64 {
    T0 + u64::from(packet) * 1_000
}

const CASES: &[(&str, u32, u32)] = &[
    ("", 0, PACKETS),
    ("", 10_000, 12_400),
    ("host 10.0.1.3", 0, PACKETS),
    ("host 10.0.1.3 and host 192.168.2.5", 0, PACKETS),
    ("host 10.0.1.3 and host 192.168.2.5", 12_000, 14_400),
    ("net 192.168.1.0/24", 3_000, 20_000),
    ("src net 10.0.2.0/24 and dst port 443", 0, PACKETS),
    ("portrange 1000-1999", 0, PACKETS),
    ("tcp dst portrange 50-500", 0, PACKETS),
    ("port 53 or 80", 5_000, 9_000),
    ("vlan 105", 0, PACKETS),
    ("vlan and udp port 9", 0, PACKETS),
    ("ip6", 0, PACKETS),
    ("udp or ip6", 0, PACKETS),
    ("not tcp", 0, PACKETS),
    ("not host 10.0.1.3 and not vlan", 1_000, 2_000),
    ("tcp[tcpflags] & tcp-syn != 0", 0, PACKETS),
    ("host 10.9.9.9", 0, PACKETS),
];

fn check_cases(dir: &TempDir, files: &[PathBuf], out_name: &str, format: &[&str]) {
    let capture_dir = files[0].parent().unwrap();
    for (i, &(expr, from, to)) in CASES.iter().enumerate() {
        let out = dir.path(&format!("{out_name}-{i}"));
        let (from_s, to_s) = (secs(at(from)), secs(at(to)));
        let mut args = vec![
            "-r",
            capture_dir.to_str().unwrap(),
            "--from",
            &from_s,
            "--to",
            &to_s,
            "-w",
            out.to_str().unwrap(),
            "-v",
        ];
        args.extend(format);
        if !expr.is_empty() {
            args.push(expr);
        }
        let run = extract(&args).assert_ok();
        let got = if format.contains(&"pcapng") {
            read_pcapng(&out).records
        } else {
            read_pcap(&out).1
        };
        let want = tcpdump_reference(dir, files, expr, at(from), at(to));
        same_records(&got, &want, &format!("{expr:?} [{from}, {to})"));
        if expr == "host 10.0.1.3 and host 192.168.2.5" && from == 0 {
            let read = records_read(&run.stderr);
            assert!(
                read < u64::from(PACKETS) / 4,
                "the index narrowed the pair to {read} records read of {PACKETS}"
            );
        }
    }
}

/// The "N records read" of `-v`.
fn records_read(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("records read"))
        .expect("the -v line");
    let before = line.split(" records read").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn per_queue_pcap_files_extract_as_tcpdump_selects() {
    let dir = TempDir::new("extract-pcap");
    let files = capture(&dir, "q", false);
    check_cases(&dir, &files, "out", &[]);
}

#[test]
fn merged_pcapng_files_extract_as_tcpdump_selects() {
    let dir = TempDir::new("extract-pcapng");
    let files = capture(&dir, "m", true);
    check_cases(&dir, &files, "out", &["-F", "pcap"]);
    // pcapng out keeps the interface and the queue, and tshark reads it.
    let out = dir.path("all.pcapng");
    extract(&[
        "-r",
        files[0].parent().unwrap().to_str().unwrap(),
        "-w",
        out.to_str().unwrap(),
    ])
    .assert_ok();
    let read = read_pcapng(&out);
    assert_eq!(read.records.len(), PACKETS as usize);
    assert_eq!(read.interfaces, vec!["net_pcap0".to_owned()]);
    let queues: std::collections::BTreeSet<_> =
        read.queues.iter().map(|q| q.expect("epb_queue")).collect();
    assert_eq!(queues.into_iter().collect::<Vec<_>>(), vec![0, 1]);
    if have_tool("capinfos") {
        let (info, _) = tool("capinfos", &["-c", "-M", out.to_str().unwrap()]);
        assert!(info.contains(&PACKETS.to_string()), "{info}");
    }
}

#[test]
fn missing_damaged_and_cut_indexes_give_the_same_answer() {
    let dir = TempDir::new("extract-damaged");
    let files = capture(&dir, "d", false);
    let expr = "host 10.0.1.3 or vlan 105";
    let want = tcpdump_reference(&dir, &files, expr, 0, u64::MAX);
    let index = |i: usize| index_of(&files[i]);
    std::fs::remove_file(index(0)).unwrap();
    let mut bytes = std::fs::read(index(1)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(index(1), &bytes).unwrap();
    let cut = std::fs::read(index(2)).unwrap();
    std::fs::write(index(2), &cut[..cut.len() * 2 / 3]).unwrap();
    std::fs::write(index(3), b"not an index at all").unwrap();
    // A closed index whose directory (at its end) is damaged is walked.
    assert!(files.len() > 4);
    let mut bytes = std::fs::read(index(4)).unwrap();
    let in_directory = bytes.len() - 40;
    bytes[in_directory] ^= 0x01;
    std::fs::write(index(4), &bytes).unwrap();
    let out = dir.path("out.pcap");
    let dir_arg = files[0].parent().unwrap().to_str().unwrap().to_owned();
    let run = extract(&["-r", &dir_arg, "-w", out.to_str().unwrap(), expr]).assert_ok();
    same_records(&read_pcap(&out).1, &want, expr);
    assert!(
        run.stderr.contains("have no usable index"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("{}: damaged index", files[1].display())),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("{}: damaged index", files[3].display())),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("{}: the index is cut short", files[2].display())),
        "{}",
        run.stderr
    );
    let named = files[4].display().to_string();
    assert!(!run.stderr.contains(&named), "{}", run.stderr);
}

/// The complete records at the front of a pcap file's first `len` bytes.
fn whole_records(path: &Path, len: usize) -> usize {
    let bytes = std::fs::read(path).unwrap();
    let (mut at, mut n) = (24, 0);
    while at + 16 <= len {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        if at + 16 + caplen > len {
            break;
        }
        at += 16 + caplen;
        n += 1;
    }
    n
}

#[test]
fn a_file_still_being_written_extracts_to_its_last_whole_record() {
    let dir = TempDir::new("extract-live");
    let files = capture(&dir, "l", false);
    let file = &files[0];
    let full = read_pcap(file).1;
    let len = std::fs::metadata(file).unwrap().len() as usize;
    // As a writer leaves it: the data cut inside a record, and an index
    // written ahead of the data, without its end marker.
    let cut = len * 3 / 5 + 7;
    let bytes = std::fs::read(file).unwrap();
    let live = dir.path("live.pcap");
    std::fs::write(&live, &bytes[..cut]).unwrap();
    let index = std::fs::read(index_of(file)).unwrap();
    // The end marker is the header before the directory the tail names.
    let tail = &index[index.len() - 16..];
    assert_eq!(&tail[8..], b"ZIDXTAIL");
    let directory_at = u64::from_le_bytes(tail[..8].try_into().unwrap()) as usize;
    std::fs::write(index_of(&live), &index[..directory_at - 60]).unwrap();
    let out = dir.path("out.pcap");
    let run = extract(&["-r", live.to_str().unwrap(), "-w", out.to_str().unwrap()]).assert_ok();
    let n = whole_records(&live, cut);
    assert!(n > 0 && n < full.len());
    same_records(&read_pcap(&out).1, &full[..n], "live");
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    // The same file, closed (its index has its end marker) but cut: damage.
    std::fs::write(index_of(&live), &index).unwrap();
    let run = extract(&["-r", live.to_str().unwrap(), "-w", out.to_str().unwrap()]);
    run.assert_runtime_error(&["live.pcap", "ends inside a record"]);
    same_records(&read_pcap(&out).1, &full[..n], "cut");
    // Closed and cut on a record boundary: damage all the same.
    let boundary = 24 + full[..n].iter().map(|r| 16 + r.data.len()).sum::<usize>();
    std::fs::write(&live, &bytes[..boundary]).unwrap();
    let run = extract(&["-r", live.to_str().unwrap(), "-w", out.to_str().unwrap()]);
    run.assert_runtime_error(&["live.pcap", "shorter than its index says"]);
    same_records(&read_pcap(&out).1, &full[..n], "cut on a boundary");
}

#[test]
fn bad_input_gets_one_line_and_its_exit_status() {
    let dir = TempDir::new("extract-bad");
    let input = dir.path("in.pcap");
    let records = varied(50, T0);
    write_pcap(&input, &records, false);
    let out = dir.path("out.pcap");
    let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());
    extract(&["-r", i, "-w", o, "--from", "yesterday"]).assert_usage_error("--from");
    extract(&[
        "-r",
        i,
        "-w",
        o,
        "--from",
        "2026-12-01T10:00:00Z",
        "--to",
        "2026-12-01T09:00:00Z",
    ])
    .assert_usage_error("--from must be before --to");
    extract(&["-r", i, "-w", o, "host"]).assert_usage_error("bad expression");
    let missing = dir.path("nothing-here").display().to_string();
    extract(&["-r", &missing, "-w", o]).assert_usage_error("nothing-here");
    // A bad expression is told before any input is looked at, and no
    // output is made.
    extract(&["-r", &missing, "-w", o, "host"]).assert_usage_error("bad expression");
    extract(&["-r", dir.path("").to_str().unwrap(), "-w", o, "port 99999"])
        .assert_usage_error("bad expression");
    assert!(!out.exists(), "no output for a bad expression");
    extract(&["-r", i, "-w", i]).assert_usage_error("both an input and the output");
    // The output inside a directory read, reached by another path; the
    // input left as it was.
    let parent = dir.path("");
    let roundabout = format!(
        "{}/../{}/in.pcap",
        parent.display(),
        parent.file_name().unwrap().to_str().unwrap()
    );
    let before = std::fs::read(&input).unwrap();
    extract(&["-r", parent.to_str().unwrap(), "-w", &roundabout])
        .assert_usage_error("both an input and the output");
    assert_eq!(std::fs::read(&input).unwrap(), before);
    // An empty selection is a valid empty file.
    extract(&["-r", i, "-w", o, "host 1.2.3.4"]).assert_ok();
    assert!(read_pcap(&out).1.is_empty());
    // Options after the expression, as tcpdump takes them; paths after the
    // first (a shell glob); an option-like word after `--`.
    let copy = dir.path("copy.pcap");
    std::fs::copy(&input, &copy).unwrap();
    extract(&["-r", i, copy.to_str().unwrap(), "udp", "-w", o]).assert_ok();
    let reference = dir.path("udp.pcap");
    tool(
        "tcpdump",
        &["-r", i, "-w", reference.to_str().unwrap(), "udp"],
    );
    let udp = read_pcap(&reference).1.len();
    assert_eq!(read_pcap(&out).1.len(), 2 * udp, "both files, udp only");
    extract(&["-r", i, "-w", o, "--", "len", ">", "-1"]).assert_ok();
    // Garbage after 20 records: those 20, one line, exit status 1.
    let bytes = std::fs::read(&input).unwrap();
    let twenty = 24
        + records[..20]
            .iter()
            .map(|r| 16 + r.data.len())
            .sum::<usize>();
    let mut damaged = bytes[..twenty].to_vec();
    damaged.extend_from_slice(&[0xff; 64]);
    let bad = dir.path("bad.pcap");
    std::fs::write(&bad, &damaged).unwrap();
    let run = extract(&["-r", bad.to_str().unwrap(), "-w", o]);
    assert_damage(&run, &["bad.pcap", "records before it are extracted"]);
    assert_eq!(read_pcap(&out).1.len(), 20);
    let garbage = dir.path("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture file").unwrap();
    let run = extract(&["-r", garbage.to_str().unwrap(), i, "-w", o]);
    assert_damage(&run, &["garbage.pcap", "neither pcap nor pcapng"]);
    assert_eq!(
        read_pcap(&out).1.len(),
        50,
        "the good file is still extracted"
    );
}

/// `zstd -dc FILE` into `out`.
fn decompress(file: &Path, out: &Path) {
    let status = Command::new("zstd")
        .args([
            "-q",
            "-d",
            "-f",
            "-o",
            out.to_str().unwrap(),
            file.to_str().unwrap(),
        ])
        .status()
        .expect("zstd is required (scripts/setup.sh installs it)");
    assert!(status.success(), "zstd -d {}", file.display());
}

#[test]
fn compressed_files_extract_as_tcpdump_selects_and_wireshark_reads_them() {
    let dir = TempDir::new("extract-zstd");
    let records = varied(PACKETS, T0);
    let input = dir.path("in.pcap");
    write_pcap(&input, &records, false);
    let out_dir = dir.path("z");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("cap.pcapng");
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    zcap(
        &[
            "-q",
            "-i",
            &spec,
            "-w",
            out.to_str().unwrap(),
            "-C",
            "0.2",
            "--compress",
            "zstd:3",
        ],
        LIMIT,
    )
    .assert_ok();
    let files = capture_files(&out_dir);
    assert!(files.len() >= 3, "rotated: {files:?}");
    let mut plain = Vec::new();
    for (i, f) in files.iter().enumerate() {
        assert!(
            f.to_string_lossy().ends_with(".pcapng.zst"),
            "{}",
            f.display()
        );
        assert!(index_of(f).exists(), "{} has an index", f.display());
        let p = dir.path(&format!("plain-{i}.pcapng"));
        decompress(f, &p);
        // Wireshark 4.0 reads the frames as laid out (see storage/compress.rs).
        let (info, _) = tool("capinfos", &["-c", "-M", f.to_str().unwrap()]);
        let n = read_pcapng(&p).records.len();
        assert!(
            info.contains(&format!("Number of packets:   {n}")),
            "{}: {info}",
            f.display()
        );
        plain.push(p);
    }
    let total: usize = plain.iter().map(|p| read_pcapng(p).records.len()).sum();
    assert_eq!(total, PACKETS as usize);
    for &(expr, from, to) in &CASES[..8] {
        let got_path = dir.path("got.pcap");
        let (from_s, to_s) = (secs(at(from)), secs(at(to)));
        let mut args = vec![
            "-r",
            out_dir.to_str().unwrap(),
            "--from",
            &from_s,
            "--to",
            &to_s,
            "-w",
            got_path.to_str().unwrap(),
        ];
        if !expr.is_empty() {
            args.push(expr);
        }
        extract(&args).assert_ok();
        let want = tcpdump_reference(&dir, &plain, expr, at(from), at(to));
        same_records(
            &read_pcap(&got_path).1,
            &want,
            &format!("zstd {expr:?} [{from}, {to})"),
        );
    }
    // A copy cut inside a frame, without its index: the records before the
    // cut, one line, exit 1.
    let bytes = std::fs::read(&files[0]).unwrap();
    let cut = dir.path("cut.pcapng.zst");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let got_path = dir.path("cut.pcap");
    let run = extract(&[
        "-r",
        cut.to_str().unwrap(),
        "-w",
        got_path.to_str().unwrap(),
    ]);
    assert_damage(&run, &["cut.pcapng.zst", "ends inside a zstd frame"]);
    let got = read_pcap(&got_path).1;
    let whole = read_pcapng(&plain[0]).records;
    assert!(!got.is_empty() && got.len() < whole.len());
    same_records(&got, &whole[..got.len()], "the records before the cut");
}

/// Found by `scripts/fuzz.sh` (capture_reader): a pcap header of version
/// 0.0 with a 4 GB snap length, and a record claiming nearly that much, made
/// the reader allocate it. libpcap refuses such a file ("archaic"); now
/// zcap-extract does too, and caps every record at libpcap's 256 KiB: one
/// line, exit status 1, an empty valid output.
const FUZZ_HUGE_CAPLEN: [u8; 75] = [
    0xd4, 0xc3, 0xb2, 0xa1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf6, 0xf2,
    0xf2, 0xf5, 0xfe, 0xff, 0xb7, 0x4f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x00, 0x00,
    0x00, 0x4f, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00,
];

#[test]
fn fuzzed_capture_files_are_damage_not_a_crash() {
    let dir = TempDir::new("extract-fuzzed");
    let input = dir.path("fuzzed.pcap");
    std::fs::write(&input, FUZZ_HUGE_CAPLEN).unwrap();
    let out = dir.path("out.pcap");
    let run = extract(&["-r", input.to_str().unwrap(), "-w", out.to_str().unwrap()]);
    assert_damage(&run, &["fuzzed.pcap", "version 0, not 2"]);
    assert!(read_pcap(&out).1.is_empty());
    // The same file as version 2.4: the records before the huge one.
    let mut v2 = FUZZ_HUGE_CAPLEN;
    v2[4..8].copy_from_slice(&[2, 0, 4, 0]);
    std::fs::write(&input, v2).unwrap();
    let run = extract(&["-r", input.to_str().unwrap(), "-w", out.to_str().unwrap()]);
    assert_damage(&run, &["fuzzed.pcap", "caplen 4294594304"]);
    assert_eq!(read_pcap(&out).1.len(), 2);
}

#[test]
fn extraction_during_a_capture_reads_the_files_as_far_as_they_are_written() {
    let dir = TempDir::new("extract-during");
    let out_dir = dir.path("w");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("c.pcap");
    // A ring of 20 MB files (-W keeps the disk from filling), indexed.
    let child = Command::new(bin_dir().join("zcap"))
        .args([
            "--no-huge",
            "-q",
            "-i",
            "net_null0,size=60",
            "-C",
            "20",
            "-W",
            "4",
        ])
        .args(["--duration", "30", "-w", out.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while capture_files(&out_dir).len() < 3 {
        assert!(std::time::Instant::now() < deadline, "no rotation yet");
        std::thread::sleep(Duration::from_millis(50));
    }
    for round in 0..3 {
        let got = dir.path(&format!("got-{round}.pcap"));
        let run = extract(&["-r", out_dir.to_str().unwrap(), "-w", got.to_str().unwrap()]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let records = read_pcap(&got).1;
        assert!(
            records.len() > 100_000,
            "round {round}: {} records",
            records.len()
        );
        assert!(
            records.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns),
            "in time order"
        );
        assert!(records
            .iter()
            .all(|r| r.data.len() == 60 && r.orig_len == 60));
    }
    assert!(
        matches!(child.0.try_wait(), Ok(None)),
        "zcap was still writing"
    );
    signal(&child.0, "INT");
    assert!(wait_with_limit(&mut child.0, LIMIT).success());
}

#[test]
fn a_capture_without_an_index_removes_the_one_an_earlier_capture_left() {
    let dir = TempDir::new("extract-stale");
    let input = dir.path("in.pcap");
    write_pcap(&input, &varied(500, T0), false);
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    let out = dir.path("c.pcap");
    zcap(
        &["-q", "-i", &spec, "-w", out.to_str().unwrap(), "--index"],
        LIMIT,
    )
    .assert_ok();
    assert!(index_of(&out).exists());
    zcap(&["-q", "-i", &spec, "-w", out.to_str().unwrap()], LIMIT).assert_ok();
    assert!(
        !index_of(&out).exists(),
        "the old index would describe another file"
    );
}

/// A closed file that grew after its index was written (appended to, or
/// rewritten by another tool) is scanned, not read by its stale index.
#[test]
fn a_file_changed_after_its_index_was_closed_is_scanned() {
    let dir = TempDir::new("extract-changed");
    let files = capture(&dir, "g", false);
    // Append a copy of the first file's last record (same time: the file
    // stays in order).
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let last = read_pcap(&files[0]).1.pop().unwrap();
    let record = bytes[bytes.len() - 16 - last.data.len()..].to_vec();
    bytes.extend_from_slice(&record);
    std::fs::write(&files[0], &bytes).unwrap();
    let want = tcpdump_reference(&dir, &files, "", 0, u64::MAX);
    let out = dir.path("out.pcap");
    let dir_arg = files[0].parent().unwrap().to_str().unwrap().to_owned();
    let run = extract(&["-r", &dir_arg, "-w", out.to_str().unwrap()]).assert_ok();
    let got = read_pcap(&out).1;
    same_records(&got, &want, "everything");
    let copies = got.iter().filter(|r| **r == last).count();
    assert_eq!(copies, 2, "the appended record is there too");
    let said = format!("{}: the index is of a file of", files[0].display());
    assert!(run.stderr.contains(&said), "{}", run.stderr);
    assert!(
        run.stderr.contains("it changed since; the file is scanned"),
        "{}",
        run.stderr
    );
}
