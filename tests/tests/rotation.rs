//! Issue 5 (rotation): -C, -G, -W, -z and SIGHUP split a capture into files
//! that are each valid and together hold every packet exactly once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use zcap_tests::frames::{ipv4_udp, record};
use zcap_tests::*;

const LIMIT: Duration = Duration::from_secs(120);
const T0: u64 = 1_700_000_000_000_000_000;

/// Capture files in `dir` whose names start with `prefix`, sorted by name
/// (the indexes beside them left out).
fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = all_files(dir, prefix)
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with(".zidx"))
        .collect();
    found.sort();
    found
}

/// Every file in `dir` whose name starts with `prefix`, sorted by name.
fn all_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    found.sort();
    found
}

fn input(dir: &TempDir, n: u32, spacing_ns: u64) -> (PathBuf, Vec<Record>) {
    let path = dir.path("in.pcap");
    let records: Vec<_> = (0..n)
        .map(|i| {
            record(
                T0 + u64::from(i) * spacing_ns,
                ipv4_udp(60 + (i as usize % 500), i, 4),
            )
        })
        .collect();
    write_pcap(&path, &records, false);
    (path, records)
}

fn rotate(dir: &TempDir, input: &Path, out_name: &str, flags: &[&str]) -> serde_json::Value {
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    let out = dir.path(out_name);
    let json = dir.path("s.json");
    let mut args = vec![
        "-q",
        "-i",
        &spec,
        "-w",
        out.to_str().unwrap(),
        "--stats-json",
        json.to_str().unwrap(),
    ];
    args.extend(flags);
    zcap(&args, LIMIT).assert_ok();
    let report = final_json(&json);
    assert_conservation(&report);
    report
}

fn concatenated(paths: &[PathBuf]) -> Vec<Record> {
    paths.iter().flat_map(|p| read_pcap(p).1).collect()
}

#[test]
fn size_rotation_splits_without_losing_or_duplicating() {
    let dir = TempDir::new("rotate-size");
    let (input, records) = input(&dir, 20_000, 1_000);
    let z_log = dir.path("z.log");
    let z = format!("echo >> {}; test -f", z_log.display());
    rotate(&dir, &input, "out.pcap", &["-C", "0.5", "-z", &z]);
    let parts = files(dir.path("").as_path(), "out-");
    assert!(parts.len() >= 5, "only {} files", parts.len());
    assert_eq!(
        concatenated(&parts),
        records,
        "the files in order are the input"
    );
    let largest_record = 16 + 60 + 499;
    for (i, p) in parts.iter().enumerate() {
        let size = std::fs::metadata(p).unwrap().len();
        assert!(
            size <= 500_000 + largest_record,
            "{} is {size} bytes",
            p.display()
        );
        if i + 1 < parts.len() {
            assert!(
                size >= 500_000,
                "{} closed early at {size} bytes",
                p.display()
            );
        }
    }
    // -z ran once per file, each time on a file that existed.
    let runs = std::fs::read_to_string(&z_log).unwrap().lines().count();
    assert_eq!(runs, parts.len());
    if have_tool("mergecap") {
        let merged = dir.path("merged.pcap");
        let mut args = vec!["-a", "-F", "pcap", "-w", merged.to_str().unwrap()];
        let names: Vec<String> = parts.iter().map(|p| p.display().to_string()).collect();
        args.extend(names.iter().map(String::as_str));
        tool("mergecap", &args);
        assert_eq!(read_pcap(&merged).1.len(), records.len());
    }
}

#[test]
fn a_ring_of_w_files_keeps_the_newest() {
    let dir = TempDir::new("rotate-ring");
    let (input, records) = input(&dir, 20_000, 1_000);
    rotate(&dir, &input, "out.pcap", &["-C", "0.5", "-W", "3"]);
    let parts = files(dir.path("").as_path(), "out-");
    assert_eq!(parts.len(), 3, "{parts:?}");
    // Rotating indexes every file, and -W removes an index with its file.
    let indexes: Vec<String> = parts
        .iter()
        .map(|p| format!("{}.zidx", p.display()))
        .collect();
    let everything: Vec<String> = all_files(dir.path("").as_path(), "out-")
        .iter()
        .map(|p| p.display().to_string())
        .filter(|p| p.ends_with(".zidx"))
        .collect();
    assert_eq!(everything, indexes);
    let kept = concatenated(&parts);
    assert!(!kept.is_empty());
    assert_eq!(
        kept,
        records[records.len() - kept.len()..],
        "the newest files, whole and in order"
    );
}

