#!/usr/bin/env bash
# Side-by-side benchmarks on net_null (64-byte packets), same cores, same run.
#
#   bash scripts/bench.sh            # everything, 3 rounds of 5 s
#   ROUNDS=5 SECONDS_PER_RUN=10 bash scripts/bench.sh rx
#   BIN=/path/to/old/target/release bash scripts/bench.sh rx capture
#
# Sections: rx      - dpdk-testpmd rxonly vs zcap-bench rxonly, alternating
#           capture - zcap-bench --mode handoff (the pipeline with writers that
#                     free without encoding: the hand-off's own cost), zcap
#                     to /dev/null, zcap to tmpfs (pcap, pcapng), dd to
#                     the same tmpfs (as many bytes as zcap's pcap file), each
#                     tmpfs write after a warm-up (see warm_tmpfs), and
#                     dpdk-dumpcap against a testpmd primary
#           filter  - the cost of a filter per packet: zcap-bench rxonly with no
#                     filter, accept-all, reject-all; testpmd with dpdk-dumpcap
#                     attached running the same filters (pdump runs the BPF
#                     interpreter on testpmd's core)
#           stats   - zcap capture rate with --stats-interval 1 vs 0.1
#           storage - fio, dd, zcap --io buffered/direct and dumpcap on the
#                     VM's disk and a RAM-backed ext4 (scripts/bench-storage.sh)
#           archive - index size and cost, zcap-extract against tcpdump -r
#                     from a cold cache, scaling with the file count
#                     (scripts/bench-archive.sh)
#           sizes   - the frame-size sweep (64..1518 and IMIX): testpmd
#                     rxonly, zcap-bench rxonly and zcap capture, Mpps and
#                     Gbit/s (scripts/bench-sizes.sh)
#           stream  - zcap --publish against a bare JetStream publisher, one
#                     node and a 3-node R=3 cluster; a time window extracted
#                     from the stream against the indexed files
#                     (scripts/bench-stream.sh)
# Prints one table per section, with ratios. Needs hugepages (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DUR=${SECONDS_PER_RUN:-5}
CORES=${CORES:-0,1}          # main lcore, poll lcore
POLL_CORE=${CORES#*,}
TMPFS=${TMPFS:-/dev/shm}
SECTIONS=${*:-rx capture filter stats}
# BIN=DIR runs the binaries in DIR as they are (an A/B against an older
# build; zcap-extract --stream also needs zcap-extract-stream there); by
# default the current tree is built first.
BIN=${BIN:-}

bash scripts/setup.sh >/dev/null
if [ -z "$BIN" ]; then
    cargo build --release --quiet --bins
    BIN=target/release
fi

json_field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$1"; }

# testpmd rxonly: median of its per-second Rx-pps readings (first one skipped).
testpmd_rxonly_pps() {
    local log; log=$(mktemp)
    timeout -s INT $((DUR + 2)) dpdk-testpmd -l "$CORES" --no-pci --vdev net_null0 --file-prefix zb-tp \
        --log-level=3 -- --forward-mode=rxonly --auto-start --stats-period 1 --nb-cores=1 \
        </dev/null >"$log" 2>&1 || true
    grep -o 'Rx-pps: *[0-9]*' "$log" | awk '{print $2}' | tail -n +2 | sort -n |
        awk '{v[NR]=$1} END{if (NR==0) print 0; else print v[int((NR+1)/2)]}'
    rm -f "$log"
}

zcap_bench_json() {
    "$BIN/zcap-bench" -i net_null0 -l "$POLL_CORE" --duration "$DUR" --json "$@"
}

# warm_tmpfs: the same warm memory for every timed tmpfs write (see there).
source scripts/lib/tmpfs-warm.sh
# Whatever happens, leave no benchmark files behind on the tmpfs.
trap 'rm -f "$TMPFS"/zcap-warm.bin "$TMPFS"/zcap-dd.bin "$TMPFS"/zcap-bench.pcap "$TMPFS"/zcap-bench.pcapng "$TMPFS"/dumpcap.pcapng' EXIT

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.3f}' if b else 'n/a')" "$1" "$2"; }
mpps() { python3 -c "import sys; print(f'{float(sys.argv[1])/1e6:.2f}')" "$1"; }

