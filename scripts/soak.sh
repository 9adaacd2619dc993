#!/usr/bin/env bash
# A soak of zcap (issue 16; not in CI): a capture of SOAK_MINUTES (10) on
# net_null with rotation (-C, -W), a filter, the live stats interval and
# telemetry queries every 10 s. Every 10 s it samples the process's RSS, open
# file descriptors and threads; at the end it checks that every sample is
# within 5% of the first (RSS: of the first after the warm-up minute, once
# the pool and buffers are touched), that every file left is valid
# (capinfos), and that conservation is exact in the final JSON report.
# Descriptors are counted apart from the capture files and indexes open: a
# rotation holds the closing file (and its index) open beside the new one
# until its last writes land, so those go from 2 to 4 and back; the others
# must not move.
#
#   bash scripts/soak.sh                   # 10 minutes
#   SOAK_MINUTES=1 bash scripts/soak.sh    # a quick look
#
# Prints a markdown table for docs/BENCHMARKS.md; exit 1 if a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=${SOAK_MINUTES:-10}
BIN=${BIN:-target/release}
DIR=${SOAK_DIR:-/dev/shm/zcap-soak}
rm -rf "$DIR"; mkdir -p "$DIR"
trap 'kill "$ZCAP" 2>/dev/null || true; rm -rf "$DIR"' EXIT

[ -x "$BIN/zcap" ] || cargo build --release --quiet --bins
seconds=$((MINUTES * 60))
"$BIN/zcap" --no-huge -i net_null0,size=256 --mbufs 8192 --duration "$seconds" \
    -w "$DIR/soak.pcap" -C 50 -W 6 --stats-interval 1 --stats-json "$DIR/soak.json" \
    'not tcp' >/dev/null 2>"$DIR/soak.err" &
ZCAP=$!
sleep 2
prefix="zcap-$ZCAP"

sample() {
    local rss fds threads captures
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$ZCAP/status")
    threads=$(awk '/^Threads:/ {print $2}' "/proc/$ZCAP/status")
    # One pass over the descriptors: those on capture files, and the rest.
    read -r fds captures < <(python3 -c "
import os, sys
d = '/proc/$ZCAP/fd'
targets = []
for fd in os.listdir(d):
    try: targets.append(os.readlink(os.path.join(d, fd)))
    except OSError: pass
ours = sum(t.startswith('$DIR/') for t in targets)
print(len(targets) - ours, ours)")
    echo "$rss $fds $threads $captures"
}

echo "| t (s) | RSS (KiB) | fds (not capture files) | threads | capture files open | telemetry packets_received |"
echo "|---|---|---|---|---|---|"
samples=()
t=0
while kill -0 "$ZCAP" 2>/dev/null && [ "$t" -lt $((seconds - 5)) ]; do
    s=$(sample) || break
    seen=$(echo /zcap/stats | timeout 5 dpdk-telemetry.py -f "$prefix" 2>/dev/null |
        python3 -c "import sys,json,re; t=sys.stdin.read(); m=re.findall(r'\"packets_received\": *([0-9]+)', t); print(m[-1] if m else 'none')")
    read -r rss fds threads captures <<<"$s"
    printf '| %d | %d | %d | %d | %d | %s |\n' "$t" "$rss" "$fds" "$threads" "$captures" "$seen"
    samples+=("$t $s")
    sleep 10; t=$((t + 10))
done
wait "$ZCAP" || { echo "zcap failed: $(cat "$DIR/soak.err")"; exit 1; }

fail=0
python3 - "$DIR/soak.json" "${samples[@]}" <<'PY' || fail=1
import json, sys
report = json.loads(open(sys.argv[1]).read().splitlines()[-1])
samples = [tuple(map(int, s.split())) for s in sys.argv[2:]]
ok = True
d = report["drops"]
accounted = report["packets_written"] + report["packets_filtered"] + d["ring_full"] + d["writer"] + d["count_limit"]
print(f"\nreceived {report['packets_received']}, accounted {accounted}, written {report['packets_written']}, "
      f"files_removed {report['files_removed']}, duration {report['duration_s']:.0f} s")
if accounted != report["packets_received"]:
    print("conservation broken"); ok = False
print(f"capture files open: at most {max(s[4] for s in samples)}")
warm = [s for s in samples if s[0] >= 60] or samples
for name, col, base in (("RSS", 1, warm[0][1]), ("fds", 2, samples[0][2]), ("threads", 3, samples[0][3])):
    pool = warm if name == "RSS" else samples
    worst = max(abs(s[col] - base) / base for s in pool)
    print(f"{name}: first {base}, furthest sample {worst * 100:.1f}% away")
    if worst > 0.05:
        print(f"{name} moved more than 5%"); ok = False
sys.exit(0 if ok else 1)
PY
invalid=0
for f in "$DIR"/soak*.pcap; do
    capinfos -c "$f" >/dev/null 2>&1 || { echo "invalid file: $f"; invalid=1; fail=1; }
done
echo "files left (-W 6): $(ls "$DIR"/soak*.pcap | wc -l), each valid by capinfos: $([ $invalid = 0 ] && echo yes || echo no)"
exit $fail
