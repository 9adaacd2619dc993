//! Filters loaded into DPDK decide every packet as libpcap does
//! (`pcap_offline_filter`), in the JIT and in the interpreter, over a
//! generated corpus and many expressions: every bit-test (`jset`) width and
//! position, the expressions that crashed or passed everything in DPDK
//! 22.11's JIT, and the common ones.
//!
//! EAL starts once per process, so this file holds a single test.

use std::sync::Arc;
use zcap::dpdk::{ClassicFilter, EalBuilder, FilterEngine, Mbuf, Mempool};

const PACKETS: usize = 3000;

/// xorshift64*: a fixed, reproducible corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

fn dst_mac(rng: &mut Rng) -> Vec<u8> {
    match rng.next() % 4 {
        0 => vec![0xff; 6],
        1 => vec![0x01, 0x00, 0x5e, 0x00, 0x00, rng.byte()],
        2 => vec![0x33, 0x33, 0, 0, 0, rng.byte()],
        _ => {
            let mut mac = rng.bytes(6);
            mac[0] &= 0xfe;
            mac
        }
    }
}

fn l4(rng: &mut Rng, proto: u8) -> Vec<u8> {
    let ports = [22u16, 53, 80, 443, 1000, 1500, 8080, 50000];
    let mut h = Vec::new();
    match proto {
        6 => {
            h.extend_from_slice(&rng.pick(&ports).to_be_bytes());
            h.extend_from_slice(&rng.pick(&ports).to_be_bytes());
            h.extend(rng.bytes(8));
            h.push(0x50);
            h.push(rng.byte()); // flags
            h.extend(rng.bytes(6));
        }
        17 => {
            h.extend_from_slice(&rng.pick(&ports).to_be_bytes());
            h.extend_from_slice(&rng.pick(&ports).to_be_bytes());
            h.extend(rng.bytes(4));
        }
        _ => h.extend(rng.bytes(8)),
    }
    h
}

fn ipv4(rng: &mut Rng) -> Vec<u8> {
    let proto = rng.pick(&[6u8, 17, 1, 47]);
    let options = (rng.next() % 3) as usize * 4;
    let mut h = vec![
        0x45 + (options / 4) as u8,
        rng.byte(),
        0,
        0,
        rng.byte(),
        rng.byte(),
    ];
    let noise = rng.byte();
    h.push(rng.pick(&[0x00, 0x40, 0x20, 0x21, 0x3f, noise])); // flags, fragment
    h.push(rng.byte());
    let noise = rng.byte();
    h.push(rng.pick(&[1, 64, 128, 255, noise])); // ttl
    h.push(proto);
    h.extend(rng.bytes(2));
    for _ in 0..2 {
        h.extend_from_slice(&[
            rng.pick(&[10, 192, 172]),
            rng.pick(&[0, 168, 16]),
            rng.byte() % 4,
            rng.byte() % 8,
        ]);
    }
    h.extend(rng.bytes(options));
    h.extend(l4(rng, proto));
    h
}

fn ipv6(rng: &mut Rng) -> Vec<u8> {
    let proto = rng.pick(&[6u8, 17, 58]);
    let mut h = vec![
        0x60 | (rng.byte() & 0x0f),
        rng.byte(),
        rng.byte(),
        rng.byte(),
        0,
        40,
        proto,
        64,
    ];
    for _ in 0..2 {
        h.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        h.extend(vec![0; 11]);
        h.push(rng.byte() % 8);
    }
    h.extend(l4(rng, proto));
    h
}

/// One frame: Ethernet, maybe a VLAN tag, then IPv4, IPv6, ARP or noise;
/// some cut short inside their headers, some padded with noise.
fn frame(rng: &mut Rng) -> Vec<u8> {
    let mut f = dst_mac(rng);
    f.extend(rng.bytes(6));
    if rng.next().is_multiple_of(4) {
        f.extend_from_slice(&[0x81, 0x00, rng.byte() & 0x0f, rng.byte()]);
    }
    match rng.next() % 8 {
        0..=3 => f.extend([&[0x08, 0x00][..], &ipv4(rng)].concat()),
        4 | 5 => f.extend([&[0x86, 0xdd][..], &ipv6(rng)].concat()),
        6 => f.extend([&[0x08, 0x06][..], &rng.bytes(28)].concat()),
        _ => f.extend(rng.bytes(30)),
    }
    let extra = (rng.next() % 200) as usize;
    f.extend(rng.bytes(extra));
    if rng.next().is_multiple_of(10) {
        let cut = 1 + (rng.next() as usize % f.len());
        f.truncate(cut);
    }
    f
}

