#!/usr/bin/env bash
# Frame-size sweep, as testpmd users publish it: for each frame size, the
# receive rate of dpdk-testpmd rxonly, zcap-bench rxonly (zcap's poll loop
# alone) and zcap capturing to /dev/null (the whole pipeline), side by side
# in the same run, in Mpps and Gbit/s (L2: frame bytes x 8 x rate), with
# ratios against testpmd. Sizes 64..1518 come from net_null size=N; IMIX
# (7x64, 4x570, 1x1518 bytes) from a net_pcap file replayed in a loop
# (infinite_rx, which copies each frame: a slower source than net_null).
#
#   bash scripts/bench-sizes.sh                 # 1 queue, 3 s per run
#   QUEUES="1 2 4" bash scripts/bench-sizes.sh   # on a bigger machine: testpmd on CPUs 0..Q, zcap polls on 1..Q
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${SECONDS_PER_RUN:-3}
SIZES=${SIZES:-64 128 256 512 1024 1518 imix}
QUEUES=${QUEUES:-1}
BIN=${BIN:-target/release}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

bash scripts/setup.sh >/dev/null
[ -x "$BIN/zcap-bench" ] || cargo build --release --quiet --bins

python3 - "$WORK/imix.pcap" <<'PY'
import struct, sys
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    sizes = [64] * 7 + [570] * 4 + [1518]
    for i, n in enumerate(sizes * 100):
        frame = bytes([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0]) + bytes((i + j) & 0xFF for j in range(n - 14))
        f.write(struct.pack("<IIII", 0, i, n, n) + frame)
PY
IMIX_BYTES=353.83   # (7*64 + 4*570 + 1518) / 12

vdev_for() {  # SIZE QUEUES
    if [ "$1" = imix ]; then
        local spec="net_pcap0"
        for _ in $(seq 1 "$2"); do spec+=",rx_pcap=$WORK/imix.pcap"; done
        echo "$spec,infinite_rx=1"
    else
        echo "net_null0,size=$1"
    fi
}
bytes_for() { [ "$1" = imix ] && echo "$IMIX_BYTES" || echo "$1"; }

testpmd_pps() {  # VDEV QUEUES
    local log; log=$(mktemp)
    local cores="0-$2"
    timeout -s INT $((DUR + 2)) dpdk-testpmd -l "$cores" --no-pci --vdev "$1" --file-prefix zb-sz \
        --log-level=3 -- --forward-mode=rxonly --auto-start --stats-period 1 \
        --nb-cores="$2" --rxq="$2" --txq="$2" </dev/null >"$log" 2>&1 || true
    grep -o 'Rx-pps: *[0-9]*' "$log" | awk '{print $2}' | tail -n +2 | sort -n |
        awk '{v[NR]=$1} END{if (NR==0) print 0; else print v[int((NR+1)/2)]}'
    rm -f "$log"
}

zcap_rxonly_pps() {  # VDEV QUEUES
    "$BIN/zcap-bench" -i "$1" -Q "$2" -l "1-$2" --duration "$DUR" --json --mode rxonly 2>/dev/null |
        python3 -c "import json,sys; d=json.load(sys.stdin); print(round(d['packets_received']/d['duration_s']))"
}

# The recorder itself: every queue's records to /dev/null (per-queue files).
zcap_capture_pps() {  # VDEV QUEUES
    local js; js=$(mktemp)
    "$BIN/zcap" -i "$1" -Q "$2" -l "1-$2" --per-queue-files -w /dev/null -q \
        --duration "$DUR" --stats-interval 0 --stats-json "$js" >/dev/null 2>&1 || true
    tail -1 "$js" | python3 -c "import json,sys; d=json.load(sys.stdin); print(round(d['packets_written']/d['duration_s']))"
    rm -f "$js"
}

fmt() { python3 -c "import sys; pps,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{pps/1e6:.2f} / {pps*b*8/1e9:.2f}')" "$1" "$2"; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else 'n/a')" "$1" "$2"; }

for q in $QUEUES; do
    echo "## Frame sizes, $q queue(s), ${DUR} s per run: Mpps / Gbit/s (L2)"
    echo
    echo "| frame | testpmd rxonly | zcap-bench rxonly | zcap capture → /dev/null | rxonly vs testpmd | capture vs testpmd |"
    echo "|---|---|---|---|---|---|"
    for size in $SIZES; do
        vdev=$(vdev_for "$size" "$q")
        b=$(bytes_for "$size")
        tp=$(testpmd_pps "$vdev" "$q")
        rx=$(zcap_rxonly_pps "$vdev" "$q")
        cap=$(zcap_capture_pps "$vdev" "$q")
        echo "| $size | $(fmt "$tp" "$b") | $(fmt "$rx" "$b") | $(fmt "$cap" "$b") | $(ratio "$rx" "$tp") | $(ratio "$cap" "$tp") |"
    done
    echo
done
