//! Issue 3: captures round-trip through net_pcap record for record, merge
//! queues in time order, stop cleanly, and account for every packet.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use zcap_tests::frames::{ipv4_udp, mixed, record};
use zcap_tests::*;

const LIMIT: Duration = Duration::from_secs(120);
const T0: u64 = 1_700_000_000_000_000_000;

fn pcap_spec(inputs: &[&Path]) -> String {
    let mut spec = "net_pcap0".to_owned();
    for input in inputs {
        spec.push_str(&format!(",rx_pcap={}", input.display()));
    }
    spec
}

/// Captures `inputs` (one per queue) to `out` with `extra` flags; returns the JSON.
fn capture(inputs: &[&Path], out: &Path, extra: &[&str]) -> serde_json::Value {
    let json = out.with_extension("json");
    let spec = pcap_spec(inputs);
    let mut args = vec!["-i", &spec, "-w", out.to_str().unwrap(), "-q"];
    let json_arg = json.to_str().unwrap().to_owned();
    args.extend(["--stats-json", &json_arg]);
    args.extend(extra);
    zcap(&args, LIMIT).assert_ok();
    let report = final_json(&json);
    assert_conservation(&report);
    report
}

/// Compares record lists, reporting the first difference briefly.
fn assert_same_records(got: &[Record], want: &[Record]) {
    if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
        panic!(
            "record {i} differs: got ts {} len {}, want ts {} len {} ({} vs {} records)",
            got[i].ts_ns,
            got[i].orig_len,
            want[i].ts_ns,
            want[i].orig_len,
            got.len(),
            want.len()
        );
    }
    assert_eq!(got.len(), want.len(), "record counts differ");
}

#[test]
fn pcap_round_trip_keeps_every_record_byte_and_timestamp() {
    let dir = TempDir::new("roundtrip-pcap");
    let (input, out) = (dir.path("in.pcap"), dir.path("out.pcap"));
    let records = mixed(T0);
    write_pcap(&input, &records, false);
    let json = capture(&[&input], &out, &["--time-stamp-precision", "micro"]);
    let (header, got) = read_pcap(&out);
    assert_eq!(header.ts_resolution, pcap_file::TsResolution::MicroSecond);
    assert_eq!(got.len(), records.len());
    for (i, (a, b)) in records.iter().zip(&got).enumerate() {
        assert_eq!(a, b, "record {i} differs");
    }
    assert_eq!(json_u64(&json, "/packets_written"), records.len() as u64);
    assert_eq!(json_u64(&json, "/packets_received"), records.len() as u64);
    assert_eq!(json_u64(&json, "/mbufs_in_use_at_exit"), 0);
}

#[test]
fn the_pool_driver_follows_the_cpu_layout() {
    // A poll loop and a writer on CPUs of their own get the LIFO stack; on
    // one CPU, the ring that tolerates a thread preempted inside it.
    let dir = TempDir::new("pool-driver");
    let (input, out) = (dir.path("in.pcap"), dir.path("out.pcap"));
    let records = mixed(T0);
    write_pcap(&input, &records, false);
    let own = capture(&[&input], &out, &["-l", "1", "--writer-cpus", "0"]);
    assert_eq!(own["pool_driver"], "stack");
    assert_eq!(read_pcap(&out).1.len(), records.len());
    let shared = capture(&[&input], &out, &["-l", "1", "--writer-cpus", "1"]);
    assert_eq!(shared["pool_driver"], "ring_mt_hts");
    assert_eq!(read_pcap(&out).1.len(), records.len());
}

#[test]
fn pcapng_round_trip_keeps_records_and_describes_the_port() {
    let dir = TempDir::new("roundtrip-pcapng");
    let (input, out) = (dir.path("in.pcap"), dir.path("out.pcapng"));
    let records = mixed(T0);
    write_pcap(&input, &records, true);
    capture(&[&input], &out, &[]);
    let ng = read_pcapng(&out);
    assert_eq!(ng.interfaces, vec!["net_pcap0".to_owned()]);
    assert_eq!(ng.records, records);
    assert!(ng.queues.iter().all(|q| *q == Some(0)), "epb_queue missing");
    assert_eq!(
        ng.statistics_blocks, 1,
        "interface statistics block at close"
    );
    if have_tool("capinfos") {
        let (info, _) = tool("capinfos", &["-c", "-M", out.to_str().unwrap()]);
        assert!(info.contains(&format!("{}", records.len())), "{info}");
    }
}

