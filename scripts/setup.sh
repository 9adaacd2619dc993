#!/usr/bin/env bash
# Idempotent set-up for building, testing and benchmarking zcap on Debian 12:
# DPDK and its tools, libclang for bindgen, libpcap, tshark/capinfos/tcpdump, zstd, nats-server,
# util-linux and e2fsprogs (the storage tests' loop-device ext4), fio (the
# storage benchmark's ceiling), and hugepages reserved and mounted at
# /dev/hugepages.
#
#   sudo bash scripts/setup.sh            # everything
#   ZCAP_HUGEPAGES=1024 bash scripts/setup.sh
#
# Without root or without hugepage support it says so and explains the
# --no-huge fallback; it fails only if the packages cannot be installed.
set -euo pipefail

PACKAGES=(dpdk dpdk-dev libdpdk-dev libclang-dev clang pkg-config libpcap-dev
          tshark tcpdump util-linux e2fsprogs fio zstd nats-server
          iproute2 python3)
HUGEPAGES=${ZCAP_HUGEPAGES:-512}   # 2 MiB pages: 1 GiB

say() { echo "setup: $*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q >/dev/null || { say "apt-get update failed (need root?)"; exit 1; }
    as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
        || { say "cannot install ${missing[*]}"; exit 1; }
else
    say "packages present"
fi

# The storage tests put an ext4 on a loop device over /dev/shm.
if ! losetup -f >/dev/null 2>&1; then
    as_root modprobe loop 2>/dev/null || true
    losetup -f >/dev/null 2>&1 || say "no free loop device: the storage tests will fail (they need root and loop devices)"
fi

hugepage_fallback() {
    say "no hugepages ($1): zcap still runs with --no-huge (slower, 4 KiB pages);"
    say "the tests use --no-huge and do not need hugepages."
}

free_pages() { cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0; }
total_pages() { cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0; }

if [ "$(total_pages)" -lt "$HUGEPAGES" ]; then
    if ! echo "$HUGEPAGES" | as_root tee /proc/sys/vm/nr_hugepages >/dev/null 2>&1; then
        hugepage_fallback "cannot write /proc/sys/vm/nr_hugepages"
        exit 0
    fi
fi
if ! awk '$3=="hugetlbfs"{found=1} END{exit !found}' /proc/mounts; then
    as_root mkdir -p /dev/hugepages 2>/dev/null || true
    if ! as_root mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null; then
        hugepage_fallback "cannot mount hugetlbfs at /dev/hugepages"
        exit 0
    fi
fi
if [ "$(free_pages)" -eq 0 ]; then
    hugepage_fallback "the kernel reserved none"
    exit 0
fi
say "hugepages: $(total_pages) reserved, $(free_pages) free, mounted"
