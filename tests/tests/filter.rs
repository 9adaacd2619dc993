//! Issue 5 (filters): zcap's output equals tcpdump's for the same expression,
//! record for record, and the filtered count is the difference.

use std::time::Duration;
use zcap_tests::frames::varied;
use zcap_tests::*;

const LIMIT: Duration = Duration::from_secs(120);

const EXPRESSIONS: &[&str] = &[
    "host 10.0.1.3",
    "net 192.168.1.0/24",
    "src net 10.0.2.0/24 and dst port 443",
    "portrange 1000-1999",
    "tcp dst portrange 50-500",
    "vlan",
    "vlan 105",
    "ip6",
    "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
    "tcp[tcpflags] & tcp-rst != 0 and not port 22",
    "greater 1000",
    "less 100",
    "udp or ip6",
    "not tcp",
    "ip[8] < 64",
    "ip[8] = 255 and tcp",
];

#[test]
fn filters_agree_with_tcpdump_record_for_record() {
    let dir = TempDir::new("filters");
    let input = dir.path("in.pcap");
    let records = varied(4000, 1_700_000_000_000_000_000);
    write_pcap(&input, &records, false);
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    for (i, expr) in EXPRESSIONS.iter().enumerate() {
        let ours = dir.path(&format!("zcap{i}.pcap"));
        let theirs = dir.path(&format!("tcpdump{i}.pcap"));
        let json_path = dir.path(&format!("s{i}.json"));
        zcap(
            &[
                "-q",
                "-i",
                &spec,
                "-w",
                ours.to_str().unwrap(),
                "--stats-json",
                json_path.to_str().unwrap(),
                "--time-stamp-precision",
                "micro",
                "-f",
                expr,
            ],
            LIMIT,
        )
        .assert_ok();
        tool(
            "tcpdump",
            &[
                "-r",
                input.to_str().unwrap(),
                "-w",
                theirs.to_str().unwrap(),
                expr,
            ],
        );
        let (_, got) = read_pcap(&ours);
        let (_, want) = read_pcap(&theirs);
        assert!(
            !want.is_empty() && want.len() < records.len(),
            "{expr:?} is not a discriminating test ({} of {})",
            want.len(),
            records.len()
        );
        assert_eq!(
            got.len(),
            want.len(),
            "{expr:?}: zcap kept {}, tcpdump {}",
            got.len(),
            want.len()
        );
        assert!(got == want, "{expr:?}: same count, different records");
        let json = final_json(&json_path);
        assert_conservation(&json);
        assert_eq!(
            json_u64(&json, "/packets_filtered"),
            (records.len() - want.len()) as u64,
            "{expr:?}"
        );
    }
}

#[test]
fn trailing_words_are_a_filter_too() {
    let dir = TempDir::new("filter-words");
    let input = dir.path("in.pcap");
    let records = varied(700, 1_700_000_000_000_000_000);
    write_pcap(&input, &records, false);
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    let out = dir.path("o.pcap");
    zcap(
        &[
            "-q",
            "-i",
            &spec,
            "-w",
            out.to_str().unwrap(),
            "udp",
            "and",
            "port",
            "53",
        ],
        LIMIT,
    )
    .assert_ok();
    let (_, got) = read_pcap(&out);
    assert!(!got.is_empty() && got.len() < records.len());
}

#[test]
fn a_bad_filter_exits_2_with_libpcaps_message() {
    let dir = TempDir::new("bad-filter");
    let out = dir.path("o.pcap");
    zcap(
        &[
            "-i",
            "net_null0",
            "-w",
            out.to_str().unwrap(),
            "-f",
            "udp and prot 53",
        ],
        LIMIT,
    )
    .assert_usage_error("syntax error");
    zcap(
        &[
            "-i",
            "net_null0",
            "-w",
            out.to_str().unwrap(),
            "host",
            "999.1.1.1",
        ],
        LIMIT,
    )
    .assert_usage_error("999.1.1.1");
    assert!(!out.exists());
}

