//! Issue 17 (NATS JetStream): captures published into a stream come back
//! out of it, record for record, equal to what the files of the same
//! capture give; through a node's loss, a server's restart, and with bad
//! input refused in one line. Every server listens on 127.0.0.1 only.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use zcap_tests::frames::varied;
use zcap_tests::nats::{
    create_stream, set_max_message, stream_messages, stream_state, Cluster, Single,
};
use zcap_tests::*;

const LIMIT: Duration = Duration::from_secs(120);
const T0: u64 = 1_700_000_000_000_000_000;
const PACKETS: u32 = 24_000;

fn extract(args: &[&str]) -> Run {
    zcap_extract(args)
}

/// The known replay, split over two queues (files `NAME-a`, `NAME-b`):
/// the vdev spec and every record in time order.
fn replay(dir: &TempDir, name: &str) -> (String, Vec<Record>) {
    let records = varied(PACKETS, T0);
    let mut halves = [Vec::new(), Vec::new()];
    for (i, r) in records.iter().enumerate() {
        halves[i % 2].push(r.clone());
    }
    let inputs = [
        dir.path(&format!("{name}-a.pcap")),
        dir.path(&format!("{name}-b.pcap")),
    ];
    for (path, half) in inputs.iter().zip(&halves) {
        write_pcap(path, half, true);
    }
    let spec = format!(
        "net_pcap0,rx_pcap={},rx_pcap={}",
        inputs[0].display(),
        inputs[1].display()
    );
    (spec, records)
}

/// Every writer's messages were acknowledged: none lost.
fn assert_nothing_lost(json: &serde_json::Value) {
    assert_conservation(json);
    for w in json["writers"].as_array().expect("writers") {
        assert_eq!(w["io_mode"], "publish", "{w}");
        assert_eq!(w["messages_lost"], 0, "{w}");
    }
}

fn same_records(got: &[Record], want: &[Record], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: record count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{what}: record {i} differs");
    }
}

/// A test's directory, its server, the URL of `stream` there, and the
/// known replay (vdev spec, records).
fn setup(name: &str, stream: &str) -> (TempDir, Single, String, String, Vec<Record>) {
    let dir = TempDir::new(&format!("stream-{name}"));
    let nats = Single::start(name, true);
    let url = nats.url(stream);
    let (spec, records) = replay(&dir, "in");
    (dir, nats, url, spec, records)
}

