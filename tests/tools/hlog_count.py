#!/usr/bin/env python3
"""Independent reader of HdrHistogram interval logs (.hlog), from the format's
specification: prints the number of intervals and the total sample count.

Each data line is [Tag=..,]start,length,max,BASE64 where BASE64 decodes to a
V2 compressed histogram: cookie 0x1c849304, length, zlib(V2 histogram), and a
V2 histogram is cookie 0x1c849303, payload length, normalizing offset,
significant digits, lowest, highest, conversion ratio, then counts as ZigZag
LEB128 varints (a negative value is a run of that many empty buckets).
"""
import base64
import struct
import sys
import zlib

COMPRESSED_V2 = 0x1C849304
V2 = 0x1C849303


def varints(data):
    value, shift = 0, 0
    for i, byte in enumerate(data):
        # The ninth byte of a 64-bit LEB128 value carries 8 bits.
        if shift == 56:
            value |= byte << 56
        else:
            value |= (byte & 0x7F) << shift
        if byte & 0x80 == 0 or shift == 56:
            yield (value >> 1) ^ -(value & 1)
            value, shift = 0, 0
        else:
            shift += 7


def histogram_count(encoded):
    raw = base64.b64decode(encoded)
    cookie, length = struct.unpack(">ii", raw[:8])
    # Bits 4-7 of a cookie carry the word size; the base is what identifies it.
    if cookie & ~0xF0 != COMPRESSED_V2:
        raise ValueError("not a V2 compressed histogram: %#x" % cookie)
    inner = zlib.decompress(raw[8 : 8 + length])
    cookie, payload, _offset, digits, lowest, highest, _ratio = struct.unpack(">iiiiqqd", inner[:40])
    if cookie & ~0xF0 != V2:
        raise ValueError("not a V2 histogram: %#x" % cookie)
    if not (1 <= digits <= 5 and 1 <= lowest < highest):
        raise ValueError("implausible header")
    return sum(v for v in varints(inner[40 : 40 + payload]) if v > 0)


def main(path):
    intervals, total = 0, 0
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or line.startswith('"StartTimestamp"'):
                continue
            fields = line.split(",")
            if fields[0].startswith("Tag="):
                fields = fields[1:]
            start, length, _max, encoded = float(fields[0]), float(fields[1]), float(fields[2]), fields[3]
            if start < 0 or length < 0:
                raise ValueError("negative interval")
            total += histogram_count(encoded)
            intervals += 1
    print(intervals, total)


if __name__ == "__main__":
    main(sys.argv[1])
