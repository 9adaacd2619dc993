//! Issue 18.2: a replay through a small packet pool is captured whole. The
//! poll loops receive only while the pool can take a burst (net_pcap loses a
//! packet on every receive that finds the pool dry), and a replay waiting for
//! mbufs is not taken for its end.

use std::time::Duration;
use zcap_tests::frames::varied;
use zcap_tests::*;

const LIMIT: Duration = Duration::from_secs(120);
const T0: u64 = 1_700_000_000_000_000_000;

fn replay(
    dir: &TempDir,
    name: &str,
    inputs: &[std::path::PathBuf],
    mbufs: &str,
) -> serde_json::Value {
    let spec: String = inputs
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}rx_pcap={}", if i == 0 { "" } else { "," }, p.display()))
        .collect();
    let spec = format!("net_pcap0,{spec}");
    let out = dir.path(&format!("{name}.pcap"));
    let json = dir.path(&format!("{name}.json"));
    zcap(
        &[
            "-q",
            "-i",
            &spec,
            "-w",
            out.to_str().unwrap(),
            "--mbufs",
            mbufs,
            "--stats-json",
            json.to_str().unwrap(),
        ],
        LIMIT,
    )
    .assert_ok();
    let json = final_json(&json);
    assert_conservation(&json);
    assert_eq!(
        count_pcap(&out),
        json_u64(&json, "/packets_written"),
        "{name}: the file holds what the report says"
    );
    json
}

#[test]
fn small_pools_capture_a_replay_whole_with_one_and_several_queues() {
    let dir = TempDir::new("replay-pool");
    let records = varied(20_000, T0);
    let whole = dir.path("whole.pcap");
    write_pcap(&whole, &records, false);
    let halves = [dir.path("a.pcap"), dir.path("b.pcap")];
    let (a, b): (Vec<_>, Vec<_>) = records
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    write_pcap(
        &halves[0],
        &a.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
        false,
    );
    write_pcap(
        &halves[1],
        &b.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
        false,
    );
    for round in 0..2 {
        for mbufs in ["768", "384", "255"] {
            for (inputs, label) in [(&[whole.clone()][..], "one"), (&halves[..], "merged")] {
                let name = format!("{label}-{mbufs}-{round}");
                let json = replay(&dir, &name, inputs, mbufs);
                assert_eq!(
                    json_u64(&json, "/packets_written"),
                    records.len() as u64,
                    "{name}: {json}"
                );
                assert_eq!(json_u64(&json, "/drops/rx_nombuf"), 0, "{name}");
            }
        }
    }
}

#[test]
fn a_pool_too_small_for_the_replay_is_refused_up_front() {
    let dir = TempDir::new("replay-pool-small");
    let input = dir.path("in.pcap");
    write_pcap(&input, &varied(100, T0), false);
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    let out = dir.path("o.pcap");
    zcap(
        &[
            "-i",
            &spec,
            "-w",
            out.to_str().unwrap(),
            "--mbufs",
            "64",
            "--burst",
            "64",
        ],
        LIMIT,
    )
    .assert_usage_error("--mbufs");
}

/// Issue 18, smaller ones: pools of 64 to 383 mbufs failed with "Invalid
/// argument" (their per-lcore cache was larger than DPDK allows for them).
#[test]
fn small_pools_on_a_live_source_start_and_capture() {
    let dir = TempDir::new("small-pool-live");
    for mbufs in ["64", "100", "383"] {
        let out = dir.path(&format!("o{mbufs}.pcap"));
        let json = dir.path(&format!("s{mbufs}.json"));
        let args = ["-q", "-i", "net_null0", "-c", "1000", "--mbufs", mbufs];
        let files = [
            "-w",
            out.to_str().unwrap(),
            "--stats-json",
            json.to_str().unwrap(),
        ];
        zcap(&[&args[..], &files].concat(), LIMIT).assert_ok();
        assert_eq!(count_pcap(&out), 1000, "--mbufs {mbufs}");
        assert_conservation(&final_json(&json));
    }
}