if [[ " $SECTIONS " == *" archive "* ]]; then
    BIN=$BIN bash scripts/bench-archive.sh
fi
if [[ " $SECTIONS " == *" sizes "* ]]; then
    BIN=$BIN SECONDS_PER_RUN=$DUR bash scripts/bench-sizes.sh
fi
if [[ " $SECTIONS " == *" storage "* ]]; then
    BIN=$BIN bash scripts/bench-storage.sh
fi
if [[ " $SECTIONS " == *" stream "* ]]; then
    BIN=$BIN ROUNDS=$ROUNDS SECONDS_PER_RUN=$DUR bash scripts/bench-stream.sh
fi

if [[ " $SECTIONS " == *" rx "* ]]; then
    echo "## rxonly on net_null, ${ROUNDS} rounds of ${DUR} s, cores ${CORES}"
    echo
    echo "| round | dpdk-testpmd rxonly (Mpps) | zcap-bench rxonly (Mpps) | zcap cycles/packet | ratio zcap/testpmd |"
    echo "|---|---|---|---|---|"
    for r in $(seq 1 "$ROUNDS"); do
        tp=$(testpmd_rxonly_pps)
        zj=$(zcap_bench_json --mode rxonly)
        zp=$(echo "$zj" | json_field "['rate_pps']")
        zc=$(echo "$zj" | json_field "['cycles_per_packet']")
        printf '| %s | %s | %s | %.1f | %s |\n' "$r" "$(mpps "$tp")" "$(mpps "$zp")" "$zc" "$(ratio "$zp" "$tp")"
    done
    echo
fi