/// Splits records over `n` files round-robin (each file stays time-ordered).
fn split(records: &[Record], n: usize) -> Vec<Vec<Record>> {
    let mut parts = vec![Vec::new(); n];
    for (i, r) in records.iter().enumerate() {
        parts[i % n].push(r.clone());
    }
    parts
}

#[test]
fn several_queues_merge_into_one_file_in_strict_time_order() {
    let dir = TempDir::new("merge");
    let records: Vec<_> = (0..3000u32)
        .map(|i| {
            record(
                T0 + u64::from(i) * 1000,
                ipv4_udp(60 + (i as usize % 200), i, 5),
            )
        })
        .collect();
    let parts = split(&records, 3);
    let inputs: Vec<_> = (0..3).map(|i| dir.path(&format!("in{i}.pcap"))).collect();
    for (path, part) in inputs.iter().zip(&parts) {
        write_pcap(path, part, false);
    }
    let out = dir.path("out.pcap");
    let refs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    let json = capture(&refs, &out, &[]);
    assert_eq!(json["queues"].as_array().unwrap().len(), 3);
    let (_, got) = read_pcap(&out);
    assert_same_records(&got, &records);
    if have_tool("capinfos") {
        let (info, _) = tool("capinfos", &["-o", out.to_str().unwrap()]);
        assert!(
            info.contains("True"),
            "capinfos says not in strict time order: {info}"
        );
    }
}

#[test]
fn a_queue_that_runs_dry_after_full_bursts_does_not_hold_the_merge_back() {
    // Queue 0 holds exactly four full bursts (then nothing), queue 1 ends on a
    // short burst: the poll loop must hand queue 0's packets on when its
    // queue runs dry, or the merge writes queue 1's newer packets first.
    let dir = TempDir::new("merge-dry");
    let even: Vec<_> = (0..128u32)
        .map(|i| record(T0 + u64::from(2 * i) * 1000, ipv4_udp(64, i, 5)))
        .collect();
    let odd: Vec<_> = (0..100u32)
        .map(|i| record(T0 + u64::from(2 * i + 1) * 1000, ipv4_udp(64, 1000 + i, 5)))
        .collect();
    let inputs = [dir.path("even.pcap"), dir.path("odd.pcap")];
    write_pcap(&inputs[0], &even, false);
    write_pcap(&inputs[1], &odd, false);
    let out = dir.path("out.pcap");
    let refs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    capture(&refs, &out, &["--burst", "32"]);
    let mut want: Vec<_> = even.iter().chain(&odd).cloned().collect();
    want.sort_by_key(|r| r.ts_ns);
    let (_, got) = read_pcap(&out);
    assert_same_records(&got, &want);
}

#[test]
fn per_queue_files_hold_each_queue_whole() {
    let dir = TempDir::new("per-queue");
    let records: Vec<_> = (0..900u32)
        .map(|i| record(T0 + u64::from(i) * 1000, ipv4_udp(64, i, 5)))
        .collect();
    let parts = split(&records, 3);
    let inputs: Vec<_> = (0..3).map(|i| dir.path(&format!("in{i}.pcap"))).collect();
    for (path, part) in inputs.iter().zip(&parts) {
        write_pcap(path, part, false);
    }
    let refs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    capture(&refs, &dir.path("out.pcap"), &["--per-queue-files"]);
    for (q, part) in parts.iter().enumerate() {
        let (_, got) = read_pcap(&dir.path(&format!("out-port0-q{q}.pcap")));
        assert_eq!(&got, part, "queue {q}");
    }
    assert!(!dir.path("out.pcap").exists());
}

#[test]
fn snaplen_truncates_data_but_keeps_original_lengths() {
    let dir = TempDir::new("snaplen");
    let (input, out) = (dir.path("in.pcap"), dir.path("out.pcap"));
    let records = mixed(T0);
    write_pcap(&input, &records, false);
    capture(&[&input], &out, &["-s", "64"]);
    let (header, got) = read_pcap(&out);
    assert_eq!(header.snaplen, 64);
    assert_eq!(got.len(), records.len());
    for (a, b) in records.iter().zip(&got) {
        assert_eq!(b.orig_len, a.orig_len);
        assert_eq!(b.data, a.data[..a.data.len().min(64)]);
    }
    if have_tool("tshark") {
        let (_, stderr) = tool("tshark", &["-r", out.to_str().unwrap(), "-q"]);
        // tshark always notes that it runs as root; anything else is a warning about the file.
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.contains("Running as user"))
            .collect();
        assert!(warnings.is_empty(), "tshark warned: {warnings:?}");
    }
}