#[test]
fn a_replay_published_over_two_queues_comes_back_equal_also_filtered_and_windowed() {
    let (dir, nats, url, spec, records) = setup("round-trip", "CAP");
    let json = dir.path("publish.json");
    let args = ["-q", "-i", &spec, "--publish", &url, "--sensor", "rt"];
    zcap(
        &[&args[..], &["--stats-json", json.to_str().unwrap()]].concat(),
        LIMIT,
    )
    .assert_ok();
    let report = final_json(&json);
    assert_nothing_lost(&report);
    assert_eq!(json_u64(&report, "/packets_written"), u64::from(PACKETS));
    let (messages, replicas, subjects) = stream_state(nats.server.port, "CAP");
    assert!(messages >= 2, "one message or more per queue: {messages}");
    assert_eq!((replicas, subjects), (1, vec!["zcap.>".to_owned()]));

    // The whole stream: the input, in time order, as tshark reads it too.
    let out = dir.path("all.pcap");
    extract(&["--stream", &url, "-w", out.to_str().unwrap()]).assert_ok();
    same_records(&read_pcap(&out).1, &records, "whole stream");
    let (info, _) = tool("capinfos", &["-o", "-c", out.to_str().unwrap()]);
    assert!(info.contains("Strict time order:   True"), "{info}");

    // The same capture into files: both archives answer alike.
    let files = dir.path("files");
    std::fs::create_dir_all(&files).unwrap();
    let cap = files.join("cap.pcap");
    zcap(
        &[
            "-q",
            "-i",
            &spec,
            "-w",
            cap.to_str().unwrap(),
            "--per-queue-files",
        ],
        LIMIT,
    )
    .assert_ok();
    let from = format!("{:.6}", (T0 + 5_000 * 1_000) as f64 / 1e9);
    let to = format!("{:.6}", (T0 + 17_000 * 1_000) as f64 / 1e9);
    for (expr, window) in [
        ("host 10.0.1.3 or vlan 105", false),
        ("tcp port 80", true),
        ("", true),
    ] {
        let window: Vec<&str> = if window {
            vec!["--from", &from, "--to", &to]
        } else {
            vec![]
        };
        let from_stream = dir.path("s.pcap");
        let from_files = dir.path("f.pcap");
        let s = from_stream.to_str().unwrap();
        let f = from_files.to_str().unwrap();
        extract(&[&["--stream", &url, "-w", s][..], &window, &[expr]].concat()).assert_ok();
        extract(
            &[
                &["-r", files.to_str().unwrap(), "-w", f][..],
                &window,
                &[expr],
            ]
            .concat(),
        )
        .assert_ok();
        let (got, want) = (read_pcap(&from_stream).1, read_pcap(&from_files).1);
        assert!(!want.is_empty(), "{expr}: the files give something");
        same_records(&got, &want, expr);
    }
    // --sensor picks a sensor's subjects: another's are none of them.
    let none = dir.path("none.pcap");
    extract(&[
        "--stream",
        &url,
        "--sensor",
        "other",
        "-w",
        none.to_str().unwrap(),
    ])
    .assert_ok();
    assert!(read_pcap(&none).1.is_empty());
}

#[test]
fn files_and_the_stream_together_hold_the_same_records() {
    let (dir, _nats, url, spec, records) = setup("beside-files", "BOTH");
    let files = dir.path("files");
    std::fs::create_dir_all(&files).unwrap();
    let cap = files.join("cap.pcapng");
    let json = dir.path("both.json");
    let args = [
        "-q",
        "-i",
        &spec,
        "-w",
        cap.to_str().unwrap(),
        "--per-queue-files",
        "-C",
        "0.5",
        "--publish",
        &url,
        "--sensor",
        "both",
        "--stats-json",
        json.to_str().unwrap(),
    ];
    zcap(&args, LIMIT).assert_ok();
    let report = final_json(&json);
    assert_conservation(&report);
    let packets = u64::from(PACKETS);
    assert_eq!(json_u64(&report, "/packets_written"), packets);
    assert_eq!(
        json_u64(&report, "/packets_published"),
        packets,
        "a copy of each"
    );
    assert_eq!(json_u64(&report, "/packets_unpublished"), 0);
    for w in report["writers"].as_array().unwrap() {
        assert_ne!(w["io_mode"], "publish", "files are written: {w}");
        assert!(json_u64(w, "/messages_acked") > 0, "{w}");
    }
    // pcapng files (rotated, indexed) and pcap messages: the same records.
    let from_stream = dir.path("s.pcap");
    extract(&["--stream", &url, "-w", from_stream.to_str().unwrap()]).assert_ok();
    same_records(&read_pcap(&from_stream).1, &records, "the stream");
    let from_files = dir.path("f.pcap");
    extract(&[
        "-r",
        files.to_str().unwrap(),
        "-w",
        from_files.to_str().unwrap(),
    ])
    .assert_ok();
    same_records(&read_pcap(&from_files).1, &records, "the files");
}