#[test]
fn time_rotation_aligns_files_to_the_period() {
    let dir = TempDir::new("rotate-time");
    // 7 seconds of packets, 10 ms apart.
    let (input, records) = input(&dir, 700, 10_000_000);
    rotate(&dir, &input, "t-%Y%m%d-%H%M%S.pcapng", &["-G", "2"]);
    let parts = files(dir.path("").as_path(), "t-");
    let mut all = Vec::new();
    for p in &parts {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let secs: u64 = name[name.len() - 9..name.len() - 7].parse().unwrap();
        assert_eq!(secs % 2, 0, "{name} is not on a 2 s boundary");
        let ng = read_pcapng(p);
        assert_eq!(
            ng.interfaces,
            vec!["net_pcap0".to_owned()],
            "{name} describes its interface"
        );
        assert_eq!(ng.statistics_blocks, 1, "{name} has its own statistics");
        if let (Some(first), Some(last)) = (ng.records.first(), ng.records.last()) {
            let start = first.ts_ns / 2_000_000_000;
            assert_eq!(
                last.ts_ns / 2_000_000_000,
                start,
                "{name} spans two periods"
            );
        }
        all.extend(ng.records);
    }
    let with_packets = parts
        .iter()
        .filter(|p| !read_pcapng(p).records.is_empty())
        .count();
    assert!(
        with_packets >= 4,
        "7 s in 2 s periods gives at least 4 files, got {with_packets}"
    );
    assert_eq!(all, records);
}

