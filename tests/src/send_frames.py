# Sends the records of a pcap file into a network interface, at most RATE
# frames per second (0: as fast as it can), as raw Ethernet frames.
#   python3 send_frames.py IFACE FILE.pcap RATE
# Prints how many frames it sent. Part of zcap's tests (tests/src/veth.rs).
import socket
import struct
import sys
import time


def records(path):
    with open(path, "rb") as f:
        data = f.read()
    order = None
    for candidate in "<>":
        if struct.unpack_from(candidate + "I", data, 0)[0] in (0xA1B2C3D4, 0xA1B23C4D):
            order = candidate
    if order is None:
        sys.exit("not a pcap file: " + path)
    offset = 24
    while offset + 16 <= len(data):
        _, _, caplen, _ = struct.unpack_from(order + "IIII", data, offset)
        offset += 16
        yield data[offset:offset + caplen]
        offset += caplen


def main():
    iface, path, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((iface, 0))
    start = time.monotonic()
    sent = 0
    for frame in records(path):
        if rate > 0:
            due = start + sent / rate
            while time.monotonic() < due:
                time.sleep(max(0.0, min(0.001, due - time.monotonic())))
        while True:
            try:
                sock.send(frame)
                break
            except BlockingIOError:
                time.sleep(0.0001)
            except OSError as err:  # ENOBUFS: the device queue is full
                if err.errno != 105:
                    raise
                time.sleep(0.0001)
        sent += 1
    print(sent)


main()
