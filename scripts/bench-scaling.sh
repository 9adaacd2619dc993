#!/usr/bin/env bash
# How capture scales with RSS queues on net_null (64-byte packets), side by
# side with dpdk-testpmd rxonly on the same number of cores, in one run.
# Needs a machine with at least 2*Q+1 CPUs for Q queues (poll loops on 1..Q,
# writers on the CPUs after them, main lcore on 0). Uses prebuilt binaries:
#
#   bash scripts/bench-scaling.sh                      # here: target/release
#   source target/device-bundle/env.sh && bash scripts/bench-scaling.sh
#
#   QUEUES="1 2 4" ROUNDS=2 SECONDS_PER_RUN=3 TMPFS=/dev/shm
#
# Prints one markdown table per section. Rates are medians over ROUNDS.
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=${ZCAP_BIN:-target/release}
QUEUES=${QUEUES:-1 2 4}
ROUNDS=${ROUNDS:-2}
DUR=${SECONDS_PER_RUN:-3}
TMPFS=${TMPFS:-/dev/shm}
NCPU=$(nproc)

# Hugepages if they can be had, else every tool runs on 4 KiB pages.
HUGE=()
if ! awk '$3=="hugetlbfs"{f=1} END{exit !f}' /proc/mounts; then
    echo 2048 >/proc/sys/vm/nr_hugepages 2>/dev/null || true
    mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || true
fi
free_pages=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)
if ! awk '$3=="hugetlbfs"{f=1} END{exit !f}' /proc/mounts || [ "$free_pages" -lt 256 ]; then
    HUGE=(--no-huge)
    TP_MEM=(-m 2048)
else
    TP_MEM=()
fi

# warm_tmpfs: the same warm memory for every timed tmpfs write (see there).
source scripts/lib/tmpfs-warm.sh
trap 'rm -f "$TMPFS"/zcap-warm.bin "$TMPFS"/zs-dd-* "$TMPFS"/zs*.pcap "$TMPFS"/zs*.pcapng' EXIT

median() { sort -n | awk '{v[NR]=$1} END{if (NR==0) print 0; else print v[int((NR+1)/2)]}'; }
mpps() { python3 -c "import sys; print(f'{float(sys.argv[1])/1e6:.2f}')" "$1"; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else 'n/a')" "$1" "$2"; }

# testpmd rxonly with Q queues on Q forwarding cores: median per-second Rx-pps.
testpmd_pps() {
    local q=$1 log; log=$(mktemp)
    timeout -s INT $((DUR + 4)) dpdk-testpmd -l "0-$q" "${HUGE[@]}" "${TP_MEM[@]}" --no-pci \
        --vdev net_null0 --file-prefix zs-tp --log-level=3 -- --forward-mode=rxonly \
        --auto-start --stats-period 1 --nb-cores="$q" --rxq="$q" --txq="$q" \
        </dev/null >"$log" 2>&1
    grep -o 'Rx-pps: *[0-9]*' "$log" | awk '{print $2}' | tail -n +3 | median
    rm -f "$log"
}

