//! Issue 2: DPDK comes up on vdevs, counts are exact, bad input exits 2 with
//! one line. Every test runs the real binaries.

use std::path::Path;
use std::time::Duration;
use zcap_tests::frames::{ipv4_udp, record};
use zcap_tests::*;

const LIMIT: Duration = Duration::from_secs(60);

fn bench_json(args: &[&str]) -> serde_json::Value {
    let run = run_bin("zcap-bench", args, LIMIT).assert_ok();
    serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("bad JSON {:?}: {e}", run.stdout))
}

#[test]
fn net_pcap_replay_counts_every_packet_and_byte() {
    let dir = TempDir::new("exact-counts");
    let input = dir.path("in.pcap");
    let records: Vec<_> = (0..1000u32)
        .map(|i| {
            record(
                1_700_000_000_000_000_000 + u64::from(i) * 1000,
                ipv4_udp(60 + (i as usize % 900), i, 7),
            )
        })
        .collect();
    let bytes: u64 = records.iter().map(|r| u64::from(r.orig_len)).sum();
    write_pcap(&input, &records, false);
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    let json = bench_json(&["-i", &spec, "--duration", "1", "--json"]);
    assert_eq!(json_u64(&json, "/packets_received"), 1000);
    assert_eq!(json_u64(&json, "/bytes_received"), bytes, "port ibytes");
    assert_eq!(json_u64(&json, "/drops/rx_nombuf"), 0);
    assert_eq!(
        json_u64(&json, "/mbufs_in_use_at_exit"),
        0,
        "an mbuf leaked"
    );
}

#[test]
fn bench_capture_writes_every_packet_and_handoff_frees_every_packet_unwritten() {
    let dir = TempDir::new("bench-modes");
    let input = dir.path("in.pcap");
    let records: Vec<_> = (0..1000u32)
        .map(|i| record(1_700_000_000_000_000_000 + u64::from(i), ipv4_udp(60, i, 7)))
        .collect();
    write_pcap(&input, &records, false);
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    for (mode, written) in [("capture", 1000), ("handoff", 0)] {
        let out = dir.path(&format!("{mode}.pcap"));
        let out_arg = out.display().to_string();
        let json = bench_json(&[
            "-i",
            &spec,
            "--mode",
            mode,
            "-w",
            &out_arg,
            "--duration",
            "1",
            "--json",
        ]);
        assert_eq!(json_u64(&json, "/packets_received"), 1000, "{mode}");
        assert_eq!(json_u64(&json, "/packets_written"), written, "{mode}");
        assert_conservation(&json);
        // Handoff frees what it takes as writer drops, never losing a count.
        let unwritten = json_u64(&json, "/drops/writer") + json_u64(&json, "/drops/ring_full");
        assert_eq!(unwritten, 1000 - written, "{mode}");
        assert_eq!(json_u64(&json, "/mbufs_in_use_at_exit"), 0, "{mode}: leak");
        assert_eq!(count_pcap(&out), written, "{mode}: records in the file");
    }
}

