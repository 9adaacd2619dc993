#!/usr/bin/env bash
# The whole suite: set-up, formatting and lint checks, unit tests and the
# end-to-end tests on DPDK virtual devices (net_null, net_pcap; --no-huge).
#
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "test: cargo fmt --check"
cargo fmt --all -- --check
echo "test: cargo clippy"
cargo clippy --release --workspace --all-targets --quiet -- -D warnings
echo "test: build"
cargo build --release --workspace --bins --quiet

# End-to-end tests run zcap processes that each want the machine's cores:
# run one test at a time. Every DPDK test is its own process.
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --release --workspace --test-threads 1 --no-fail-fast
else
    cargo test --release --workspace --no-fail-fast -- --test-threads=1
fi