/// Bit tests of every width (1, 2, 4 bytes), at several positions, against
/// every single-bit constant and some wider ones, with both comparisons.
fn bit_test_expressions() -> Vec<String> {
    let mut exprs = Vec::new();
    let masks = |bits: u32| -> Vec<u64> {
        let mut m: Vec<u64> = (0..bits).map(|b| 1u64 << b).collect();
        m.extend([0x3, 0x7f, 0x81, 0xfe, (1u64 << bits) - 1]);
        m.retain(|v| *v < (1u64 << bits));
        m
    };
    for (base, bits) in [
        ("ether[0]", 8),
        ("ether[5]", 8),
        ("ip[1]", 8),
        ("ip[6]", 8),
        ("tcp[13]", 8),
        ("ether[12:2]", 16),
        ("ip[6:2]", 16),
        ("ip[12:4]", 32),
    ] {
        for m in masks(bits) {
            let op = if m % 2 == 0 { "!= 0" } else { "= 0" };
            exprs.push(format!("{base} & {m:#x} {op}"));
        }
    }
    exprs
}

const NAMED: &[&str] = &[
    "multicast",
    "not multicast",
    "not ether multicast",
    "ether[0] & 1 = 0",
    "ether[0] & 1 != 0",
    "not broadcast and not multicast",
    "broadcast",
    "ether[5] & 0x10 != 0",
    "ip[1] & 0x3 != 0",
    "ip[6] & 0x20 != 0",
    "ip multicast",
    "ip6 multicast",
    "tcp",
    "udp",
    "icmp",
    "ip6",
    "vlan",
    "arp",
    "port 80",
    "tcp port 443 or udp port 53",
    "host 10.0.1.3",
    "net 192.168.0.0/16",
    "portrange 1000-1999",
    "ip[6:2] & 0x1fff = 0",
    "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
    "tcp[tcpflags] & tcp-rst != 0 and not port 22",
    "greater 200",
    "less 60",
    "ip[8] < 64",
    "vlan and ip",
    "ip[2:2] > 100",
    "ip[12:4] & 0xff000000 = 0x0a000000",
];

#[test]
fn every_filter_decides_as_libpcap_does() {
    let eal = EalBuilder::new()
        .no_huge(true)
        .memory_mb(Some(64))
        .lcore_cpus(vec![0])
        .log_level(3)
        .init()
        .expect("EAL starts with --no-huge");
    let pool = Arc::new(Mempool::new(&eal, "filters", PACKETS as u32 + 63, 0, 2176).unwrap());
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let frames: Vec<Vec<u8>> = (0..PACKETS).map(|_| frame(&mut rng)).collect();
    let mbufs: Vec<Mbuf> = frames
        .iter()
        .map(|f| {
            let mut m = pool.alloc().expect("mbuf");
            assert!(m.append(f));
            m
        })
        .collect();

    let mut expressions: Vec<String> = NAMED.iter().map(|s| s.to_string()).collect();
    expressions.extend(bit_test_expressions());
    let mut jit_programs = 0;
    for expr in &expressions {
        let classic = ClassicFilter::compile(expr, 262_144).expect(expr);
        let want: Vec<bool> = frames
            .iter()
            .map(|f| classic.matches(f, f.len() as u32))
            .collect();
        for engine in [FilterEngine::Jit, FilterEngine::Interpreter] {
            let filter = classic.load_with(engine).expect(expr);
            jit_programs += usize::from(filter.is_jit());
            for (i, m) in mbufs.iter().enumerate() {
                assert_eq!(
                    filter.accepts(m),
                    want[i],
                    "{expr:?} in the {engine:?} engine, packet {i}: {:02x?}",
                    frames[i]
                );
            }
        }
    }
    // The JIT was exercised, bit tests included (only programs with indirect
    // loads, such as tcp[13], run interpreted).
    assert!(
        jit_programs > expressions.len() / 2,
        "{jit_programs} of {} programs ran in the JIT",
        expressions.len()
    );
    for expr in ["multicast", "not multicast", "ether[5] & 0x10 != 0"] {
        let filter = ClassicFilter::compile(expr, 262_144)
            .unwrap()
            .load()
            .unwrap();
        assert!(filter.is_jit(), "{expr:?} runs in the JIT");
    }
    // The corpus discriminates: each bug-report expression both passes and
    // rejects some packets.
    for expr in &NAMED[..10] {
        let classic = ClassicFilter::compile(expr, 262_144).unwrap();
        let passed = frames
            .iter()
            .filter(|f| classic.matches(f, f.len() as u32))
            .count();
        assert!(
            passed > 0 && passed < PACKETS,
            "{expr:?}: {passed} of {PACKETS}"
        );
    }
    drop(mbufs);
    assert_eq!(pool.in_use(), 0);
}