#[test]
fn net_null_rxonly_one_and_two_queues_report_rates_that_add_up() {
    for queues in ["1", "2"] {
        let json = bench_json(&[
            "-i",
            "net_null0",
            "-Q",
            queues,
            "--duration",
            "0.5",
            "--json",
        ]);
        let total = json_u64(&json, "/packets_received");
        assert!(total > 0, "no packets with {queues} queue(s)");
        assert!(json["rate_pps"].as_f64().unwrap() > 0.0);
        let per_queue = json["queues"].as_array().unwrap();
        assert_eq!(per_queue.len(), queues.parse::<usize>().unwrap());
        let sum: u64 = per_queue
            .iter()
            .map(|q| q["packets_received"].as_u64().unwrap())
            .sum();
        assert_eq!(sum, total);
        assert!(per_queue
            .iter()
            .all(|q| q["packets_received"].as_u64().unwrap() > 0));
        assert!(json["cycles_per_packet"].as_f64().unwrap() > 0.0);
        for key in [
            "duration_s",
            "packets_received",
            "bytes_received",
            "packets_written",
            "bytes_written",
            "packets_filtered",
            "drops",
            "rate_pps",
            "rate_bps",
            "latency_ns",
            "cycles_per_packet",
            "queues",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        for key in ["imissed", "rx_nombuf", "ierrors", "ring_full", "writer"] {
            assert!(json["drops"].get(key).is_some(), "missing drops.{key}");
        }
        assert_eq!(json_u64(&json, "/mbufs_in_use_at_exit"), 0);
    }
}

#[test]
fn unknown_vdev_is_a_usage_error() {
    run_bin(
        "zcap-bench",
        &["-i", "net_bogus0", "--duration", "1"],
        LIMIT,
    )
    .assert_usage_error("net_bogus0");
}

#[test]
fn malformed_pci_address_is_a_usage_error() {
    run_bin("zcap-bench", &["-i", "0000:zz:00.0"], LIMIT)
        .assert_usage_error("malformed PCI address");
}

#[test]
fn more_queues_than_the_device_allows_is_a_usage_error() {
    let dir = TempDir::new("too-many-queues");
    let input = dir.path("in.pcap");
    write_pcap(&input, &[record(1_000_000_000, ipv4_udp(60, 0, 1))], false);
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    run_bin(
        "zcap-bench",
        &["-i", &spec, "-Q", "2", "--duration", "1"],
        LIMIT,
    )
    .assert_usage_error("-Q");
}

#[test]
fn impossible_mempool_size_is_a_usage_error() {
    // 200 million mbufs cannot fit in the EAL's memory.
    run_bin(
        "zcap-bench",
        &["-i", "net_null0", "--mbufs", "200000000", "--duration", "1"],
        LIMIT,
    )
    .assert_usage_error("--mbufs");
    run_bin("zcap-bench", &["-i", "net_null0", "--mbufs", "3"], LIMIT)
        .assert_usage_error("--mbufs");
}

#[test]
fn unknown_flag_is_a_usage_error() {
    run_bin("zcap-bench", &["-i", "net_null0", "--frobnicate"], LIMIT)
        .assert_usage_error("--frobnicate");
    run_bin(
        "zcap-bench",
        &["-i", "net_null0", "--mode", "txonly"],
        LIMIT,
    )
    .assert_usage_error("--mode: expected rxonly, capture or handoff");
    zcap(
        &["-i", "net_null0", "-w", "/dev/null", "--frobnicate"],
        LIMIT,
    )
    .assert_usage_error("--frobnicate");
}

#[test]
fn missing_hugepages_without_no_huge_is_a_usage_error() {
    // Hide every hugetlbfs mount in a private mount namespace, so the test
    // holds whether or not this machine reserved hugepages.
    let bench = bin_dir().join("zcap-bench");
    let script = format!(
        "for m in $(awk '$3==\"hugetlbfs\"{{print $2}}' /proc/mounts); do umount -l \"$m\" || exit 99; done; exec {} -i net_null0 --duration 1",
        bench.display()
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    run_with_limit(cmd, LIMIT).assert_usage_error("no free hugepages");
}

#[test]
fn cpus_outside_the_allowed_set_are_usage_errors() {
    // No machine this runs on lets a process use CPU 4095.
    zcap(&["-i", "net_null0", "-w", "/dev/null", "-l", "4095"], LIMIT)
        .assert_usage_error("-l: CPU 4095");
    zcap(
        &[
            "-i",
            "net_null0",
            "-w",
            "/dev/null",
            "--writer-cpus",
            "4095",
        ],
        LIMIT,
    )
    .assert_usage_error("--writer-cpus: CPU 4095");
    zcap(
        &["-i", "net_null0", "-w", "/dev/null", "--writer-cpus", "2-1"],
        LIMIT,
    )
    .assert_usage_error("--writer-cpus: bad core list");
}

/// Issue 18, smaller ones: `zcap-bench --mode rxonly` on net_null reported
/// bytes_received 0 and rate_bps 0 (net_null counts no bytes in its port
/// statistics). The poll loops count them: 64 bytes a packet, and a bit rate.
#[test]
fn rxonly_counts_the_bytes_it_receives() {
    for size in ["64", "1000"] {
        let spec = format!("net_null0,size={size}");
        let json = bench_json(&[
            "-i",
            &spec,
            "--mode",
            "rxonly",
            "--duration",
            "0.3",
            "--json",
        ]);
        let packets = json_u64(&json, "/packets_received");
        assert!(packets > 0);
        let size: u64 = size.parse().unwrap();
        assert_eq!(json_u64(&json, "/bytes_received"), packets * size);
        assert!(json["rate_bps"].as_f64().unwrap() > 0.0);
    }
}

/// Configuration errors name the flag at fault: the engine reports a field,
/// the binary maps it to its flag (`-w`, `-W`, `--mode`, `-Q`).
#[test]
fn configuration_errors_name_their_flag() {
    let dir = TempDir::new("config-flags");
    let out = dir.path("o.pcap");
    let o = out.to_str().unwrap();
    let d = dir.path("");
    zcap(&["-i", "net_null0", "-w", d.to_str().unwrap()], LIMIT).assert_usage_error("-w: ");
    zcap(&["-i", "net_null0", "-w", o, "-W", "3"], LIMIT).assert_usage_error("-W: needs rotation");
    zcap(&["-i", "net_null0", "-w", o, "-Q", "200"], LIMIT).assert_usage_error("-Q: 200 queues");
    zcap(&["-i", "net_null0", "-w", o, "--burst", "0"], LIMIT).assert_usage_error("--burst: ");
    let bench = run_bin("zcap-bench", &["-i", "net_null0", "--mode", "bogus"], LIMIT);
    bench.assert_usage_error("--mode: expected rxonly");
    // Issue 16: a bad EAL argument printed DPDK's 100-line usage on stdout.
    let eal = zcap(&["-i", "net_null0", "--eal", "--bogus", "-w", o], LIMIT);
    eal.assert_usage_error("unrecognized option '--bogus'");
    assert_eq!(eal.stdout, "", "nothing on stdout");
    assert!(!out.exists());
}

/// Issue 16: every run left `/var/run/dpdk/zcap-PID` (and, with hugepages, a
/// `zcap-PIDmap_N` hugepage file) behind. Whatever way zcap ends (normally,
/// on an error after EAL started, on an EAL error, on one signal or two),
/// what it made is gone, and nothing of another process's is touched;
/// twenty runs leave both directories as they were.
#[test]
fn nothing_is_left_behind_however_zcap_ends() {
    use std::process::{Command, Stdio};
    let dir = TempDir::new("left-behind");
    let out = dir.path("o.pcap");
    let o = out.to_str().unwrap();
    let hugepages = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("HugePages_Free:") && !l.ends_with(" 0"));
    let mut runs: Vec<(Vec<&str>, u8)> = vec![
        (
            vec!["--no-huge", "-q", "-i", "net_null0", "-c", "100", "-w", o],
            0,
        ),
        (vec!["--no-huge", "-q", "-i", "7", "-w", o], 0),
        (
            vec![
                "--no-huge",
                "-q",
                "-i",
                "net_null0",
                "--eal",
                "--bogus",
                "-w",
                o,
            ],
            0,
        ),
        (vec!["--no-huge", "-q", "-i", "net_null0", "-w", o], 1),
        (vec!["--no-huge", "-q", "-i", "net_null0", "-w", o], 2),
    ];
    if hugepages {
        runs.push((vec!["-q", "-i", "net_null0", "-c", "100", "-w", o], 0));
    }
    let listing = |dir: &str| -> std::collections::BTreeSet<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (before, hugepages_before) = (listing("/var/run/dpdk"), listing("/dev/hugepages"));
    // Hugepage files a live process holds (locked). Files no process holds
    // any more (a testpmd that exited) are reclaimed by EAL itself at any
    // DPDK start, whoever starts it, so they may go.
    let held: std::collections::BTreeSet<String> = hugepages_before
        .iter()
        .filter(|name| held_by_a_process(&Path::new("/dev/hugepages").join(name)))
        .cloned()
        .collect();
    // Twenty runs, every way of ending several times over.
    for (args, signals) in runs.iter().cycle().take(20) {
        let mut child = Command::new(bin_dir().join("zcap"))
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        for _ in 0..*signals {
            std::thread::sleep(Duration::from_millis(700));
            Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .unwrap();
        }
        wait_with_limit(&mut child, LIMIT);
        let prefix = format!("zcap-{pid}");
        let runtime = std::path::Path::new("/var/run/dpdk").join(&prefix);
        assert!(
            !runtime.exists(),
            "{args:?}: {} left behind",
            runtime.display()
        );
        let hugepage_files: Vec<_> = std::fs::read_dir("/dev/hugepages")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_else(|_| Vec::new())
            .into_iter()
            .filter(|n: &String| n.starts_with(&format!("{prefix}map_")))
            .collect();
        assert!(
            hugepage_files.is_empty(),
            "{args:?}: {hugepage_files:?} left behind"
        );
    }
    // As they were: nothing added, and other processes' directories
    // (earlier runs, testpmd) still there.
    assert_eq!(listing("/var/run/dpdk"), before, "/var/run/dpdk");
    let hugepages_after = listing("/dev/hugepages");
    assert!(
        hugepages_after.is_subset(&hugepages_before),
        "/dev/hugepages gained {:?}",
        hugepages_after
            .difference(&hugepages_before)
            .collect::<Vec<_>>()
    );
    assert!(
        held.is_subset(&hugepages_after),
        "a live process's hugepage files went: {:?}",
        held.difference(&hugepages_after).collect::<Vec<_>>()
    );
}

/// True if a process holds a lock on `path` (EAL locks the hugepage files
/// it uses).
fn held_by_a_process(path: &Path) -> bool {
    match std::fs::File::open(path) {
        Ok(file) => file.try_lock().is_err(),
        Err(_) => false,
    }
}

/// Issue 18, smaller ones: with many queues the default pool could not be
/// created, and the error blamed `--mbufs`, which was never given. It names
/// the default pool and what to change instead.
#[test]
fn a_default_pool_too_big_says_so() {
    let dir = TempDir::new("default-pool");
    let out = dir.path("o.pcap");
    let args = [
        "-i",
        "net_null0",
        "-Q",
        "8",
        "--mem",
        "64",
        "-w",
        out.to_str().unwrap(),
    ];
    let run = zcap(&args, LIMIT);
    run.assert_usage_error("the default pool for 8 queues");
    assert!(!run.stderr.contains("--mbufs"), "{}", run.stderr);
    assert!(!out.exists());
}
