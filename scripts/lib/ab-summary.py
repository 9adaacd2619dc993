"""Medians per side of an interleaved A/B log written by scripts/ab.sh."""
import re
import statistics
import sys

side = None
rows = {"A": {}, "B": {}}


def add(name, value):
    rows[side].setdefault(name, []).append(value)


def num(cell):
    return float(re.match(r"\s*([0-9.]+)", cell).group(1))


for line in open(sys.argv[1]):
    m = re.match(r"### round \d+, ([AB]) ", line)
    if m:
        side = m.group(1)
        continue
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if side is None or not cells[0].isdigit():
        continue
    if len(cells) == 5:
        add("testpmd rxonly Mpps (rx section)", num(cells[1]))
        add("zcap rxonly Mpps", num(cells[2]))
        add("rxonly vs testpmd", num(cells[4]))
    elif len(cells) == 13:
        add("hand-off Mpps", num(cells[2]))
        add("/dev/null Mpps", num(cells[3]))
        add("tmpfs pcap Mpps", num(cells[4]))
        add("tmpfs pcap MB/s", float(re.search(r"\(([0-9.]+)\)", cells[4]).group(1)))
        add("/dev/null vs testpmd", num(cells[9]))
        add("tmpfs pcap vs dd", num(cells[10]))

print("| measure | A median | B median | B / A | A rounds | B rounds |")
print("|---|---|---|---|---|---|")
for name in rows["A"]:
    a, b = rows["A"][name], rows["B"].get(name, [])
    if not b:
        continue
    ma, mb = statistics.median(a), statistics.median(b)
    fmt = lambda v: ", ".join(f"{x:g}" for x in v)
    print(f"| {name} | {ma:.3f} | {mb:.3f} | {mb / ma:.3f} | {fmt(a)} | {fmt(b)} |")