/// A live capture on net_null into `url` for `seconds`, in the background.
fn live_capture(url: &str, json: &Path, seconds: &str, replicas: &str) -> KillOnDrop {
    let child = Command::new(bin_dir().join("zcap"))
        .args(TEST_EAL)
        .args([
            "-q",
            "-i",
            "net_null0,size=128",
            "--mbufs",
            "8192",
            "--duration",
            seconds,
        ])
        .args([
            "--publish",
            url,
            "--sensor",
            "live",
            "--stats-json",
            json.to_str().unwrap(),
        ])
        .args(["--stream-replicas", replicas, "--buffer-size", "64K"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

/// Waits for the capture; returns its report and stderr.
fn finish(mut capture: KillOnDrop, json: &Path) -> (serde_json::Value, String) {
    let (status, stderr) = wait_for_stderr(&mut capture.0, LIMIT);
    assert!(status.success(), "zcap failed: {stderr}");
    (final_json(json), stderr)
}

/// Every record zcap counted as written is in the stream, once.
fn assert_stream_holds(url: &str, dir: &TempDir, written: u64) {
    let out = dir.path("check.pcap");
    extract(&["--stream", url, "-w", out.to_str().unwrap()]).assert_ok();
    assert_eq!(
        count_pcap(&out),
        written,
        "the stream holds what was acknowledged"
    );
}

#[test]
fn losing_one_of_three_nodes_loses_nothing_acknowledged() {
    let dir = TempDir::new("stream-node-loss");
    let mut cluster = Cluster::start("node-loss");
    let url = cluster.url("R3");
    let json = dir.path("live.json");
    let capture = live_capture(&url, &json, "6", "3");
    std::thread::sleep(Duration::from_secs(2));
    cluster.nodes[1].kill();
    let (report, _) = finish(capture, &json);
    assert_nothing_lost(&report);
    let written = json_u64(&report, "/packets_written");
    assert!(written > 0);
    assert_eq!(stream_state(cluster.nodes[0].port, "R3").1, 3, "R=3");
    assert_stream_holds(&cluster.url("R3"), &dir, written);
}

#[test]
fn a_server_restart_mid_capture_is_ridden_out_and_every_drop_counted() {
    let dir = TempDir::new("stream-restart");
    let mut nats = Single::start("restart", true);
    let url = nats.url("LIVE");
    create_stream(nats.server.port, "LIVE", &["zcap.>"], -1);
    let json = dir.path("live.json");
    let capture = live_capture(&url, &json, "7", "1");
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    nats.server.stop();
    std::thread::sleep(Duration::from_millis(1500));
    nats.server.start();
    let (report, stderr) = finish(capture, &json);
    assert!(began.elapsed() > Duration::from_secs(3));
    assert!(stderr.contains("reconnected"), "{stderr}");
    // Packets that met a full window were dropped and counted (ring_full),
    // what was taken was acknowledged: nothing lost, the sums exact.
    assert_nothing_lost(&report);
    assert!(
        json_u64(&report, "/drops/ring_full") > 0,
        "the outage was felt"
    );
    assert_stream_holds(&url, &dir, json_u64(&report, "/packets_written"));
}

#[test]
fn bad_input_gets_one_line_and_its_exit_status() {
    let dir = TempDir::new("stream-bad-input");
    let (spec, _) = replay(&dir, "in");
    let capture = |url: &str, more: &[&str]| {
        zcap(
            &[&["-q", "-i", &spec, "--publish", url][..], more].concat(),
            LIMIT,
        )
    };
    capture("http://127.0.0.1:4222/S", &[]).assert_usage_error("not a nats:// URL");
    capture("nats://127.0.0.1:4222", &[]).assert_usage_error("names no stream");
    let unreachable = format!("nats://127.0.0.1:{}/S", zcap_tests::nats::free_port());
    capture(&unreachable, &[]).assert_usage_error("cannot connect to NATS");
    extract(&[
        "--stream",
        &unreachable,
        "-w",
        dir.path("x.pcap").to_str().unwrap(),
    ])
    .assert_usage_error("cannot connect to NATS");
    let plain = Single::start("no-js", false);
    capture(&plain.url("S"), &[]).assert_usage_error("has no JetStream");
    drop(plain);

    let nats = Single::start("bad-input", true);
    let port = nats.server.port;
    create_stream(port, "OTHER", &["other.>"], -1);
    capture(&nats.url("OTHER"), &[]).assert_usage_error("do not cover zcap.>");
    capture(&nats.url("S"), &["-C", "1"]).assert_usage_error("-C, -G or -W is for files");
    capture(&nats.url("S"), &["-F", "pcapng"]).assert_usage_error("pcap records");
    capture(&nats.url("S"), &["--sensor", "a.b"]).assert_usage_error("--sensor");
    let file = dir.path("x.pcap");
    zcap(
        &[
            "-i",
            &spec,
            "--publish",
            &nats.url("S"),
            "-w",
            file.to_str().unwrap(),
        ],
        LIMIT,
    )
    .assert_usage_error("add --per-queue-files");
    assert!(!file.exists(), "nothing written");
    extract(&[
        "--stream",
        &nats.url("MISSING"),
        "-w",
        dir.path("x.pcap").to_str().unwrap(),
    ])
    .assert_usage_error("no stream MISSING");
    // A stream whose messages cannot hold a packet of the snaplen.
    create_stream(port, "SMALL", &["zcap.>"], 8192);
    capture(&nats.url("SMALL"), &[]).assert_usage_error("lower -s");
}

/// `zcap-extract --stream` runs `zcap-extract-stream`, which alone carries
/// the NATS client: without it beside zcap-extract or in PATH, one line and
/// exit 2, after the same checks of its arguments; run by itself for files,
/// it says it reads only streams.
#[test]
fn the_stream_reader_is_a_program_of_its_own() {
    let dir = TempDir::new("stream-reader");
    let alone = dir.path("zcap-extract");
    // A link, not a copy: a file just written may not be run at once.
    if std::fs::hard_link(bin_dir().join("zcap-extract"), &alone).is_err() {
        std::fs::copy(bin_dir().join("zcap-extract"), &alone).unwrap();
    }
    let out = dir.path("x.pcap");
    let alone_with = |more: &[&str]| {
        let mut cmd = Command::new(&alone);
        cmd.args(["-w", out.to_str().unwrap()])
            .args(more)
            .env("PATH", dir.path(""));
        run_with_limit(cmd, LIMIT)
    };
    let url = "nats://127.0.0.1:4222/S";
    alone_with(&["--stream", url]).assert_usage_error("found neither beside zcap-extract");
    alone_with(&["--stream", url, "--from", "yesterday"]).assert_usage_error("--from");
    alone_with(&["--stream", "http://x/S"]).assert_usage_error("nats://");
    assert!(!out.exists(), "nothing written");
    let mut cmd = Command::new(bin_dir().join("zcap-extract-stream"));
    cmd.args([
        "-r",
        dir.path("").to_str().unwrap(),
        "-w",
        out.to_str().unwrap(),
    ]);
    run_with_limit(cmd, LIMIT).assert_usage_error("reads --stream URL");
    assert!(!out.exists(), "nothing written");
}

#[test]
fn a_message_the_server_refuses_stops_the_capture_with_one_line() {
    let dir = TempDir::new("stream-refused");
    let nats = Single::start("refused", true);
    let url = nats.url("SHRINK");
    let json = dir.path("live.json");
    let mut capture = live_capture(&url, &json, "30", "1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while stream_messages(nats.server.port, "SHRINK").is_none_or(|n| n == 0) {
        assert!(Instant::now() < deadline, "no stream made");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Too small for the capture's 64K messages from now on.
    set_max_message(nats.server.port, "SHRINK", 1024);
    let (status, stderr) = wait_for_stderr(&mut capture.0, LIMIT);
    assert_eq!(status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("cannot publish on zcap.live.0.0"),
        "{stderr}"
    );
    assert!(lines[0].contains("refused"), "{stderr}");
    let report = final_json(&json);
    assert_conservation(&report);
    assert!(
        json_u64(&report, "/drops/writer") > 0,
        "the refused records are counted"
    );
}