#[test]
fn count_stops_after_exactly_n_records() {
    let dir = TempDir::new("count");
    let out = dir.path("out.pcap");
    let json_path = dir.path("s.json");
    zcap(
        &[
            "-i",
            "net_null0",
            "-w",
            out.to_str().unwrap(),
            "-c",
            "1000",
            "-q",
            "--stats-json",
            json_path.to_str().unwrap(),
        ],
        LIMIT,
    )
    .assert_ok();
    let (_, got) = read_pcap(&out);
    assert_eq!(got.len(), 1000);
    let json = final_json(&json_path);
    assert_eq!(json_u64(&json, "/packets_written"), 1000);
    assert_conservation(&json);
}

#[test]
fn duration_stops_within_one_stats_tick() {
    let dir = TempDir::new("duration");
    let json_path = dir.path("s.json");
    zcap(
        &[
            "-i",
            "net_null0",
            "-w",
            dir.path("o.pcap").to_str().unwrap(),
            "--duration",
            "1",
            "-q",
            "--stats-json",
            json_path.to_str().unwrap(),
        ],
        LIMIT,
    )
    .assert_ok();
    let json = final_json(&json_path);
    let d = json["duration_s"].as_f64().unwrap();
    assert!((1.0..2.0).contains(&d), "stopped after {d} s");
    assert_conservation(&json);
    // The final report splits its one writer's CPU time into user and kernel.
    let writers = json["writers"]
        .as_array()
        .expect("the final report lists its writers");
    assert_eq!(writers.len(), 1, "{json}");
    let seconds = |key: &str| {
        writers[0][key]
            .as_f64()
            .unwrap_or_else(|| panic!("no {key}"))
    };
    let busy = seconds("user_s") + seconds("system_s");
    assert!(
        busy > 0.0 && busy <= d + 0.5,
        "writer CPU time {busy} s in a {d} s capture"
    );
}