# zcap capture, Q queues: prints "written_pps file_MBps received_pps
# file_MiB writer0_kernel_share" (the first writer's kernel time over its
# user and kernel time).
zcap_run() {
    local q=$1 out=$2; shift 2
    local js; js=$(mktemp)
    "$BIN/zcap" -i net_null0 -Q "$q" -l "1-$q" "${HUGE[@]}" -w "$out" -q \
        --duration "$DUR" --stats-interval 0 --stats-json "$js" "$@" >/dev/null 2>&1
    tail -1 "$js" | python3 -c "
import json, sys
d = json.load(sys.stdin); t = d['duration_s']
w = (d.get('writers') or [{}])[0]
busy = w.get('user_s', 0) + w.get('system_s', 0)
print(d['packets_written']/t, d['file_bytes']/t/1e6, d['packets_received']/t,
      d['file_bytes']//1048576, w.get('system_s', 0)/busy if busy else 0)"
    rm -f "$js"
    rm -f "${out%.*}"*.pcap "${out%.*}"*.pcapng 2>/dev/null || true
}

# zcap-bench --mode handoff, one queue: packets its writer took per second.
handoff_pps() {
    "$BIN/zcap-bench" -i net_null0 -Q 1 -l 1 "${HUGE[@]}" --mode handoff --duration "$DUR" --json 2>/dev/null |
        python3 -c "import json,sys; d=json.load(sys.stdin); print(d['drops']['writer']/d['duration_s'])"
}

bench_rx_pps() {
    local q=$1
    "$BIN/zcap-bench" -i net_null0 -Q "$q" -l "1-$q" "${HUGE[@]}" --duration "$DUR" --json 2>/dev/null |
        python3 -c "import json,sys; print(json.load(sys.stdin)['rate_pps'])"
}

# dd to tmpfs with N writers in parallel, MIB MiB each (default 2048), after
# a warm-up: total MB/s.
dd_mbps() {
    local n=$1 mib=${2:-2048} i start end
    warm_tmpfs
    start=$(date +%s.%N)
    for i in $(seq 1 "$n"); do
        dd if=/dev/zero of="$TMPFS/zs-dd-$i" bs=1M count="$mib" status=none &
    done
    wait
    end=$(date +%s.%N)
    rm -f "$TMPFS"/zs-dd-*
    python3 -c "print($n * $mib * 1048576 / ($end - $start) / 1e6)"
}

# Records in a pcapng file (enhanced packet blocks), without Wireshark's tools.
pcapng_records() {
    python3 - "$1" <<'PY'
import struct, sys
n = 0
with open(sys.argv[1], 'rb') as f:
    data = f.read()
i = 0
while i + 8 <= len(data):
    btype, blen = struct.unpack_from('<II', data, i)
    if blen < 12:
        break
    n += btype == 6
    i += blen
print(n)
PY
}

dumpcap_pps() {
    local out="$TMPFS/zs-dumpcap.pcapng"
    dpdk-testpmd -l 0,1 "${HUGE[@]}" "${TP_MEM[@]}" --no-pci --vdev net_null0 --file-prefix zs-dc \
        --log-level=3 -- --forward-mode=rxonly --auto-start --stats-period 1 --nb-cores=1 \
        </dev/null >/dev/null 2>&1 &
    local tp=$!
    sleep 3
    LD_PRELOAD=librte_mempool_dpaa.so.23 timeout -s INT $((DUR + 5)) dpdk-dumpcap \
        --file-prefix zs-dc -q -i net_null0 -w "$out" -a "duration:$DUR" >/dev/null 2>&1
    kill -INT "$tp" 2>/dev/null; wait "$tp" 2>/dev/null
    local n; n=$(pcapng_records "$out" 2>/dev/null || echo 0)
    rm -f "$out"
    python3 -c "print(${n:-0} / $DUR)"
}

echo "machine: $NCPU CPUs, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), pages: ${HUGE[*]:-hugepages}"
echo "net_null 64-byte packets, ${ROUNDS} rounds of ${DUR} s, medians; tmpfs ${TMPFS}"
echo

echo "## single queue: zcap against testpmd, dumpcap and dd"
echo
echo "| testpmd rxonly Mpps | zcap-bench rxonly Mpps | zcap hand-off only Mpps | zcap → /dev/null Mpps | zcap → tmpfs pcap Mpps (MB/s) | zcap → tmpfs pcapng Mpps (MB/s) | dd → tmpfs MB/s | dumpcap → tmpfs Mpps | hand-off vs testpmd | /dev/null vs testpmd | pcap MB/s vs dd | pcap writer's time in the kernel | pcap vs dumpcap |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
declare -a tp bx ho nl pc pcm pck ng ngm dd dc
for r in $(seq 1 "$ROUNDS"); do
    tp+=("$(testpmd_pps 1)")
    bx+=("$(bench_rx_pps 1)")
    ho+=("$(handoff_pps)")
    read -r w _ _ _ _ <<<"$(zcap_run 1 /dev/null)"; nl+=("$w")
    warm_tmpfs
    read -r w m _ mib k <<<"$(zcap_run 1 "$TMPFS/zs.pcap")"; pc+=("$w"); pcm+=("$m"); pck+=("$k")
    warm_tmpfs
    read -r w m _ _ _ <<<"$(zcap_run 1 "$TMPFS/zs.pcapng")"; ng+=("$w"); ngm+=("$m")
    # dd writes as many MiB as zcap's pcap file held.
    dd+=("$(dd_mbps 1 "$(( mib > 0 ? mib : 1 ))")")
    dc+=("$(dumpcap_pps)")
done
med() { printf '%s\n' "$@" | median; }
TP=$(med "${tp[@]}"); BX=$(med "${bx[@]}"); HO=$(med "${ho[@]}"); NL=$(med "${nl[@]}"); PC=$(med "${pc[@]}")
PCM=$(med "${pcm[@]}"); PCK=$(med "${pck[@]}"); NG=$(med "${ng[@]}"); NGM=$(med "${ngm[@]}")
DD=$(med "${dd[@]}"); DC=$(med "${dc[@]}")
printf '| %s | %s | %s | %s | %s (%.0f) | %s (%.0f) | %.0f | %s | %s | %s | %s | %.2f | %s |\n' \
    "$(mpps "$TP")" "$(mpps "$BX")" "$(mpps "$HO")" "$(mpps "$NL")" "$(mpps "$PC")" "$PCM" \
    "$(mpps "$NG")" "$NGM" "$DD" "$(mpps "$DC")" "$(ratio "$HO" "$TP")" "$(ratio "$NL" "$TP")" \
    "$(ratio "$PCM" "$DD")" "$PCK" "$(ratio "$PC" "$DC")"
echo

echo "## scaling with RSS queues (one poll loop per queue; per-queue files: one writer per queue on its own CPU)"
echo
echo "| queues | testpmd rxonly Mpps | zcap-bench rxonly Mpps | zcap per-queue → /dev/null Mpps | zcap per-queue → tmpfs pcap Mpps (MB/s) | Q parallel dd → tmpfs MB/s | zcap merged (one writer) → /dev/null Mpps | per-queue /dev/null vs testpmd | per-queue tmpfs vs Q dd |"
echo "|---|---|---|---|---|---|---|---|---|"
for q in $QUEUES; do
    if [ $((2 * q + 1)) -gt "$NCPU" ]; then
        echo "| $q | (needs $((2 * q + 1)) CPUs) | | | | | | | |"
        continue
    fi
    tp=(); bx=(); nl=(); pc=(); pcm=(); dd=(); mg=()
    for r in $(seq 1 "$ROUNDS"); do
        tp+=("$(testpmd_pps "$q")")
        bx+=("$(bench_rx_pps "$q")")
        read -r w _ _ _ _ <<<"$(zcap_run "$q" /dev/null --per-queue-files)"; nl+=("$w")
        warm_tmpfs
        read -r w m _ _ _ <<<"$(zcap_run "$q" "$TMPFS/zs.pcap" --per-queue-files)"; pc+=("$w"); pcm+=("$m")
        dd+=("$(dd_mbps "$q")")
        read -r w _ _ _ _ <<<"$(zcap_run "$q" /dev/null)"; mg+=("$w")
    done
    TP=$(med "${tp[@]}"); BX=$(med "${bx[@]}"); NL=$(med "${nl[@]}"); PC=$(med "${pc[@]}")
    PCM=$(med "${pcm[@]}"); DD=$(med "${dd[@]}"); MG=$(med "${mg[@]}")
    printf '| %s | %s | %s | %s | %s (%.0f) | %.0f | %s | %s | %s |\n' "$q" \
        "$(mpps "$TP")" "$(mpps "$BX")" "$(mpps "$NL")" "$(mpps "$PC")" "$PCM" "$DD" "$(mpps "$MG")" \
        "$(ratio "$NL" "$TP")" "$(ratio "$PCM" "$DD")"
done

# The frame-size sweep with 1, 2 and 4 queues (as many as the CPUs allow:
# testpmd takes Q+1 of them, zcap 2Q+1).
SWEEP_QUEUES=""
for q in 1 2 4; do [ $((2 * q + 1)) -le "$NCPU" ] && SWEEP_QUEUES+="$q "; done
echo
QUEUES="$SWEEP_QUEUES" BIN=$BIN SECONDS_PER_RUN=$DUR bash scripts/bench-sizes.sh
