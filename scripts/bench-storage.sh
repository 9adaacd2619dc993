#!/usr/bin/env bash
# The storage section of scripts/bench.sh (`bash scripts/bench.sh storage`):
# on each file system, alternating in one run, the disk's ceiling (fio
# O_DIRECT io_uring), dd buffered + fdatasync, zcap --io buffered and
# --io direct on net_null 64 B and 1514 B frames, and dpdk-dumpcap (pcapng)
# against a testpmd primary. On the RAM file system zcap's files rotate
# (-C 500 -W 3); dumpcap stops at 2 GB.
#
#   ROUNDS=2 SECONDS_PER_RUN=15 bash scripts/bench.sh storage
#   FILESYSTEMS="disk" bash scripts/bench.sh storage      # only the VM's disk
#
# disk: a directory on the root file system (/var/tmp); ram: an ext4 on a
# loop device over /dev/shm, made and removed here.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-2}
DUR=${SECONDS_PER_RUN:-15}
CORES=${CORES:-0,1}
POLL_CORE=${CORES#*,}
BIN=${BIN:-target/release}
FILESYSTEMS=${FILESYSTEMS:-disk ram}
DISK_DIR=${DISK_DIR:-/var/tmp/zcap-bench-storage}

RAM_IMG=/dev/shm/zcap-bench-storage.img
RAM_DIR=/tmp/zcap-bench-storage-ram
ram_dev=""
cleanup() {
    rm -rf "$DISK_DIR"
    if [ -n "$ram_dev" ]; then
        umount "$RAM_DIR" 2>/dev/null || true
        losetup -d "$ram_dev" 2>/dev/null || true
    fi
    rm -f "$RAM_IMG"
    rmdir "$RAM_DIR" 2>/dev/null || true
}
trap cleanup EXIT
mkdir -p "$DISK_DIR"
if [[ " $FILESYSTEMS " == *" ram "* ]]; then
    truncate -s 6G "$RAM_IMG"
    ram_dev=$(losetup -f --show "$RAM_IMG")
    mkfs.ext4 -q "$ram_dev"
    mkdir -p "$RAM_DIR"
    # discard: removed files give their RAM back.
    mount -o discard "$ram_dev" "$RAM_DIR"
fi
dir_of() { if [ "$1" = disk ]; then echo "$DISK_DIR"; else echo "$RAM_DIR"; fi; }

py() { python3 -c "$@"; }

# The ceiling for what zcap does: appending to a new file (no preallocation,
# no overwriting), 1 MiB O_DIRECT writes through io_uring, 16 in flight,
# for DUR seconds or 4 GiB.
fio_mbs() {
    fio --name=ceiling --filename="$1/fio.bin" --rw=write --bs=1M --direct=1 --ioengine=io_uring \
        --iodepth=16 --size=4G --fallocate=none --runtime="$DUR" --output-format=json 2>/dev/null |
        py "import json,sys; print(json.load(sys.stdin)['jobs'][0]['write']['bw_bytes']/1e6)"
    rm -f "$1/fio.bin"
}

dd_mbs() {
    dd if=/dev/zero of="$1/dd.bin" bs=1M count=2048 conv=fdatasync 2>&1 | tail -1 |
        py "import sys,re; l=sys.stdin.read(); b=int(l.split()[0]); s=float(re.search(r', ([0-9.]+) s,', l).group(1)); print(b/s/1e6)"
    rm -f "$1/dd.bin"
}

# zcap DIR IO SIZE: one line "MB/s Mpps ring_full user_s system_s wait_s cpu_s_per_Mpkt mode".
zcap_run() {
    local json; json=$(mktemp)
    # On the disk every byte stays until the run ends, so buffered writes
    # must reach it; the RAM file system is too small for that, and there
    # -W removes files the page cache may never have written (buffered
    # looks better there than it is).
    local keep=(-C 1000); [ "$1" = "$RAM_DIR" ] && keep=(-C 500 -W 3)
    "$BIN/zcap" -q -i "net_null0,size=$3" -l "$POLL_CORE" --io "$2" -w "$1/z.pcap" "${keep[@]}" \
        --duration "$DUR" --stats-interval 0 --stats-json "$json" || true
    tail -1 "$json" | py "
import json,sys
d=json.load(sys.stdin); w=d['writers'][0]; s=d['duration_s']; n=d['packets_written']
cpu=w['user_s']+w['system_s']
print('%.0f %.2f %d %.2f %.2f %.2f %.2f %s' % (d['file_bytes']/s/1e6, n/s/1e6, d['drops']['ring_full'],
      w['user_s'], w['system_s'], w['storage_wait_s'], cpu/max(n/1e6,1e-9), w['io_mode']))"
    rm -f "$json" "$1"/z*.pcap
}

# dumpcap DIR: "Mpps cpu_s_per_Mpkt" of dpdk-dumpcap's pcapng against a testpmd primary.
dumpcap_run() {
    dpdk-testpmd -l "$CORES" --no-pci --vdev net_null0 --file-prefix zb-ds --log-level=3 -- \
        --forward-mode=rxonly --auto-start --stats-period 1 --nb-cores=1 </dev/null >/dev/null 2>&1 &
    local tp=$! log; log=$(mktemp)
    sleep 3
    # Debian's build captures nothing unless the dpaa mempool driver is preloaded.
    # dumpcap has no ring buffer: it stops at 2 GB or DUR, whichever is first.
    LD_PRELOAD=librte_mempool_dpaa.so.23 /usr/bin/time -f 'cpu %U %S %e' timeout -s INT $((DUR + 5)) \
        dpdk-dumpcap --file-prefix zb-ds -i net_null0 -w "$1/dc.pcapng" -a "duration:$DUR" \
        -a filesize:2000000 >"$log" 2>&1 || true
    kill -INT "$tp" 2>/dev/null || true
    wait "$tp" 2>/dev/null || true
    # Packets in the file, not dumpcap's own count (which counts what the
    # primary handed over, written or not).
    local n; n=$(capinfos -c -M "$1/dc.pcapng" 2>/dev/null | awk -F: '/Number of packets/{gsub(/ /,"",$2); print $2}')
    py "
import re
t=open('$log').read()
c=re.search(r'cpu ([0-9.]+) ([0-9.]+) ([0-9.]+)', t)
n=int('${n:-0}')
cpu=float(c.group(1))+float(c.group(2)) if c else float('nan')
wall=float(c.group(3)) if c else $DUR
print('%.2f (%.2f)' % (n/wall/1e6, cpu/max(n/1e6,1e-9)))"
    rm -f "$log" "$1"/dc*.pcapng
}

echo "## storage: net_null frames, ${ROUNDS} rounds of ${DUR} s, cores ${CORES}"
echo
echo "zcap columns: file MB/s, written Mpps, ring_full, writer user s, writer kernel s, storage_wait_s, writer CPU s per million packets (mode)."
echo
echo "| round | fs | fio MB/s | dd MB/s | frame | zcap buffered | zcap direct | direct / fio | direct / buffered | dumpcap Mpps (CPU s/Mpkt) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for r in $(seq 1 "$ROUNDS"); do
    for fs in $FILESYSTEMS; do
        dir=$(dir_of "$fs")
        fio=$(fio_mbs "$dir")
        dd=$(dd_mbs "$dir")
        dc=$(dumpcap_run "$dir")
        for size in 64 1514; do
            buffered=$(zcap_run "$dir" buffered "$size")
            direct=$(zcap_run "$dir" direct "$size")
            ratio_fio=$(py "print('%.2f' % (float('${direct%% *}')/$fio))")
            ratio_buf=$(py "print('%.2f' % (float('${direct%% *}')/max(1e-9,float('${buffered%% *}'))))")
            printf '| %s | %s | %.0f | %.0f | %s | %s | %s | %s | %s | %s |\n' "$r" "$fs" "$fio" "$dd" "$size" \
                "$buffered" "$direct" "$ratio_fio" "$ratio_buf" "$dc"
        done
    done
done
echo
