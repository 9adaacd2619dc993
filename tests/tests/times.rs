//! Issue 16: every time from 1970 to 2106-02-07 06:28:15 UTC round-trips
//! through a net_pcap replay, in pcap (µs, ns) and pcapng. Debian 12's
//! libpcap reads pcap seconds as signed, so after 2038 they reached zcap
//! negative and came out as 2010 (pcap) or 2554 (pcapng). A time the output
//! cannot hold is written as the latest it can, counted, and said once.

use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgWriter};
use std::borrow::Cow;
use std::time::Duration;
use zcap_tests::frames::{ipv4_udp, record};
use zcap_tests::*;

const LIMIT: Duration = Duration::from_secs(120);
const S: u64 = 1_000_000_000;

#[test]
fn times_from_1970_to_2106_round_trip_in_pcap_and_pcapng() {
    let dir = TempDir::new("times");
    // 1970, 2026, the last signed second, the first after it, 2050, 2100,
    // and the last second pcap can hold; microseconds on each.
    let seconds = [
        1u64,
        1_764_547_200,
        (1 << 31) - 1,
        1 << 31,
        2_524_608_000,
        4_102_444_800,
        u64::from(u32::MAX),
    ];
    let records: Vec<Record> = seconds
        .iter()
        .enumerate()
        .map(|(i, &s)| record(s * S + 123_456_000, ipv4_udp(60, i as u32, 7)))
        .collect();
    let input = dir.path("in.pcap");
    write_pcap(&input, &records, false);
    for (name, extra) in [
        ("micro.pcap", &["--time-stamp-precision", "micro"][..]),
        ("nano.pcap", &["--time-stamp-precision", "nano"][..]),
    ] {
        let out = dir.path(name);
        let json = replay(&input, &out, extra);
        assert_eq!(read_pcap(&out).1, records, "{name}");
        assert_eq!(json_u64(&json, "/timestamps_out_of_range"), 0, "{name}");
    }
    let out = dir.path("out.pcapng");
    replay(&input, &out, &[]);
    assert_eq!(read_pcapng(&out).records, records, "pcapng");
}

#[test]
fn a_time_pcap_cannot_hold_is_clamped_counted_and_said_once() {
    let dir = TempDir::new("times-late");
    // A pcapng replay can carry times past 2106 (here 2200 and 2300).
    let input = dir.path("late.pcapng");
    let late = [7_258_118_400u64, 10_413_792_000];
    let mut writer = PcapNgWriter::new(std::fs::File::create(&input).unwrap()).unwrap();
    let idb = InterfaceDescriptionBlock {
        linktype: pcap_file::DataLink::ETHERNET,
        snaplen: 65535,
        // pcap-file writes EPB times in nanoseconds.
        options: vec![InterfaceDescriptionOption::IfTsResol(9)],
    };
    writer
        .write_block(&Block::InterfaceDescription(idb))
        .unwrap();
    let frame = ipv4_udp(60, 1, 7);
    for s in [1_764_547_200u64, late[0], late[1]] {
        let epb = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_secs(s),
            original_len: frame.len() as u32,
            data: Cow::Borrowed(&frame),
            options: vec![],
        };
        writer.write_block(&Block::EnhancedPacket(epb)).unwrap();
    }
    drop(writer);
    let out = dir.path("out.pcap");
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    let json = out.with_extension("json");
    let args = ["-q", "-i", &spec, "-w", out.to_str().unwrap()];
    let run = zcap(
        &[&args[..], &["--stats-json", json.to_str().unwrap()]].concat(),
        LIMIT,
    );
    let run = run.assert_ok();
    let said = run
        .stderr
        .lines()
        .filter(|l| l.contains("timestamps_out_of_range"))
        .count();
    assert_eq!(said, 1, "said once: {}", run.stderr);
    let json = final_json(&json);
    assert_eq!(json_u64(&json, "/timestamps_out_of_range"), 2);
    assert_conservation(&json);
    let got: Vec<u64> = read_pcap(&out).1.iter().map(|r| r.ts_ns).collect();
    let latest = u64::from(u32::MAX) * S + 999_999_999;
    assert_eq!(
        got,
        vec![1_764_547_200 * S, latest, latest],
        "clamped, never wrapped"
    );
    // pcapng holds them as they are.
    let ng = dir.path("out.pcapng");
    let json = replay(&input, &ng, &[]);
    assert_eq!(json_u64(&json, "/timestamps_out_of_range"), 0);
    let got: Vec<u64> = read_pcapng(&ng).records.iter().map(|r| r.ts_ns).collect();
    assert_eq!(got, vec![1_764_547_200 * S, late[0] * S, late[1] * S]);
}