if [[ " $SECTIONS " == *" capture "* ]]; then
    echo "## capture on net_null 64-byte packets, ${ROUNDS} rounds of ${DUR} s, tmpfs ${TMPFS}"
    echo
    echo "| round | testpmd rxonly Mpps | zcap hand-off only Mpps | zcap → /dev/null Mpps | zcap → tmpfs pcap Mpps (MB/s) | zcap → tmpfs pcapng Mpps (MB/s) | dd → tmpfs MB/s | dumpcap → tmpfs Mpps | hand-off vs testpmd | /dev/null vs testpmd | pcap MB/s vs dd | pcap writer's time in the kernel | zcap pcap vs dumpcap |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for r in $(seq 1 "$ROUNDS"); do
        tp=$(testpmd_rxonly_pps)
        # The pipeline with writers that free unencoded: what passing mbufs
        # between cores costs on its own (packets the writers took per second).
        handoff_pps=$(zcap_bench_json --mode handoff -w /dev/null |
            json_field "['drops']['writer']/d['duration_s']")
        null_pps=$(zcap_bench_json --mode capture -w /dev/null | json_field "['packets_written']/d['duration_s']")
        declare -A fmt_pps fmt_mbs fmt_mib fmt_kernel
        for fmt in pcap pcapng; do
            out="$TMPFS/zcap-bench.$fmt"
            warm_tmpfs
            j=$(zcap_bench_json --mode capture -w "$out")
            fmt_pps[$fmt]=$(echo "$j" | json_field "['packets_written']/d['duration_s']")
            fmt_mbs[$fmt]=$(echo "$j" | json_field "['file_bytes']/d['duration_s']/1e6")
            fmt_mib[$fmt]=$(echo "$j" | json_field "['file_bytes']//1048576")
            # The writer's kernel share bounds its rate against dd's: when the
            # kernel copies as fast for both, zcap reaches at most this ratio.
            fmt_kernel[$fmt]=$(echo "$j" | json_field "['writers'][0]['system_s']/max(1e-9, d['writers'][0]['user_s']+d['writers'][0]['system_s'])")
            rm -f "$out"
        done
        # The ceiling for the same job: as many bytes as zcap's pcap file had.
        warm_tmpfs
        dd_mbs=$(dd if=/dev/zero of="$TMPFS/zcap-dd.bin" bs=1M count="$(( ${fmt_mib[pcap]} > 0 ? ${fmt_mib[pcap]} : 1 ))" 2>&1 | tail -1 |
            python3 -c "import sys,re; l=sys.stdin.read(); b=int(l.split()[0]); s=float(re.search(r', ([0-9.]+) s,', l).group(1)); print(b/s/1e6)")
        rm -f "$TMPFS/zcap-dd.bin"
        # dumpcap is a secondary process: it needs a testpmd primary on the port.
        # Debian's build captures nothing unless the dpaa mempool driver is preloaded.
        dc_out="$TMPFS/dumpcap.pcapng"
        warm_tmpfs
        dpdk-testpmd -l "$CORES" --no-pci --vdev net_null0 --file-prefix zb-dc --log-level=3 -- \
            --forward-mode=rxonly --auto-start --stats-period 1 --nb-cores=1 </dev/null >/dev/null 2>&1 &
        tp_pid=$!
        sleep 3
        LD_PRELOAD=librte_mempool_dpaa.so.23 timeout -s INT $((DUR + 5)) dpdk-dumpcap --file-prefix zb-dc \
            -q -i net_null0 -w "$dc_out" -a "duration:$DUR" >/dev/null 2>&1 || true
        kill -INT "$tp_pid" 2>/dev/null || true
        wait "$tp_pid" 2>/dev/null || true
        dc_pkts=$(capinfos -c -M "$dc_out" 2>/dev/null | awk -F: '/Number of packets/{gsub(/ /,"",$2); print $2}')
        dc_pps=$(python3 -c "print(${dc_pkts:-0}/$DUR)")
        rm -f "$dc_out"
        printf '| %s | %s | %s | %s | %s (%.0f) | %s (%.0f) | %.0f | %s | %s | %s | %s | %.2f | %s |\n' "$r" \
            "$(mpps "$tp")" "$(mpps "$handoff_pps")" "$(mpps "$null_pps")" \
            "$(mpps "${fmt_pps[pcap]}")" "${fmt_mbs[pcap]}" "$(mpps "${fmt_pps[pcapng]}")" "${fmt_mbs[pcapng]}" \
            "$dd_mbs" "$(mpps "$dc_pps")" "$(ratio "$handoff_pps" "$tp")" \
            "$(ratio "$null_pps" "$tp")" "$(ratio "${fmt_mbs[pcap]}" "$dd_mbs")" "${fmt_kernel[pcap]}" "$(ratio "${fmt_pps[pcap]}" "$dc_pps")"
    done
    echo
fi

# net_null frames are all zeros: ether[0] = 0 accepts every one, = 1 none.
ACCEPT_ALL='ether[0] = 0'
REJECT_ALL='ether[0] = 1'

# testpmd rxonly with dumpcap attached, filter $1 ("" for none): testpmd's Mpps.
testpmd_with_dumpcap_pps() {
    local log; log=$(mktemp)
    dpdk-testpmd -l "$CORES" --no-pci --vdev net_null0 --file-prefix zb-df --log-level=3 -- \
        --forward-mode=rxonly --auto-start --stats-period 1 --nb-cores=1 </dev/null >"$log" 2>&1 &
    local tp=$!
    sleep 2
    local filter=(); [ -n "$1" ] && filter=(-f "$1")
    LD_PRELOAD=librte_mempool_dpaa.so.23 timeout -s INT $((DUR + 5)) dpdk-dumpcap --file-prefix zb-df \
        -q -i net_null0 -w /dev/null -a "duration:$DUR" "${filter[@]}" >/dev/null 2>&1 || true
    kill -INT "$tp" 2>/dev/null || true
    wait "$tp" 2>/dev/null || true
    # Readings while dumpcap was attached: skip the first two seconds.
    grep -o 'Rx-pps: *[0-9]*' "$log" | awk '{print $2}' | tail -n +3 | head -n "$DUR" | sort -n |
        awk '{v[NR]=$1} END{if (NR==0) print 0; else print v[int((NR+1)/2)]}'
    rm -f "$log"
}

