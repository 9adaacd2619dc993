// Over 500 lines: one end-to-end scenario per test, each set up in full where it is read; what they share is in tests/src.
//! Issue 15: tcpdump's habits and a live port. `-w -` streams to a reader
//! through a pipe and stops cleanly when the reader goes.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use zcap_tests::frames::mixed;
use zcap_tests::veth::{VethPair, CAPTURE_END};
use zcap_tests::*;

const LIMIT: Duration = Duration::from_secs(120);
const T0: u64 = 1_700_000_000_000_000_000;

/// `sh -c SCRIPT` with `$ZCAP` set to the zcap binary (with `--no-huge`).
fn shell(script: &str) -> Run {
    let zcap = format!(
        "{} {}",
        bin_dir().join("zcap").display(),
        TEST_EAL.join(" ")
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]).env("ZCAP", zcap);
    run_with_limit(cmd, LIMIT)
}

#[test]
fn dash_w_dash_streams_every_record_through_a_pipe() {
    let dir = TempDir::new("stdout-pipe");
    let (input, out, json) = (
        dir.path("in.pcap"),
        dir.path("out.pcap"),
        dir.path("s.json"),
    );
    let records = mixed(T0);
    write_pcap(&input, &records, true);
    let script = format!(
        // -vvvvv: DPDK's debug lines (and what EAL prints on stdout) go
        // to stderr and leave the stream whole.
        "$ZCAP -q -v -v -v -v -v -i net_pcap0,rx_pcap={} --stats-json {} -w - | cat > {}",
        input.display(),
        json.display(),
        out.display()
    );
    shell(&script).assert_ok();
    let (_, got) = read_pcap(&out);
    assert_eq!(got, records, "the piped stream differs from the input");
    let report = final_json(&json);
    assert_conservation(&report);
    assert_eq!(json_u64(&report, "/packets_written"), records.len() as u64);
}

#[test]
fn dash_w_dash_pcapng_is_read_by_tshark_from_a_pipe() {
    if !have_tool("tshark") {
        panic!("tshark is required for this test (scripts/setup.sh installs it)");
    }
    let run = shell("$ZCAP -q -i net_null0 -c 5000 -F pcapng -w - | tshark -r - -T fields -e frame.number 2>/dev/null | wc -l");
    let run = run.assert_ok();
    assert_eq!(run.stdout.trim(), "5000", "tshark read: {}", run.stdout);
}

