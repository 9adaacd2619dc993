//! Issue 16: a merged file is always in strict time order. Two queues (or two
//! ports) of a replay with interleaved times came out of order in 2 of 3
//! runs: a queue whose watermark had not moved for 200 ms of wall time (its
//! poll loop not yet running, or off its CPU) stopped holding the others
//! back. A replay waits for every queue now.

use std::path::PathBuf;
use std::time::Duration;
use zcap_tests::frames::{ipv4_udp, record};
use zcap_tests::*;

const LIMIT: Duration = Duration::from_secs(120);
const T0: u64 = 1_700_000_000_000_000_000;

/// Two halves of one interleaved stream: even packets in one, odd in the other.
fn halves(dir: &TempDir, n: u32) -> (Vec<PathBuf>, Vec<Record>) {
    let records: Vec<Record> = (0..n)
        .map(|i| {
            record(
                T0 + u64::from(i) * 1_000,
                ipv4_udp(60 + (i as usize % 100), i, 9),
            )
        })
        .collect();
    let paths = vec![dir.path("a.pcap"), dir.path("b.pcap")];
    for (k, path) in paths.iter().enumerate() {
        let part: Vec<Record> = records.iter().skip(k).step_by(2).cloned().collect();
        write_pcap(path, &part, false);
    }
    (paths, records)
}

#[test]
fn replays_over_two_queues_and_two_ports_merge_in_strict_order_every_time() {
    let dir = TempDir::new("order");
    let (paths, records) = halves(&dir, 40_000);
    let queues = format!(
        "net_pcap0,rx_pcap={},rx_pcap={}",
        paths[0].display(),
        paths[1].display()
    );
    let port_a = format!("net_pcap0,rx_pcap={}", paths[0].display());
    let port_b = format!("net_pcap1,rx_pcap={}", paths[1].display());
    for round in 0..3 {
        for (label, interfaces) in [
            ("queues", vec!["-i", queues.as_str()]),
            ("ports", vec!["-i", port_a.as_str(), "-i", port_b.as_str()]),
        ] {
            let out = dir.path(&format!("{label}-{round}.pcap"));
            let json = dir.path("order.json");
            let args = [&["-q", "--time-stamp-precision", "micro"][..], &interfaces];
            let files = [
                "-w",
                out.to_str().unwrap(),
                "--stats-json",
                json.to_str().unwrap(),
            ];
            zcap(&[&args.concat()[..], &files].concat(), LIMIT).assert_ok();
            // A replay waits for every queue: no escape hatch ever fires.
            let report = final_json(&json);
            assert_eq!(
                json_u64(&report, "/merge_forced"),
                0,
                "{label}, round {round}"
            );
            assert_eq!(
                json_u64(&report, "/out_of_order"),
                0,
                "{label}, round {round}"
            );
            let (_, got) = read_pcap(&out);
            let late = got.windows(2).position(|w| w[1].ts_ns < w[0].ts_ns);
            assert_eq!(late, None, "{label}, round {round}: out of order");
            assert_eq!(got.len(), records.len(), "{label}, round {round}");
            assert!(got == records, "{label}, round {round}: the same packets");
        }
    }
}
