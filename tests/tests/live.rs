//! Issue 15: tcpdump's habits and a live port. `-w -` streams to a reader
//! through a pipe and stops cleanly when the reader goes.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use zcap_tests::frames::mixed;
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
        "$ZCAP -q -i net_pcap0,rx_pcap={} --stats-json {} -w - | cat > {}",
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