#[test]
fn sighup_starts_a_new_file() {
    let dir = TempDir::new("rotate-hup");
    let out = dir.path("live.pcap");
    let json = dir.path("s.json");
    let mut child = Command::new(bin_dir().join("zcap"))
        .args([
            "--no-huge",
            "-q",
            "-i",
            "net_null0",
            "-w",
            out.to_str().unwrap(),
            "--stats-json",
            json.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    std::thread::sleep(Duration::from_millis(1500));
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let status = wait_with_limit(&mut child, LIMIT);
    assert_eq!(status.code(), Some(0));
    let parts = files(dir.path("").as_path(), "live");
    // Issue 18: the first file is numbered 0 once a SIGHUP starts the second
    // (it was left as live.pcap, which sorts after live-0001.pcap).
    assert_eq!(
        parts,
        vec![dir.path("live-0000.pcap"), dir.path("live-0001.pcap")]
    );
    let report = final_json(&json);
    assert_conservation(&report);
    let counts: Vec<u64> = parts.iter().map(|p| count_pcap(p)).collect();
    assert_eq!(
        counts.iter().sum::<u64>(),
        json_u64(&report, "/packets_written")
    );
    assert!(counts.iter().all(|&c| c > 0), "an empty file: {counts:?}");
}

#[test]
fn bad_rotation_flags_exit_2() {
    let dir = TempDir::new("rotate-bad");
    let o = dir.path("o.pcap");
    let o = o.to_str().unwrap();
    zcap(&["-i", "net_null0", "-w", o, "-W", "3"], LIMIT).assert_usage_error("-W");
    zcap(&["-i", "net_null0", "-w", o, "-C", "0"], LIMIT).assert_usage_error("-C");
    zcap(&["-i", "net_null0", "-w", o, "-G", "0"], LIMIT).assert_usage_error("-G");
    zcap(&["-i", "net_null0", "-w", o, "-z", "gzip"], LIMIT).assert_usage_error("-z");
}

/// Issue 18.5: -G on a replay made a 0-packet file named after the wall
/// clock (or `g.pcapng` beside `g-0001.pcapng`) and handed it to -z first.
/// No file is made until its period has a packet.
#[test]
fn time_rotation_makes_no_empty_file() {
    let dir = TempDir::new("rotate-time-empty");
    // 5 seconds of packets in 2 s periods: 3 files.
    let (input, records) = input(&dir, 500, 10_000_000);
    let hooks = dir.path("z-hooks.log");
    let hook = format!("echo >>{}", hooks.display());
    for (name, prefix) in [("g-%Y%m%d-%H%M%S.pcap", "g-"), ("h.pcapng", "h")] {
        let _ = std::fs::remove_file(&hooks);
        let report = rotate(&dir, &input, name, &["-G", "2", "-z", &hook]);
        let mut parts = files(dir.path("").as_path(), prefix);
        // By name `h-0001` sorts before `h.pcapng`; made in this order.
        parts.sort_by_key(|p| !p.ends_with("h.pcapng"));
        assert_eq!(parts.len(), 3, "{name}: {parts:?}");
        let mut all = Vec::new();
        for p in &parts {
            let got = if name.ends_with(".pcapng") {
                read_pcapng(p).records
            } else {
                read_pcap(p).1
            };
            assert!(!got.is_empty(), "{} is empty", p.display());
            all.extend(got);
        }
        assert_eq!(all, records, "{name}");
        let hooked: Vec<String> = std::fs::read_to_string(&hooks)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        let made: Vec<String> = parts.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(hooked, made, "{name}: -z ran on each file once, in order");
        assert_eq!(json_u64(&report, "/packets_written"), records.len() as u64);
        if name == "h.pcapng" {
            assert_eq!(
                parts[0],
                dir.path("h.pcapng"),
                "the first file keeps the name"
            );
        }
    }
}

/// Issue 18.7: a rotated pcapng file's statistics block contradicted its
/// file (0 received beside 964 packets; 1,824 received beside 964). Each
/// block now describes its own file: usrdeliv its packets, ifrecv at least
/// those, and over all files the capture's totals exactly.
#[test]
fn each_pcapng_file_carries_statistics_of_its_own() {
    let dir = TempDir::new("rotate-isb");
    let (input, records) = input(&dir, 3000, 1_000_000);
    let filter = ["-C", "0.2", "-f", "not ip[19] & 3 = 0"];
    let report = rotate(&dir, &input, "c.pcapng", &filter);
    let parts = files(dir.path("").as_path(), "c-");
    assert!(parts.len() >= 4, "{parts:?}");
    let (mut received, mut delivered) = (0, 0);
    for p in &parts {
        let ng = read_pcapng(p);
        assert_eq!(ng.statistics.len(), 1, "{}", p.display());
        let (ifrecv, ifdrop, usrdeliv) = ng.statistics[0];
        assert_eq!(
            usrdeliv,
            ng.records.len() as u64,
            "{}: usrdeliv",
            p.display()
        );
        assert!(
            ifrecv >= usrdeliv + ifdrop,
            "{}: {:?}",
            p.display(),
            ng.statistics[0]
        );
        received += ifrecv;
        delivered += usrdeliv;
    }
    assert_eq!(delivered, json_u64(&report, "/packets_written"));
    assert_eq!(received, json_u64(&report, "/packets_received"));
    assert_eq!(received, records.len() as u64);
    let filtered = json_u64(&report, "/packets_filtered");
    assert!(
        filtered > 0 && filtered < received,
        "a discriminating filter: {filtered}"
    );
}

/// Issue 18.4: signals were ignored while -z commands ran (zcap exited only
/// once every hook had run). A second signal (or a first one after the
/// capture already stopped) stops the wait: zcap names the files whose
/// command did not run, and exits 0 with every file valid.
#[test]
fn a_signal_stops_waiting_for_z_commands() {
    let dir = TempDir::new("rotate-z-signal");
    let (input, records) = input(&dir, 4000, 1_000_000);
    let log = dir.path("z-hooks.log");
    let hook = format!("sleep 1; echo >>{}", log.display());
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    let out = dir.path("c.pcap");
    let mut child = Command::new(bin_dir().join("zcap"))
        .args(["--no-huge", "-q", "-i", &spec, "-w", out.to_str().unwrap()])
        .args(["-C", "0.2", "-z", &hook])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The replay is over within a second; its hooks would take one each.
    std::thread::sleep(Duration::from_millis(1500));
    let pid = child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let status = wait_with_limit(&mut child, LIMIT);
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let skipped = stderr
        .lines()
        .filter(|l| l.contains("-z did not run on"))
        .count();
    let parts = files(dir.path("").as_path(), "c-");
    assert!(parts.len() >= 5, "{parts:?}");
    assert!(skipped >= 1, "no hook was skipped: {stderr}");
    // The hook that was running when zcap left finishes on its own.
    std::thread::sleep(Duration::from_millis(1500));
    let ran = std::fs::read_to_string(&log).map_or(0, |t| t.lines().count());
    assert_eq!(
        ran + skipped,
        parts.len(),
        "each file ran its hook or was named: {stderr}"
    );
    let all: Vec<Record> = parts.iter().flat_map(|p| read_pcap(p).1).collect();
    assert_eq!(all, records, "every file whole");
}

/// Issue 16: a failing -z command is named with its exit status in plain
/// words (it printed `Ok(ExitStatus(unix_wait_status(256)))`), once per
/// file, and the capture itself still succeeds.
#[test]
fn a_failing_z_command_is_reported_in_plain_words() {
    let dir = TempDir::new("rotate-z-false");
    let (input, _) = input(&dir, 3000, 1_000_000);
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    let out = dir.path("f.pcap");
    let args = [
        "-q",
        "-i",
        &spec,
        "-w",
        out.to_str().unwrap(),
        "-C",
        "0.3",
        "-z",
        "false",
    ];
    let run = zcap(&args, LIMIT).assert_ok();
    let parts = files(dir.path("").as_path(), "f-");
    assert!(parts.len() >= 2, "{parts:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), parts.len(), "one line per file: {lines:?}");
    for (line, part) in lines.iter().zip(&parts) {
        let expected = format!(
            "zcap: -z \"false\" failed on {}: exit status: 1",
            part.display()
        );
        assert_eq!(*line, expected);
    }
}