/// Starts a net_null capture, sends `signals` after a second, checks the result.
fn stop_with(signals: &[&str], name: &str) {
    let dir = TempDir::new(name);
    let out = dir.path("out.pcapng");
    let json_path = dir.path("s.json");
    let mut child = Command::new(bin_dir().join("zcap"))
        .args([
            "--no-huge",
            "-i",
            "net_null0",
            "-w",
            out.to_str().unwrap(),
            "-q",
            "--stats-json",
            json_path.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    for signal in signals {
        Command::new("kill")
            .args([*signal, &child.id().to_string()])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = wait_with_limit(&mut child, LIMIT);
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    let json = final_json(&json_path);
    assert_conservation(&json);
    let ng = read_pcapng(&out);
    assert_eq!(ng.records.len() as u64, json_u64(&json, "/packets_written"));
    assert!(!ng.records.is_empty());
    assert_eq!(ng.statistics_blocks, 1);
}

#[test]
fn sigint_stops_with_a_valid_file_and_exact_counts() {
    stop_with(&["-INT"], "sigint");
}

#[test]
fn sigterm_stops_with_a_valid_file_and_exact_counts() {
    stop_with(&["-TERM"], "sigterm");
}

#[test]
fn a_second_sigint_stops_at_once_and_still_leaves_a_valid_file() {
    stop_with(&["-INT", "-INT"], "double-sigint");
}

#[test]
fn bad_output_and_values_exit_2_and_leave_no_file() {
    let dir = TempDir::new("bad-input");
    let out = dir.path("o.pcap");
    let o = out.to_str().unwrap();
    let missing = dir.path("nope/o.pcap");
    zcap(&["-i", "net_null0", "-w", missing.to_str().unwrap()], LIMIT)
        .assert_usage_error("does not exist");
    zcap(&["-i", "net_null0", "-w", "/proc/zcap-test.pcap"], LIMIT).assert_usage_error("-w");
    zcap(&["-i", "net_null0", "-w", o, "-s", "0"], LIMIT).assert_usage_error("-s");
    zcap(&["-i", "net_null0", "-w", o, "-s", "abc"], LIMIT).assert_usage_error("--snaplen");
    zcap(&["-i", "net_null0", "-w", o, "-c", "0"], LIMIT).assert_usage_error("-c");
    zcap(&["-i", "net_null0", "-w", o, "-c", "-5"], LIMIT).assert_usage_error("-5");
    zcap(&["-i", "net_null0", "-w", o, "-F", "erf"], LIMIT).assert_usage_error("-F");
    zcap(&["-i", "net_null0", "-w", o, "--duration", "soon"], LIMIT)
        .assert_usage_error("--duration");
    zcap(
        &["-i", "net_null0", "-w", o, "--time-stamp-precision", "pico"],
        LIMIT,
    )
    .assert_usage_error("--time-stamp-precision");
    assert!(!out.exists(), "a rejected run left {o} behind");
}

#[test]
fn a_million_packet_replay_is_captured_whole() {
    let dir = TempDir::new("million");
    let (input, out) = (dir.path("in.pcap"), dir.path("out.pcap"));
    let records: Vec<_> = (0..1_000_000u32)
        .map(|i| record(T0 + u64::from(i) * 1000, ipv4_udp(60, i, 9)))
        .collect();
    write_pcap(&input, &records, false);
    let json = capture(&[&input], &out, &[]);
    assert_eq!(json_u64(&json, "/packets_received"), 1_000_000);
    assert_eq!(json_u64(&json, "/packets_written"), 1_000_000);
    let (_, got) = read_pcap(&out);
    assert_eq!(got.len(), 1_000_000);
    assert!(got == records, "the million records differ");
}

#[test]
fn a_full_disk_exits_1_with_a_readable_file_and_exact_counts() {
    let dir = TempDir::new("full-disk");
    let small = dir.path("small");
    std::fs::create_dir_all(&small).unwrap();
    let json = dir.path("s.json");
    let saved = dir.path("saved.pcapng");
    // A 300 KB tmpfs, private to this process tree, fills in a moment.
    let script = format!(
        "mount -t tmpfs -o size=300k zcap-test {small} || exit 99; \
         {zcap} --no-huge -q -i net_null0 -w {small}/out.pcapng --stats-json {json}; rc=$?; \
         cp {small}/out.pcapng {saved}; exit $rc",
        small = small.display(),
        zcap = bin_dir().join("zcap").display(),
        json = json.display(),
        saved = saved.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    let run = run_with_limit(cmd, LIMIT);
    run.assert_runtime_error(&["No space left", "out.pcapng"]);
    let report = final_json(&json);
    assert_conservation(&report);
    assert!(json_u64(&report, "/drops/writer") > 0);
    let ng = read_pcapng(&saved);
    assert_eq!(
        ng.records.len() as u64,
        json_u64(&report, "/packets_written")
    );
    assert!(!ng.records.is_empty());
}

#[test]
fn per_queue_files_to_dev_null_all_go_there() {
    let run = zcap(
        &[
            "-i",
            "net_null0",
            "-Q",
            "2",
            "--per-queue-files",
            "-w",
            "/dev/null",
            "--duration",
            "1",
            "-q",
        ],
        LIMIT,
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    for queue in 0..2 {
        let stray = format!("/dev/null-port0-q{queue}");
        assert!(
            !std::path::Path::new(&stray).exists(),
            "{stray} was created"
        );
    }
}

/// `zcap ... 2>&1 | head -1`: once stderr's reader is gone, a message must
/// not kill the thread that says it. A `-z` runner died that way and the
/// capture waited for it for ever.
#[test]
fn a_closed_stderr_neither_hangs_nor_fails_the_capture() {
    use std::process::{Command, Stdio};
    let dir = TempDir::new("closed-stderr");
    let out = dir.path("c.pcap");
    let mut child = Command::new(bin_dir().join("zcap"))
        .args(TEST_EAL)
        .args([
            "-q",
            "-i",
            "net_null0",
            "-c",
            "200",
            "-C",
            "0.001",
            "-z",
            "false",
        ])
        .args(["-w", out.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before zcap says anything.
    drop(child.stderr.take());
    let status = wait_with_limit(&mut child, LIMIT);
    assert!(status.success(), "{status:?}");
    let files = std::fs::read_dir(dir.path("")).unwrap().count();
    assert!(files > 10, "rotated {files} times, -z run on each");
}
