#!/usr/bin/env bash
# Direct back-to-back pairs of two builds' zcap-bench, capture to /dev/null on
# net_null: OLD then NEW, N times, one line per pair (written Mpps). For
# changes too small to see through bench.sh's medians on a machine that
# switches between speed modes: both sides of a pair run in the same mode.
#
#   bash scripts/pairs.sh OLD_BIN_DIR NEW_BIN_DIR [N] [capture|handoff]
set -euo pipefail
OLD=$1 NEW=$2 N=${3:-4} MODE=${4:-capture}
field="['packets_written']"
[ "$MODE" = handoff ] && field="['drops']['writer']"
for _ in $(seq 1 "$N"); do
    for dir in "$OLD" "$NEW"; do
        "$dir/zcap-bench" -i net_null0 -l 1 --duration 2 --json --mode "$MODE" -w /dev/null |
            python3 -c "import json,sys; d=json.load(sys.stdin); print(round(d$field/d['duration_s']/1e6,1), end=' ')"
    done
    echo
done
