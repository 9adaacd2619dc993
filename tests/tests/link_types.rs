//! Issue 18.3: a replay keeps its file's link type. Raw IP (101) and Linux
//! cooked (113) captures are written with their own link type, in pcap and
//! pcapng, and filters are compiled for it, as `tcpdump -r` compiles them;
//! where one link type cannot serve all ports, zcap refuses with exit 2.

use std::path::{Path, PathBuf};
use std::time::Duration;
use zcap_tests::frames::{ipv6_udp, record, varied};
use zcap_tests::*;

const LIMIT: Duration = Duration::from_secs(120);
const T0: u64 = 1_700_000_000_000_000_000;
const RAW: u32 = 101;
const SLL: u32 = 113;

/// IPv4 and IPv6 packets without an Ethernet header, as link type `link`
/// frames them: bare (raw IP) or behind a Linux cooked header.
fn packets(link: u32) -> Vec<Record> {
    let mut ethernet: Vec<Record> = varied(600, T0)
        .into_iter()
        .filter(|r| r.data[12..14] == [0x08, 0x00])
        .collect();
    // Whole microseconds: the input is written with microsecond stamps.
    let at = |i: u32| T0 + 3_000 * u64::from(i) + 1_000;
    ethernet.extend((0..200u32).map(|i| record(at(i), ipv6_udp(90, i))));
    ethernet.sort_by_key(|r| r.ts_ns);
    ethernet
        .into_iter()
        .map(|r| {
            let ip = &r.data[14..];
            let ethertype = &r.data[12..14];
            let data = match link {
                RAW => ip.to_vec(),
                // Packet type (0: to us), ARPHRD_ETHER, address length and
                // address, then the protocol.
                _ => [
                    &[0, 0, 0, 1, 0, 6][..],
                    &[2, 0, 0, 0, 0, 2, 0, 0],
                    ethertype,
                    ip,
                ]
                .concat(),
            };
            record(r.ts_ns, data)
        })
        .collect()
}

fn replay(input: &Path, out: &Path, extra: &[&str]) -> Run {
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    let args = [
        "-q",
        "-i",
        &spec,
        "-w",
        out.to_str().unwrap(),
        "--time-stamp-precision",
        "micro",
    ];
    zcap(&[&args[..], extra].concat(), LIMIT)
}

fn encapsulation(path: &Path) -> String {
    let (info, _) = tool("capinfos", &["-E", path.to_str().unwrap()]);
    info
}

#[test]
fn raw_and_cooked_replays_keep_their_link_type_and_filter_like_tcpdump() {
    let dir = TempDir::new("link-types");
    for (link, name, decoded) in [(RAW, "raw", "Raw IP"), (SLL, "sll", "Linux cooked")] {
        let input = dir.path(&format!("{name}.pcap"));
        let records = packets(link);
        write_pcap_link(&input, &records, false, link);
        let pcap = dir.path(&format!("{name}-out.pcap"));
        replay(&input, &pcap, &[]).assert_ok();
        let (header, got) = read_pcap(&pcap);
        assert_eq!(u32::from(header.datalink), link, "{name}: pcap link type");
        assert_eq!(got, records, "{name}: every packet, as it was");
        assert!(
            encapsulation(&pcap).contains(decoded),
            "{name}: {}",
            encapsulation(&pcap)
        );
        let ng = dir.path(&format!("{name}-out.pcapng"));
        replay(&input, &ng, &[]).assert_ok();
        assert_eq!(
            read_pcapng(&ng).link_types,
            vec![link],
            "{name}: pcapng IDB"
        );
        for expr in ["ip", "ip6 and udp", "host 10.0.1.3", "udp port 53"] {
            let ours = dir.path(&format!("{name}-f.pcap"));
            let theirs = dir.path(&format!("{name}-t.pcap"));
            replay(&input, &ours, &["-f", expr]).assert_ok();
            let input = input.to_str().unwrap();
            tool(
                "tcpdump",
                &["-r", input, "-w", theirs.to_str().unwrap(), expr],
            );
            let (want_header, want) = read_pcap(&theirs);
            assert_eq!(u32::from(want_header.datalink), link);
            assert!(
                !want.is_empty(),
                "{name} {expr:?}: not a discriminating test"
            );
            assert_eq!(read_pcap(&ours).1, want, "{name} {expr:?}: as tcpdump -r");
        }
    }
}

#[test]
fn ports_of_different_link_types_go_to_pcapng_only_and_unfiltered() {
    let dir = TempDir::new("link-types-mixed");
    let raw = dir.path("raw.pcap");
    write_pcap_link(&raw, &packets(RAW), false, RAW);
    let eth = dir.path("eth.pcap");
    write_pcap(&eth, &varied(300, T0), false);
    let ports = |out: &PathBuf| {
        vec![
            "-q".to_owned(),
            "-i".into(),
            format!("net_pcap0,rx_pcap={}", eth.display()),
            "-i".into(),
            format!("net_pcap1,rx_pcap={}", raw.display()),
            "-w".into(),
            out.display().to_string(),
        ]
    };
    let pcap = dir.path("mixed.pcap");
    let args = ports(&pcap);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    zcap(&args, LIMIT).assert_usage_error("a pcap file holds one link type");
    assert!(!pcap.exists());
    let ng = dir.path("mixed.pcapng");
    let args = ports(&ng);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    zcap(&args, LIMIT).assert_ok();
    assert_eq!(read_pcapng(&ng).link_types, vec![1, RAW]);
    zcap(&[&args[..], &["-f", "ip"]].concat(), LIMIT).assert_usage_error("-f");
}

#[test]
fn a_replay_file_that_cannot_be_read_is_named() {
    let dir = TempDir::new("link-types-missing");
    let out = dir.path("o.pcap");
    let missing = dir.path("missing.pcap");
    replay(&missing, &out, &[]).assert_usage_error("missing.pcap");
    let garbage = dir.path("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture file at all").unwrap();
    replay(&garbage, &out, &[]).assert_usage_error("garbage.pcap");
    assert!(!out.exists());
}
