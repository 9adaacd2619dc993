#!/usr/bin/env bash
# Runs each cargo-fuzz target of fuzz/ for SECONDS (default 60): the
# capture reader (pcap, pcapng, zstd) and the index reader. Needs a nightly
# toolchain; installs cargo-fuzz if it is missing. Not part of CI: a crash
# leaves its input in fuzz/artifacts/TARGET/, and becomes a regression test.
#
#   bash scripts/fuzz.sh 120
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
bash scripts/setup.sh >/dev/null
command -v cargo-fuzz >/dev/null || cargo +nightly install cargo-fuzz --locked
# A real index of the target's capture: mutations of it get past the checksums.
mkdir -p fuzz/corpus/index_reader
cp fuzz/seeds/indexed.pcap.zidx fuzz/corpus/index_reader/seed
for target in capture_reader index_reader; do
    echo "## $target, ${SECONDS_PER_TARGET} s"
    (cd fuzz && cargo +nightly fuzz run "$target" -- -max_total_time="$SECONDS_PER_TARGET" \
        -rss_limit_mb=2048 2>&1 | grep -E "^(#[0-9]+.*DONE|Done|==[0-9]+==|SUMMARY|artifact)" || true)
done
rm -f /dev/shm/zcap-fuzz-*
