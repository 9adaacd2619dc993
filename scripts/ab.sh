#!/usr/bin/env bash
# Interleaved A/B rounds of scripts/bench.sh between two builds' binaries:
# A, B, A, B, ... one bench.sh round each, so drift in the machine hits both;
# then the medians of each side and their ratio.
#
#   bash scripts/ab.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS] [SECTIONS...]
#   bash scripts/ab.sh /tmp/base/target/release target/release 4 rx capture
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 B=$2 ROUNDS_AB=${3:-4}
shift $(( $# >= 3 ? 3 : $# ))
SECTIONS=${*:-rx capture}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for r in $(seq 1 "$ROUNDS_AB"); do
    for side in A B; do
        dir=$A; [ "$side" = B ] && dir=$B
        echo "### round $r, $side ($dir)"
        # shellcheck disable=SC2086
        BIN=$dir ROUNDS=1 bash scripts/bench.sh $SECTIONS
    done
done | tee "$log"
echo
echo "## A/B medians (A: $A, B: $B)"
echo
python3 scripts/lib/ab-summary.py "$log"
