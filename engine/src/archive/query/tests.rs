use super::*;
use crate::dpdk::ClassicFilter;

/// Frames of every shape the flow parser tells apart: tags (none, one,
/// QinQ, three), IPv4 with and without ports, fragments, IPv6 with and
/// without an extension header, ARP, frames cut short.
fn frames() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let hosts: [[u8; 4]; 3] = [[10, 0, 0, 1], [10, 0, 1, 3], [192, 168, 1, 7]];
    for tags in [&[][..], &[100], &[100, 200], &[5, 6, 7]] {
        for (i, (src, dst)) in hosts.iter().zip(hosts.iter().rev()).enumerate() {
            for proto in [6u8, 17, 1, 132] {
                for frag in [0u16, 0x2000, 0x0005] {
                    let sport = 1000 + i as u16 * 500;
                    out.push(ipv4(tags, *src, *dst, proto, frag, sport, [80, 53, 443][i]));
                }
            }
        }
        out.push(ipv6(tags, 6, false));
        out.push(ipv6(tags, 17, true));
        out.push(ipv6(tags, 58, false));
        out.push(arp(tags));
    }
    let cuts: Vec<Vec<u8>> = out
        .iter()
        .flat_map(|f| {
            [14, 20, 30, 36]
                .into_iter()
                .filter(|&n| n < f.len())
                .map(|n| f[..n].to_vec())
        })
        .collect();
    out.extend(cuts);
    out
}

fn ethernet(tags: &[u16], ethertype: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    for (i, id) in tags.iter().enumerate() {
        let tpid: u16 = if i == 0 && tags.len() > 1 {
            0x88a8
        } else {
            0x8100
        };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn ipv4(
    tags: &[u16],
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    frag: u16,
    sport: u16,
    dport: u16,
) -> Vec<u8> {
    let mut f = ethernet(tags, 0x0800);
    f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1]);
    f.extend_from_slice(&frag.to_be_bytes());
    f.extend_from_slice(&[64, proto, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0; 16]);
    f
}

fn ipv6(tags: &[u16], proto: u8, fragment_header: bool) -> Vec<u8> {
    let mut f = ethernet(tags, 0x86dd);
    let next = if fragment_header { 44 } else { proto };
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, 16, next, 64]);
    f.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    if fragment_header {
        f.extend_from_slice(&[proto, 0, 0, 0, 0, 0, 0, 1]);
    }
    f.extend_from_slice(&[0x13, 0x88, 0, 80, 0, 8, 0, 0]);
    f
}

fn arp(tags: &[u16]) -> Vec<u8> {
    let mut f = ethernet(tags, 0x0806);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 10, 0, 0, 1]);
    f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 0, 1, 3]);
    f
}

const EXPRESSIONS: &[&str] = &[
    "host 10.0.1.3",
    "src host 10.0.0.1",
    "dst host 192.168.1.7",
    "host 10.0.0.1 and host 192.168.1.7",
    "src and dst net 10.0.0.0/8",
    "src or dst host 10.0.1.3",
    "net 192.168",
    "net 10.0.0.0 mask 255.255.255.0",
    "ip host 10.0.0.1",
    "arp host 10.0.1.3",
    "host 10.0.1.3 or 192.168.1.7",
    "port 80",
    "port 53 or 443",
    "tcp port 80",
    "udp dst port 53",
    "src port 1500",
    "portrange 1000-1600",
    "sctp",
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "ip6",
    "ip",
    "arp",
    "ip proto 6",
    "ip6 proto 17",
    "proto 17",
    "vlan",
    "vlan 100",
    "vlan 200",
    "vlan 100 and vlan 200",
    "vlan and host 10.0.0.1",
    "vlan 100 and udp port 53",
    "not vlan",
    "not tcp",
    "not host 10.0.1.3",
    "not vlan 100 and host 10.0.0.1",
    "host 10.0.0.1 and not vlan",
    "tcp or not vlan",
    "ip6 host 2001:db8::1",
    "ip6 net 2001:db8::/32",
    "ip6 and tcp port 80",
    "ip6 and udp",
    "port 80 and not tcp",
    "(host 10.0.0.1 or host 10.0.1.3) and (port 80 or port 53)",
    "not (tcp or udp)",
    "host 10.0.0.1 or tcp and port 53",
    "ether host 02:00:00:00:00:01 and port 80",
    "greater 60 and host 10.0.0.1",
    "tcp[13] & 2 != 0",
    "!tcp && !udp",
    "host localhost",
    "port http",
    "vlan and vlan and vlan",
    "not ip and not ip6",
    "ether src 02:00:00:00:00:02",
    "ether host 02:00:00:00:00:01 or vlan 100",
    "port 0x50",
    "port 010",
    "vlan 0144",
    "ip proto 021",
    "net 012",
    "portrange 01000-1600",
    "udp port 0065",
];

#[test]
fn the_index_never_rules_out_a_packet_libpcap_matches() {
    let frames = frames();
    let mut narrowed = 0;
    for expr in EXPRESSIONS {
        let Ok(filter) = ClassicFilter::compile(expr, 262_144) else {
            continue;
        };
        let query = Query::parse(expr);
        for frame in &frames {
            let key = FlowKey::of_ethernet(frame);
            let verdict = query.eval(&key);
            let matches = filter.matches(frame, frame.len() as u32);
            assert!(
                !(matches && verdict == Tri::No),
                "{expr:?} matches a frame the index ruled out: {key:?} {frame:02x?}"
            );
            narrowed += usize::from(verdict == Tri::No);
        }
    }
    assert!(
        narrowed > frames.len() * EXPRESSIONS.len() / 4,
        "the index narrows: {narrowed}"
    );
}

#[test]
fn parses_what_it_knows_and_gives_up_on_the_rest() {
    for narrowing in [
        "host 10.0.0.1",
        "port 53 or 80",
        "vlan 100 and tcp",
        "not (udp or arp)",
        "src or dst net 10/8",
    ] {
        assert!(Query::parse(narrowing).narrows(), "{narrowing}");
    }
    for not_narrowing in [
        "tcp[13] & 2 != 0",
        "greater 100",
        "ether broadcast",
        "host a and not b",
        "mpls and tcp",
        "host 10.0.0.1 80",
    ] {
        assert!(!Query::parse(not_narrowing).narrows(), "{not_narrowing}");
    }
    let key = FlowKey::of_ethernet(&ipv4(&[], [10, 0, 0, 1], [10, 0, 0, 2], 6, 0, 1234, 80));
    let q = |e: &str| Query::parse(e).eval(&key);
    assert_eq!(q("host 10.0.0.1 and port 80"), Tri::Yes);
    assert_eq!(q("host 10.0.0.3 or udp"), Tri::No);
    assert_eq!(
        q("port 80 or 81 and udp"),
        Tri::No,
        "and and or of equal precedence, left to right"
    );
    assert_eq!(q("vlan and host 10.0.0.1"), Tri::No);
    assert_eq!(q("port http"), Tri::Maybe);
}