/// `zcap -w - | head -c N`: the reader leaves mid-capture. zcap stops as
/// on Ctrl-C, exits 0 and counts every packet it did not write.
#[test]
fn a_reader_that_leaves_stops_the_capture_cleanly() {
    let dir = TempDir::new("stdout-reader-gone");
    let json = dir.path("s.json");
    let mut child = KillOnDrop(
        Command::new(bin_dir().join("zcap"))
            .args(TEST_EAL)
            .args(["-q", "-i", "net_null0", "-w", "-", "--stats-json"])
            .arg(&json)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut head = vec![0u8; 200_000];
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_exact(&mut head)
        .unwrap(); // and the pipe's read end is closed here
    assert_eq!(
        &head[..4],
        &0xa1b2_3c4d_u32.to_le_bytes(),
        "a nanosecond pcap"
    );
    let (status, stderr) = wait_for_stderr(&mut child.0, LIMIT);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(
        stderr.contains("reader of standard output went away"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    let report = final_json(&json);
    assert_conservation(&report);
    assert!(json_u64(&report, "/packets_written") > 0);
    assert!(
        json_u64(&report, "/drops/writer") > 0,
        "unwritten packets are counted: {report}"
    );
}

#[test]
fn dash_w_dash_refuses_what_needs_files() {
    for extra in [
        &["-C", "1"][..],
        &["--per-queue-files"],
        &["--compress", "zstd"],
    ] {
        let mut args = vec!["-i", "net_null0", "-c", "10", "-w", "-"];
        args.extend(extra);
        let run = zcap(&args, LIMIT);
        run.assert_usage_error("-w - is one stream on standard output");
    }
    assert!(
        !Path::new("-").exists() && !Path::new("-.zst").exists(),
        "no file named - was made"
    );
}

/// Starts zcap inside `veth`'s namespace on its capture end with `args`,
/// and waits until it reports (its ports are up, so nothing sent is missed
/// for want of a socket).
fn start_on_veth(veth: &VethPair, json: &Path, args: &[&str]) -> KillOnDrop {
    let child = veth
        .command(&bin_dir().join("zcap"))
        .args(TEST_EAL)
        .args([
            "-q",
            "-i",
            CAPTURE_END,
            "--stats-interval",
            "0.2",
            "--stats-json",
        ])
        .arg(json)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    let deadline = std::time::Instant::now() + LIMIT;
    while std::fs::metadata(json).map_or(true, |m| m.len() == 0) {
        assert!(std::time::Instant::now() < deadline, "zcap never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// The mixed fixture's frames that fit a standard MTU (the veth's).
fn standard_frames(dir: &TempDir) -> (std::path::PathBuf, Vec<Record>) {
    let records: Vec<Record> = mixed(T0)
        .into_iter()
        .filter(|r| r.data.len() <= 1514)
        .collect();
    let input = dir.path("send.pcap");
    write_pcap(&input, &records, true);
    (input, records)
}

/// [`standard_frames`] `rounds` times over, in one file.
fn standard_frames_times(dir: &TempDir, rounds: usize) -> (std::path::PathBuf, Vec<Record>) {
    let (input, one_round) = standard_frames(dir);
    let records: Vec<Record> = (0..rounds)
        .flat_map(|_| one_round.iter().cloned())
        .collect();
    write_pcap(&input, &records, true);
    (input, records)
}

#[test]
fn a_live_veth_by_its_name_gives_every_frame_in_order_and_identical() {
    let dir = TempDir::new("veth-every-frame");
    let (input, records) = standard_frames(&dir);
    let (out, json) = (dir.path("live.pcap"), dir.path("live.json"));
    let veth = VethPair::new();
    let count = records.len().to_string();
    let mut zcap = start_on_veth(&veth, &json, &["-c", &count, "-w", out.to_str().unwrap()]);
    let sent = veth.send(&input, 20_000);
    assert_eq!(sent, records.len() as u64);
    let (status, stderr) = wait_for_stderr(&mut zcap.0, LIMIT);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(
        stderr.contains("net_af_packet, which is not kernel bypass"),
        "the notice: {stderr}"
    );
    let (_, got) = read_pcap(&out);
    assert_eq!(got.len(), records.len(), "every frame sent was captured");
    for (i, (g, want)) in got.iter().zip(&records).enumerate() {
        assert_eq!(
            (g.orig_len, &g.data),
            (want.orig_len, &want.data),
            "frame {i} differs"
        );
        assert!(
            i == 0 || g.ts_ns >= got[i - 1].ts_ns,
            "frame {i} goes back in time"
        );
    }
    let report = final_json(&json);
    assert_conservation(&report);
    assert_eq!(json_u64(&report, "/packets_received"), records.len() as u64);
    const IFF_PROMISC: u32 = 0x100;
    assert_eq!(
        veth.flags(CAPTURE_END) & IFF_PROMISC,
        0,
        "promiscuous mode is undone"
    );
}

/// Frames sent as fast as the sender goes, at a writer slowed down by
/// zstd's slowest level: packets are lost, and each one zcap received is
/// counted. (Frames lost in the kernel's af_packet ring are not: DPDK
/// 22.11's net_af_packet does not report its drops; README, Real NICs.)
#[test]
fn an_overloaded_live_port_counts_every_loss_it_sees() {
    let dir = TempDir::new("veth-overload");
    let (input, records) = standard_frames_times(&dir, 31);
    let (out, json) = (dir.path("busy.pcap"), dir.path("busy.json"));
    let veth = VethPair::new();
    let out_arg = out.to_str().unwrap();
    let slow = ["--compress", "zstd:19", "--ring-size", "64", "-w", out_arg];
    let mut zcap = start_on_veth(&veth, &json, &slow);
    let sent = veth.send(&input, 0);
    std::thread::sleep(Duration::from_millis(500));
    signal(&zcap.0, "INT");
    let (status, stderr) = wait_for_stderr(&mut zcap.0, LIMIT);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    let report = final_json(&json);
    assert_conservation(&report);
    let received = json_u64(&report, "/packets_received");
    let lost_in_zcap = json_u64(&report, "/drops/ring_full") + json_u64(&report, "/drops/writer");
    let missed = json_u64(&report, "/drops/imissed");
    assert!(
        lost_in_zcap + missed > 0,
        "the run was not an overload: {report}"
    );
    assert!(
        received + missed <= sent,
        "more counted than sent ({sent}): {report}"
    );
    // What was written is what was sent, less the losses, in order.
    let plain = dir.path("busy-plain.pcap");
    let zst = format!("{}.zst", out.display());
    tool("zstd", &["-q", "-d", &zst, "-o", plain.to_str().unwrap()]);
    let (_, got) = read_pcap(&plain);
    assert_eq!(got.len() as u64, json_u64(&report, "/packets_written"));
    let mut next = 0;
    for (i, g) in got.iter().enumerate() {
        let found = records[next..].iter().position(|r| r.data == g.data);
        let found = found.unwrap_or_else(|| panic!("written frame {i} was not sent in that order"));
        next += found + 1;
    }
}

#[test]
fn dash_d_lists_the_vdevs_and_the_kernels_interfaces() {
    // --no-pci: never probe this machine's own NIC in a test.
    let args = ["-D", "--eal=--no-pci", "-i", "net_null0"];
    let run = zcap(&args, LIMIT).assert_ok();
    let first = run.stdout.lines().nth(1).unwrap_or_default();
    assert!(
        first.contains("0. net_null0  driver net_null"),
        "{}",
        run.stdout
    );
    assert!(first.contains("rx queues"), "{first}");
    assert!(
        run.stdout
            .contains("\n  lo  driver none (virtual)  mac 00:00:00:00:00:00  link up"),
        "{}",
        run.stdout
    );
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let run = zcap(&json_args, LIMIT).assert_ok();
    let listing: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(listing["dpdk_ports"][0]["driver"], "net_null");
    assert!(listing["dpdk_ports"][0]["max_rx_queues"].as_u64().unwrap() >= 1);
    let kernel = listing["kernel_interfaces"].as_array().unwrap();
    let lo = kernel
        .iter()
        .find(|k| k["name"] == "lo")
        .expect("lo is listed");
    assert_eq!(lo["opens_through"], "af_packet");
    assert_eq!(lo["kernel_bypass"], false);
}

#[test]
fn dash_d_in_a_namespace_shows_how_a_veth_opens() {
    let veth = VethPair::new();
    let out = veth
        .command(&bin_dir().join("zcap"))
        .args(TEST_EAL)
        .args(["-D", "--eal=--no-pci"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(CAPTURE_END))
        .expect("the veth is listed");
    assert!(line.contains("driver none (virtual)"), "{line}");
    assert!(
        line.contains("opens through net_af_packet (not kernel bypass)"),
        "{line}"
    );
}

#[test]
fn an_unknown_interface_name_is_one_line_and_exit_2() {
    let dir = TempDir::new("unknown-iface");
    let out = dir.path("x.pcap");
    let run = zcap(&["-i", "zcapnosuch0", "-w", out.to_str().unwrap()], LIMIT);
    run.assert_usage_error("no such interface \"zcapnosuch0\"");
    assert!(!out.exists(), "nothing was written");
    let run = zcap(
        &[
            "-i",
            "net_null0",
            "--rss-key",
            "random",
            "-w",
            out.to_str().unwrap(),
        ],
        LIMIT,
    );
    run.assert_usage_error("--rss-key");
}

#[test]
fn dash_j_says_each_ports_time_source_and_refuses_what_the_port_lacks() {
    let dir = TempDir::new("time-stamp-type");
    let (input, out) = (dir.path("in.pcap"), dir.path("o.pcapng"));
    let records = mixed(T0);
    write_pcap(&input, &records, true);
    let capture = |extra: &[&str]| {
        let report = replay(&input, &out, extra);
        assert_conservation(&report);
        report
    };
    // A replay keeps the file's times unless -j host says otherwise.
    let report = capture(&[]);
    assert_eq!(report["ports"][0]["time_source"], "file");
    assert_eq!(
        report["ports"][0]["rss_key"], "none",
        "one queue hashes nothing"
    );
    assert_eq!(read_pcapng(&out).records[0].ts_ns, records[0].ts_ns);
    let report = capture(&["-j", "host"]);
    assert_eq!(report["ports"][0]["time_source"], "host");
    let first = read_pcapng(&out).records[0].ts_ns;
    assert!(
        first > records.last().unwrap().ts_ns,
        "stamped now, not with the file's times"
    );
    if have_tool("tshark") {
        let (described, _) = tool(
            "tshark",
            &[
                "-r",
                out.to_str().unwrap(),
                "-c",
                "1",
                "-T",
                "fields",
                "-e",
                "frame.interface_description",
            ],
        );
        assert!(described.contains("timestamps: host clock"), "{described}");
    }
    for adapter in ["adapter", "adapter_unsynced"] {
        let run = zcap(
            &[
                "-i",
                "net_null0",
                "-j",
                adapter,
                "-w",
                out.to_str().unwrap(),
            ],
            LIMIT,
        );
        run.assert_usage_error("offers no RX timestamps");
    }
}

/// scripts/nic.sh never takes an interface that may carry the machine's
/// traffic, nor one that is not a PCI NIC. (Binding itself needs a NIC;
/// this machine has none it may take.)
#[test]
fn nic_sh_refuses_interfaces_it_must_not_take() {
    let veth = VethPair::new();
    let script = workspace().join("scripts/nic.sh");
    let nic = |args: &[&str]| {
        let out = veth
            .command(Path::new("bash"))
            .arg(&script)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, said) = nic(&["bind", CAPTURE_END]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("is not a PCI NIC"), "{said}");
    veth.run(&["ip", "addr", "add", "192.0.2.1/24", "dev", CAPTURE_END]);
    let (code, said) = nic(&["bind", CAPTURE_END]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("has an IP address (192.0.2.1/24)"), "{said}");
    veth.run(&["ip", "addr", "del", "192.0.2.1/24", "dev", CAPTURE_END]);
    veth.run(&["ip", "route", "add", "198.51.100.0/24", "dev", CAPTURE_END]);
    let (code, said) = nic(&["bind", CAPTURE_END]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("carries a route (198.51.100.0/24"), "{said}");
    assert_eq!(nic(&["unbind", CAPTURE_END]).0, Some(1));
    assert_eq!(nic(&["bind"]).0, Some(2), "usage");
}

#[test]
fn the_rss_key_and_mtu_each_port_got_are_in_the_report() {
    let dir = TempDir::new("rss-key");
    let (out, json) = (dir.path("k.pcap"), dir.path("k.json"));
    for (key, expected) in [(None, "symmetric"), (Some("driver"), "driver")] {
        let mut args = vec!["-q", "-i", "net_null0", "-Q", "2", "-c", "2000"];
        args.extend([
            "-w",
            out.to_str().unwrap(),
            "--stats-json",
            json.to_str().unwrap(),
        ]);
        if let Some(key) = key {
            args.extend(["--rss-key", key]);
        }
        zcap(&args, LIMIT).assert_ok();
        let report = final_json(&json);
        assert_conservation(&report);
        assert_eq!(report["ports"][0]["rss_key"], expected);
        // A virtual device keeps its MTU, and the report says which it is.
        assert!(
            report["ports"][0]["mtu"]
                .as_u64()
                .is_some_and(|m| m >= 1500),
            "{report}"
        );
        assert_eq!(report["ports"][0]["scatter"], false);
    }
}

#[test]
fn a_full_standard_output_is_one_line_and_exit_1() {
    let run = shell("$ZCAP -q -i net_null0 -c 1000 -w - > /dev/full");
    run.assert_runtime_error(&["cannot write standard output", "No space left on device"]);
}

/// Issue 13: at a rate the disk sustains, rotating does not lose a frame.
/// 20,000 frames a second into files of 200 kB on a RAM-backed ext4 with
/// direct I/O (about 60 files, one every 16 ms): every frame sent is in the
/// files, in order, and no drop counter moved.
#[test]
fn rotating_every_few_milliseconds_at_a_steady_rate_loses_no_frame() {
    let dir = TempDir::new("veth-rotation");
    let (input, records) = standard_frames_times(&dir, 10);
    let fs = zcap_tests::loopfs::LoopFs::new("veth-rotation", 64);
    let out = fs.path("r.pcap");
    let json = dir.path("r.json");
    let veth = VethPair::new();
    let count = records.len().to_string();
    let args = ["-c", &count, "-C", "0.2", "--io", "direct"];
    let mut zcap = start_on_veth(
        &veth,
        &json,
        &[&args[..], &["-w", out.to_str().unwrap()]].concat(),
    );
    let sent = veth.send(&input, 20_000);
    assert_eq!(sent, records.len() as u64);
    let (status, stderr) = wait_for_stderr(&mut zcap.0, LIMIT);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    let report = final_json(&json);
    assert_conservation(&report);
    assert_eq!(json_u64(&report, "/packets_received"), sent, "{report}");
    for cause in ["ring_full", "writer", "imissed", "rx_nombuf"] {
        assert_eq!(
            json_u64(&report, &format!("/drops/{cause}")),
            0,
            "{cause}: {report}"
        );
    }
    let mut parts: Vec<_> = std::fs::read_dir(fs.dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    parts.sort();
    assert!(parts.len() >= 20, "only {} files", parts.len());
    let got: Vec<Record> = parts.iter().flat_map(|p| read_pcap(p).1).collect();
    assert_eq!(got.len(), records.len(), "every frame sent is in the files");
    for (i, (g, want)) in got.iter().zip(&records).enumerate() {
        assert_eq!(g.data, want.data, "frame {i} differs");
    }
}