#[test]
fn dash_d_prints_the_program_like_tcpdump() {
    let run = run_with_limit(
        {
            let mut c = std::process::Command::new(bin_dir().join("zcap"));
            c.args(["-d", "tcp", "port", "80"]);
            c
        },
        LIMIT,
    )
    .assert_ok();
    let (want, _) = tool("tcpdump", &["-d", "tcp", "port", "80"]);
    assert_eq!(run.stdout, want);
}

/// Issue 18.1: bit tests against small constants crashed zcap (SIGSEGV,
/// SIGILL) or let everything through in DPDK's JIT. Each now exits 0 and
/// keeps exactly what tcpdump keeps.
#[test]
fn bit_test_filters_agree_with_tcpdump() {
    let dir = TempDir::new("filter-bits");
    let input = dir.path("in.pcap");
    let mut records = varied(3000, 1_700_000_000_000_000_000);
    for (i, r) in records.iter_mut().enumerate() {
        match i % 4 {
            0 => r.data[..6].copy_from_slice(&[0x01, 0x00, 0x5e, 0, 0, 1]),
            1 => r.data[..6].copy_from_slice(&[0xff; 6]),
            2 => r.data[5] ^= 0x10,
            _ => {}
        }
    }
    write_pcap(&input, &records, false);
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    for (i, expr) in [
        "not multicast",
        "not ether multicast",
        "ether[0] & 1 = 0",
        "not broadcast and not multicast",
        "multicast",
        "ether[5] & 0x10 != 0",
        "ip[1] & 0x3 != 0",
        "ip[6] & 0x20 != 0",
    ]
    .iter()
    .enumerate()
    {
        let ours = dir.path(&format!("zcap{i}.pcap"));
        let theirs = dir.path(&format!("tcpdump{i}.pcap"));
        let json_path = dir.path(&format!("s{i}.json"));
        let args = ["-q", "-i", &spec, "-w", ours.to_str().unwrap()];
        let stats = ["--stats-json", json_path.to_str().unwrap()];
        let precision = ["--time-stamp-precision", "micro", "-f", expr];
        zcap(&[&args[..], &stats, &precision].concat(), LIMIT).assert_ok();
        let input = input.to_str().unwrap();
        tool(
            "tcpdump",
            &["-r", input, "-w", theirs.to_str().unwrap(), expr],
        );
        let (_, got) = read_pcap(&ours);
        let (_, want) = read_pcap(&theirs);
        assert!(
            got == want,
            "{expr:?}: zcap {}, tcpdump {}",
            got.len(),
            want.len()
        );
        let json = final_json(&json_path);
        assert_conservation(&json);
        let filtered = (records.len() - want.len()) as u64;
        assert_eq!(json_u64(&json, "/packets_filtered"), filtered, "{expr:?}");
    }
}

/// Issue 16: options after the expression words were swallowed into the
/// expression (`zcap -i X not tcp -w f.pcap` failed). tcpdump on Linux takes
/// them anywhere; so does zcap, and `--` ends the options.
#[test]
fn options_may_follow_the_expression_words() {
    let dir = TempDir::new("filter-options-after");
    let input = dir.path("in.pcap");
    let records = varied(700, 1_700_000_000_000_000_000);
    write_pcap(&input, &records, false);
    let spec = format!("net_pcap0,rx_pcap={}", input.display());
    let out = dir.path("o.pcap");
    let theirs = dir.path("t.pcap");
    let o = out.to_str().unwrap();
    zcap(
        &[
            "-i",
            &spec,
            "not",
            "tcp",
            "-w",
            o,
            "-q",
            "--time-stamp-precision",
            "micro",
        ],
        LIMIT,
    )
    .assert_ok();
    let input = input.to_str().unwrap();
    tool(
        "tcpdump",
        &["-r", input, "-w", theirs.to_str().unwrap(), "not", "tcp"],
    );
    let (_, want) = read_pcap(&theirs);
    assert!(!want.is_empty() && want.len() < records.len());
    assert_eq!(read_pcap(&out).1, want);
    // After `--`, everything is the expression.
    zcap(
        &["-i", &spec, "-w", o, "-q", "--", "udp", "and", "-w"],
        LIMIT,
    )
    .assert_usage_error("syntax error");
}
