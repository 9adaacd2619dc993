#!/usr/bin/env python3
"""A realistic-looking traffic mix as a pcap file, for the archive benchmark.

mix.py OUT.pcap PACKETS [SEED]
    MIX_SIZE=64      every frame 64 bytes
    NEEDLE=burst     the pair's packets come in trains of 16 to 64, as a TCP
                     transfer's do (default: each packet on its own, spread
                     uniformly: the worst case for reading only the pair)

About 2,000 TCP/UDP flows between 400 hosts (IPv4, some IPv6, a VLAN
share), Zipf-sized so a few flows carry most packets, mixed frame sizes
(acks, full frames, mid-sized) averaging about 500 bytes. One host pair,
10.1.1.1 <-> 10.2.2.2, carries 2% of the packets, spread over the whole
file: the needle the benchmark extracts. Timestamps 1 us apart.
Payloads: random bytes on ports 443 and 22 (encrypted traffic does not
compress), repeated HTTP-like text on the others.
"""
import os
import random
import struct
import sys

out, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)

def mac(n):
    return bytes([2, 0, 0, 0, n >> 8 & 0xff, n & 0xff])

TEXT = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n" * 40

def payload(n, sport, dport):
    if {sport, dport} & {443, 22}:
        return rng.randbytes(n)
    return TEXT[:n]

def ipv4_frame(src, dst, proto, sport, dport, size, vlan=None):
    eth = mac(1) + mac(2)
    if vlan is not None:
        eth += struct.pack("!HH", 0x8100, vlan)
    eth += struct.pack("!H", 0x0800)
    l4 = struct.pack("!HH", sport, dport)
    l4 += struct.pack("!IIBBHHH", 1, 2, 0x50, 0x10, 512, 0, 0) if proto == 6 else struct.pack("!HH", 8, 0)
    total = max(size - len(eth), 20 + len(l4))
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, proto, 0, bytes(src), bytes(dst))
    return eth + ip + l4 + payload(total - 20 - len(l4), sport, dport)

def ipv6_frame(src, dst, sport, dport, size):
    eth = mac(1) + mac(2) + struct.pack("!H", 0x86dd)
    l4 = struct.pack("!HHHH", sport, dport, 8, 0)
    plen = max(size - 14 - 40, len(l4))
    ip = struct.pack("!IHBB", 0x60000000, plen, 17, 64) + src + dst
    return eth + ip + l4 + payload(plen - len(l4), sport, dport)

hosts = [[10, rng.randrange(0, 8), rng.randrange(0, 256), rng.randrange(1, 255)] for _ in range(400)]
flows = []
for i in range(2000):
    a, b = rng.sample(range(400), 2)
    proto = 6 if rng.random() < 0.8 else 17
    kind = "v6" if rng.random() < 0.05 else ("vlan" if rng.random() < 0.1 else "v4")
    flows.append((hosts[a], hosts[b], proto, rng.randrange(1024, 65535), rng.choice([80, 443, 53, 22, 8080, 5432]), kind, rng.randrange(1, 4095)))
weights = [1.0 / (i + 1) ** 1.1 for i in range(len(flows))]
needle = ([10, 1, 1, 1], [10, 2, 2, 2], 6, 40000, 443, "v4", 0)

FIXED = int(os.environ.get("MIX_SIZE", "0"))

def size():
    if FIXED:
        return FIXED
    r = rng.random()
    if r < 0.6:
        return rng.randrange(60, 90)
    if r < 0.85:
        return 1514
    return rng.randrange(200, 1000)

with open(out, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    t0 = 1_700_000_000 * 1_000_000
    picks = rng.choices(range(len(flows)), weights, k=count)
    burst = os.environ.get("NEEDLE") == "burst"
    train = 0
    for n in range(count):
        if burst:
            # Trains of 40 on average, one starting every 1,600 packets: 2%.
            if train == 0 and rng.random() < 0.025 / 40:
                train = rng.randrange(16, 65)
            in_needle = train > 0
            train = max(train - 1, 0)
        else:
            in_needle = rng.random() < 0.02
        flow = needle if in_needle else flows[picks[n]]
        src, dst, proto, sport, dport, kind, vlan = flow
        if rng.random() < 0.5:
            src, dst, sport, dport = dst, src, dport, sport
        if kind == "v6":
            frame = ipv6_frame(bytes([0x20, 1, 0xd, 0xb8] + [0] * 8 + src), bytes([0x20, 1, 0xd, 0xb8] + [0] * 8 + dst), sport, dport, size())
        else:
            frame = ipv4_frame(src, dst, proto, sport, dport, size(), vlan if kind == "vlan" else None)
        t = t0 + n
        f.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(frame), len(frame)) + frame)