if [[ " $SECTIONS " == *" filter "* ]]; then
    tsc_ghz=$("$BIN/zcap-bench" -i net_null0 -l "$POLL_CORE" --duration 1 --json | json_field "['tsc_hz']/1e9")
    echo "## filter cost on net_null, ${ROUNDS} rounds of ${DUR} s (accept-all: '${ACCEPT_ALL}', reject-all: '${REJECT_ALL}')"
    echo
    echo "| round | zcap none Mpps (cyc/pkt) | zcap accept-all Mpps (cyc/pkt) | zcap reject-all Mpps (cyc/pkt) | filter ns/pkt (accept, reject) | testpmd+dumpcap none Mpps | testpmd+dumpcap accept-all Mpps | testpmd+dumpcap reject-all Mpps |"
    echo "|---|---|---|---|---|---|---|---|"
    for r in $(seq 1 "$ROUNDS"); do
        declare -A pps cyc
        for name in none accept reject; do
            case $name in none) f=();; accept) f=(-f "$ACCEPT_ALL");; reject) f=(-f "$REJECT_ALL");; esac
            j=$(zcap_bench_json --mode rxonly "${f[@]}")
            pps[$name]=$(echo "$j" | json_field "['rate_pps']")
            cyc[$name]=$(echo "$j" | json_field "['cycles_per_packet']")
        done
        ns=$(python3 -c "g=$tsc_ghz or 1; a,r,n=${cyc[accept]},${cyc[reject]},${cyc[none]}; print(f'{(a-n)/g:.1f}, {(r-n)/g:.1f}')")
        d_none=$(testpmd_with_dumpcap_pps "")
        d_acc=$(testpmd_with_dumpcap_pps "$ACCEPT_ALL")
        d_rej=$(testpmd_with_dumpcap_pps "$REJECT_ALL")
        printf '| %s | %s (%.1f) | %s (%.1f) | %s (%.1f) | %s | %s | %s | %s |\n' "$r" \
            "$(mpps "${pps[none]}")" "${cyc[none]}" "$(mpps "${pps[accept]}")" "${cyc[accept]}" \
            "$(mpps "${pps[reject]}")" "${cyc[reject]}" "$ns" \
            "$(mpps "$d_none")" "$(mpps "$d_acc")" "$(mpps "$d_rej")"
    done
    echo "TSC: ${tsc_ghz} GHz (ns/pkt = extra cycles per packet / GHz)"
    echo
fi

if [[ " $SECTIONS " == *" stats "* ]]; then
    echo "## stats core cost: zcap capture to /dev/null on net_null, ${ROUNDS} rounds of ${DUR} s"
    echo
    echo "| round | --stats-interval 1: rx Mpps, written Mpps | --stats-interval 0.1: rx Mpps, written Mpps | written ratio 0.1 / 1 |"
    echo "|---|---|---|---|"
    for r in $(seq 1 "$ROUNDS"); do
        declare -A rx wr
        for interval in 1 0.1; do
            js=$(mktemp)
            "$BIN/zcap" -i net_null0 -l "$POLL_CORE" -w /dev/null -q --duration "$DUR" \
                --stats-interval "$interval" --stats-json "$js"
            last=$(tail -1 "$js")
            rx[$interval]=$(echo "$last" | json_field "['packets_received']/d['duration_s']")
            wr[$interval]=$(echo "$last" | json_field "['packets_written']/d['duration_s']")
            rm -f "$js"
        done
        printf '| %s | %s, %s | %s, %s | %s |\n' "$r" "$(mpps "${rx[1]}")" "$(mpps "${wr[1]}")" \
            "$(mpps "${rx[0.1]}")" "$(mpps "${wr[0.1]}")" "$(ratio "${wr[0.1]}" "${wr[1]}")"
    done
    echo
fi
